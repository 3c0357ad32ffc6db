"""A run's configuration: plain data, checked once, and the command line for it.

:class:`Config` is everything that defines a run (saved as config.json).
Every way of making one (the flags, ``experiments.py``'s grids, a user calling
``train.train_and_evaluate``) goes through :meth:`Config.__post_init__`, so a
typo such as ``optimizer='adamw'`` is an error wherever it is made. Messages
name the flag (``--optimizer``); a field and its flag share their name.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import pathlib
from typing import Any

import jax
import numpy as np

import corruptions
import data
import losses

NUM_CLASSES = data.NUM_CLASSES
OPTIMIZERS = ('adam', 'sgd')
SCHEDULES = ('cosine', 'constant')
# Test images per corruption for --shifted_test: 12 corruptions x 2 000 images
# cost about as much to score as the clean test split does twice.
SHIFTED_TEST_SIZE = 2000


@dataclasses.dataclass(frozen=True)
class Config:
  """Everything that defines a run; plain data, saved as config.json."""
  loss: str = 'cross_entropy'
  ce_weight: float | None = None
  distance: str = 'linear'
  temperature: float | None = None
  alpha: float | None = None
  kappa: float | None = None
  link: str = 'logit'
  soft_labels: str | None = None
  optimizer: str = 'adam'
  learning_rate: float = 3e-3
  schedule: str = 'cosine'
  warmup_epochs: float = 0.2
  weight_decay: float = 0.0
  epochs: int = 3
  batch_size: int = 32
  seed: int = 0
  num_seeds: int = 1
  data_dir: str | None = None
  tfds_data_dir: str | None = None
  validation_size: int = 0
  train_size: int | None = None
  label_noise: float = 0.0
  eval_every: int = 1
  score_test: bool = True
  shifted_test: bool = False

  def __post_init__(self):
    validate(self)


def validate(config: Config) -> None:
  """Raises ValueError naming the flag of the first bad field."""
  choices = {'loss': sorted(losses.LOSSES), 'optimizer': OPTIMIZERS,
             'schedule': SCHEDULES, 'link': sorted(losses.CLM_LINKS),
             'soft_labels': (None,) + losses.SOFT_LABEL_FAMILIES}
  for name, allowed in choices.items():
    value = getattr(config, name)
    if value not in allowed:
      raise ValueError(f'--{name} must be one of '
                       f'{", ".join(map(str, allowed))}; got {value!r}.')
  ranges = {
      'ce_weight': config.ce_weight is None or config.ce_weight >= 0,
      'temperature': config.temperature is None or config.temperature > 0,
      'alpha': config.alpha is None or config.alpha > 0,
      'kappa': config.kappa is None or config.kappa > 0,
      'learning_rate': config.learning_rate > 0,
      'warmup_epochs': config.warmup_epochs >= 0,
      'weight_decay': config.weight_decay >= 0,
      'epochs': config.epochs >= 1,
      'batch_size': config.batch_size >= 1,
      'num_seeds': config.num_seeds >= 1,
      'validation_size': config.validation_size >= 0,
      'train_size': config.train_size is None or config.train_size >= 1,
      'label_noise': 0 <= config.label_noise < 1,
      'eval_every': config.eval_every >= 1,
  }
  for name, ok in ranges.items():
    value = getattr(config, name)
    if not ok or (isinstance(value, float) and not math.isfinite(value)):
      raise ValueError(f'--{name} {value} is out of range.')
  distance_KxK = load_distance(config.distance)
  if ('targets' in losses.get_loss(config.loss).hyperparams
      and config.soft_labels is None):
    raise ValueError(f'--loss {config.loss} needs --soft_labels FAMILY (one '
                     f'of {", ".join(losses.SOFT_LABEL_FAMILIES)}).')
  try:
    make_loss_fn(config, distance_KxK)
  except ValueError as e:
    mixed = '' if config.ce_weight is None else f' --ce_weight {config.ce_weight}'
    raise ValueError(f'--loss {config.loss}{mixed}: {e}') from None


def load_distance(spec: str) -> jax.Array:
  """'linear', 'cyclic', or a path to a K x K .npy file."""
  if spec == 'linear':
    return losses.linear_distance(NUM_CLASSES)
  if spec == 'cyclic':
    return losses.cyclic_distance(NUM_CLASSES)
  path = pathlib.Path(spec)
  if path.suffix != '.npy' or not path.is_file():
    raise ValueError(f'--distance must be linear, cyclic or an existing .npy '
                     f'file, got {spec!r}.')
  try:
    matrix = np.load(path, allow_pickle=False)
  except (ValueError, OSError) as e:
    raise ValueError(f'--distance {spec}: not a readable .npy array ({e}).') from None
  return losses.validate_distance(matrix, num_classes=NUM_CLASSES,
                                  name=f'--distance {spec}')


def check_batch_size(batch_size: int, num_train: int) -> None:
  """Raises ValueError (naming --batch_size) if no full batch fits or the
  batch cannot be split evenly over the devices."""
  if batch_size > num_train:
    raise ValueError(f'--batch_size {batch_size} is larger than the '
                     f'{num_train} training images.')
  if batch_size % jax.device_count():
    raise ValueError(f'--batch_size {batch_size} must be a multiple of the '
                     f'{jax.device_count()} devices.')


def check_data_flags(config: Config, num_images: int) -> None:
  """Raises ValueError (naming the flag) if the training split cannot give
  the validation split, subset and batches the config asks for."""
  if config.validation_size >= num_images:
    raise ValueError(f'--validation_size {config.validation_size} leaves no '
                     f'training images (the training split has {num_images}).')
  pool = num_images - config.validation_size
  if config.train_size is not None and config.train_size > pool:
    raise ValueError(f'--train_size {config.train_size} is more than the '
                     f'{pool} training images left after --validation_size '
                     f'{config.validation_size}.')
  check_batch_size(config.batch_size, config.train_size or pool)


# Which flag sets each soft-label family's parameter (the others have none).
SOFT_LABEL_FLAGS = {'exponential': ('tau', 'temperature'),
                    'von_mises': ('kappa', 'kappa'),
                    'geometric': ('alpha', 'alpha'),
                    'triangular': ('alpha2', 'alpha')}


def soft_label_targets(config: Config):
  """The --soft_labels family's [K, K] target matrix, or None."""
  if config.soft_labels is None:
    return None
  param, field = SOFT_LABEL_FLAGS.get(config.soft_labels, (None, None))
  value = getattr(config, field) if field else None
  params = {} if value is None else {param: value}
  return losses.soft_label_matrix(config.soft_labels, NUM_CLASSES, **params)


