"""Estimates over seeds and images: the confirmation's statistics.

A family's per-image results on S seeds x N images (``num_SxN`` over
``den_SxN``: the digit distance over 1 for the MDE, the distance over "is an
error" for the mean error distance) give one value per seed, the ratio of the
sums over images. A difference between two families on the same seeds is the
mean over seeds of their per-seed differences. :func:`two_way_bootstrap`
resamples seeds and images independently (the images as multinomial weights,
so that one replicate is a weighted sum, not a copy of the arrays);
:func:`sign_flip_p` and :func:`study.rows.paired_test` are the seeds-only
tests "on these images".
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

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
