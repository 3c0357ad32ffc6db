"""The one function that turns a configuration into a run: :func:`resolve`.

Every caller (the CLI, the study, the bench, a user of
``train.train_and_evaluate``) goes through it and gets the same one-line
:class:`config.ConfigError` naming the flag. It returns a
:class:`spec.RunSpec`, data only: the grid of points of a ``sweep``, the
distance matrices and soft targets, with the hyperparameters that vary across
points split off as inputs of the compiled programs. The data flags are
checked where the data meet the run (``run_data.check_data_sizes``).
"""

from __future__ import annotations

import dataclasses
import itertools
import pathlib
from typing import Any

import numpy as np

import losses
from model import head_for
from trainer.config import (
  FIELDS,
  NUM_CLASSES,
  SWEEPABLE,
  Config,
  ConfigError,
  check_field,
)
from trainer.spec import RunSpec

# Each soft-label family's one parameter, set by --soft_label_param.
SOFT_LABEL_PARAMS = {'exponential': 'tau', 'von_mises': 'kappa',
                     'geometric': 'alpha', 'triangular': 'alpha2'}
# The loss hyperparameters a Config sets (a Config field is named as the
# losses' keyword), and with ce_weight and the soft-label parameter, every
# loss field.
LOSS_HYPERPARAMS = ('temperature', 'power', 'sharpness', 'kappa', 'epsilon')
LOSS_FIELDS = ('ce_weight', *LOSS_HYPERPARAMS, 'soft_label_param')


def order_distance(order: list[int]) -> np.ndarray:
  """|position of i - position of j| in ``order``, a permutation of the
  digits: the linear distance with the digits in another order."""
  position = np.argsort(np.asarray(order))
  distance: np.ndarray = np.abs(
      position[:, None] - position[None, :]).astype(np.float32)
  return distance


def _parse_order(spec: str, flag: str) -> list[int]:
  try:
    order = [int(d) for d in spec.removeprefix('order:').split(',')]
  except ValueError:
    order = []
  if sorted(order) != list(range(NUM_CLASSES)):
    raise ConfigError(f'{flag} {spec}: order: must list each digit 0-9 '
                      'once, e.g. order:4,8,1,3,7,9,6,0,2,5.')
  return order


def load_distance(spec: str, flag: str = '--distance') -> np.ndarray:
  """'linear', 'cyclic', 'order:...', or a path to a K x K .npy file;
  errors name ``flag``."""
  if spec == 'linear':
    return np.asarray(losses.linear_distance(NUM_CLASSES))
  if spec == 'cyclic':
    return np.asarray(losses.cyclic_distance(NUM_CLASSES))
  if spec.startswith('order:'):
    return order_distance(_parse_order(spec, flag))
  path = pathlib.Path(spec)
  if path.suffix != '.npy' or not path.is_file():
    raise ConfigError(f'{flag} must be linear, cyclic, order:D0,...,D9 or '
                      f'an existing .npy file, got {spec!r}.')
  try:
    matrix = np.load(path, allow_pickle=False)
  except (ValueError, OSError) as e:
    raise ConfigError(f'{flag} {spec}: not a readable .npy array '
                      f'({e}).') from None
  try:
    return np.asarray(losses.validate_distance(
        matrix, num_classes=NUM_CLASSES, name=f'{flag} {spec}'))
  except (TypeError, ValueError) as e:
    raise ConfigError(str(e)) from None


def grid_points(sweep: dict[str, list]) -> list[dict[str, Any]]:
  """The product of the swept values, the last name varying fastest."""
  names = list(sweep)
  return [dict(zip(names, values, strict=True))
          for values in itertools.product(*(sweep[n] for n in names))]


