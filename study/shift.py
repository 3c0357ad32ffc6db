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
from collections.abc import Sequence

import corruptions
from data import Split
from study import commands, confirm, engine
from study.confirm_cells import tuned
from study.engine import Protocol, Store
from study.records import Choice

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
  return commands.protocol_parser(
      'python -m study.shift', __doc__, runs_dir='runs/shift',
      results_help='where confirmation/ (the choices) is read and shift/ '
      '(cells, per-image files) goes')


def main(argv: Sequence[str] | None = None) -> int:
  def run(args: argparse.Namespace, dataset: dict[str, Split]) -> None:
    results_dir = pathlib.Path(args.results_dir)
    run_shift(SHIFT, SHIFT.store(results_dir, runs_dir=pathlib.Path(
        args.runs_dir), dataset=dataset, data_dir=args.data_dir),
              confirmed(results_dir))

  return commands.run_protocol(build_parser(), argv, 'shift',
                               'shift_report', confirm.load_registered_split,
                               run)


if __name__ == '__main__':
  raise SystemExit(main())
