"""The confirmation under shift (results/protocol.md, "Shift protocol"):
scarce2000's confirmed recipes, retrained on fresh seeds as committed (no
retuning), scored on the confirmation split's images under each corruption
of ``corruptions.py``, drawn with their own seed, which no earlier run
scored.

    python -m study.shift --data_dir ../shared/mnist

Each family's choice is replayed from the confirmation's committed tuning
cells; its finals run on seeds 2000-2119 in twelve programs of ten with
``--shifted_confirmation --shifted_size 10000`` (and ``--shifted_test``,
secondary). Every final is a small JSON cell under
``results/shift/cells/``; its per-image digit distances on the corrupted
confirmation images (each corruption, both decodings) and on the clean
confirmation split go to ``results/shift/images/`` (int8). The primary
families run first, then the secondary ones. A rerun skips what is done.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import time
from collections.abc import Sequence

import corruptions
from study import confirm, engine
from study.confirm_cells import tuned
from study.engine import Protocol, Store
from study.records import Choice
from trainer import cli

REGIME = 'scarce2000'
SHIFT_SEED, SHIFT_GROUPS = 2000, 12
SHIFTED_SIZE = 10_000
PRIMARY_FAMILIES = ('label_smoothing', 'smoothed_sord')
# Cross-entropy, then label smoothing at smoothed SORD's off-label mass
# (the confirmation's matched control), in that order.
SECONDARY_FAMILIES = ('cross_entropy', 'label_smoothing_matched')
# The sets each final's per-image file keeps: the corrupted confirmation
# images, then the clean confirmation split.
KEPT_SETS = (*(f'confirmation[{name}]' for name in corruptions.CORRUPTIONS),
             'confirmation')


SHIFT = Protocol(
    cells='shift/cells', images='shift/images',
    # The confirmation's finals on the shift's seeds, twelve programs of
    # ten, with the shifted sets; each keeps every kept set's distances.
    finals=dataclasses.replace(
        confirm.CONFIRMATION.finals, first_seed=SHIFT_SEED,
        groups=SHIFT_GROUPS, shifted=True,
        fields={**confirm.CONFIRMATION.finals.fields,
                'shifted_confirmation': True, 'shifted_size': SHIFTED_SIZE},
        kept_sets=KEPT_SETS, bare=None))


def run_shift(protocol: Protocol, store: Store,
              choices: dict[str, Choice]) -> None:
  """The primary families' finals, then the secondary ones', of the
  choices replayed from the confirmation's cells (:func:`confirmed`)."""
  for family in (*PRIMARY_FAMILIES, *SECONDARY_FAMILIES):
    engine.run_finals(store, protocol.finals, None, family, choices[family])


def confirmed(results_dir: pathlib.Path) -> dict[str, Choice]:
  """scarce2000's choices, replayed from the confirmation's cells."""
  return {name: t.choice for name, t in tuned(
      results_dir / 'confirmation' / 'cells', REGIME).items()}


def build_parser() -> argparse.ArgumentParser:
  """The command line's flags (its own argument check)."""
  parser = cli.Parser(
      prog='python -m study.shift', description=__doc__.split('\n\n')[0],
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument('--data_dir', required=True,
                      help='folder with the four MNIST IDX files (the split '
                      'is registered by the images\' positions in them)')
  parser.add_argument('--results_dir', default='results',
                      help='where confirmation/ (the choices) is read and '
                      'shift/ (cells, per-image files) goes')
  parser.add_argument('--runs_dir', default='runs/shift',
                      help='where runs (checkpoints, predictions) go')
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  parser = build_parser()
  args = parser.parse_args(argv)
  dataset = confirm.load_registered_split(parser, args.data_dir)
  t0 = time.perf_counter()
  results_dir = pathlib.Path(args.results_dir)
  run_shift(SHIFT, SHIFT.store(results_dir, runs_dir=pathlib.Path(
      args.runs_dir), dataset=dataset, data_dir=args.data_dir),
            confirmed(results_dir))
  print(f'shift: {time.perf_counter() - t0:.0f}s')
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
