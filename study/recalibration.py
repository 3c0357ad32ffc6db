"""What a set's estimate needs to resample its calibration images.

A split-conformal threshold is a statistic of the calibration images, so an
interval for a difference of set sizes must resample them too, not only the
seeds and the evaluation images. Both of the protocol's methods are one
rule: each calibration image has a loss that falls as the threshold
lambda grows, and the threshold is the smallest lambda at which the total
loss is at most an allowance. For LAC the loss is 1 while the image's true
digit scores above lambda and the allowance n - k (k = ceil((n + 1)(1 -
alpha))): the k-th smallest score. For risk control it is the digit
distance from the label to the image's set and the allowance ((n + 1) alpha
- 1) times the largest distance (``conformal.risk_control_threshold``).

Under a resample (multinomial counts over the calibration images) the total
at each lambda is a weighted sum, and the new threshold is one of the lambdas
at which some image's loss drops ("groups": the distinct such lambdas). A
:class:`Window` keeps the ``2 width + 1`` groups around the calibrated one:
every image's loss at the window's start and every drop inside it (image
indices and integers, no probability), and the evaluation images' mean set
size, coverage and distance at each group's threshold. A replicate's
threshold is read off the window (:func:`replicate_positions`), and how far
it moves each mean off those curves (:func:`replicate_offsets`); a replicate
whose threshold falls outside the window is clipped to its edge and
counted. The offset is the mean over all evaluation images, added to a
replicate of the images resampled at the calibrated threshold: what that
leaves out is the covariance of the image weights with the few images whose
sets the shift changes, a term of a smaller order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import jax
import numpy as np
import numpy.typing as npt

import conformal
from trainer import sets as run_sets

WIDTH = 150
# What a window keeps per group: the evaluation images' mean set size,
# coverage and digit distance from the label to the set.
QUANTITIES = ('size', 'covered', 'distance')


@dataclasses.dataclass(frozen=True)
class Losses:
  """Each calibration image's loss before any drop (``start_N``), the drops
  (``lambdas_E``, ``images_E``, ``drops_E``, sorted by lambda) and the
  allowance."""
  start_N: np.ndarray
  lambdas_E: np.ndarray
  images_E: np.ndarray
  drops_E: np.ndarray
  allowance: float


def lac_losses(scores_NxK: np.ndarray, labels_N: np.ndarray,
               alpha: float) -> Losses:
  """LAC: one drop per image, at its true digit's score."""
  n = len(labels_N)
  true_N = scores_NxK[np.arange(n), labels_N]
  order = np.argsort(true_N, kind='stable')
  return Losses(np.ones(n), true_N[order], order, np.ones(n),
                float(allowance('lac', n, alpha, 1.0)))


def risk_losses(scores_NxK: np.ndarray, labels_N: np.ndarray, alpha: float,
                distance_KxK: np.ndarray) -> Losses:
  """Risk control over intervals: each image's distance from its label to
  its set once lambda passes each of its scores (its lowest-scored digit
  alone below them all), as ``conformal.risk_control_threshold`` counts."""
  n, num_classes = scores_NxK.shape
  order_NxK = np.argsort(scores_NxK, axis=-1, kind='stable')
  sorted_NxK = np.take_along_axis(scores_NxK, order_NxK, axis=-1)
  rank_NxK = np.argsort(order_NxK, axis=-1, kind='stable')
  prefixes_NxJxK = rank_NxK[:, None, :] <= np.arange(num_classes)[None, :, None]
  prefixes_NxJxK = np.asarray(conformal.hull(prefixes_NxJxK))
  to_label_NxK = distance_KxK[labels_N]
  loss_NxJ = np.min(np.where(prefixes_NxJxK, to_label_NxK[:, None, :],
                             np.inf), axis=-1)
  loss_NxJ = np.maximum.accumulate(loss_NxJ[:, ::-1], axis=1)[:, ::-1]
  start_N = loss_NxJ[:, 0]
  drop_NxJ = np.concatenate([start_N[:, None], loss_NxJ[:, :-1]],
                            axis=1) - loss_NxJ
  rows, cols = np.nonzero(drop_NxJ)
  order = np.argsort(sorted_NxK[rows, cols], kind='stable')
  return Losses(start_N, sorted_NxK[rows, cols][order], rows[order],
                drop_NxJ[rows, cols][order],
                float(allowance('risk', n, alpha, distance_KxK.max())))


