"""A run's configuration as plain data, each field with its description.

:class:`Config` is everything that defines a run (saved as config.json). Each
field carries its description (help text, allowed values or range, whether a
sweep may vary it): ``cli.py`` makes the flags of ``train.py`` from it, and
:func:`check_field` checks a value against it. ``resolve.py`` (next to it)
turns a config into what a run needs, and is the one validation every caller
goes through.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from typing import Any, cast

import data
import losses

NUM_CLASSES = data.NUM_CLASSES
# Images per corruption for --shifted_test by default: 12 corruptions x 2 000
# images cost about as much to score as the clean test split does twice.
SHIFTED_TEST_SIZE = 2000


class ConfigError(ValueError):
  """A configuration that cannot run; the message names the flag."""


def _field(default: Any, help: str, *,
           check: tuple[str, Callable] | None = None,
           choices: Callable[[], tuple] | None = None,
           sweep: bool = False) -> Any:
  """A Config field with its description.

  Args:
    default: the value when the flag is not given.
    help: the flag's ``--help`` text.
    check: ``(phrase, predicate)``: a value is accepted when
      ``predicate(value)`` holds; the error says the value "must be <phrase>".
      None is accepted for fields whose default is None.
    choices: the allowed values (a function, so that registries are read
      when the description is).
    sweep: whether ``--sweep`` may vary the field.
  """
  return dataclasses.field(default=default, metadata={
      'help': help, 'check': check, 'choices': choices, 'sweep': sweep})


_POSITIVE = ('> 0', lambda v: v > 0)
_NON_NEGATIVE = ('>= 0', lambda v: v >= 0)
_AT_LEAST_1 = ('>= 1', lambda v: v >= 1)


def parse_alphas(text: str) -> tuple[float, ...]:
  """'0.1,0.05' -> (0.1, 0.05); ValueError unless every level is a number
  in (0, 1), none twice."""
  try:
    alphas = tuple(float(v) for v in text.split(','))
  except ValueError:
    raise ValueError(f'{text!r} is not a comma-separated list of numbers.'
                     ) from None
  if not all(0 < a < 1 for a in alphas) or len(set(alphas)) != len(alphas):
    raise ValueError(f'{text!r}: every level must lie in (0, 1), none twice.')
  return alphas


def _alphas_ok(text: str) -> bool:
  try:
    parse_alphas(text)
  except ValueError:
    return False
  return True


@dataclasses.dataclass(frozen=True)
class Config:
  """Everything that defines a run; plain data, saved as config.json."""
  loss: str = _field('cross_entropy', 'training loss (losses.LOSSES)',
                     choices=lambda: tuple(sorted(losses.LOSSES)))
  ce_weight: float | None = _field(
      None, 'train on CE + LAMBDA * loss (0 gives pure CE); unset: the loss '
      'alone; softmax-head losses only', check=_NON_NEGATIVE, sweep=True)
  distance: str = _field(
      'linear', "'linear', 'cyclic', 'order:D0,...,D9' (the linear distance "
      'between positions in that order of the digits, e.g. a permuted order '
      "as a control), or a path to a 10x10 .npy cost matrix; used by "
      'distance-aware losses and, unless --decode_distance is given, for '
      'Bayes decoding', sweep=True)
  decode_distance: str | None = _field(
      None, 'the cost Bayes decoding minimises, in the forms of --distance '
      '(linear: the mean digit-distance error); default: --distance')
  temperature: float | None = _field(
      None, 'soft_label_cross_entropy temperature (default 1.0)',
      check=_POSITIVE, sweep=True)
  power: float | None = _field(
      None, 'exponent on the costs of class_distance_weighted_ce (also '
      "published as the ordinal log loss; the papers' alpha; default 1.0)",
      check=_POSITIVE,
      sweep=True)
  sharpness: float | None = _field(
      None, "sharpness of slace's weights softmax(-SHARPNESS * distance) (the "
      "paper's alpha; default 1.0)", check=_POSITIVE, sweep=True)
  kappa: float | None = _field(
      None, 'concentration of the von_mises_head loss (default 1.0)',
      check=_POSITIVE, sweep=True)
  epsilon: float | None = _field(
      None, 'weight of the smoothing distribution mixed into the one-hot '
      'target, (1 - EPSILON) one-hot + EPSILON q: q uniform for '
      'label_smoothing_cross_entropy (default 0.1), q = softmax(-C[y] / T) '
      'for soft_label_cross_entropy (default 1.0: SORD)',
      check=('in (0, 1]', lambda v: 0 < v <= 1), sweep=True)
  link: str = _field('logit', 'link function of the clm head (cumulative '
                     'link model)',
                     choices=lambda: tuple(sorted(losses.CLM_LINKS)))
  soft_labels: str | None = _field(
      None, 'target family of --loss soft_target_cross_entropy (needed there, '
      'nowhere else)', choices=lambda: (None,) + losses.SOFT_LABEL_FAMILIES)
  soft_label_param: float | None = _field(
      None, "the --soft_labels family's parameter: exponential's tau (1.0), "
      "geometric's alpha (0.1), triangular's alpha2 (0.01), von_mises' kappa "
      '(5.0); the other families have none', check=_POSITIVE, sweep=True)
  optimizer: str = _field('adam', 'adam (AdamW) or sgd (Nesterov momentum '
                          '0.9)', choices=lambda: ('adam', 'sgd'))
  learning_rate: float = _field(3e-3, 'peak learning rate', check=_POSITIVE,
                                sweep=True)
  schedule: str = _field('cosine', 'cosine: linear warm-up then cosine decay '
                         'to 0 (a run of one step takes the peak); constant: '
                         'the peak throughout',
                         choices=lambda: ('cosine', 'constant'))
  warmup_epochs: float = _field(0.2, 'warm-up length of the cosine schedule, '
                                'in epochs', check=_NON_NEGATIVE)
  weight_decay: float = _field(0.0, 'AdamW decoupled weight decay (adam only)',
                               check=_NON_NEGATIVE, sweep=True)
  epochs: int = _field(3, 'number of passes over the training set',
                       check=_AT_LEAST_1)
  stop_after: int | None = _field(
      None, 'stop after this epoch while the learning-rate schedule still '
      'spans --epochs: early stopping at an epoch chosen on validation (that '
      'epoch is evaluated and checkpointed, the shifted test sets scored '
      'there); default: train every epoch', check=_AT_LEAST_1)
  batch_size: int = _field(32, 'training batch size', check=_AT_LEAST_1)
  seed: int = _field(0, 'seed of the first model (init and shuffling)')
  num_seeds: int = _field(1, 'train N independent models (seeds seed..seed+N-1)'
                          ' in one vmapped program', check=_AT_LEAST_1)
  data_dir: str | None = _field(
      None, 'folder with the four MNIST IDX files (.gz or raw); default: '
      "$MNIST_DIR, else tfds' prepared mnist, else the download cache "
      '~/.cache/ordinal-mnist/mnist, downloading into it on first use '
      '(mirrors: $MNIST_MIRRORS)')
  tfds_data_dir: str | None = _field(
      None, "tensorflow-datasets data_dir with a prepared 'mnist' (used only "
      'when no IDX folder is given)')
  confirmation_size: int = _field(
      0, 'set this many of the training images left after --validation_size '
      'aside as the confirmation split (the same ones for every run with that '
      '--validation_size, clean labels; --train_size and --label_noise draw '
      'from the rest): never trained or tuned on, scored with the test split '
      '(results/protocol.md); 0: none', check=_NON_NEGATIVE)
  validation_size: int = _field(
      0, 'hold out this many training images (the same ones for every run) '
      'and score them after each evaluated epoch', check=_NON_NEGATIVE)
  calibration_size: int = _field(
      0, 'set this many of the training images left after --validation_size '
      'and --confirmation_size aside as the calibration split (the same ones '
      'every time, clean labels, never trained or tuned on): after the last '
      "epoch each set method of trainer/sets.py is calibrated on it and its "
      'coverage, size and distance to the label on the test split reported '
      'per --set_alphas; predictions.npz keeps its probabilities, for python '
      '-m trainer.sets; 0: none', check=_NON_NEGATIVE)
  set_alphas: str = _field(
      '0.1,0.05', 'the levels of the prediction sets of --calibration_size, '
      'comma-separated: the miscoverage each set method allows (coverage >= '
      '1 - ALPHA), the expected distance to the set over the largest for the '
      "risk method", check=('comma-separated numbers in (0, 1), none twice',
                           _alphas_ok))
  train_size: int | None = _field(
      None, 'train on a random subset of this many images (drawn per seed); '
      'default: every training image', check=_AT_LEAST_1)
  label_noise: float = _field(
      0.0, 'replace this share of the training (and validation) labels by '
      'another class, uniformly (symmetric noise, drawn per seed); test '
      'labels stay clean', check=('in [0, 1)', lambda v: 0 <= v < 1))
  clean_validation: bool = _field(
      False, 'keep the validation labels clean under --label_noise, so that '
      'model selection scores the true digits (assumes a small clean set, '
      'as noisy-label benchmarks do)')
  eval_every: int = _field(1, 'evaluate and checkpoint every N epochs (and '
                           'after the last)', check=_AT_LEAST_1)
  score_test: bool = _field(True, 'whether the test split is scored; '
                            '--no_test turns it off, for model-selection runs '
                            'that look at validation only')
  shifted_test: bool = _field(
      False, 'after the last epoch also score the first --shifted_size test '
      'images under each corruption of corruptions.py (MNIST-C style)')
  shifted_confirmation: bool = _field(
      False, 'after the last epoch also score the first --shifted_size '
      'confirmation images under each corruption, drawn with their own seed '
      '(data.CONFIRMATION_SHIFT_SEED); needs --confirmation_size; '
      'predictions.npz keeps every image\'s predictions')
  shifted_size: int = _field(
      SHIFTED_TEST_SIZE, 'images per corruption for --shifted_test and '
      '--shifted_confirmation: the first of each split (all of a smaller '
      'one)', check=_AT_LEAST_1)
  sweep: dict[str, list] = dataclasses.field(
      default_factory=dict, metadata={
          'help': 'NAME=V1,V2,...: train every point of the grid (the product '
          'of the repeated --sweep flags, the last varying fastest) x '
          '--num_seeds in one compiled program',
          'check': None, 'choices': None, 'sweep': False})


FIELDS = {f.name: f for f in dataclasses.fields(Config)}

# Names a config.json (a run's workdir, a study cell) may hold from before
# 2026-12-02, when each loss name and hyperparameter got one meaning.
RENAMED_LOSSES = {'binomial': 'binomial_head', 'poisson': 'poisson_head',
                  'von_mises': 'von_mises_head'}
# A second registry name of one function until 2026-12-07: the module keeps
# the name, the registry (and so a configuration) one name per function.
ALIASED_LOSSES = {'ordinal_log_loss': 'class_distance_weighted_ce'}
_OLD_SOFT_LABEL_FIELD = {'exponential': 'temperature', 'von_mises': 'kappa',
                         'geometric': 'alpha', 'triangular': 'alpha'}
_OLD_ALPHA = {'class_distance_weighted_ce': 'power', 'slace': 'sharpness'}


def renamed_fields(saved: dict[str, Any]) -> dict[str, str]:
  """Old field name -> today's, for a saved configuration (old or new)."""
  renames = {}
  family = saved.get('soft_labels')
  if family in _OLD_SOFT_LABEL_FIELD:
    renames[_OLD_SOFT_LABEL_FIELD[family]] = 'soft_label_param'
  elif saved.get('loss') in _OLD_ALPHA:
    renames['alpha'] = _OLD_ALPHA[saved['loss']]
  return renames


