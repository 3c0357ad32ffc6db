"""The prediction sets (results/protocol.md, "Prediction-sets protocol"):
scarce2000's confirmed recipes, retrained on fresh seeds as committed (no
retuning), their sets calibrated on one half of the confirmation split and
scored on the other, which no set has scored.

    python -m study sets --data_dir ../shared/mnist

Each family's choice is replayed from the confirmation's committed tuning
cells; its finals run on seeds 3000-3079 in eight programs of ten, each the
confirmation's final command but for ``--seed``. Every final is a small JSON
cell under ``results/sets/cells/``; its per-image set ends (the lowest and
highest digit of each set, int8, per seed) for every registered measure, on
the evaluation half and on the test split, go to ``results/sets/images/``.
The primary families run first, then cross-entropy. A rerun skips what is
done.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
from collections.abc import Sequence

import numpy as np

import losses
from data import Split
from study import commands, confirm, engine
from study.engine import Protocol, Store
from study.records import Choice
from study.shift import confirmed
from trainer import sets as run_sets

SETS_SEED, SETS_GROUPS = 3000, 8
PRIMARY_FAMILIES = ('label_smoothing', 'smoothed_sord', 'sord_linear')
SECONDARY_FAMILIES = ('cross_entropy',)
# Every registered measure, METHOD@LEVEL (trainer.sets): the primaries' (C1
# and C2's LAC sets at 0.01, C3's risk control at 0.002), then secondary
# (d)'s.
PRIMARY_MEASURES = ('lac@0.01', 'risk@0.002')
MEASURES = (*PRIMARY_MEASURES, 'lac@0.1', 'lac@0.05', 'lac@0.02', 'lac@0.005',
            'aps@0.01', 'rps@0.01', 'risk@0.001')
LINEAR = np.asarray(losses.linear_distance(10))


def measure(text: str) -> tuple[str, float]:
  """'lac@0.01' -> ('lac', 0.01)."""
  method, _, level = text.partition('@')
  return method, float(level)


def halves(num_images: int) -> tuple[np.ndarray, np.ndarray]:
  """The registered cut of the confirmation split (in the order of its
  sorted indices): the images at even positions calibrate, those at odd
  positions evaluate."""
  positions = np.arange(num_images)
  return positions[0::2], positions[1::2]


def set_ends(masks_BxK: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Each interval's lowest and highest digit (int8)."""
  num_classes = masks_BxK.shape[-1]
  low = np.argmax(masks_BxK, axis=-1)
  high = num_classes - 1 - np.argmax(masks_BxK[:, ::-1], axis=-1)
  return low.astype(np.int8), high.astype(np.int8)


def keep_set_ends(workdir: pathlib.Path, path: pathlib.Path) -> None:
  """A final's per-image file: every measure's set ends per seed on the
  evaluation half and on the test split, each seed's sets calibrated on
  its own probabilities of the calibration half; the labels and seeds."""
  with np.load(workdir / 'predictions.npz') as f:
    probs_SxNxK, labels_N = f['confirmation_probs'], f['confirmation_labels']
    test_SxBxK, test_labels_B, seeds = f['probs'], f['labels'], f['seeds']
  calibration, evaluation = halves(len(labels_N))
  kept = {'seeds': seeds, 'evaluation_labels': labels_N[evaluation],
          'test_labels': test_labels_B}
  for name in MEASURES:
    method, alpha = measure(name)
    ends: dict[str, list[np.ndarray]] = {}
    for probs_NxK, test_BxK in zip(probs_SxNxK, test_SxBxK, strict=True):
      scored = {'evaluation': probs_NxK[evaluation], 'test': test_BxK}
      masks = run_sets.method_sets(
          method, probs_NxK[calibration], labels_N[calibration],
          np.concatenate(list(scored.values())), alpha=alpha,
          distance_KxK=LINEAR)
      low, high = set_ends(masks)
      start = 0
      for split, probs in scored.items():
        stop = start + len(probs)
        ends.setdefault(f'{split}_{name}_low', []).append(low[start:stop])
        ends.setdefault(f'{split}_{name}_high', []).append(high[start:stop])
        start = stop
    kept.update({key: np.stack(arrays) for key, arrays in ends.items()})
  path.parent.mkdir(parents=True, exist_ok=True)
  np.savez_compressed(path, **kept)


SETS = Protocol(
    cells='sets/cells', images='sets/images',
    # The confirmation's finals on the sets' seeds, eight programs of ten;
    # each keeps its set ends.
    finals=dataclasses.replace(
        confirm.CONFIRMATION.finals, first_seed=SETS_SEED,
        groups=SETS_GROUPS, keep=keep_set_ends, kept_sets=(), bare=None))


def run_sets_protocol(protocol: Protocol, store: Store,
                      choices: dict[str, Choice],
                      families: Sequence[str] = (*PRIMARY_FAMILIES,
                                                 *SECONDARY_FAMILIES)
                      ) -> None:
  """The families' finals, in order, of the choices replayed from the
  confirmation's cells (``shift.confirmed``)."""
  for family in families:
    engine.run_finals(store, protocol.finals, None, family, choices[family])


def build_parser() -> argparse.ArgumentParser:
  """The command line's flags (its own argument check)."""
  return commands.protocol_parser(
      'python -m study sets', __doc__, runs_dir='runs/sets_protocol',
      results_help='where confirmation/ (the choices) is read and sets/ '
      '(cells, per-image files) goes')


def main(argv: Sequence[str] | None = None) -> int:
  def run(args: argparse.Namespace, dataset: dict[str, Split]) -> None:
    results_dir = pathlib.Path(args.results_dir)
    run_sets_protocol(SETS, SETS.store(
        results_dir, runs_dir=pathlib.Path(args.runs_dir), dataset=dataset,
        data_dir=args.data_dir), confirmed(results_dir))

  return commands.run_protocol(build_parser(), argv, 'sets', None,
                               confirm.load_registered_split, run)


if __name__ == '__main__':
  raise SystemExit(main())