def allowance(method: str, n: npt.ArrayLike, alpha: float,
              largest: float) -> np.ndarray:
  """The total loss allowed on ``n`` calibration images (an array of counts
  for resampled ones), as ``conformal`` rounds it."""
  n = np.asarray(n, np.float64)
  if method == 'lac':
    out: np.ndarray = n - np.ceil(np.round((n + 1) * (1 - alpha), 9))
  else:
    out = (np.round((n + 1) * alpha, 9) - 1) * largest
  return out


def method_losses(method: str, scores_NxK: np.ndarray, labels_N: np.ndarray,
                  alpha: float, distance_KxK: np.ndarray) -> Losses:
  if method == 'lac':
    return lac_losses(scores_NxK, labels_N, alpha)
  if method == 'risk':
    return risk_losses(scores_NxK, labels_N, alpha, distance_KxK)
  raise ValueError(f'no calibration window for method {method!r}.')


@dataclasses.dataclass(frozen=True)
class Window:
  """The groups ``first`` .. ``first + G - 1`` around the calibrated one
  (``center``, counted from ``first``): the loss of every image still
  losing at the window's start (``start_images``, ``start_losses``), each
  drop inside the window (``drop_groups`` from 0, ``drop_images``,
  ``drop_losses``) and what sets the allowance (``method``, ``alpha``,
  ``largest``: :func:`allowance`); ``lambdas_G`` (not kept) are the groups'
  thresholds."""
  center: int
  method: str
  alpha: float
  largest: float
  start_images: np.ndarray
  start_losses: np.ndarray
  drop_groups: np.ndarray
  drop_images: np.ndarray
  drop_losses: np.ndarray
  lambdas_G: np.ndarray

  def arrays(self, prefix: str) -> dict[str, np.ndarray]:
    """What is kept, with ``prefix``: integers and the allowance's terms."""
    return {f'{prefix}_{name}': np.asarray(value) for name, value in (
        ('center', self.center), ('groups', len(self.lambdas_G)),
        ('method', self.method),
        ('alpha', self.alpha), ('largest', self.largest),
        ('start_images', self.start_images.astype(np.int32)),
        ('start_losses', self.start_losses.astype(np.int16)),
        ('drop_groups', self.drop_groups.astype(np.int16)),
        ('drop_images', self.drop_images.astype(np.int32)),
        ('drop_losses', self.drop_losses.astype(np.int16)))}


def window(losses: Losses, method: str, alpha: float, largest: float,
           width: int = WIDTH) -> Window:
  """The calibrated threshold's window of ``2 width + 1`` groups (fewer at
  either end of the lambdas); one group and no drop where the threshold is
  infinite (-inf: the smallest sets already satisfy the allowance; +inf:
  no threshold does, too few images, and every digit is kept), which every
  replicate then keeps."""
  lambdas_G, group_E = np.unique(losses.lambdas_E, return_inverse=True)
  dropped_G = np.bincount(group_E, weights=losses.drops_E,
                          minlength=len(lambdas_G))
  total_G = losses.start_N.sum() - np.cumsum(dropped_G)
  holds = total_G <= losses.allowance
  if losses.start_N.sum() <= losses.allowance or not holds.any():
    none = np.zeros(0, np.int64)
    infinite = -np.inf if losses.start_N.sum() <= losses.allowance else np.inf
    return Window(0, method, alpha, largest, none, none, none, none, none,
                  np.array([infinite], np.float32))
  calibrated = int(np.argmax(holds))
  first = max(0, calibrated - width)
  stop = min(len(lambdas_G), calibrated + width + 1)
  before = group_E < first
  loss_N = losses.start_N - np.bincount(
      losses.images_E[before], weights=losses.drops_E[before],
      minlength=len(losses.start_N))
  start_images = np.flatnonzero(loss_N)
  inside = (group_E >= first) & (group_E < stop)
  return Window(calibrated - first, method, alpha, largest, start_images,
                loss_N[start_images], group_E[inside] - first,
                losses.images_E[inside], losses.drops_E[inside],
                lambdas_G[first:stop])


@jax.jit
def _interval_ends(scores_BxK: jax.Array, lambdas_G: jax.Array
                   ) -> tuple[jax.Array, jax.Array]:
  sets_GxBxK = jax.vmap(
      lambda t: conformal.prediction_sets(scores_BxK, t))(lambdas_G)
  num_classes = scores_BxK.shape[-1]
  low = jax.numpy.argmax(sets_GxBxK, axis=-1)
  high = num_classes - 1 - jax.numpy.argmax(sets_GxBxK[..., ::-1], axis=-1)
  return low, high


