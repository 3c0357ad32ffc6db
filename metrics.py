"""Jit-able metrics for ordinal classification, and cost-aware decoding.

Predictions and labels are integer class indices of shape ``[N]``. Every metric
that depends on the set of classes takes it explicitly (``num_classes``, or the
shape of ``distance``), so a class absent from a batch never changes the answer.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def _check_preds_labels(preds, labels, fn_name):
  preds, labels = jnp.asarray(preds), jnp.asarray(labels)
  for name, value in (('preds', preds), ('labels', labels)):
    if not jnp.issubdtype(value.dtype, jnp.integer):
      raise TypeError(f'{fn_name}: {name} must be integer class indices, got '
                      f'{value.dtype}; decode probabilities first (argmax or '
                      'bayes_decision).')
  if preds.shape != labels.shape:
    raise ValueError(f'{fn_name}: preds and labels must have the same shape, '
                     f'got {preds.shape} and {labels.shape}.')
  return preds, labels


def bayes_decision(probs, *, distance) -> Array:
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
  return jnp.argmin(probs @ jnp.asarray(distance, probs.dtype), axis=-1)


def accuracy(preds, labels) -> Array:
  """Fraction of exact predictions."""
  preds, labels = _check_preds_labels(preds, labels, 'accuracy')
  return jnp.mean(preds == labels)


def mean_distance(preds, labels, *, distance) -> Array:
  """Mean ``C[label, pred]``.

  With ``linear_distance(10)`` this is the mean digit-distance error (mean
  absolute error of the digit); with ``cyclic_distance(10)`` the cyclic error.
  """
  preds, labels = _check_preds_labels(preds, labels, 'mean_distance')
  return jnp.mean(jnp.asarray(distance)[labels, preds])


def far_error_rate(preds, labels, *, min_distance: int = 3) -> Array:
  """Share of predictions off by ``min_distance`` or more digits.

  The "far-off mistakes" a distance-aware loss is meant to prevent: with the
  default, predicting 7 for a 3 counts, predicting 4 or 5 does not.

  >>> float(far_error_rate(jnp.array([3, 4, 7, 0]), jnp.array([3, 3, 3, 3])))
  0.5
  """
  preds, labels = _check_preds_labels(preds, labels, 'far_error_rate')
  return jnp.mean(jnp.abs(preds - labels) >= min_distance)


def off_by_one_accuracy(preds, labels) -> Array:
  """Fraction of predictions within one class of the label, ``|pred - y| <= 1``."""
  preds, labels = _check_preds_labels(preds, labels, 'off_by_one_accuracy')
  return jnp.mean(jnp.abs(preds - labels) <= 1)


def confusion_matrix(preds, labels, *, num_classes: int) -> Array:
  """Counts ``M[i, j]`` of examples with label ``i`` predicted as ``j``.

  Returns:
    An int32 matrix of shape ``[num_classes, num_classes]``.
  """
  preds, labels = _check_preds_labels(preds, labels, 'confusion_matrix')
  flat = labels * num_classes + preds
  return jnp.bincount(flat, length=num_classes * num_classes).reshape(
      num_classes, num_classes).astype(jnp.int32)


def _per_class_mean_distance(preds, labels, distance):
  """Mean cost per true class, and which classes occur at all."""
  distance = jnp.asarray(distance)
  num_classes = distance.shape[0]
  cost_N = distance[labels, preds]
  total_K = jnp.zeros(num_classes, cost_N.dtype).at[labels].add(cost_N)
  count_K = jnp.bincount(labels, length=num_classes)
  present_K = count_K > 0
  return total_K / jnp.maximum(count_K, 1), present_K


def macro_mean_distance(preds, labels, *, distance) -> Array:
  """AMAE: the mean cost of each true class, averaged over the classes present.

  Classes absent from ``labels`` are left out of the average (they have no
  error to measure), rather than counted as 0 or NaN.
  """
  preds, labels = _check_preds_labels(preds, labels, 'macro_mean_distance')
  per_class_K, present_K = _per_class_mean_distance(preds, labels, distance)
  return jnp.sum(jnp.where(present_K, per_class_K, 0.0)) / jnp.sum(present_K)


def max_mean_distance(preds, labels, *, distance) -> Array:
  """MMAE: the largest per-class mean cost over the classes present."""
  preds, labels = _check_preds_labels(preds, labels, 'max_mean_distance')
  per_class_K, present_K = _per_class_mean_distance(preds, labels, distance)
  return jnp.max(jnp.where(present_K, per_class_K, -jnp.inf))


def quadratic_weighted_kappa(preds, labels, *, num_classes: int,
                             weights=None) -> Array:
  r"""Cohen's weighted kappa, quadratic weights by default.

  .. math::
    \kappa = 1 - \frac{\sum_{ij} W_{ij} O_{ij}}{\sum_{ij} W_{ij} E_{ij}}

  with ``O`` the confusion matrix and ``E`` the outer product of its marginals
  divided by ``N``. Undefined (NaN) when ``sum W E = 0``, i.e. when labels and
  predictions all fall in one class.

  Args:
    preds: integer predictions, shape ``[N]``.
    labels: integer labels, shape ``[N]``.
    num_classes: ``K``.
    weights: ``[K, K]`` weight matrix; default ``(i - j)^2``.

  Returns:
    A scalar in ``[-1, 1]``.
  """
  preds, labels = _check_preds_labels(preds, labels, 'quadratic_weighted_kappa')
  if weights is None:
    k_K = jnp.arange(num_classes, dtype=jnp.float32)
    weights = (k_K[:, None] - k_K[None, :])**2
  observed_KxK = confusion_matrix(preds, labels, num_classes=num_classes)
  observed_KxK = observed_KxK.astype(jnp.float32)
  expected_KxK = jnp.outer(observed_KxK.sum(1), observed_KxK.sum(0)) / jnp.sum(
      observed_KxK)
  weights = jnp.asarray(weights, jnp.float32)
  return 1.0 - jnp.sum(weights * observed_KxK) / jnp.sum(weights * expected_KxK)


def ranked_probability_score(probs, labels) -> Array:
  r"""Mean ranked probability score, normalised to ``[0, 1]``.

  .. math::
    \mathrm{RPS} = \frac{1}{K - 1} \sum_k \big(F_p(k) - F_y(k)\big)^2

  Args:
    probs: class probabilities, shape ``[N, K]``.
    labels: integer labels, shape ``[N]``.

  Returns:
    The mean over examples, a scalar.
  """
  num_classes = probs.shape[-1]
  label_cdf_NxK = (jnp.arange(num_classes)[None, :] >= labels[:, None]).astype(
      probs.dtype)
  diff_NxK = jnp.cumsum(probs, axis=-1) - label_cdf_NxK
  return jnp.mean(jnp.sum(diff_NxK**2, axis=-1)) / (num_classes - 1)
