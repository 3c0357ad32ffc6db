"""The study's statistics, for every protocol: t-intervals and paired
t-tests over seeds, Holm's correction (also where some p-values are only
bounds), the split of an MDE difference into fewer and closer mistakes, the
variance components of a paired per-image difference, and the estimates over
seeds and images.

A family's per-image results on S seeds x N images (``num_SxN`` over
``den_SxN``: the digit distance over 1 for the MDE, the distance over "is an
error" for the mean error distance) give one value per seed, the ratio of the
sums over images. A difference between two families on the same seeds is the
mean over seeds of their per-seed differences. :func:`two_way_bootstrap`
resamples seeds and images independently (the images as multinomial weights,
so that one replicate is a weighted sum, not a copy of the arrays);
:func:`sign_flip_p` and :func:`paired_test` are the seeds-only tests "on
these images".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

# ----------------------------------------------------------------------------
# Over seeds.


def t_quantile(df: int, q: float = 0.975) -> float:
  import scipy.stats
  return float(scipy.stats.t.ppf(q, df))


def mean_ci(values: npt.ArrayLike) -> tuple[float, float]:
  """Mean and half-width of the 95 % t confidence interval (0 for one value)."""
  values = np.asarray(values, np.float64)
  if values.size < 2:
    return float(values.mean()), 0.0
  half = (t_quantile(values.size - 1) * values.std(ddof=1)
          / math.sqrt(values.size))
  return float(values.mean()), float(half)


def paired_test(values: npt.ArrayLike, baseline: npt.ArrayLike
                ) -> tuple[float, float]:
  """Mean paired difference and two-sided p-value (paired t-test)."""
  import scipy.stats
  diff = np.asarray(values, np.float64) - np.asarray(baseline, np.float64)
  if diff.size < 2:
    return float(diff.mean()), float('nan')
  if np.all(diff == 0):
    return 0.0, 1.0
  p_value = scipy.stats.ttest_rel(values, baseline).pvalue
  return float(diff.mean()), float(p_value)


def holm(p_values: list[float]) -> list[float]:
  """Holm-Bonferroni adjusted p-values (same order as given)."""
  order = np.argsort(p_values)
  adjusted = np.empty(len(p_values))
  running = 0.0
  for rank, i in enumerate(order):
    running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
    adjusted[i] = running
  return adjusted.tolist()


def holm_with_bounds(p_values: Sequence[float], bounded: Sequence[bool]
                     ) -> list[tuple[float, bool]]:
  """Holm-adjusted p-values (same order as given) where some inputs are
  only upper bounds (a bootstrap p that no replicate reached, given as
  1 / replicates): each adjusted value, and whether it too is only a
  bound (the running maximum that sets it came from a bound)."""
  m = len(p_values)
  out: list[tuple[float, bool]] = [(math.nan, False)] * m
  running, running_bound = 0.0, False
  # At equal values a bound ranks first: its true p is the smaller.
  order = sorted(range(m), key=lambda i: (p_values[i], not bounded[i]))
  for rank, i in enumerate(order):
    value = min(1.0, (m - rank) * p_values[i])
    if value > running:
      running, running_bound = value, bounded[i]
    elif value == running:
      running_bound = running_bound and bounded[i]
    out[i] = (running, running_bound)
  return out


def fewer_closer(e_a: npt.ArrayLike, e_b: npt.ArrayLike, d_a: npt.ArrayLike,
                 d_b: npt.ArrayLike) -> tuple[float, float]:
  """Mean parts over seeds of MDE_a - MDE_b from fewer and closer mistakes.

  Per seed, with e the error rate and d the mean distance among errors,
  ``e_a d_a - e_b d_b = (e_a - e_b)(d_a + d_b)/2 + (d_a - d_b)(e_a + e_b)/2``
  exactly: the first term is fewer mistakes, the second closer ones.
  """
  e_a, e_b, d_a, d_b = (np.asarray(x, np.float64) for x in (e_a, e_b, d_a,
                                                            d_b))
  return (float(np.mean((e_a - e_b) * (d_a + d_b) / 2)),
          float(np.mean((d_a - d_b) * (e_a + e_b) / 2)))


class Components(NamedTuple):
  """Variance components of a paired per-image difference; its mean."""
  mean: float
  var_seed: float
  var_image: float
  var_residual: float
  num_seeds: int
  num_images: int


def variance_components(delta_SxN: npt.ArrayLike) -> Components:
  """ANOVA estimates of the seed, image and residual variances of
  ``delta_SxN`` (negative estimates clipped to 0)."""
  delta = np.asarray(delta_SxN, np.float64)
  s, n = delta.shape
  if s < 2 or n < 2:
    raise ValueError(f'need at least 2 seeds and 2 images, got {s} x {n}.')
  grand = delta.mean()
  seed_means, image_means = delta.mean(axis=1), delta.mean(axis=0)
  ms_seed = n * np.sum((seed_means - grand) ** 2) / (s - 1)
  ms_image = s * np.sum((image_means - grand) ** 2) / (n - 1)
  residual = delta - seed_means[:, None] - image_means[None, :] + grand
  ms_residual = np.sum(residual ** 2) / ((s - 1) * (n - 1))
  return Components(float(grand), max(0.0, (ms_seed - ms_residual) / n),
                    max(0.0, (ms_image - ms_residual) / s),
                    float(ms_residual), s, n)


# ----------------------------------------------------------------------------
# Over seeds and images.

# Replicates per matrix product: bounds the weights' memory (N x chunk).
_CHUNK = 500


def per_seed(num_SxN: npt.ArrayLike, den_SxN: npt.ArrayLike) -> np.ndarray:
  """Each seed's value: sum over images of ``num`` / sum of ``den``."""
  num, den = np.asarray(num_SxN, np.float64), np.asarray(den_SxN, np.float64)
  ratio: np.ndarray = num.sum(axis=1) / den.sum(axis=1)
  return ratio