def _check_sweep(config: Config) -> dict[str, list]:
  sweep = config.sweep
  if not isinstance(sweep, dict):
    raise ConfigError(f'--sweep must map names to lists of values, got '
                      f'{sweep!r}.')
  for name, values in sweep.items():
    if name not in SWEEPABLE:
      raise ConfigError(f'--sweep {name}: only {", ".join(SWEEPABLE)} can be '
                        'swept.')
    if getattr(config, name) != FIELDS[name].default:
      raise ConfigError(f'--{name} {getattr(config, name)} is also swept '
                        f'(--sweep {name}=...); give one of the two.')
    if not isinstance(values, (list, tuple)) or not values:
      raise ConfigError(f'--sweep {name} needs at least one value.')
    if len(set(map(str, values))) != len(values):
      raise ConfigError(f'--sweep {name} repeats a value: {list(values)}.')
    for value in values:
      try:
        check_field(name, value)
        if name == 'distance':
          load_distance(value)
      except ConfigError as e:
        raise ConfigError(f'--sweep {name}: {e}') from None
  if 'distance' in sweep and 'distance' not in losses.get_loss(
      config.loss).hyperparams:
    raise ConfigError(f'--sweep distance: --loss {config.loss} trains without '
                      'a distance, so every point would train the same model.')
  return {name: list(values) for name, values in sweep.items()}


def _soft_targets(config: Config) -> np.ndarray | None:
  if config.soft_labels is None:
    return None
  value = config.soft_label_param
  params = ({} if value is None
            else {SOFT_LABEL_PARAMS[config.soft_labels]: value})
  try:
    return np.asarray(losses.soft_label_matrix(config.soft_labels, NUM_CLASSES,
                                               **params))
  except ValueError as e:
    raise ConfigError(f'--soft_labels {config.soft_labels} --soft_label_param '
                      f'{value}: {e}') from None


def _check_loss_fields(config: Config) -> None:
  """Each loss hyperparameter given must be one the loss (or family) takes."""
  spec = losses.get_loss(config.loss)
  takes = set(spec.hyperparams) | set(spec.probs_hyperparams)
  if spec.takes_logits:
    takes.add('ce_weight')
  if config.soft_labels in SOFT_LABEL_PARAMS:
    takes.add('soft_label_param')
  if 'targets' in spec.hyperparams and config.soft_labels is None:
    raise ConfigError(f'--loss {config.loss} needs --soft_labels FAMILY (one '
                      f'of {", ".join(losses.SOFT_LABEL_FAMILIES)}).')
  if config.soft_labels is not None and 'targets' not in spec.hyperparams:
    raise ConfigError(f'--soft_labels applies to --loss '
                      f'soft_target_cross_entropy only, not {config.loss}.')
  for name in LOSS_FIELDS:
    if getattr(config, name) is not None and name not in takes:
      if name == 'ce_weight':
        raise ConfigError(f'--ce_weight: --loss {config.loss} has its own '
                          'output head, not softmax logits, and cannot be '
                          'mixed with cross-entropy.')
      raise ConfigError(f'--{name} does not apply to --loss {config.loss}'
                        + (f' --soft_labels {config.soft_labels}'
                           if config.soft_labels else '') + '.')
  if config.weight_decay and config.optimizer != 'adam':
    raise ConfigError(f'--weight_decay applies to --optimizer adam only '
                      f'(AdamW), not {config.optimizer}.')


def _point_values(config: Config) -> dict[str, Any]:
  """The numeric values a point feeds the programs, by name."""
  spec = losses.get_loss(config.loss)
  values = {'learning_rate': config.learning_rate,
            'weight_decay': config.weight_decay,
            'distance': load_distance(config.distance),
            'decode_distance': load_distance(
                config.decode_distance or config.distance, '--decode_distance'
                if config.decode_distance else '--distance')}
  if spec.takes_logits:
    values['ce_weight'] = config.ce_weight
  for name in LOSS_HYPERPARAMS:
    if name in spec.hyperparams or name in spec.probs_hyperparams:
      values[name] = getattr(config, name)
  if 'targets' in spec.hyperparams:
    values['targets'] = _soft_targets(config)
  return values


