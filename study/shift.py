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
from collections.abc import Callable, Sequence

import corruptions
from data import Split
from study import confirm
from study.cells import (
  diverged_final,
  final_scores,
  run_cell,
  save_distances,
  slug,
)
from study.confirm_cells import tuned
from study.finals import final_groups
from study.records import Choice, FinalCell
from trainer import cli
from trainer.config import Config

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


def shift_groups(choice: Choice) -> list[Config]:
  """A confirmed choice on the shift's seeds, twelve programs of ten."""
  return final_groups(choice, first_seed=SHIFT_SEED, groups=SHIFT_GROUPS,
                      group_size=confirm.GROUP_SIZE, shifted=True,
                      confirmation_size=confirm.CONFIRMATION_SIZE,
                      shifted_confirmation=True, shifted_size=SHIFTED_SIZE)


def run_shift(dataset: dict[str, Split] | None, results_dir: pathlib.Path,
              runs_dir: pathlib.Path, data_dir: str | None,
              log: Callable[[str], object] = print) -> None:
  """The primary families' finals, then the secondary ones'."""
  choices = {name: t.choice for name, t in tuned(
      results_dir / 'confirmation' / 'cells', REGIME).items()}
  root = results_dir / 'shift'
  for family in (*PRIMARY_FAMILIES, *SECONDARY_FAMILIES):
    for config in shift_groups(choices[family]):
      log(f'[shift] {family} seeds {config.seed}-'
          f'{config.seed + config.num_seeds - 1}')
      path = root / 'cells' / f'final-{slug(family)}-s{config.seed}.json'
      config = dataclasses.replace(config, data_dir=data_dir)
      cell = FinalCell.from_json(run_cell(path, config, runs_dir, dataset,
                                          log, final_scores, diverged_final))
      distances = root / 'images' / path.name.replace('.json', '.npz')
      if cell.diverged is None and not distances.exists():
        save_distances(runs_dir / 'cells' / path.stem, distances, KEPT_SETS,
                       bare=None, seeds=True)


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
  run_shift(dataset, pathlib.Path(args.results_dir),
            pathlib.Path(args.runs_dir), args.data_dir)
  print(f'shift: {time.perf_counter() - t0:.0f}s')
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