def migrate(saved: dict[str, Any]) -> dict[str, Any]:
  """A saved configuration's fields under today's names.

  Renamed and aliased losses get today's names; ``alpha`` becomes ``power``,
  ``sharpness`` or ``soft_label_param``, and a soft-label family's
  ``temperature`` or ``kappa`` becomes ``soft_label_param``, in the fields
  and in the ``sweep``; an unset ``alpha`` is dropped. A configuration
  written today comes back unchanged: only a value that is set moves, so a
  saved ``temperature: null`` beside a set ``soft_label_param`` stays so.
  """
  migrated = dict(saved)
  if 'loss' in migrated:
    loss = migrated['loss']
    migrated['loss'] = RENAMED_LOSSES.get(loss, ALIASED_LOSSES.get(loss, loss))
  renames = renamed_fields(migrated)
  for old, new in renames.items():
    if migrated.get(old) is not None:
      migrated[new] = migrated.pop(old)
  if 'alpha' in migrated and migrated['alpha'] is None:
    del migrated['alpha']
  if migrated.get('sweep'):
    migrated['sweep'] = {renames.get(name, name): values
                         for name, values in migrated['sweep'].items()}
  return migrated


SWEEPABLE = tuple(name for name, f in FIELDS.items() if f.metadata['sweep'])


