"""The prediction sets' estimates (results/protocol.md, "Prediction-sets
protocol"): a mean set size, coverage or distance to the set, of one family
or a difference of families, over seeds and images, each resampled
independently, the images in both their roles.

A family's kept arrays (``study.prediction_sets.kept_sets``, one group's
file or several joined by :func:`concatenate`) give per seed and image each
level's set ends from the fold that evaluates the image, and per seed, level
and fold a calibration window (``study.recalibration``) whose images are
positions in the same split. A *contrast* is a list of (coefficient, family)
terms and a measure's levels: its value is the sum of the coefficients times
each family's mean over seeds, images and levels of a quantity. A bootstrap
replicate draws multinomial weights over the seeds and over the images; an
image's weight counts it both where it is evaluated and where it
calibrates, so each fold's threshold moves with the replicate
(``recalibration.replicate_positions``) and each seed's value is its
image-weighted mean at the calibrated thresholds plus each fold's offset
(``recalibration.replicate_offsets``), weighted by the fold's share of the
evaluated weight.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence

import numpy as np

from study import prediction_sets, recalibration, stats

CHUNK = 250


@dataclasses.dataclass(frozen=True)
class Contrast:
  """Sum of ``coefficient * family's mean quantity`` over ``terms``, the
  mean over ``levels`` (METHOD@LEVEL names)."""
  terms: tuple[tuple[float, str], ...]
  levels: tuple[str, ...]
  quantity: str = 'size'


_WINDOW = re.compile(r'(window_[^_]+)_s(\d+)_(f\d+_.+)')


def concatenate(groups: Sequence[Mapping[str, np.ndarray]]
                ) -> dict[str, np.ndarray]:
  """Several groups' kept arrays as one: seed axes joined, windows renumbered
  by their seed's place in the whole."""
  out: dict[str, np.ndarray] = {}
  offset = 0
  for kept in groups:
    for key, value in kept.items():
      match = _WINDOW.fullmatch(key)
      if match:
        name, index, field = match.groups()
        out[f'{name}_s{offset + int(index)}_{field}'] = value
    offset += len(kept['seeds'])
  for key, value in groups[0].items():
    if key.startswith('window_'):
      continue
    if key.endswith('_labels'):
      if any(not np.array_equal(g[key], value) for g in groups):
        raise ValueError(f'the groups disagree on {key}.')
      out[key] = value
    else:
      out[key] = np.concatenate([g[key] for g in groups])
  return out


def per_image(kept: Mapping[str, np.ndarray], name: str,
              quantity: str) -> np.ndarray:
  """Each seed's and image's ``quantity`` under measure ``name``: [S, N]."""
  low = kept[f'evaluation_{name}_low'].astype(np.int16)
  high = kept[f'evaluation_{name}_high'].astype(np.int16)
  labels = kept['evaluation_labels'].astype(np.int16)
  values: np.ndarray = recalibration.interval_quantities(
      low, high, labels[None, :])[quantity].astype(np.float32)
  return values


def family_values(kept: Mapping[str, np.ndarray],
                  contrast: Contrast) -> np.ndarray:
  """A family's quantity averaged over the contrast's levels: [S, N]."""
  values: np.ndarray = np.mean(
      [per_image(kept, name, contrast.quantity) for name in contrast.levels],
      axis=0)
  return values


def contrast_values(families: Mapping[str, Mapping[str, np.ndarray]],
                    contrast: Contrast) -> np.ndarray:
  """The contrast per seed and image at the calibrated thresholds: [S, N]."""
  values = np.zeros_like(family_values(families[contrast.terms[0][1]],
                                       contrast))
  for coefficient, family in contrast.terms:
    values += coefficient * family_values(families[family], contrast)
  return values


Positions = dict[tuple[int, str], tuple[np.ndarray, int]]


def offsets_SxR(kept: Mapping[str, np.ndarray], contrast: Contrast,
                weights_RxN: np.ndarray, positions: Positions | None = None
                ) -> tuple[np.ndarray, int, int]:
  """Each seed's offset of a family's quantity, averaged over the levels,
  under the images' weights: each fold's offset times the fold's share of
  the weight of the images it evaluates; the replicate thresholds clipped
  to their window's edge, and the thresholds recomputed (both counted over
  replicates, seeds, levels and folds). ``positions``: the thresholds
  already recomputed under these weights, by family and window, which it
  reads and fills (contrasts share them)."""
  positions = {} if positions is None else positions
  num_seeds, num_images = len(kept['seeds']), weights_RxN.shape[1]
  total = np.zeros((num_seeds, len(weights_RxN)))
  clipped = 0
  for fold, (calibration, evaluation) in enumerate(
      prediction_sets.folds(num_images)):
    share_R = weights_RxN[:, evaluation].sum(axis=1) / weights_RxN.sum(axis=1)
    calibration_R = weights_RxN[:, calibration].sum(axis=1)
    for name in contrast.levels:
      for s in range(num_seeds):
        prefix = f'window_{name}_s{s}_f{fold}'
        key = (id(kept), prefix)
        if key not in positions:
          positions[key] = recalibration.replicate_positions(
              kept, prefix, weights_RxN, calibration_R)
        position_R, clips = positions[key]
        total[s] += share_R * recalibration.replicate_offsets(
            kept, prefix, contrast.quantity, position_R)
        clipped += clips
  recomputed = len(weights_RxN) * num_seeds * len(contrast.levels) * 2
  return total / len(contrast.levels), clipped, recomputed


