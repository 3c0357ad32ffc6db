"""Jit-able metrics for ordinal classification, and cost-aware decoding.

Predictions and labels are integer class indices of shape ``[B]``, a flat
batch of examples (shape letters as in ``losses.py``: B examples, K classes).
Every metric that depends on the set of classes takes it explicitly
(``num_classes``, or the shape of ``distance``), so a class absent from a
batch never changes the answer.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

__all__ = [
  'accuracy',
  'bayes_decision',
  'confusion_matrix',
  'far_error_rate',
  'far_share_of_errors',
  'macro_mean_distance',
  'max_mean_distance',
  'mean_distance',
  'mean_error_distance',
  'off_by_one_accuracy',
  'quadratic_weighted_kappa',
  'ranked_probability_score',
]


def _check_preds_labels(preds: ArrayLike,
                        labels: ArrayLike) -> tuple[jax.Array, jax.Array]:
  preds_B, labels_B = jnp.asarray(preds), jnp.asarray(labels)
  for name, value_B in (('preds', preds_B), ('labels', labels_B)):
    if not jnp.issubdtype(value_B.dtype, jnp.integer):
      raise TypeError(f'{name} must be integer class indices, got '
                      f'{value_B.dtype}; decode probabilities first (argmax or '
                      'bayes_decision).')
  if preds_B.shape != labels_B.shape:
    raise ValueError('preds and labels must have the same shape, '
                     f'got {preds_B.shape} and {labels_B.shape}.')
  return preds_B, labels_B


def bayes_decision(probs: ArrayLike, *, distance: ArrayLike) -> jax.Array:
  r"""The prediction with the lowest expected cost.

  .. math::
    \hat y = \arg\min_k \sum_j p_j\, C_{jk}

  For ``linear_distance`` this is a median of ``p``; for the 0-1 cost it is the
  argmax.

  Args:
    probs: class probabilities, shape ``[..., K]``.
    distance: cost matrix ``C`` of shape ``[K, K]`` (truth along rows).

  Returns:
    Integer predictions of shape ``[...]``.
  """
  probs_BxK = jnp.asarray(probs)
  return jnp.argmin(probs_BxK @ jnp.asarray(distance, probs_BxK.dtype), axis=-1)


def accuracy(preds: ArrayLike, labels: ArrayLike) -> jax.Array:
  """Fraction of exact predictions."""
  preds_B, labels_B = _check_preds_labels(preds, labels)
  return jnp.mean(preds_B == labels_B)


def mean_distance(preds: ArrayLike, labels: ArrayLike, *,
                  distance: ArrayLike) -> jax.Array:
  """Mean ``C[label, pred]``.

  With ``linear_distance(10)`` this is the mean digit-distance error (mean
  absolute error of the digit); with ``cyclic_distance(10)`` the cyclic error.
  """
  preds_B, labels_B = _check_preds_labels(preds, labels)
  return jnp.mean(jnp.asarray(distance)[labels_B, preds_B])


def far_error_rate(preds: ArrayLike, labels: ArrayLike, *,
                   min_distance: int = 3) -> jax.Array:
  """Share of predictions off by ``min_distance`` or more digits.

  The "far-off mistakes" a distance-aware loss is meant to prevent: with the
  default, predicting 7 for a 3 counts, predicting 4 or 5 does not.

  >>> float(far_error_rate(jnp.array([3, 4, 7, 0]), jnp.array([3, 3, 3, 3])))
  0.5
  """
  preds_B, labels_B = _check_preds_labels(preds, labels)
  return jnp.mean(jnp.abs(preds_B - labels_B) >= min_distance)


def mean_error_distance(preds: ArrayLike, labels: ArrayLike, *,
                        distance: ArrayLike) -> jax.Array:
  r"""Mean ``C[label, pred]`` over the wrong predictions only (0 if none).

  It splits the mean distance into how many mistakes and how far they go:

  .. math::
    \mathrm{mean\_distance} = (1 - \mathrm{accuracy}) \times
      \mathrm{mean\_error\_distance}

  (for any distance that is 0 on the diagonal), so a loss that lowers the
  mean digit-distance error can be seen to make fewer mistakes, closer ones,
  or both.

  >>> preds, labels = jnp.array([3, 4, 7, 0]), jnp.array([3, 3, 3, 3])
  >>> digits = jnp.arange(10)
  >>> float(mean_error_distance(
  ...     preds, labels, distance=jnp.abs(digits[:, None] - digits[None, :])))
  2.6666667461395264
  """
  preds_B, labels_B = _check_preds_labels(preds, labels)
  wrong_B = preds_B != labels_B
  cost_B = jnp.asarray(distance)[labels_B, preds_B]
  return jnp.sum(jnp.where(wrong_B, cost_B, 0)) / jnp.maximum(
      jnp.sum(wrong_B), 1)


def far_share_of_errors(preds: ArrayLike, labels: ArrayLike, *,
                        min_distance: int = 3) -> jax.Array:
  """Share of the wrong predictions that are off by ``min_distance`` or more
  digits (0 if there are no wrong predictions): far_error_rate divided by
  the error rate.

  >>> preds, labels = jnp.array([3, 4, 7, 0]), jnp.array([3, 3, 3, 3])
  >>> float(far_share_of_errors(preds, labels))
  0.6666666865348816
  """
  preds_B, labels_B = _check_preds_labels(preds, labels)
  off_B = jnp.abs(preds_B - labels_B)
  return jnp.sum(off_B >= min_distance) / jnp.maximum(jnp.sum(off_B > 0), 1)


def off_by_one_accuracy(preds: ArrayLike, labels: ArrayLike) -> jax.Array:
  """Fraction of predictions within one class of the label:
  ``|pred - y| <= 1``."""
  preds_B, labels_B = _check_preds_labels(preds, labels)
  return jnp.mean(jnp.abs(preds_B - labels_B) <= 1)


def confusion_matrix(preds: ArrayLike, labels: ArrayLike, *,
                     num_classes: int) -> jax.Array:
  """Counts ``M[i, j]`` of examples with label ``i`` predicted as ``j``.

  Returns:
    An int32 matrix of shape ``[num_classes, num_classes]``.
  """
  preds_B, labels_B = _check_preds_labels(preds, labels)
  pairs_B = labels_B * num_classes + preds_B
  return jnp.bincount(pairs_B, length=num_classes * num_classes).reshape(
      num_classes, num_classes).astype(jnp.int32)


def _per_class_mean_distance(
    preds_B: jax.Array, labels_B: jax.Array,
    distance: ArrayLike) -> tuple[jax.Array, jax.Array]:
  """Mean cost per true class, and which classes occur at all."""
  distance_KxK = jnp.asarray(distance)
  num_classes = distance_KxK.shape[0]
  cost_B = distance_KxK[labels_B, preds_B]
  total_K = jnp.zeros(num_classes, cost_B.dtype).at[labels_B].add(cost_B)
  count_K = jnp.bincount(labels_B, length=num_classes)
  present_K = count_K > 0
  return total_K / jnp.maximum(count_K, 1), present_K


def macro_mean_distance(preds: ArrayLike, labels: ArrayLike, *,
                        distance: ArrayLike) -> jax.Array:
  """AMAE: the mean cost of each true class, averaged over the classes present.

  Classes absent from ``labels`` are left out of the average (they have no
  error to measure), rather than counted as 0 or NaN.
  """
  preds_B, labels_B = _check_preds_labels(preds, labels)
  per_class_K, present_K = _per_class_mean_distance(preds_B, labels_B, distance)
  return jnp.sum(jnp.where(present_K, per_class_K, 0.0)) / jnp.sum(present_K)


def max_mean_distance(preds: ArrayLike, labels: ArrayLike, *,
                      distance: ArrayLike) -> jax.Array:
  """MMAE: the largest per-class mean cost over the classes present."""
  preds_B, labels_B = _check_preds_labels(preds, labels)
  per_class_K, present_K = _per_class_mean_distance(preds_B, labels_B, distance)
  return jnp.max(jnp.where(present_K, per_class_K, -jnp.inf))


def quadratic_weighted_kappa(preds: ArrayLike, labels: ArrayLike, *,
                             num_classes: int,
                             weights: ArrayLike | None = None) -> jax.Array:
  r"""Cohen's weighted kappa, quadratic weights by default.

  .. math::
    \kappa = 1 - \frac{\sum_{ij} W_{ij} O_{ij}}{\sum_{ij} W_{ij} E_{ij}}

  with ``O`` the confusion matrix and ``E`` the outer product of its marginals
  divided by the number of examples. Undefined (NaN) when ``sum W E = 0``,
  i.e. when labels and predictions all fall in one class.

  Args:
    preds: integer predictions, shape ``[B]``.
    labels: integer labels, shape ``[B]``.
    num_classes: ``K``.
    weights: ``[K, K]`` weight matrix; default ``(i - j)^2``.

  Returns:
    A scalar in ``[-1, 1]``.
  """
  preds_B, labels_B = _check_preds_labels(preds, labels)
  if weights is None:
    k_K = jnp.arange(num_classes, dtype=jnp.float32)
    weights = (k_K[:, None] - k_K[None, :])**2
  weights_KxK = jnp.asarray(weights, jnp.float32)
  observed_KxK = confusion_matrix(preds_B, labels_B, num_classes=num_classes)
  observed_KxK = observed_KxK.astype(jnp.float32)
  expected_KxK = jnp.outer(observed_KxK.sum(1), observed_KxK.sum(0)) / jnp.sum(
      observed_KxK)
  return 1.0 - jnp.sum(weights_KxK * observed_KxK) / jnp.sum(
      weights_KxK * expected_KxK)


def ranked_probability_score(probs: ArrayLike, labels: ArrayLike) -> jax.Array:
  r"""Mean ranked probability score, normalised to ``[0, 1]``.

  .. math::
    \mathrm{RPS} = \frac{1}{K - 1} \sum_k \big(F_p(k) - F_y(k)\big)^2

  Args:
    probs: class probabilities, shape ``[B, K]``.
    labels: integer labels, shape ``[B]``.

  Returns:
    The mean over examples, a scalar.
  """
  probs_BxK, labels_B = jnp.asarray(probs), jnp.asarray(labels)
  num_classes = probs_BxK.shape[-1]
  label_cdf_BxK = (jnp.arange(num_classes)[None, :] >=
                   labels_B[:, None]).astype(probs_BxK.dtype)
  diff_BxK = jnp.cumsum(probs_BxK, axis=-1) - label_cdf_BxK
  return jnp.mean(jnp.sum(diff_BxK**2, axis=-1)) / (num_classes - 1)
