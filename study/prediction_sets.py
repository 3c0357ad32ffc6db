"""The prediction sets (results/protocol.md, "Prediction-sets protocol"):
scarce2000's confirmed recipes, retrained on fresh seeds as committed (no
retuning), their sets cross-fitted on the two halves of the confirmation
split (no set of these images estimates anything elsewhere; the runs that
calibrated on some of them are disclosed in results/sets/pilot.md).

    python -m study sets --data_dir ../shared/mnist

Each family's choice is replayed from the confirmation's committed tuning
cells; its finals run on seeds 3000-3039 in four programs of ten, each the
confirmation's final command but for ``--seed``. Every final is a small JSON
cell under ``results/sets/cells/``; its per-image file under
``results/sets/images/`` keeps, per seed, every windowed measure's set ends
(the lowest and highest digit, int8) of every confirmation image from the
fold that evaluates it and of the test images from fold 0, each fold's
calibration window (``study.recalibration``), and the secondary measures'
means (:func:`kept_sets`). The primary families run first (label smoothing,
smoothed SORD, cross-entropy), then SORD. A rerun skips what is done.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
from collections.abc import Sequence

import numpy as np

import conformal
import losses
from data import Split
from study import commands, confirm, engine, recalibration
from study.engine import Protocol, Store
from study.records import Choice
from study.shift import confirmed
from trainer import sets as run_sets

SETS_SEED, SETS_GROUPS = 3000, 4
# The primaries' control is the better of label smoothing and
# cross-entropy, so both run with smoothed SORD first.
PRIMARY_FAMILIES = ('label_smoothing', 'smoothed_sord', 'cross_entropy')
SECONDARY_FAMILIES = ('sord_linear',)
# The primary measures, METHOD@LEVEL (trainer.sets): a set's size averaged
# over the LAC levels (coverage at least 98, 99 and 99.5 %), and over the
# risk-control levels (expected distance to the set at most 0.018 and
# 0.009 digits). Each level's sets keep their ends per image and a
# calibration window (study.recalibration).
MEASURE_LEVELS = {'lac': ('lac@0.02', 'lac@0.01', 'lac@0.005'),
                  'risk': ('risk@0.002', 'risk@0.001')}
WINDOWED = tuple(m for levels in MEASURE_LEVELS.values() for m in levels)
# Secondary (d)'s measures: each seed's means only.
SECONDARY_MEASURES = ('lac@0.1', 'lac@0.05', 'aps@0.01', 'rps@0.01')
LINEAR = np.asarray(losses.linear_distance(10))


def measure(text: str) -> tuple[str, float]:
  """'lac@0.01' -> ('lac', 0.01)."""
  method, _, level = text.partition('@')
  return method, float(level)


def halves(num_images: int) -> tuple[np.ndarray, np.ndarray]:
  """The registered cut of the confirmation split (in the order of its
  sorted indices): the images at even positions and those at odd ones."""
  positions = np.arange(num_images)
  return positions[0::2], positions[1::2]


def folds(num_images: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
  """The two folds, (calibration, evaluation) positions each: fold 0
  calibrates on the even half and evaluates the odd one, fold 1 the other
  way round, so that every image is evaluated once per seed."""
  even, odd = halves(num_images)
  return (even, odd), (odd, even)


def set_ends(masks_BxK: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Each interval's lowest and highest digit (int8)."""
  num_classes = masks_BxK.shape[-1]
  low = np.argmax(masks_BxK, axis=-1)
  high = num_classes - 1 - np.argmax(masks_BxK[:, ::-1], axis=-1)
  return low.astype(np.int8), high.astype(np.int8)


def _positions(window_arrays: dict[str, np.ndarray],
               calibration: np.ndarray) -> dict[str, np.ndarray]:
  """A window's calibration images as positions in the whole split."""
  return {key: calibration[value].astype(np.int32)
          if key.endswith(('_start_images', '_drop_images')) else value
          for key, value in window_arrays.items()}


def _plain_sizes(calibration_NxK: np.ndarray, calibration_labels_N: np.ndarray,
                 probs_BxK: np.ndarray, alpha: float) -> np.ndarray:
  """LAC's sets without the hull (the digits scored at or below the
  threshold, and the argmax): each one's size."""
  scores = recalibration.scores('lac', calibration_NxK)
  thresholds = conformal.calibrate(scores, calibration_labels_N, alpha=alpha)
  sets = conformal.prediction_sets(recalibration.scores('lac', probs_BxK),
                                   thresholds, shape=None)
  sizes: np.ndarray = np.asarray(sets).sum(axis=-1).astype(np.int8)
  return sizes