@dataclasses.dataclass(frozen=True)
class Replicates:
  """A contrast's bootstrap replicates with every threshold recalibrated
  (``samples``: the offsets centred, below) and at the calibrated
  thresholds (``fixed``, on the same draws); the offsets' mean before
  centring (``mean_offset``); each replicate's per-seed values before the
  seeds' weights (``per_seed_RxS``, centred); the share of recomputed
  thresholds clipped to their window's edge.

  A set's size is convex in its threshold, so resampled thresholds raise
  the mean size on average even though the observed size, at the realised
  thresholds, is one unbiased draw of the expected size over calibration
  sets: the offsets are centred (their mean over replicates subtracted) so
  that the interval is not shifted by that convexity."""
  samples: np.ndarray
  fixed: np.ndarray
  mean_offset: float
  per_seed_RxS: np.ndarray
  clipped_share: float


def bootstrap(families: Mapping[str, Mapping[str, np.ndarray]],
              contrasts: Mapping[str, Contrast], *, replicates: int,
              seed: int = 0, resample_seeds: bool = True
              ) -> dict[str, Replicates]:
  """Every contrast's replicates from one draw of weights (so contrasts
  share them): seeds (unless ``resample_seeds`` is False) and images
  resampled independently."""
  first = next(iter(families.values()))
  num_seeds, num_images = len(first['seeds']), len(first['evaluation_labels'])
  for name, kept in families.items():
    if not np.array_equal(kept['seeds'], first['seeds']):
      raise ValueError(f'{name} holds other seeds than the first family.')
  values = {name: contrast_values(families, c).T.astype(np.float32)
            for name, c in contrasts.items()}
  rng = np.random.default_rng(seed)
  parts: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {
      name: [] for name in contrasts}
  clipped, recomputed = dict.fromkeys(contrasts, 0), dict.fromkeys(
      contrasts, 0)
  for start in range(0, replicates, CHUNK):
    r = min(CHUNK, replicates - start)
    images_RxN = rng.multinomial(num_images, np.full(num_images,
                                                     1 / num_images),
                                 size=r).astype(np.float32)
    seeds_RxS = (rng.multinomial(num_seeds, np.full(num_seeds, 1 / num_seeds),
                                 size=r) if resample_seeds
                 else np.ones((r, num_seeds)))
    weights_RxN = images_RxN.astype(np.float64)
    positions: Positions = {}
    for name, c in contrasts.items():
      at_calibrated_RxS = images_RxN @ values[name] / num_images
      offset_SxR = np.zeros((num_seeds, r))
      for coefficient, family in c.terms:
        family_SxR, clips, count = offsets_SxR(
            families[family], c, weights_RxN, positions)
        offset_SxR += coefficient * family_SxR
        clipped[name] += clips
        recomputed[name] += count
      parts[name].append((seeds_RxS, at_calibrated_RxS, offset_SxR.T))
  out = {}
  for name in contrasts:
    seeds_RxS, at_calibrated_RxS, offset_RxS = (
        np.concatenate(arrays) for arrays in zip(*parts[name], strict=True))
    mean_offset = float(offset_RxS.mean())
    per_seed_RxS = at_calibrated_RxS + offset_RxS - offset_RxS.mean(axis=0)
    out[name] = Replicates(
        samples=(seeds_RxS * per_seed_RxS).sum(axis=1) / num_seeds,
        fixed=(seeds_RxS * at_calibrated_RxS).sum(axis=1) / num_seeds,
        mean_offset=mean_offset, per_seed_RxS=per_seed_RxS,
        clipped_share=clipped[name] / max(1, recomputed[name]))
  return out


def group_interval(per_seed: np.ndarray, group_size: int = 10
                   ) -> tuple[float, float]:
  """The t-interval over the groups' means (one value per seed in seed
  order; the groups of ``group_size`` are the finals' programs)."""
  means = per_seed.reshape(-1, group_size).mean(axis=1)
  centre, half = stats.mean_ci(means)
  return centre - half, centre + half
