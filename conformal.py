"""Prediction sets with a guarantee for ordinal labels, in pure JAX.

Split conformal prediction: score each class of each calibration image
(lower: more conforming), take the conservative quantile of the true
labels' scores, and at test time keep every class scored at or below it.
Over exchangeable calibration and test images the set holds the true label
with probability at least ``1 - alpha`` (Vovk et al. 2005; Angelopoulos and
Bates 2021)::

    scores_NxK = aps_scores(calibration_probs_NxK)
    threshold = calibrate(scores_NxK, calibration_labels_N, alpha=0.1)
    sets_BxK = prediction_sets(aps_scores(test_probs_BxK), threshold)

Conformal risk control (Angelopoulos et al. 2022) instead bounds the
expected distance from the label to the set, over the largest distance:
``risk_control_threshold`` then ``prediction_sets``.

The scores: :func:`lac_scores` (``1 - p``; made contiguous by the hull),
:func:`aps_scores` (ordinal APS: an interval grown from the argmax toward
the more probable neighbour) and :func:`rps_scores` (the ranked probability
score of each candidate label, whose sublevel sets are intervals around the
median). A set is a boolean mask over the K classes; ``shape='interval'``
makes it the smallest interval of classes that holds it, ``shape='arc'``
the smallest arc (the cyclic case, where 9 sits next to 0), and
``nonempty=True`` always keeps the most conforming class, so that a user
always gets an answer (the coverage guarantee holds either way: both only
add classes).

Signature rule: the arrays come first, positional (scores, probabilities or
sets, then labels, then thresholds), every option is keyword-only, the
class axis is the last one (K), and every function but the thresholds and
the per-class or per-size summaries returns one value per example. Shapes:
B or N examples (N: calibration), K classes, C candidate sets.

This file imports nothing of this project's: copy it alone.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

__all__ = [
  'aps_scores',
  'arc_masks',
  'calibrate',
  'conformal_quantile',
  'coverage_per_class',
  'coverage_per_size',
  'covered',
  'distance_to_set',
  'hull',
  'interval_masks',
  'lac_scores',
  'prediction_sets',
  'risk_control_threshold',
  'rps_scores',
  'set_size',
]

SHAPES = ('interval', 'arc')
# Ordinal APS's growing interval: its low and high ends (unwrapped on the
# circle), its mass, and each class's score so far.
Growth = tuple[jax.Array, jax.Array, jax.Array, jax.Array]


def _leading(array: jax.Array, ndim: int) -> jax.Array:
  """``array`` with leading axes of size 1 up to ``ndim`` axes (explicit
  broadcasting: no implicit rank promotion)."""
  return array.reshape((1,) * (ndim - array.ndim) + array.shape)


def _check_probs(probs: ArrayLike) -> jax.Array:
  probs_BxK = jnp.asarray(probs)
  if not jnp.issubdtype(probs_BxK.dtype, jnp.floating):
    raise TypeError(f'probs must be floating point, got {probs_BxK.dtype}.')
  if probs_BxK.ndim < 1 or probs_BxK.shape[-1] < 2:
    raise ValueError('probs must have a class axis of two or more classes '
                     f'last, got shape {probs_BxK.shape}.')
  return probs_BxK


def _check_alpha(alpha: float) -> None:
  if not 0 < alpha < 1:
    raise ValueError(f'alpha must be in (0, 1), got {alpha}.')


def _check_shape(shape: str | None) -> None:
  if shape is not None and shape not in SHAPES:
    raise ValueError(f'shape must be one of {SHAPES} or None, got {shape!r}.')


def _check_label_values(labels: jax.Array, num_classes: int) -> None:
  """Labels in [0, K), where they are concrete (not under jit)."""
  if isinstance(labels, jax.core.Tracer) or labels.size == 0:
    return
  if int(labels.min()) < 0 or int(labels.max()) >= num_classes:
    raise ValueError(f'labels must be classes in [0, {num_classes}), got '
                     f'values from {int(labels.min())} to '
                     f'{int(labels.max())}.')


def _check_sets_labels(sets: ArrayLike, labels: ArrayLike
                       ) -> tuple[jax.Array, jax.Array]:
  sets_BxK, labels_B = jnp.asarray(sets), jnp.asarray(labels)
  if sets_BxK.dtype != jnp.bool_:
    raise TypeError(f'sets must be boolean masks, got {sets_BxK.dtype}.')
  if not jnp.issubdtype(labels_B.dtype, jnp.integer):
    raise TypeError(f'labels must be integer class indices, got '
                    f'{labels_B.dtype}.')
  if sets_BxK.shape[:-1] != labels_B.shape:
    raise ValueError('sets must be labels\' shape plus a class axis, got '
                     f'{sets_BxK.shape} and {labels_B.shape}.')
  _check_label_values(labels_B, sets_BxK.shape[-1])
  return sets_BxK, labels_B


# ----------------------------------------------------------------------------
# Scores: lower is more conforming.


def lac_scores(probs: ArrayLike) -> jax.Array:
  r"""The least ambiguous set-valued classifier's score (Sadinle et al.
  2019) of each class: one minus its probability.

  .. math::
    s(x, k) = 1 - p_k(x)

  Its sets need not be contiguous; ``prediction_sets(..., shape=...)``
  takes their hull (Chakraborty et al. 2024: every class whose conformal
  p-value exceeds alpha, and those between).

  Args:
    probs: class probabilities, shape ``[..., K]``.

  Returns:
    Scores of shape ``[..., K]``.

  >>> [round(float(s), 2) for s in lac_scores(jnp.array([0.1, 0.6, 0.3]))]
  [0.9, 0.4, 0.7]
  """
  return 1 - _check_probs(probs)


def aps_scores(probs: ArrayLike, *, cyclic: bool = False) -> jax.Array:
  r"""Ordinal adaptive prediction sets' score (Lu et al. 2022) of each
  class: the probability mass of the interval grown from the argmax, one
  neighbour at a time (the more probable of the two ends' neighbours; the
  upper one where they tie, as in the paper's code), when it first holds
  that class. Each step also adds one unit of float32 precision, so that
  classes of zero probability still score in the order they are added.

  Every set ``{k : s(x, k) <= t}`` is one of the grown intervals, so it is
  contiguous; with ``cyclic`` the interval grows around the circle (an
  arc: 9 next to 0). The set is the largest grown interval whose mass is
  at most the threshold, the non-randomised adaptive set; the paper's
  code grows one class further, past the threshold.

  Args:
    probs: class probabilities, shape ``[..., K]``.
    cyclic: grow arcs on the circle of classes instead of intervals.

  Returns:
    Scores of shape ``[..., K]``: the argmax's is its probability, the last
    class added scores the whole mass.

  >>> [round(float(s), 2) for s in aps_scores(jnp.array([0.1, 0.5, 0.3, 0.1]))]
  [1.0, 0.5, 0.8, 0.9]
  """
  probs_BxK = _check_probs(probs)
  shape, num_classes = probs_BxK.shape, probs_BxK.shape[-1]
  dtype = jnp.promote_types(probs_BxK.dtype, jnp.float32)
  probs_BxK = probs_BxK.reshape(-1, num_classes).astype(dtype)
  step = jnp.finfo(dtype).eps
  rows_B = jnp.arange(probs_BxK.shape[0])
  start_B = jnp.argmax(probs_BxK, axis=-1)
  mass_B = probs_BxK[rows_B, start_B]
  scores_BxK = jnp.where(jax.nn.one_hot(start_B, num_classes) > 0,
                         mass_B[:, None], 0.0)

  def neighbour(index_B: jax.Array) -> jax.Array:
    """A neighbour's probability; -inf past an end of the interval."""
    if cyclic:
      return probs_BxK[rows_B, index_B % num_classes]
    inside_B = (index_B >= 0) & (index_B < num_classes)
    return jnp.where(inside_B, probs_BxK[
        rows_B, jnp.clip(index_B, 0, num_classes - 1)], -jnp.inf)

  def grow(carry: Growth, _: None) -> tuple[Growth, None]:
    low_B, high_B, mass_B, scores_BxK = carry
    right_B = neighbour(high_B + 1) >= neighbour(low_B - 1)
    added_B = jnp.where(right_B, high_B + 1, low_B - 1) % num_classes
    mass_B = mass_B + probs_BxK[rows_B, added_B] + step
    scores_BxK = jnp.where(jax.nn.one_hot(added_B, num_classes) > 0,
                           mass_B[:, None], scores_BxK)
    return (jnp.where(right_B, low_B, low_B - 1),
            jnp.where(right_B, high_B + 1, high_B), mass_B, scores_BxK), None

  grown, _ = jax.lax.scan(grow, (start_B, start_B, mass_B, scores_BxK),
                          None, length=num_classes - 1)
  scores_BxK = grown[3]
  return scores_BxK.reshape(shape)


def rps_scores(probs: ArrayLike) -> jax.Array:
  r"""The ranked probability score of each class as the label.

  .. math::
    s(x, k) = \sum_{j=0}^{K-2} \big(F_j(x) - [k \le j]\big)^2

  with :math:`F` the predicted cumulative distribution. Since
  :math:`s(x, k+1) - s(x, k) = 2 F_k(x) - 1` grows with k, every sublevel
  set is an interval around the median.

  Args:
    probs: class probabilities, shape ``[..., K]``.

  Returns:
    Scores of shape ``[..., K]``.

  >>> rps_scores(jnp.array([0.0, 1.0, 0.0])).tolist()
  [1.0, 0.0, 1.0]
  """
  probs_BxK = _check_probs(probs)
  num_classes = probs_BxK.shape[-1]
  cdf_BxJ = jnp.cumsum(probs_BxK, axis=-1)[..., :-1]
  steps_KxJ = (jnp.arange(num_classes)[:, None]
               <= jnp.arange(num_classes - 1)[None, :])
  return jnp.sum((cdf_BxJ[..., None, :]
                  - _leading(steps_KxJ, cdf_BxJ.ndim + 1)) ** 2, axis=-1)


# ----------------------------------------------------------------------------
# Calibration.


def conformal_quantile(scores: ArrayLike, *, alpha: float) -> jax.Array:
  r"""The conservative split-conformal quantile of n calibration scores:
  the :math:`\lceil (n+1)(1-\alpha) \rceil`-th smallest, or +inf where that
  rank exceeds n (too few images for this alpha: every class is kept).

  Args:
    scores: the true labels' scores, shape ``[N]``.
    alpha: the miscoverage allowed, in (0, 1).

  Returns:
    A scalar threshold.

  >>> conformal_quantile(jnp.arange(1.0, 10.0), alpha=0.2).tolist()
  8.0
  """
  _check_alpha(alpha)
  scores_N = jnp.asarray(scores)
  if scores_N.ndim != 1:
    raise ValueError(f'scores must have shape [N], got {scores_N.shape}.')
  n = scores_N.shape[0]
  # Rounded first: (n + 1)(1 - alpha) = 8 must not be 8.000000000000002.
  rank = math.ceil(round((n + 1) * (1 - alpha), 9))
  if rank > n:
    return jnp.asarray(jnp.inf, scores_N.dtype)
  return jnp.sort(scores_N)[rank - 1]


def calibrate(scores: ArrayLike, labels: ArrayLike, *, alpha: float,
              class_conditional: bool = False) -> jax.Array:
  """Each class's threshold from calibration scores: one conformal
  quantile of the true labels' scores for every class, or with
  ``class_conditional`` one per class from its own images (coverage
  ``1 - alpha`` within each class; +inf for a class with too few).

  Args:
    scores: every class's score, shape ``[N, K]``.
    labels: the true classes, shape ``[N]``.
    alpha: the miscoverage allowed, in (0, 1).
    class_conditional: one quantile per class (Mondrian conformal).

  Returns:
    Thresholds of shape ``[K]``.
  """
  _check_alpha(alpha)
  scores_NxK, labels_N = jnp.asarray(scores), jnp.asarray(labels)
  if scores_NxK.ndim != 2 or labels_N.shape != scores_NxK.shape[:1]:
    raise ValueError('scores must have shape [N, K] and labels [N], got '
                     f'{scores_NxK.shape} and {labels_N.shape}.')
  num_classes = scores_NxK.shape[-1]
  _check_label_values(labels_N, num_classes)
  true_N = jnp.take_along_axis(scores_NxK, labels_N[:, None], axis=-1)[:, 0]
  if not class_conditional:
    return jnp.full(num_classes, conformal_quantile(true_N, alpha=alpha))
  own_KxN = labels_N[None, :] == jnp.arange(num_classes)[:, None]
  sorted_KxN = jnp.sort(jnp.where(own_KxN, true_N[None, :], jnp.inf), axis=-1)
  count_K = own_KxN.sum(axis=-1)
  # Each count's rank, in Python floats as conformal_quantile's.
  rank_K = jnp.array([math.ceil(round((count + 1) * (1 - alpha), 9))
                      for count in range(scores_NxK.shape[0] + 1)])[count_K]
  at_rank_K = jnp.take_along_axis(
      sorted_KxN, jnp.clip(rank_K - 1, 0, scores_NxK.shape[0] - 1)[:, None],
      axis=-1)[:, 0]
  return jnp.where(rank_K > count_K, jnp.inf, at_rank_K)


# ----------------------------------------------------------------------------
# Sets.


def interval_masks(num_classes: int) -> jax.Array:
  """Every interval of classes ``[a, b]``, ``a <= b``, as a mask: shape
  ``[K (K + 1) / 2, K]``, by start then end.

  >>> interval_masks(3).astype(int).tolist()
  [[1, 0, 0], [1, 1, 0], [1, 1, 1], [0, 1, 0], [0, 1, 1], [0, 0, 1]]
  """
  classes_K = jnp.arange(num_classes)
  starts, ends = zip(*[(a, b) for a in range(num_classes)
                       for b in range(a, num_classes)], strict=True)
  return ((classes_K[None, :] >= jnp.array(starts)[:, None])
          & (classes_K[None, :] <= jnp.array(ends)[:, None]))


def arc_masks(num_classes: int) -> jax.Array:
  """Every arc of the circle of classes as a mask: shape ``[K * K, K]``,
  by length (1 to K) then start (the whole circle K times).

  >>> arc_masks(3)[3:6].astype(int).tolist()
  [[1, 1, 0], [0, 1, 1], [1, 0, 1]]
  """
  classes_K = jnp.arange(num_classes)
  lengths, starts = zip(*[(length, start)
                          for length in range(1, num_classes + 1)
                          for start in range(num_classes)], strict=True)
  offset_CxK = (classes_K[None, :] - jnp.array(starts)[:, None]) % num_classes
  return offset_CxK < jnp.array(lengths)[:, None]


def hull(sets: ArrayLike, *, shape: str = 'interval') -> jax.Array:
  """The smallest interval (or arc) of classes that holds each set; an
  empty set stays empty. Where two arcs of the smallest length hold a set,
  the one that starts first.

  Args:
    sets: boolean masks, shape ``[..., K]``.
    shape: 'interval' or 'arc'.

  Returns:
    Boolean masks of shape ``[..., K]``.

  >>> hull(jnp.array([True, False, False, True, False])).astype(int).tolist()
  [1, 1, 1, 1, 0]
  >>> hull(jnp.array([True, False, False, True, False]), shape='arc'
  ...      ).astype(int).tolist()
  [1, 0, 0, 1, 1]
  """
  _check_shape(shape)
  sets_BxK = jnp.asarray(sets)
  if sets_BxK.dtype != jnp.bool_:
    raise TypeError(f'sets must be boolean masks, got {sets_BxK.dtype}.')
  num_classes = sets_BxK.shape[-1]
  candidates_CxK = (interval_masks(num_classes) if shape == 'interval'
                    else arc_masks(num_classes))
  holds_BxC = jnp.all(_leading(candidates_CxK, sets_BxK.ndim + 1)
                      | ~sets_BxK[..., None, :], axis=-1)
  size_C = candidates_CxK.sum(axis=-1)
  best_B = jnp.argmin(jnp.where(holds_BxC, _leading(size_C, holds_BxC.ndim),
                                num_classes + 1), axis=-1)
  return candidates_CxK[best_B] & jnp.any(sets_BxK, axis=-1, keepdims=True)


def prediction_sets(scores: ArrayLike, thresholds: ArrayLike, *,
                    shape: str | None = 'interval',
                    nonempty: bool = True) -> jax.Array:
  """Each example's set: the classes scored at or below their threshold,
  with the most conforming class where ``nonempty``, made contiguous by
  :func:`hull` where ``shape`` is given.

  Args:
    scores: every class's score, shape ``[..., K]``.
    thresholds: from :func:`calibrate` (shape ``[K]``) or
      :func:`risk_control_threshold` (a scalar).
    shape: 'interval', 'arc' (cyclic classes) or None (the sets as the
      scores give them).
    nonempty: keep the lowest-scored class in every set.

  Returns:
    Boolean masks of shape ``[..., K]``.
  """
  _check_shape(shape)
  scores_BxK = jnp.asarray(scores)
  thresholds_K = jnp.asarray(thresholds)
  sets_BxK = scores_BxK <= (thresholds_K if thresholds_K.ndim == 0
                            else _leading(thresholds_K, scores_BxK.ndim))
  if nonempty:
    sets_BxK |= jax.nn.one_hot(jnp.argmin(scores_BxK, axis=-1),
                               scores_BxK.shape[-1]) > 0
  return sets_BxK if shape is None else hull(sets_BxK, shape=shape)


def risk_control_threshold(scores: ArrayLike, labels: ArrayLike, *,
                           distance: ArrayLike, alpha: float,
                           shape: str | None = 'interval',
                           nonempty: bool = True) -> jax.Array:
  r"""Conformal risk control of the distance from the label to the set
  (Angelopoulos et al. 2022; Xu et al. 2024 for ordinal labels): the
  smallest threshold :math:`\lambda` whose sets, built as
  :func:`prediction_sets` builds them, satisfy

  .. math::
    \frac{n}{n+1} \hat R_n(\lambda) + \frac{1}{n+1} \le \alpha, \qquad
    \hat R_n(\lambda) = \frac{1}{n} \sum_i \frac{d(y_i, C_\lambda(x_i))}
    {\max D},

  with :math:`d(y, C) = \min_{k \in C} D_{yk}` (the largest distance for an
  empty set). On exchangeable test images the expected normalised distance
  is then at most alpha. Risk control needs losses that fall as lambda
  grows; a larger set's smallest arc need not hold a smaller set's, so each
  loss is taken as the largest it reaches at or above lambda (a bound
  that falls; for intervals and plain sets it is the loss itself). -inf
  where the smallest sets already satisfy it, +inf where no threshold does
  (every class is kept).

  Args:
    scores: every class's score, shape ``[N, K]``.
    labels: the true classes, shape ``[N]``.
    distance: the distance matrix ``D``, shape ``[K, K]`` (truth along rows).
    alpha: the expected normalised distance allowed, in (0, 1).
    shape: as for :func:`prediction_sets`.
    nonempty: as for :func:`prediction_sets`.

  Returns:
    A scalar threshold for :func:`prediction_sets`.
  """
  _check_alpha(alpha)
  _check_shape(shape)
  scores_NxK, labels_N = jnp.asarray(scores), jnp.asarray(labels)
  distance_KxK = jnp.asarray(distance, jnp.float32)
  if scores_NxK.ndim != 2:
    raise ValueError(f'scores must have shape [N, K], got {scores_NxK.shape}.')
  n, num_classes = scores_NxK.shape
  _check_label_values(labels_N, num_classes)
  if labels_N.shape != (n,) or distance_KxK.shape != (num_classes,) * 2:
    raise ValueError('scores must have shape [N, K], labels [N] and distance '
                     f'[K, K], got {scores_NxK.shape}, {labels_N.shape} and '
                     f'{distance_KxK.shape}.')
  # The set once lambda passes the j-th smallest score: the j + 1 lowest
  # classes (the lowest alone below it where nonempty; empty otherwise).
  order_NxK = jnp.argsort(scores_NxK, axis=-1)
  sorted_NxK = jnp.take_along_axis(scores_NxK, order_NxK, axis=-1)
  rank_NxK = jnp.argsort(order_NxK, axis=-1)
  prefixes_NxJxK = (rank_NxK[:, None, :]
                    <= jnp.arange(num_classes)[None, :, None])
  if shape is not None:
    prefixes_NxJxK = hull(prefixes_NxJxK, shape=shape)
  # Losses in the distance's own units: sums of integer distances are exact
  # in float32, so the condition is decided exactly for the usual matrices.
  largest = distance_KxK.max()
  to_label_NxK = distance_KxK[labels_N]
  loss_NxJ = jnp.min(jnp.where(prefixes_NxJxK, to_label_NxK[:, None, :],
                               jnp.inf), axis=-1)
  below_N = loss_NxJ[:, 0] if nonempty else jnp.full(n, largest)
  # The smallest arc holding a larger set need not hold the smaller set's
  # arc, so a loss can rise with lambda; each one is replaced by the most
  # it reaches at or above lambda, which falls (and bounds the true loss).
  loss_NxJ = jax.lax.cummax(loss_NxJ, axis=1, reverse=True)
  below_N = jnp.maximum(below_N, loss_NxJ[:, 0])
  drop_NxJ = jnp.concatenate([below_N[:, None], loss_NxJ[:, :-1]],
                             axis=1) - loss_NxJ
  events = jnp.argsort(sorted_NxK.ravel())
  lambdas = sorted_NxK.ravel()[events]
  dropped = jnp.cumsum(drop_NxJ.ravel()[events])
  # n R(lambda) + 1 <= alpha (n + 1) with R normalised by the largest
  # distance; (n + 1) alpha in Python floats, as conformal_quantile's rank.
  allowed = (round((n + 1) * alpha, 9) - 1) * largest
  # The total loss once every event at or below each lambda has happened.
  last = jnp.searchsorted(lambdas, lambdas, side='right') - 1
  holds = below_N.sum() - dropped[last] <= allowed
  first = lambdas[jnp.argmax(holds)]
  return jnp.where(below_N.sum() <= allowed, -jnp.inf,
                   jnp.where(jnp.any(holds), first, jnp.inf))


# ----------------------------------------------------------------------------
# What a set scores.


def covered(sets: ArrayLike, labels: ArrayLike) -> jax.Array:
  """Whether each set holds its label: shape ``[...]``, boolean.

  >>> covered(jnp.array([[True, True, False]]), jnp.array([2])).tolist()
  [False]
  """
  sets_BxK, labels_B = _check_sets_labels(sets, labels)
  return jnp.take_along_axis(sets_BxK, labels_B[..., None], axis=-1)[..., 0]


def set_size(sets: ArrayLike) -> jax.Array:
  """The number of classes in each set (0 for an empty one): shape
  ``[...]``."""
  return jnp.sum(jnp.asarray(sets), axis=-1)


def distance_to_set(sets: ArrayLike, labels: ArrayLike, *,
                    distance: ArrayLike) -> jax.Array:
  """The distance from each label to the nearest class of its set (0 where
  the set holds it; the largest distance for an empty set): shape
  ``[...]``.

  >>> d = jnp.abs(jnp.arange(4)[:, None] - jnp.arange(4)[None, :])
  >>> distance_to_set(jnp.array([[True, True, False, False]]),
  ...                 jnp.array([3]), distance=d).tolist()
  [2.0]
  """
  sets_BxK, labels_B = _check_sets_labels(sets, labels)
  distance_KxK = jnp.asarray(distance, jnp.float32)
  to_label_BxK = distance_KxK[labels_B]
  return jnp.where(jnp.any(sets_BxK, axis=-1),
                   jnp.min(jnp.where(sets_BxK, to_label_BxK, jnp.inf),
                           axis=-1), distance_KxK.max())


def coverage_per_class(sets: ArrayLike, labels: ArrayLike) -> jax.Array:
  """The coverage among the examples of each true class: shape ``[K]``
  (NaN for a class with no example)."""
  sets_BxK, labels_B = _check_sets_labels(sets, labels)
  num_classes = sets_BxK.shape[-1]
  of_class_BxK = jax.nn.one_hot(labels_B.ravel(), num_classes)
  hits_B = covered(sets_BxK, labels_B).ravel().astype(jnp.float32)
  return (hits_B @ of_class_BxK) / of_class_BxK.sum(axis=0)


def coverage_per_size(sets: ArrayLike, labels: ArrayLike) -> jax.Array:
  """The coverage among the examples whose set has each size 0 to K:
  shape ``[K + 1]`` (NaN for a size no set has)."""
  sets_BxK, labels_B = _check_sets_labels(sets, labels)
  num_classes = sets_BxK.shape[-1]
  of_size_BxS = jax.nn.one_hot(set_size(sets_BxK).ravel(), num_classes + 1)
  hits_B = covered(sets_BxK, labels_B).ravel().astype(jnp.float32)
  return (hits_B @ of_size_BxS) / of_size_BxS.sum(axis=0)