def two_way_bootstrap(a: tuple[npt.ArrayLike, npt.ArrayLike],
                      b: tuple[npt.ArrayLike, npt.ArrayLike], *,
                      replicates: int = 10_000, seed: int = 0) -> np.ndarray:
  """Replicates of mean over seeds of (a's value - b's value), seeds and
  images resampled independently; ``a`` and ``b`` are ``(num_SxN,
  den_SxN)`` on the same seeds and images."""
  arrays = [np.asarray(x, np.float32) for x in (*a, *b)]
  s, n = arrays[0].shape
  if any(x.shape != (s, n) for x in arrays):
    raise ValueError(f'every array must be seeds x images, {s} x {n}; got '
                     f'{[x.shape for x in arrays]}.')
  rng = np.random.default_rng(seed)
  out = []
  for start in range(0, replicates, _CHUNK):
    r = min(_CHUNK, replicates - start)
    image_weights_NxR = rng.multinomial(n, np.full(n, 1 / n), size=r).T.astype(
        np.float32)
    num_a, den_a, num_b, den_b = (x @ image_weights_NxR for x in arrays)
    diff_SxR = num_a / den_a - num_b / den_b
    seed_weights_SxR = rng.multinomial(s, np.full(s, 1 / s), size=r).T
    out.append((seed_weights_SxR * diff_SxR).sum(axis=0) / s)
  samples: np.ndarray = np.concatenate(out)
  return samples


def percentile_interval(samples: npt.ArrayLike,
                        level: float = 0.95) -> tuple[float, float]:
  lo, hi = np.quantile(np.asarray(samples, np.float64),
                       [(1 - level) / 2, (1 + level) / 2]).tolist()
  return lo, hi


def bootstrap_p(samples: npt.ArrayLike) -> float:
  """Two-sided: twice the smaller share of replicates on either side of 0."""
  values = np.asarray(samples)
  below, above = float(np.mean(values <= 0)), float(np.mean(values >= 0))
  return min(1.0, 2 * min(below, above))


def sign_flip_p(diff_S: npt.ArrayLike, *, flips: int = 200_000,
                seed: int = 0) -> float:
  """Two-sided p of the mean paired difference under random sign flips of
  the per-seed differences (the observed signs counted as one flip)."""
  diff = np.asarray(diff_S, np.float64)
  rng = np.random.default_rng(seed)
  observed = abs(diff.mean())
  extreme = 0
  for start in range(0, flips, 10_000):
    signs = rng.choice([-1.0, 1.0], size=(min(10_000, flips - start),
                                          diff.size))
    extreme += int(np.sum(np.abs(signs @ diff) / diff.size >= observed - 1e-12))
  return (extreme + 1) / (flips + 1)