def interval_quantities(low_B: np.ndarray, high_B: np.ndarray,
                        labels_B: np.ndarray) -> dict[str, np.ndarray]:
  """Each interval's size, whether it holds the label, and the digit
  distance from the label to it (linear distance)."""
  return {'size': high_B - low_B + 1,
          'covered': (low_B <= labels_B) & (labels_B <= high_B),
          'distance': np.maximum(0, np.maximum(low_B - labels_B,
                                               labels_B - high_B))}


def window_curves(scores_BxK: np.ndarray, labels_B: np.ndarray,
                  lambdas_G: np.ndarray) -> dict[str, np.ndarray]:
  """The evaluation images' mean of each quantity at every group's
  threshold: ``{quantity: [G]}``."""
  low, high = (np.asarray(x) for x in _interval_ends(
      jax.numpy.asarray(scores_BxK), jax.numpy.asarray(lambdas_G)))
  return {name: values.mean(axis=-1) for name, values in
          interval_quantities(low, high, labels_B).items()}


def kept_window(method: str, calibration_scores_NxK: np.ndarray,
                calibration_labels_N: np.ndarray,
                evaluation_scores_BxK: np.ndarray,
                evaluation_labels_B: np.ndarray, *, alpha: float,
                distance_KxK: np.ndarray, prefix: str,
                width: int = WIDTH) -> dict[str, np.ndarray]:
  """One seed's and measure's window and the evaluation images' mean of
  each quantity at every group of it, every array named
  ``<prefix>_...``."""
  calibrated = window(method_losses(
      method, calibration_scores_NxK, calibration_labels_N, alpha,
      distance_KxK), method, alpha, float(distance_KxK.max()), width)
  kept = calibrated.arrays(prefix)
  for name, curve_G in window_curves(
      evaluation_scores_BxK, evaluation_labels_B,
      calibrated.lambdas_G).items():
    kept[f'{prefix}_{name}_curve'] = curve_G
  return kept


def scores(method: str, probs_NxK: np.ndarray) -> np.ndarray:
  """The method's scores of intervals (``trainer.sets``)."""
  return np.asarray(run_sets.method_scores(method, probs_NxK, 'interval'))


# ----------------------------------------------------------------------------
# Replicates.


def replicate_positions(kept: Mapping[str, np.ndarray], prefix: str,
                        counts_RxN: np.ndarray, calibration_R: np.ndarray
                        ) -> tuple[np.ndarray, int]:
  """Each replicate's threshold, as a group of the window, under the images'
  multinomial ``counts_RxN`` (``calibration_R``: their sum over the
  window's calibration images, the resampled n); and how many replicates
  were clipped to the window's edge."""
  start_R = counts_RxN[:, kept[f'{prefix}_start_images']] @ kept[
      f'{prefix}_start_losses'].astype(np.float64)
  drops_RxE = (counts_RxN[:, kept[f'{prefix}_drop_images']]
               * kept[f'{prefix}_drop_losses'].astype(np.float64))
  dropped_RxG = drops_RxE @ _one_hot(kept[f'{prefix}_drop_groups'],
                                     int(kept[f'{prefix}_groups']))
  allowed_R = allowance(str(kept[f'{prefix}_method']), calibration_R,
                        float(kept[f'{prefix}_alpha']),
                        float(kept[f'{prefix}_largest']))
  holds_RxG = (start_R[:, None] - np.cumsum(dropped_RxG, axis=1)
               <= allowed_R[:, None])
  found_R = holds_RxG.any(axis=1)
  position_R = np.where(found_R, np.argmax(holds_RxG, axis=1),
                        holds_RxG.shape[1] - 1)
  if len(kept[f'{prefix}_drop_groups']) == 0:
    # An infinite threshold's one-group window: nothing to clip.
    return position_R, 0
  clipped = int(np.sum(~found_R | (start_R <= allowed_R)))
  return position_R, clipped


def _one_hot(groups: np.ndarray, num_groups: int) -> np.ndarray:
  """[E, G]: which group each drop falls in."""
  one_hot: np.ndarray = (groups.astype(np.int64)[:, None]
                         == np.arange(num_groups)).astype(np.float64)
  return one_hot


def replicate_offsets(kept: Mapping[str, np.ndarray], prefix: str,
                      quantity: str, position_R: np.ndarray) -> np.ndarray:
  """How much each replicate's threshold moves the evaluation images' mean
  of ``quantity`` from the calibrated threshold's."""
  curve_G = kept[f'{prefix}_{quantity}_curve']
  offsets: np.ndarray = curve_G[position_R] - curve_G[int(
      kept[f'{prefix}_center'])]
  return offsets
