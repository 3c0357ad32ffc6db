"""train.py's command line: flags made from the Config fields' descriptions.

Each field of :class:`config.Config` is a flag of the same name, with the
field's help text, its allowed values and its default; the values are checked
by :func:`resolve.resolve`, as for every other way of making a config.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

import data
from trainer import parallel
from trainer.config import (
  FIELDS,
  SWEEPABLE,
  Config,
  ConfigError,
  field_type,
  migrate,
)
from trainer.resolve import resolve

# Flags that may differ on --resume without changing the run.
RESUMABLE_CHANGES = ('epochs', 'stop_after', 'data_dir', 'tfds_data_dir')
_METAVARS = {'ce_weight': 'LAMBDA', 'sweep': 'NAME=V1,V2,...'}


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
  """Defaults in the help, except for on/off flags: "--no_test (default:
  True)" would read as if the flag were on."""

  def _get_help_string(self, action: argparse.Action) -> str | None:
    if action.nargs == 0:
      return action.help
    return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):

  def error(self, message: str) -> NoReturn:
    """One line, exit code 2, as for every other bad flag."""
    self.exit(2, f'{self.prog}: error: {message}\n')


def _help(name: str) -> str:
  meta = FIELDS[name].metadata
  text: str = meta['help']
  if meta['choices'] is not None:
    text += '; one of: ' + ', '.join(str(c) for c in meta['choices']()
                                     if c is not None)
  elif meta['check'] is not None:
    text += f'; must be {meta["check"][0]}'
  if name == 'sweep':
    text += '; NAME is one of: ' + ', '.join(SWEEPABLE)
  return text + ('; --sweep can vary it' if meta['sweep'] else '')


class SweepAction(argparse.Action):
  """``--sweep NAME=V1,V2,...``, repeatable, into ``{NAME: [V1, V2, ...]}``."""

  def __call__(self, parser: argparse.ArgumentParser,
               namespace: argparse.Namespace,
               text: str | Sequence[Any] | None,
               option_string: str | None = None) -> None:
    assert isinstance(text, str)  # one NAME=V1,V2,... (nargs is not set)
    sweep = dict(getattr(namespace, self.dest))
    try:
      sweep.update(parse_sweep(text, sweep))
    except ConfigError as e:
      parser.error(str(e))
    setattr(namespace, self.dest, sweep)


def add_config_flags(parser: argparse.ArgumentParser) -> None:
  """One flag per Config field, with the field's default and help."""
  for name, f in FIELDS.items():
    if name == 'score_test':
      parser.add_argument(flag_of(name), dest=name, action='store_false',
                          help=_help(name))
    elif field_type(name) is bool:  # off by default: the flag turns it on
      parser.add_argument(f'--{name}', action='store_true', help=_help(name))
    elif name == 'sweep':
      parser.add_argument('--sweep', action=SweepAction, default={},
                          metavar=_METAVARS[name], help=_help(name))
    else:
      parser.add_argument(f'--{name}', type=field_type(name),
                          default=f.default, metavar=_METAVARS.get(name),
                          help=_help(name))


def build_parser() -> Parser:
  p = Parser(
      prog='train.py',
      description='Train an MNIST CNN with a distance-aware loss and report '
      'test accuracy and the mean digit-distance error.',
      formatter_class=_HelpFormatter,
      allow_abbrev=False)  # given_flags reads the flags as written
  add_config_flags(p)
  p.add_argument('--no_download', action='store_true',
                 help='never touch the network: without --data_dir, '
                 "$MNIST_DIR, tfds' prepared mnist or the download cache, "
                 'fail at once (also: MNIST_NO_DOWNLOAD=1)')
  p.add_argument('--workdir', default=None,
                 help='output folder (default: a new folder under runs/)')
  p.add_argument('--resume', action='store_true',
                 help='continue the run in --workdir from its last checkpoint, '
                 'with its saved configuration; only --epochs (the '
                 'learning-rate schedule then follows the new length), '
                 '--stop_after and the data location may change, other flags '
                 'must match')
  p.add_argument('--quiet', action='store_true',
                 help='one plain line per evaluated epoch instead of a '
                 'progress bar over the steps (with images/s, time left and '
                 'running loss); the default when stderr is not a terminal')
  parallel.add_flags(p)
  return p