def loss_hyperparams(config: Config, distance_KxK) -> dict[str, Any]:
  """Every hyperparameter a registered loss or head may take."""
  return {'distance': distance_KxK, 'temperature': config.temperature,
          'alpha': config.alpha, 'kappa': config.kappa, 'link': config.link,
          'num_classes': NUM_CLASSES, 'targets': soft_label_targets(config)}


def make_loss_fn(config: Config, distance_KxK):
  return losses.make_loss(config.loss, ce_weight=config.ce_weight,
                          **loss_hyperparams(config, distance_KxK))


def make_probs_fn(config: Config, distance_KxK):
  return losses.make_probs(config.loss,
                           **loss_hyperparams(config, distance_KxK))


# ----------------------------------------------------------------------------
# Command line.


class _Parser(argparse.ArgumentParser):

  def error(self, message):
    """One line, exit code 2, as for every other bad flag."""
    self.exit(2, f'{self.prog}: error: {message}\n')


def build_parser() -> argparse.ArgumentParser:
  # The field defaults, not Config(): validating touches a JAX device, and a
  # multi-process run must call jax.distributed.initialize() before that.
  defaults = argparse.Namespace(**{f.name: f.default
                                   for f in dataclasses.fields(Config)})
  p = _Parser(
      prog='train.py',
      description='Train an MNIST CNN with a distance-aware loss and report '
      'test accuracy and the mean digit-distance error.',
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  p.add_argument('--loss', default=defaults.loss, choices=sorted(losses.LOSSES),
                 help='training loss from the losses.LOSSES registry')
  p.add_argument('--ce_weight', type=float, default=None, metavar='LAMBDA',
                 help='train on CE + LAMBDA * loss (0 gives pure CE); unset: '
                 'the loss alone')
  p.add_argument('--distance', default=defaults.distance,
                 help="'linear', 'cyclic', or a path to a 10x10 .npy cost "
                 'matrix; used by distance-aware losses and for Bayes decoding')
  p.add_argument('--temperature', type=float, default=None,
                 help='soft_label_cross_entropy temperature (default 1.0)')
  p.add_argument('--alpha', type=float, default=None,
                 help='exponent of class_distance_weighted_ce and '
                 'ordinal_log_loss, sharpness of slace (each default 1.0); '
                 "with --soft_labels: geometric's alpha (0.1) or triangular's "
                 'alpha2 (0.01)')
  p.add_argument('--kappa', type=float, default=None,
                 help='von Mises concentration: of the von_mises head '
                 '(default 1.0) or of --soft_labels von_mises (default 5.0)')
  p.add_argument('--link', default=defaults.link,
                 choices=sorted(losses.CLM_LINKS),
                 help='link function of the clm head (cumulative link model)')
  p.add_argument('--soft_labels', default=None,
                 choices=losses.SOFT_LABEL_FAMILIES,
                 help='target family of --loss soft_target_cross_entropy; '
                 "exponential's tau is --temperature (default 1.0)")
  p.add_argument('--optimizer', default=defaults.optimizer,
                 choices=OPTIMIZERS,
                 help='adam (AdamW) or sgd (Nesterov momentum 0.9)')
  p.add_argument('--learning_rate', type=float, default=defaults.learning_rate,
                 help='peak learning rate')
  p.add_argument('--schedule', default=defaults.schedule,
                 choices=SCHEDULES,
                 help='cosine: linear warm-up then cosine decay to 0')
  p.add_argument('--warmup_epochs', type=float, default=defaults.warmup_epochs,
                 help='warm-up length for the cosine schedule, in epochs')
  p.add_argument('--weight_decay', type=float, default=defaults.weight_decay,
                 help='AdamW decoupled weight decay')
  p.add_argument('--epochs', type=int, default=defaults.epochs,
                 help='number of passes over the training set')
  p.add_argument('--batch_size', type=int, default=defaults.batch_size,
                 help='training batch size')
  p.add_argument('--seed', type=int, default=defaults.seed,
                 help='seed of the first model (init and shuffling)')
  p.add_argument('--num_seeds', type=int, default=defaults.num_seeds,
                 help='train N independent models (seeds seed..seed+N-1) in '
                 'one vmapped program')
  p.add_argument('--data_dir', default=None,
                 help='folder with the four MNIST IDX files (.gz or raw); '
                 "default: $MNIST_DIR, else tfds' prepared mnist, else the "
                 'download cache ~/.cache/ordinal-mnist/mnist, downloading '
                 'into it on first use (mirrors: $MNIST_MIRRORS)')
  p.add_argument('--tfds_data_dir', default=None,
                 help="tensorflow-datasets data_dir with a prepared 'mnist' "
                 '(used only when no IDX folder is given)')
  p.add_argument('--no_download', action='store_true',
                 help='never touch the network: without --data_dir, $MNIST_DIR, '
                 "tfds' prepared mnist or the download cache, fail at once "
                 '(also: MNIST_NO_DOWNLOAD=1)')
  p.add_argument('--validation_size', type=int,
                 default=defaults.validation_size,
                 help='hold out this many training images (the same ones for '
                 'every run) and score them after each evaluated epoch')
  p.add_argument('--train_size', type=int, default=None,
                 help='train on a random subset of this many images (drawn '
                 'per seed); default: every training image')
  p.add_argument('--label_noise', type=float, default=defaults.label_noise,
                 help='replace this share of the training (and validation) '
                 'labels by another class, uniformly (symmetric noise, drawn '
                 'per seed); test labels stay clean')
  p.add_argument('--eval_every', type=int, default=defaults.eval_every,
                 help='evaluate and checkpoint every N epochs (and after the '
                 'last)')
  p.add_argument('--no_test', dest='score_test', action='store_false',
                 help='do not score the test split (model selection runs: '
                 'only validation is looked at)')
  p.add_argument('--shifted_test', action='store_true',
                 help='after the last epoch also score the first '
                 f'{SHIFTED_TEST_SIZE} test images under each of the '
                 f'{len(corruptions.CORRUPTIONS)} corruptions of '
                 'corruptions.py (MNIST-C style)')
  p.add_argument('--workdir', default=None,
                 help='output folder (default: a new folder under runs/)')
  p.add_argument('--resume', action='store_true',
                 help='continue the run in --workdir from its last checkpoint, '
                 'with its saved configuration; only --epochs (the '
                 'learning-rate schedule then follows the new length) and the '
                 'data location may change, other flags must match')
  p.add_argument('--quiet', action='store_true',
                 help='one plain line per evaluated epoch instead of a '
                 'progress bar over the steps (with images/s, time left and '
                 'running loss); the default when stderr is not a terminal')
  multi = p.add_argument_group(
      'several processes (jax.distributed; data parallelism over every '
      "process's devices, process 0 writes the files)")
  multi.add_argument('--coordinator_address', default=None,
                     metavar='HOST:PORT',
                     help="process 0's address, the same for every process")
  multi.add_argument('--num_processes', type=int, default=None,
                     help='how many processes take part')
  multi.add_argument('--process_id', type=int, default=None,
                     help='this process, 0 to --num_processes - 1')
  multi.add_argument('--distributed', action='store_true',
                     help='join a multi-process run whose settings JAX '
                     'detects (SLURM, Cloud TPU, ...); flags given above '
                     'override what it detects')
  multi.add_argument('--distributed_timeout', type=int, default=120,
                     metavar='SECONDS',
                     help='give up when the coordinator or a peer is not '
                     'reachable for this long (at start, and when a process '
                     'dies mid-run)')
  return p


# Flags that may differ on --resume without changing the run.
RESUMABLE_CHANGES = ('epochs', 'data_dir', 'tfds_data_dir')


def given_flags(parser: argparse.ArgumentParser, argv) -> set[str]:
  """The destinations of the flags that appear on the command line."""
  given = {token.split('=', 1)[0] for token in argv if token.startswith('--')}
  return {action.dest for action in parser._actions  # pylint: disable=protected-access
          if given & set(action.option_strings)}


def config_from_args(args, parser, argv) -> tuple[Config, pathlib.Path]:
  """Validates the flags; returns the config and the workdir to use.

  With ``--resume`` the saved configuration is used; ``--epochs`` (and the
  data location) given on the command line replace the saved values, and any
  other flag given with a different value is an error, not silently ignored.
  """
  fail = parser.error
  fields = {f.name for f in dataclasses.fields(Config)}
  if args.resume:
    if args.workdir is None:
      fail('--resume needs --workdir of the run to continue.')
    workdir = pathlib.Path(args.workdir)
    saved_path = workdir / 'config.json'
    if not saved_path.is_file():
      fail(f'--workdir {workdir} has no config.json to resume from.')
    saved = json.loads(saved_path.read_text())
    for name in sorted(given_flags(parser, argv) & fields):
      value = getattr(args, name)
      if name in RESUMABLE_CHANGES:
        saved[name] = value
      elif value != saved.get(name):
        fail(f'--{name} {value} conflicts with the saved configuration of '
             f'--workdir {workdir} ({name}={saved.get(name)!r}); only '
             f'{", ".join("--" + n for n in RESUMABLE_CHANGES)} may change on '
             '--resume.')
    try:
      config = Config(**saved)
    except (TypeError, ValueError) as e:
      fail(f'--workdir {workdir}: config.json is not a valid configuration '
           f'({e})')
  else:
    try:
      config = Config(**{k: v for k, v in vars(args).items() if k in fields})
    except ValueError as e:
      fail(str(e))
    stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S')
    workdir = pathlib.Path(args.workdir or f'runs/{stamp}-{config.loss}')
    if workdir.exists() and any(workdir.iterdir()):
      fail(f'--workdir {workdir} is not empty; pass --resume to continue it '
           'or choose another folder.')
  existing = workdir
  while not existing.exists():
    existing = existing.parent
  if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
    fail(f'--workdir {workdir}: {existing} is not a writable folder.')
  return config, workdir
