"""``python -m study [COMMAND] [FLAGS]``: one command line for every protocol
of ``results/protocol.md`` and its report.

The first word names the command; without one it is ``screening``, so the
commands the protocol registered (``python -m study --data_dir ...``) keep
their meaning. The modules' own entry points (``python -m study.confirm``
and the others the protocol names) stay: each word runs the same ``main``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

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