def parse_sweep(text: str, sweep: dict[str, list]) -> dict[str, list]:
  """'learning_rate=0.003,0.006' -> {'learning_rate': [0.003, 0.006]}.

  Values take the field's type; which names may be swept, and which values
  they take, ``resolve.resolve`` checks.
  """
  name, sep, values = text.partition('=')
  if not sep or not values:
    raise ConfigError(f'--sweep {text!r}: write NAME=V1,V2,...')
  if name in sweep:
    raise ConfigError(f'--sweep {name} is given twice.')
  kind = field_type(name) if name in SWEEPABLE else str
  try:
    return {name: [kind(v) for v in values.split(',')]}
  except ValueError:
    raise ConfigError(f'--sweep {name}: {values!r} is not a list of '
                      f'{kind.__name__} values.') from None


def flag_of(name: str) -> str:
  """The command-line flag of a Config field."""
  return '--no_test' if name == 'score_test' else f'--{name}'


def given_flags(argv: Iterable[str]) -> set[str]:
  """The Config fields whose flags appear on the command line."""
  tokens = {token.split('=', 1)[0] for token in argv if token.startswith('--')}
  return {name for name in FIELDS if flag_of(name) in tokens}


def config_from_args(args: argparse.Namespace,
                     parser: argparse.ArgumentParser,
                     argv: Iterable[str]) -> tuple[Config, pathlib.Path]:
  """Checks the flags (``resolve``'s every check, before the data load);
  returns the configuration and the workdir to use.

  With ``--resume`` the saved configuration is used; ``--epochs``,
  ``--stop_after`` (and the data location) given on the command line replace
  the saved values, and any other flag given with a different value is an
  error, not silently ignored.
  """
  fail = parser.error
  given = given_flags(argv)
  if args.resume:
    if args.workdir is None:
      fail('--resume needs --workdir of the run to continue.')
    workdir = pathlib.Path(args.workdir)
    saved_path = workdir / 'config.json'
    if not saved_path.is_file():
      fail(f'--workdir {workdir} has no config.json to resume from.')
    saved = migrate(json.loads(saved_path.read_text()))
    if 'epochs' in given and 'stop_after' not in given:
      saved['stop_after'] = None  # a new length trains to its end
    for name in sorted(given & set(FIELDS)):
      value = getattr(args, name)
      if name in RESUMABLE_CHANGES:
        saved[name] = value
      elif value != saved.get(name):
        fail(f'{flag_of(name)} {value} conflicts with the saved '
             f'configuration of --workdir {workdir} '
             f'({name}={saved.get(name)!r}); only '
             f'{", ".join("--" + n for n in RESUMABLE_CHANGES)} may change on '
             '--resume.')
    try:
      config = Config(**saved)
    except TypeError as e:
      fail(f'--workdir {workdir}: config.json is not a valid configuration '
           f'({e})')
  else:
    config = Config(**{k: v for k, v in vars(args).items() if k in FIELDS})
  try:
    resolve(config)
  except ConfigError as e:
    fail(str(e))
  if not args.resume:
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


def load_mnist(parser: argparse.ArgumentParser, data_dir: str | None = None,
               *, tfds_data_dir: str | None = None,
               no_download: bool = False) -> dict[str, data.Split]:
  """data.load_mnist, or the parser's one-line error naming --data_dir."""
  try:
    return data.load_mnist(data_dir, tfds_data_dir=tfds_data_dir,
                           download=False if no_download else None)
  except data.DataError as e:
    parser.error(f'--data_dir: {e}')