def _same(a: Any, b: Any) -> bool:
  if a is None or b is None:
    return a is b
  return np.array_equal(a, b)


def _split_constants(
    per_point: list[dict[str, Any]],
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
  """(constants, inputs_P): values equal at every point; the rest, stacked."""
  constants: dict[str, Any] = {}
  inputs_P: dict[str, np.ndarray] = {}
  for name in per_point[0]:
    column = [p[name] for p in per_point]
    if all(_same(v, column[0]) for v in column):
      constants[name] = column[0]
    elif any(v is None for v in column):
      raise ConfigError(f'--sweep: {name} cannot be unset at some points and '
                        'set at others.')
    else:
      inputs_P[name] = np.stack([np.asarray(v, np.float32) for v in column])
  return constants, inputs_P


def _check_calibration(config: Config) -> None:
  """The prediction sets are scored on the test split."""
  if config.calibration_size and not config.score_test:
    raise ConfigError('--calibration_size calibrates prediction sets scored on '
                      'the test split: it needs the test split scored (not '
                      '--no_test).')


def _check_shifted(config: Config) -> None:
  """The shifted sets' flags against the splits they corrupt."""
  if not config.shifted_confirmation:
    return
  if not (config.confirmation_size and config.score_test):
    raise ConfigError('--shifted_confirmation corrupts the confirmation split: '
                      'it needs --confirmation_size and the test split scored '
                      '(not --no_test).')
  if config.shifted_size > config.confirmation_size:
    raise ConfigError(f'--shifted_size {config.shifted_size} is more than the '
                      f'{config.confirmation_size} confirmation images '
                      '(--confirmation_size).')


def resolve(config: Config) -> RunSpec:
  """Checks ``config`` and returns the run it describes; the only validation.

  Raises:
    ConfigError: naming the flag of the first bad field.
  """
  if not isinstance(config, Config):
    raise TypeError(f'config must be a Config, got {type(config).__name__}.')
  for name in FIELDS:
    if name != 'sweep':
      check_field(name, getattr(config, name))
  if config.stop_after is not None and config.stop_after > config.epochs:
    raise ConfigError(f'--stop_after {config.stop_after} is after the last '
                      f'epoch (--epochs {config.epochs}).')
  _check_shifted(config)
  _check_calibration(config)
  sweep = _check_sweep(config)
  points = grid_points(sweep)
  point_configs = [dataclasses.replace(config, **p, sweep={}) for p in points]
  for point_config in point_configs:
    _check_loss_fields(point_config)
  per_point = [_point_values(c) for c in point_configs]
  constants, inputs_P = _split_constants(per_point)
  loss = losses.get_loss(config.loss)
  spec = RunSpec(config, tuple(points), constants, inputs_P,
                 np.stack([p['distance'] for p in per_point]),
                 loss.hyperparams, loss.probs_hyperparams, loss.takes_logits)
  _bind_every_point(spec, point_configs)
  return spec


def _bind_every_point(spec: RunSpec, point_configs: list[Config]) -> None:
  """Calls the loss once at every point, so that what the losses themselves
  check (at trace time) is a ConfigError naming the flag, not an error
  inside the first compile."""
  config = spec.config
  outputs_1xO = np.zeros((1, head_for(config.loss).num_outputs(NUM_CLASSES)),
                         np.float32)
  for p, (point, point_config) in enumerate(zip(spec.points, point_configs,
                                                 strict=True)):
    hp = {k: v[p] for k, v in spec.inputs_P.items()}
    try:
      losses.make_loss(config.loss, **spec.loss_kwargs(hp))(
          outputs_1xO, np.zeros((1,), np.int32))
    except (TypeError, ValueError) as e:
      mixed = ('' if point_config.ce_weight is None
               else f' --ce_weight {point_config.ce_weight}')
      where = f' (sweep point {point})' if config.sweep else ''
      raise ConfigError(f'--loss {config.loss}{mixed}{where}: {e}') from None