def seed_arrays(probs_NxK: np.ndarray, labels_N: np.ndarray,
                test: tuple[np.ndarray, np.ndarray] | None, index: int
                ) -> dict[str, np.ndarray]:
  """One seed's kept arrays, cross-fitted over :func:`folds`: for each
  windowed measure every image's set ends from the fold that evaluates it
  and each fold's calibration window
  (``window_<measure>_s<index>_f<fold>_...``, its images as positions in
  the split); for each secondary measure its mean size, coverage and
  distance over the images (both folds); for every measure the same means
  on ``test`` (probabilities and labels) from fold 0's calibration; for each
  LAC level the mean size of its sets without the hull."""
  kept: dict[str, np.ndarray] = {}
  for name in (*WINDOWED, *SECONDARY_MEASURES):
    method, alpha = measure(name)
    low_N = np.zeros(len(labels_N), np.int8)
    high_N = np.zeros(len(labels_N), np.int8)
    plain_N = np.zeros(len(labels_N), np.int8)
    for fold, (calibration, evaluation) in enumerate(folds(len(labels_N))):
      scored = probs_NxK[evaluation]
      if fold == 0 and test is not None:
        scored = np.concatenate([scored, test[0]])
      low, high = set_ends(run_sets.method_sets(
          method, probs_NxK[calibration], labels_N[calibration], scored,
          alpha=alpha, distance_KxK=LINEAR))
      low_N[evaluation], high_N[evaluation] = (low[:len(evaluation)],
                                               high[:len(evaluation)])
      if fold == 0 and test is not None:
        kept.update(_means('test', name, low[len(evaluation):],
                           high[len(evaluation):], test[1]))
      if method == 'lac':
        plain_N[evaluation] = _plain_sizes(
            probs_NxK[calibration], labels_N[calibration],
            probs_NxK[evaluation], alpha)
      if name in WINDOWED:
        kept.update(_positions(recalibration.kept_window(
            method, recalibration.scores(method, probs_NxK[calibration]),
            labels_N[calibration],
            recalibration.scores(method, probs_NxK[evaluation]),
            labels_N[evaluation], alpha=alpha, distance_KxK=LINEAR,
            prefix=f'window_{name}_s{index}_f{fold}'), calibration))
    if method == 'lac':
      kept[f'evaluation_{name}_plain_size'] = np.asarray(plain_N.mean())
    if name in WINDOWED:
      kept[f'evaluation_{name}_low'], kept[f'evaluation_{name}_high'] = (
          low_N, high_N)
    else:
      kept.update(_means('evaluation', name, low_N, high_N, labels_N))
  return kept


def _means(split: str, name: str, low_B: np.ndarray, high_B: np.ndarray,
           labels_B: np.ndarray) -> dict[str, np.ndarray]:
  """The sets' mean size, coverage and distance: ``<split>_<name>_...``."""
  return {f'{split}_{name}_{quantity}': np.asarray(values.mean())
          for quantity, values in recalibration.interval_quantities(
              low_B.astype(np.int16), high_B.astype(np.int16),
              labels_B).items()}


def stack_seeds(per_seed: list[dict[str, np.ndarray]]
                ) -> dict[str, np.ndarray]:
  """The seeds' arrays: per-seed windows as they are, the rest stacked
  along a leading seed axis."""
  out = {key: np.stack([arrays[key] for arrays in per_seed])
         for key in per_seed[0] if not key.startswith('window_')}
  for arrays in per_seed:
    out.update({k: v for k, v in arrays.items() if k.startswith('window_')})
  return out


def kept_sets(probs_SxNxK: np.ndarray, labels_N: np.ndarray,
              test: tuple[np.ndarray, np.ndarray] | None,
              seeds: np.ndarray) -> dict[str, np.ndarray]:
  """Every seed's :func:`seed_arrays` (``test``'s probabilities with a
  leading seed axis), stacked, with the seeds and labels."""
  per_seed = [seed_arrays(
      probs_SxNxK[s], labels_N, None if test is None else (test[0][s],
                                                           test[1]), s)
              for s in range(len(seeds))]
  labels = {'evaluation_labels': labels_N}
  if test is not None:
    labels['test_labels'] = test[1]
  return {'seeds': seeds, **labels, **stack_seeds(per_seed)}


def keep_set_ends(workdir: pathlib.Path, path: pathlib.Path) -> None:
  """A final's per-image file (:func:`kept_sets`) of the confirmation split
  and the test split."""
  with np.load(workdir / 'predictions.npz') as f:
    kept = kept_sets(f['confirmation_probs'], f['confirmation_labels'],
                     (f['probs'], f['labels']), f['seeds'])
  path.parent.mkdir(parents=True, exist_ok=True)
  np.savez_compressed(path, allow_pickle=False, **kept)


SETS = Protocol(
    cells='sets/cells', images='sets/images',
    # The confirmation's finals on the sets' seeds, four programs of ten;
    # each keeps its cross-fitted set ends and windows.
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