def field_type(name: str) -> type:
  """The Python type of a field's values (int, float, str or bool)."""
  annotation = FIELDS[name].type
  for kind in (bool, int, float):
    if annotation.startswith(kind.__name__):
      return kind
  return str


def check_field(name: str, value: Any) -> None:
  """Raises ConfigError unless ``value`` is allowed for field ``name``."""
  meta = FIELDS[name].metadata
  if meta['choices'] is not None:
    allowed = meta['choices']()
    if value not in allowed:
      renamed = ''
      if name == 'loss' and value in RENAMED_LOSSES:
        renamed = (f' ({value} was renamed {RENAMED_LOSSES[value]} on '
                   '2026-12-02)')
      elif name == 'loss' and value in ALIASED_LOSSES:
        renamed = (f' ({value} is the same function as '
                   f'{ALIASED_LOSSES[value]}: use that name)')
      raise ConfigError(f'--{name} must be one of '
                        f'{", ".join(map(str, allowed))}; got {value!r}'
                        f'{renamed}.')
  if value is None:
    if FIELDS[name].default is not None:
      raise ConfigError(f'--{name} needs a value.')
    return
  kind = field_type(name)
  if kind is float and isinstance(value, int) and not isinstance(value, bool):
    value = float(value)
  if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
    raise ConfigError(f'--{name} must be {kind.__name__}, got {value!r}.')
  # After isinstance(value, kind) with kind float, value is a float; mypy
  # cannot narrow through the variable kind.
  if kind is float and not math.isfinite(cast(float, value)):
    raise ConfigError(f'--{name} must be a finite number, got {value!r}.')
  if meta['check'] is not None:
    phrase, ok = meta['check']
    if not ok(value):
      raise ConfigError(f'--{name} must be {phrase}, got {value!r}.')


def config_json(config: Config) -> str:
  """The configuration as the config.json of its workdir."""
  return json.dumps(dataclasses.asdict(config), indent=2) + '\n'
