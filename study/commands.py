"""``python -m study [COMMAND] [FLAGS]``: one command line for every protocol
of ``results/protocol.md`` and its report.

The first word names the command; without one it is ``screening``, so the
commands the protocol registered (``python -m study --data_dir ...``) keep
their meaning. The modules' own entry points (``python -m study.confirm``
and the others the protocol names) stay: each word runs the same ``main``.
"""

from __future__ import annotations

import argparse
import importlib
import pathlib
import sys
import time
from collections.abc import Callable, Sequence
from types import ModuleType

from data import Split
from trainer import cli

# Command -> (its module, what it does).
COMMANDS = {
    'screening': ('study.experiments', 'the screening study of 20 families '
                  'and the one-epoch table of every loss (results/study.md, '
                  'results/losses.md)'),
    'confirmation': ('study.confirm', 'the confirmation: the primary pair '
                     'tuned on validation, scored on 30 000 unseen training '
                     'images'),
    'confirmation_report': ('study.confirm_report', "the confirmation's "
                            'CSVs and confirmation.md from its committed '
                            'cells'),
    'shift': ('study.shift', "the confirmation's recipes under shift, on "
              'corrupted confirmation images'),
    'shift_report': ('study.shift_report', "the shift's CSVs, shift.md and "
                     'the answer figure from its committed cells'),
    'power': ('study.power', 'the seeds and images a design needs, from a '
              "pilot's per-image distances"),
    'sets': ('study.prediction_sets', "the confirmation's recipes' "
             'prediction sets, cross-fitted over the halves of the '
             'confirmation split'),
    'sets_report': ('study.sets_report', "the sets' CSVs and sets.md from "
                    'their committed cells'),
    'sets_power': ('study.sets_power', "the sets' design from a pilot's "
                   'runs, every threshold resampled'),
    'sets_figure': ('study.sets_figure', 'test digits with their prediction '
                    "sets and each run's coverage against set size "
                    '(results/sets.png), from runs with a calibration split'),
}
DEFAULT = 'screening'


def usage() -> str:
  width = max(map(len, COMMANDS))
  lines = ['usage: python -m study [COMMAND] [FLAGS]', '',
           f'COMMAND (default {DEFAULT}); python -m study COMMAND --help '
           'gives its flags:']
  lines += [f'  {name:<{width}}  {text}' for name, (_, text) in
            COMMANDS.items()]
  return '\n'.join(lines) + '\n'


def split(argv: Sequence[str]) -> tuple[str, ModuleType, list[str]]:
  """(command, its module, its flags) for ``argv`` after ``-m study``;
  SystemExit(2) naming the commands for an unknown first word."""
  if argv and not argv[0].startswith('-'):
    if argv[0] not in COMMANDS:
      sys.stderr.write(usage() + f'python -m study: error: no command '
                       f'{argv[0]!r}; one of {", ".join(COMMANDS)}.\n')
      raise SystemExit(2)
    name, flags = argv[0], list(argv[1:])
  else:
    name, flags = DEFAULT, list(argv)
  return name, importlib.import_module(COMMANDS[name][0]), flags


def main(argv: Sequence[str] | None = None) -> int:
  argv = sys.argv[1:] if argv is None else list(argv)
  if argv in (['-h'], ['--help']):
    sys.stdout.write(usage() + '\n')  # then the default command's flags
  _, module, flags = split(argv)
  result: int = module.main(flags)
  return result


# ----------------------------------------------------------------------------
# What the protocols' and reports' command lines share.


def report_parser(prog: str, doc: str, results_help: str
                  ) -> argparse.ArgumentParser:
  """A report's command line: the results folder it reads and writes."""
  parser = argparse.ArgumentParser(
      prog=prog, description=doc.split('\n\n')[0],
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument('--results_dir', default='results', help=results_help)
  return parser


def run_report(parser: argparse.ArgumentParser, argv: Sequence[str] | None,
               write: Callable[[pathlib.Path], list[str]]) -> int:
  """Parses ``argv`` and writes a report from its results folder
  (``write(results_dir)``, which returns what to say)."""
  args = parser.parse_args(argv)
  print('\n'.join(write(pathlib.Path(args.results_dir))))
  return 0


def protocol_parser(prog: str, doc: str, *, runs_dir: str,
                    results_help: str) -> cli.Parser:
  """A registered protocol's command line: the MNIST folder (required: its
  split is registered by the images' positions in the IDX files), the
  results folder and the runs folder."""
  parser = cli.Parser(
      prog=prog, description=doc.split('\n\n')[0],
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument('--data_dir', required=True,
                      help='folder with the four MNIST IDX files (the split '
                      'is registered by the images\' positions in them)')
  parser.add_argument('--results_dir', default='results', help=results_help)
  parser.add_argument('--runs_dir', default=runs_dir,
                      help='where runs (checkpoints, predictions) go')
  return parser


def run_protocol(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None, name: str,
    report: str | None,
    load: Callable[[argparse.ArgumentParser, str], dict[str, Split]],
    run: Callable[[argparse.Namespace, dict[str, Split]], None]) -> int:
  """Parses ``argv``, loads MNIST through ``load(parser, data_dir)`` (the
  registered split's check), runs ``run(args, dataset)`` and says how long
  it took and which command reports it (``report``; None: none yet)."""
  args = parser.parse_args(argv)
  dataset = load(parser, args.data_dir)
  t0 = time.perf_counter()
  run(args, dataset)
  print(f'{name}: {time.perf_counter() - t0:.0f}s'
        + ('' if report is None else f'; the answer: python -m study {report} '
           f'--results_dir {pathlib.Path(args.results_dir)}'))
  return 0
