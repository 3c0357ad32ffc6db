"""Prediction sets in a run: each set method of ``conformal.py`` calibrated on
the run's calibration split (``--calibration_size``) and scored on its test
split, per ``--set_alphas`` level.

The methods (:data:`METHODS`): ``lac`` (the hull of the classes whose
probability reaches the calibrated level: Sadinle et al.'s LAC made
contiguous, Chakraborty et al. 2024), ``aps`` (ordinal APS: an interval grown
from the argmax toward the more probable neighbour, Lu et al. 2022), ``rps``
(the ranked probability score's sublevel sets, intervals around the median)
and ``risk`` (the APS sets at the threshold that bounds the expected
distance from the label to the set, over the largest distance, by alpha:
conformal risk control, Angelopoulos et al. 2022; Xu et al. 2024). The first
three guarantee coverage of at least ``1 - alpha``. Every set is an interval
of digits, or an arc where the decoding distance is the cyclic one (9 next to
0), and never empty.

``python -m trainer.sets --workdir RUN`` calibrates a finished run's sets and
writes them for its test images, or for any images (``--images``).
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import pathlib
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

import conformal
import losses
from trainer.config import NUM_CLASSES, parse_alphas
from trainer.resolve import load_distance
from trainer.restore import predict_probs

if TYPE_CHECKING:  # annotations only
  import data
  from trainer.programs import Evaluation
  from trainer.spec import RunSpec

METHODS = ('lac', 'aps', 'rps', 'risk')
# What each test set scores, per seed: the share of sets that hold the label,
# their mean number of digits and the mean distance from the label to the
# nearest digit of its set, in the decoding distance's units.
SET_METRICS = ('coverage', 'size', 'distance')


def set_shape(distance_KxK: np.ndarray) -> str:
  """'arc' for the cyclic distance, else 'interval'."""
  cyclic = np.asarray(losses.cyclic_distance(len(distance_KxK)))
  return 'arc' if np.array_equal(distance_KxK, cyclic) else 'interval'


@functools.partial(jax.jit, static_argnames=('method', 'shape'))
def method_scores(method: str, probs_NxK: jax.Array | np.ndarray,
                  shape: str) -> jax.Array:
  """The method's scores of every digit (lower conforms more), compiled once
  per method, shape and array shape."""
  if method == 'lac':
    return conformal.lac_scores(probs_NxK)
  if method == 'rps':
    return conformal.rps_scores(probs_NxK)
  return conformal.aps_scores(probs_NxK, cyclic=shape == 'arc')


def method_sets(method: str, calibration_probs_NxK: np.ndarray,
                calibration_labels_N: np.ndarray, probs_BxK: np.ndarray, *,
                alpha: float, distance_KxK: np.ndarray) -> np.ndarray:
  """One model's sets of ``probs_BxK`` by ``method``, calibrated on its
  calibration split; boolean ``[B, K]``."""
  if method not in METHODS:
    raise ValueError(f'method must be one of {", ".join(METHODS)}, got '
                     f'{method!r}.')
  shape = set_shape(distance_KxK)
  calibration_NxK = method_scores(
      method, jax.numpy.asarray(calibration_probs_NxK), shape)
  if method == 'risk':
    threshold = conformal.risk_control_threshold(
        calibration_NxK, calibration_labels_N, distance=distance_KxK,
        alpha=alpha, shape=shape)
  else:
    threshold = conformal.calibrate(calibration_NxK, calibration_labels_N,
                                    alpha=alpha)
  return np.asarray(conformal.prediction_sets(
      method_scores(method, jax.numpy.asarray(probs_BxK), shape), threshold,
      shape=shape))


def set_scores(sets_BxK: np.ndarray, labels_B: np.ndarray,
               distance_KxK: np.ndarray) -> dict[str, float]:
  """What the sets score on labelled images (:data:`SET_METRICS`)."""
  return {
      'coverage': float(np.mean(conformal.covered(sets_BxK, labels_B))),
      'size': float(np.mean(conformal.set_size(sets_BxK))),
      'distance': float(np.mean(conformal.distance_to_set(
          sets_BxK, labels_B, distance=distance_KxK))),
  }


def test_set_scores(calibration_probs_SxNxK: np.ndarray,
                    calibration_labels_N: np.ndarray,
                    test_probs_SxBxK: np.ndarray, test_labels_B: np.ndarray,
                    *, alphas: Sequence[float], distance_KxK: np.ndarray
                    ) -> dict[str, dict[str, list[float]]]:
  """Every method at every level, each seed's sets calibrated on its own
  calibration probabilities: ``{'<method>@<alpha>': {metric: [S]}}``."""
  out: dict[str, dict[str, list[float]]] = {}
  for method in METHODS:
    for alpha in alphas:
      per_seed = [set_scores(method_sets(
          method, calibration_NxK, calibration_labels_N, test_BxK,
          alpha=alpha, distance_KxK=distance_KxK), test_labels_B,
          distance_KxK)
                  for calibration_NxK, test_BxK in zip(
                      calibration_probs_SxNxK, test_probs_SxBxK, strict=True)]
      out[f'{method}@{alpha:g}'] = {
          metric: [scores[metric] for scores in per_seed]
          for metric in SET_METRICS}
  return out


def run_set_scores(spec: RunSpec, evaluations: Mapping[str, Evaluation],
                   eval_sets: Mapping[str, data.Split],
                   diverged: Mapping[int, str]
                   ) -> list[dict[str, dict[str, list[float]]] | None] | None:
  """Each point's :func:`test_set_scores` at ``--set_alphas`` under its
  decoding distance (None for a diverged point), or None where the
  calibration split was not scored."""
  if 'calibration' not in evaluations:
    return None
  alphas = parse_alphas(spec.config.set_alphas)
  calibration, test = evaluations['calibration'], evaluations['test']
  out: list[dict[str, dict[str, list[float]]] | None] = []
  for p in range(spec.num_points):
    hp = {name: values[p] for name, values in spec.inputs_P.items()}
    out.append(None if p in diverged else test_set_scores(
        np.asarray(calibration.probs_PxSxNxK[p]),
        eval_sets['calibration'].labels, np.asarray(test.probs_PxSxNxK[p]),
        eval_sets['test'].labels, alphas=alphas,
        distance_KxK=np.asarray(spec.value(hp, 'decode_distance'))))
  return out


# ----------------------------------------------------------------------------
# The command: a finished run's sets, written per image.


def load_predictions(workdir: pathlib.Path) -> dict[str, np.ndarray]:
  """A finished plain run's predictions.npz; ValueError naming what is
  missing (no calibration split, a sweep)."""
  path = workdir / 'predictions.npz'
  if not path.is_file():
    raise ValueError(f'{workdir} has no predictions.npz: not a finished run '
                     'that scored its test split.')
  with np.load(path) as saved:
    predictions = dict(saved)
  if 'calibration_probs' not in predictions:
    raise ValueError(f'{workdir} held out no calibration split: train it '
                     'with --calibration_size N.')
  if predictions['probs'].ndim != 3:
    raise ValueError(f'{workdir} is a sweep: rerun the chosen point alone.')
  return predictions


def decoding_distance(workdir: pathlib.Path) -> np.ndarray:
  """The distance a finished run decodes with, from its summary."""
  summary = json.loads((workdir / 'summary.json').read_text())
  config = summary['config']
  return load_distance(config.get('decode_distance') or config['distance'],
                       '--decode_distance')


def image_probs(workdir: pathlib.Path, images_path: pathlib.Path
                ) -> np.ndarray:
  """Every seed's probabilities ``[S, N, K]`` of the images in a .npy file
  (uint8 ``[N, 28, 28]`` or ``[N, 28, 28, 1]``), from the run's last
  checkpoint."""
  images = np.load(images_path)
  if images.ndim == 3:
    images = images[..., None]
  if images.dtype != np.uint8 or images.shape[1:] != (28, 28, 1):
    raise ValueError(f'{images_path}: images must be uint8 [N, 28, 28] or '
                     f'[N, 28, 28, 1], got {images.dtype} {images.shape}.')
  return predict_probs(workdir, images)


def set_rows(sets_SxBxK: np.ndarray, seeds: Sequence[int],
             labels_B: np.ndarray | None) -> list[dict[str, Any]]:
  """One row per image and seed: the set's digits (as ends ``low``,
  ``high``: an arc from ``low`` up to ``high`` past 9 where ``high < low``),
  its size and, where labels are known, whether it holds the label."""
  rows = []
  for seed, sets_BxK in zip(seeds, sets_SxBxK, strict=True):
    for i, mask in enumerate(sets_BxK):
      digits = np.flatnonzero(mask)
      gaps = np.flatnonzero(~mask)
      # An arc through 9 and 0 starts after its gap; an interval at its
      # first digit.
      low = (int(gaps[-1] + 1) % NUM_CLASSES if mask[0] and mask[-1]
             and len(gaps) else int(digits[0]))
      high = (low + len(digits) - 1) % NUM_CLASSES
      row: dict[str, Any] = {'image': i, 'seed': seed, 'low': low,
                             'high': high, 'size': len(digits)}
      if labels_B is not None:
        row['label'] = int(labels_B[i])
        row['covered'] = int(mask[labels_B[i]])
      rows.append(row)
  return rows


def build_parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(
      prog='python -m trainer.sets',
      description='Calibrate a finished run\'s prediction sets on its '
      'calibration split (train.py --calibration_size) and write each '
      'image\'s set: its test images, or any images.',
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  p.add_argument('--workdir', required=True,
                 help='a finished plain run trained with --calibration_size')
  p.add_argument('--method', choices=METHODS, default='aps',
                 help='lac, aps and rps guarantee coverage >= 1 - ALPHA; '
                 'risk bounds the expected distance from the label to the '
                 'set by ALPHA times the largest distance')
  p.add_argument('--alpha', type=float, default=0.1,
                 help='the miscoverage (or normalised risk) allowed, in (0, 1)')
  p.add_argument('--images', default=None,
                 help='a .npy file of uint8 images [N, 28, 28(, 1)] to score '
                 "with the run's last checkpoint; default: the run's test "
                 'images, with their labels')
  p.add_argument('--out', required=True, help='the CSV to write')
  return p


def main(argv: Sequence[str] | None = None) -> int:
  parser = build_parser()
  args = parser.parse_args(argv)
  if not 0 < args.alpha < 1:
    parser.error(f'--alpha must lie in (0, 1), got {args.alpha}.')
  workdir = pathlib.Path(args.workdir)
  try:
    predictions = load_predictions(workdir)
    distance_KxK = decoding_distance(workdir)
    if args.images is None:
      probs_SxBxK, labels_B = predictions['probs'], predictions['labels']
    else:
      probs_SxBxK, labels_B = image_probs(workdir,
                                          pathlib.Path(args.images)), None
  except (OSError, ValueError) as e:
    parser.error(str(e))
  sets_SxBxK = np.stack([
      method_sets(args.method, calibration_NxK,
                  predictions['calibration_labels'], probs_BxK,
                  alpha=args.alpha, distance_KxK=distance_KxK)
      for calibration_NxK, probs_BxK in zip(
          predictions['calibration_probs'], probs_SxBxK, strict=True)])
  rows = set_rows(sets_SxBxK, predictions['seeds'].tolist(), labels_B)
  with open(args.out, 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
  sizes = np.mean([row['size'] for row in rows])
  coverage = ('' if labels_B is None else
              f", coverage {np.mean([row['covered'] for row in rows]):.4f}")
  print(f'{args.out}: {len(rows)} sets ({args.method}, alpha {args.alpha:g}), '
        f'mean size {sizes:.3f}{coverage}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
