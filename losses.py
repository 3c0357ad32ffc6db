"""Distance-aware classification losses for JAX, in the style of optax.

Every loss takes float ``logits`` of shape ``[..., K]`` (``K - 1`` for CORAL and
CORN) and integer ``labels`` of shape ``[...]`` and returns per-example losses of
shape ``[...]``; the caller reduces. The one exception, :func:`weighted_kappa_loss`,
is a batch-level loss and returns a scalar. Hyperparameters are keyword-only.

A *distance* is a ``K x K`` matrix ``C`` where ``C[i, j]`` is the cost of
predicting class ``j`` when the truth is ``i``. :func:`linear_distance` and
:func:`cyclic_distance` build the two orders of the digits; any matrix accepted
by :func:`validate_distance` (a user's own confusability matrix, say) works too.

Bad input is caught at trace time (dtypes, ranks, shapes, hyperparameters) with a
``TypeError`` or ``ValueError`` that names the argument. Label values are checked
when the labels are concrete; under ``jax.jit`` a label outside ``[0, K)`` makes
that example's loss NaN rather than silently wrong.
"""

from __future__ import annotations

import functools
import inspect
import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

Array = jax.Array


# ----------------------------------------------------------------------------
# Distances.


def linear_distance(num_classes: int, *, power: float = 1.0) -> Array:
  r"""Linear-order distance :math:`C_{ij} = |i - j|^p`.

  Args:
    num_classes: number of classes ``K`` (at least 2).
    power: exponent ``p > 0``; 1 gives the absolute error, 2 the squared error.

  Returns:
    A float32 matrix of shape ``[K, K]``.

  >>> linear_distance(4)[0]
  Array([0., 1., 2., 3.], dtype=float32)
  """
  offsets_KxK = _class_offsets(num_classes, power)
  return offsets_KxK**power


def cyclic_distance(num_classes: int, *, power: float = 1.0) -> Array:
  r"""Distance on a circle of ``K`` classes, :math:`C_{ij} = \min(|i-j|, K-|i-j|)^p`.

  With ``K = 10`` the digit 9 sits next to 0.

  Args:
    num_classes: number of classes ``K`` (at least 2).
    power: exponent ``p > 0``.

  Returns:
    A float32 matrix of shape ``[K, K]``.

  >>> cyclic_distance(10)[0, 9]
  Array(1., dtype=float32)
  """
  offsets_KxK = _class_offsets(num_classes, power)
  return jnp.minimum(offsets_KxK, num_classes - offsets_KxK)**power


def _class_offsets(num_classes: int, power: float) -> Array:
  if not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
    raise ValueError(
        f'num_classes must be an integer >= 2, got {num_classes!r}.')
  if not power > 0:
    raise ValueError(f'power must be > 0, got {power!r}.')
  k_K = jnp.arange(num_classes, dtype=jnp.float32)
  return jnp.abs(k_K[:, None] - k_K[None, :])


def validate_distance(matrix, *, num_classes: int | None = None,
                      name: str = 'distance') -> Array:
  """Checks that ``matrix`` is a valid distance and returns it as a jax array.

  A valid distance is a square floating-point (or integer) matrix whose entries
  are finite and non-negative, with zeros on the diagonal. It need not be
  symmetric and need not satisfy the triangle inequality. The value checks run
  when ``matrix`` is concrete; a traced matrix gets the shape checks only.

  Args:
    matrix: array-like of shape ``[K, K]``.
    num_classes: if given, the ``K`` that the matrix must have.
    name: the argument name used in error messages.

  Returns:
    ``matrix`` as a floating-point jax array of shape ``[K, K]``.

  Raises:
    ValueError: naming the argument and what to fix.

  >>> validate_distance([[0, 1], [1, 0]])
  Array([[0., 1.],
         [1., 0.]], dtype=float32)
  """
  if isinstance(matrix, jax.core.Tracer):
    matrix_KxK = matrix
  else:
    matrix_KxK = np.asarray(matrix)
    if matrix_KxK.dtype == object or not (
        np.issubdtype(matrix_KxK.dtype, np.number)
        or matrix_KxK.dtype == jnp.bfloat16):
      raise ValueError(f'{name} must be a numeric matrix, got dtype '
                       f'{matrix_KxK.dtype}.')
  if matrix_KxK.ndim != 2 or matrix_KxK.shape[0] != matrix_KxK.shape[1]:
    raise ValueError(f'{name} must be a square [K, K] matrix, got shape '
                     f'{tuple(matrix_KxK.shape)}.')
  if num_classes is not None and matrix_KxK.shape[0] != num_classes:
    raise ValueError(
        f'{name} is {matrix_KxK.shape[0]}x{matrix_KxK.shape[0]} but the logits '
        f'have {num_classes} classes; build it with num_classes={num_classes}.')
  if not isinstance(matrix_KxK, jax.core.Tracer):
    values = matrix_KxK.astype(np.float64)
    if not np.all(np.isfinite(values)):
      raise ValueError(f'{name} has NaN or infinite entries; every cost must '
                       'be a finite number.')
    if np.any(values < 0):
      raise ValueError(f'{name} has negative entries; costs must be >= 0.')
    if np.any(np.diag(values) != 0):
      raise ValueError(f'{name} has a non-zero diagonal; predicting the true '
                       'class must cost 0 (set the diagonal to 0).')
  matrix_KxK = jnp.asarray(matrix_KxK)
  if not jnp.issubdtype(matrix_KxK.dtype, jnp.floating):
    matrix_KxK = matrix_KxK.astype(jnp.float32)
  return matrix_KxK


# ----------------------------------------------------------------------------
# Shared argument handling.


def _check_inputs(logits, labels, *, axis: int, where, num_outputs_offset=0,
                  num_classes=None, num_outputs=None, fn_name: str):
  """Validates dtypes, ranks and label values; moves the class axis last.

  Returns (logits_BxK, labels_B, num_classes) where B stands for any batch
  shape and K for the number of logits along ``axis``. Heads whose output
  size does not follow from ``K`` (binomial, Poisson, von Mises) pass
  ``num_classes`` and their fixed ``num_outputs`` instead of an offset.
  """
  logits = jnp.asarray(logits)
  if not jnp.issubdtype(logits.dtype, jnp.floating):
    raise TypeError(f'{fn_name}: logits must be a floating-point array, got '
                    f'{logits.dtype}; cast with logits.astype(jnp.float32).')
  if not isinstance(labels, jax.core.Tracer):
    labels = np.asarray(labels) if not isinstance(labels, jax.Array) else labels
  if not jnp.issubdtype(labels.dtype, jnp.integer):
    raise TypeError(f'{fn_name}: labels must be an integer array of class '
                    f'indices, got {labels.dtype}; cast with '
                    'labels.astype(jnp.int32).')
  if logits.ndim < 1:
    raise ValueError(f'{fn_name}: logits must have a class axis, got a scalar.')
  logits_BxK = jnp.moveaxis(logits, axis, -1)
  if logits_BxK.shape[:-1] != labels.shape:
    raise ValueError(
        f'{fn_name}: labels must have the shape of logits without the class '
        f'axis, {logits_BxK.shape[:-1]}, got {labels.shape}.')
  if num_outputs is not None and logits_BxK.shape[-1] != num_outputs:
    raise ValueError(f'{fn_name}: the outputs must have {num_outputs} '
                     f'entries on axis {axis}, got {logits_BxK.shape[-1]}.')
  if num_classes is None:
    num_classes = logits_BxK.shape[-1] - num_outputs_offset
  elif not isinstance(num_classes, (int, np.integer)):
    raise ValueError(f'{fn_name}: num_classes must be an integer >= 2, got '
                     f'{num_classes!r}.')
  if num_classes < 2:
    raise ValueError(f'{fn_name}: need at least 2 classes, got logits with '
                     f'{logits_BxK.shape[-1]} entries on the class axis.')
  if where is not None and jnp.shape(where) != labels.shape:
    raise ValueError(f'{fn_name}: where must have the shape of labels, '
                     f'{labels.shape}, got {jnp.shape(where)}.')
  if not isinstance(labels, jax.core.Tracer):
    labels_np = np.asarray(labels)
    if labels_np.size and (labels_np.min() < 0 or
                           labels_np.max() >= num_classes):
      raise ValueError(
          f'{fn_name}: labels must lie in [0, {num_classes}), got values from '
          f'{labels_np.min()} to {labels_np.max()}.')
  labels_B = jnp.asarray(labels)
  return logits_BxK, labels_B, num_classes


def _compute_dtype(dtype):
  """Low-precision logits are computed in float32 for stability."""
  return jnp.promote_types(dtype, jnp.float32)


def _finish(loss_B, labels_B, num_classes, where, dtype):
  """Masks with ``where``, turns out-of-range labels into NaN, casts back."""
  in_range_B = (labels_B >= 0) & (labels_B < num_classes)
  loss_B = jnp.where(in_range_B, loss_B, jnp.nan)
  if where is not None:
    loss_B = jnp.where(where, loss_B, 0.0)
  return loss_B.astype(dtype)


def _check_positive(value, name: str, fn_name: str):
  if not isinstance(value, jax.core.Tracer) and not value > 0:
    raise ValueError(f'{fn_name}: {name} must be > 0, got {value!r}.')


def _gather_rows(distance_KxK, labels_B):
  """Row ``C[y]`` for every label, shape [..., K]."""
  return jnp.take(distance_KxK, jnp.clip(labels_B, 0, distance_KxK.shape[0] - 1),
                  axis=0)


def _class_values(num_classes, dtype):
  return jnp.arange(num_classes, dtype=dtype)


def _index_grid(labels_B, size):
  """Class indices 0..size-1 along a new last axis, shape [1, ..., 1, size].

  Broadcasting by explicit rank keeps the losses usable under
  ``jax_numpy_rank_promotion='raise'``.
  """
  return jnp.arange(size).reshape((1,) * labels_B.ndim + (size,))


# ----------------------------------------------------------------------------
# Softmax losses.


def expected_value_mse(logits, labels, *, axis: int = -1,
                       where=None) -> Array:
  r"""Squared error of the expected class index.

  .. math::
    \ell = \tfrac12 \Big(\sum_j j\, p_j - y\Big)^2, \qquad p = \mathrm{softmax}(z)

  Treats the class index as a number: the regression view of ordinal labels.
  Its gradient vanishes whenever the mean is right, even for a bimodal ``p``
  (half on 2, half on 4 for a 3), which is why it is usually mixed with
  cross-entropy.

  Args:
    logits: unnormalized log probabilities, shape ``[..., K]``.
    labels: integer classes in ``[0, K)``, shape ``[...]``.
    axis: the class axis of ``logits``.
    where: optional boolean mask of shape ``[...]``; masked examples give 0.

  Returns:
    Per-example losses, shape ``[...]``.

  >>> float(expected_value_mse(jnp.array([0., 0., 0.]), jnp.array(0)))
  0.5

  References:
    Pan, Han, Shan & Chen, "Mean-Variance Loss for Deep Age Estimation from a
    Face", CVPR 2018 (its mean loss).
  """
  logits_BxK, labels_B, num_classes = _check_inputs(
      logits, labels, axis=axis, where=where, fn_name='expected_value_mse')
  dtype = _compute_dtype(logits_BxK.dtype)
  probs_BxK = jax.nn.softmax(logits_BxK.astype(dtype), axis=-1)
  mean_B = probs_BxK @ _class_values(num_classes, dtype)
  loss_B = 0.5 * (mean_B - labels_B.astype(dtype))**2
  return _finish(loss_B, labels_B, num_classes, where, logits_BxK.dtype)


def circular_mse(logits, labels, *, axis: int = -1, where=None) -> Array:
  r"""Squared error of the expected position on the unit circle.

  .. math::
    \ell = \tfrac12 \Big|\sum_j p_j e^{2\pi i j/K} - e^{2\pi i y/K}\Big|^2

  Class ``j`` is placed at angle ``2 pi j / K``, so class ``K - 1`` neighbours
  class 0. This is the natural circular analogue of :func:`expected_value_mse`:
  the mean of a distribution on the circle is its mean in the embedding plane
  (the first trigonometric moment, as in circular statistics), and the loss is
  the squared Euclidean error of that mean. For a one-hot ``p`` at distance
  ``d`` it equals ``1 - cos(2 pi d / K)``, which grows with the cyclic distance.

  Args:
    logits: unnormalized log probabilities, shape ``[..., K]``.
    labels: integer classes in ``[0, K)``, shape ``[...]``.
    axis: the class axis of ``logits``.
    where: optional boolean mask of shape ``[...]``; masked examples give 0.

  Returns:
    Per-example losses, shape ``[...]``.

  >>> round(float(circular_mse(jnp.array([-100., 100., -100., -100.]),
  ...                          jnp.array(0))), 4)  # 1 - cos(2 pi / 4)
  1.0

  References:
    Mardia & Jupp, "Directional Statistics", Wiley 2000, ch. 2 (circular mean).
  """
  logits_BxK, labels_B, num_classes = _check_inputs(
      logits, labels, axis=axis, where=where, fn_name='circular_mse')
  dtype = _compute_dtype(logits_BxK.dtype)
  probs_BxK = jax.nn.softmax(logits_BxK.astype(dtype), axis=-1)
  angles_K = 2 * math.pi * _class_values(num_classes, dtype) / num_classes
  label_angles_B = 2 * math.pi * labels_B.astype(dtype) / num_classes
  dx_B = probs_BxK @ jnp.cos(angles_K) - jnp.cos(label_angles_B)
  dy_B = probs_BxK @ jnp.sin(angles_K) - jnp.sin(label_angles_B)
  loss_B = 0.5 * (dx_B**2 + dy_B**2)
  return _finish(loss_B, labels_B, num_classes, where, logits_BxK.dtype)


def expected_cost(logits, labels, *, distance, axis: int = -1,
                  where=None) -> Array:
  r"""Expected misclassification cost under the predicted distribution.

  .. math::
    \ell = \sum_j p_j\, C_{y j}

  This equals the Wasserstein-1 (earth mover's) distance between ``p`` and the
  one-hot label for any cost ``C``: all mass must move to ``y``, so the only
  transport plan moves ``p_j`` from ``j`` to ``y``.

  Args:
    logits: unnormalized log probabilities, shape ``[..., K]``.
    labels: integer classes in ``[0, K)``, shape ``[...]``.
    distance: cost matrix ``C`` of shape ``[K, K]`` (see
      :func:`validate_distance`).
    axis: the class axis of ``logits``.
    where: optional boolean mask of shape ``[...]``; masked examples give 0.

  Returns:
    Per-example losses, shape ``[...]``.

  >>> float(expected_cost(jnp.array([0., 0.]), jnp.array(0),
  ...                     distance=linear_distance(2)))
  0.5

  References:
    Hou et al., "Squared Earth Mover's Distance-based Loss for Training Deep
    Neural Networks", 2016; Frogner et al., "Learning with a Wasserstein Loss",
    NeurIPS 2015.
  """
  logits_BxK, labels_B, num_classes = _check_inputs(
      logits, labels, axis=axis, where=where, fn_name='expected_cost')
  distance_KxK = validate_distance(distance, num_classes=num_classes)
  dtype = _compute_dtype(logits_BxK.dtype)
  probs_BxK = jax.nn.softmax(logits_BxK.astype(dtype), axis=-1)
  costs_BxK = _gather_rows(distance_KxK.astype(dtype), labels_B)
  loss_B = jnp.sum(probs_BxK * costs_BxK, axis=-1)
  return _finish(loss_B, labels_B, num_classes, where, logits_BxK.dtype)


def soft_label_cross_entropy(logits, labels, *, distance,
                             temperature: float = 1.0, axis: int = -1,
                             where=None) -> Array:
  r"""Cross-entropy against soft ordinal labels (SORD).

  .. math::
    q_j = \frac{e^{-C_{yj}/T}}{\sum_k e^{-C_{yk}/T}}, \qquad
    \ell = -\sum_j q_j \log p_j

  As ``T -> 0`` the target becomes one-hot and the loss becomes cross-entropy;
  a larger ``T`` spreads the target over neighbouring classes. With
  :func:`cyclic_distance` the soft labels wrap around the circle.

  Args:
    logits: unnormalized log probabilities, shape ``[..., K]``.
    labels: integer classes in ``[0, K)``, shape ``[...]``.
    distance: cost matrix ``C`` of shape ``[K, K]``.
    temperature: ``T > 0``.
    axis: the class axis of ``logits``.
    where: optional boolean mask of shape ``[...]``; masked examples give 0.

  Returns:
    Per-example losses, shape ``[...]``.

  >>> float(soft_label_cross_entropy(jnp.array([0., 0.]), jnp.array(0),
  ...       distance=linear_distance(2)))  # log 2
  0.6931471824645996

  References:
    Diaz & Marathe, "Soft Labels for Ordinal Regression", CVPR 2019.
  """
  logits_BxK, labels_B, num_classes = _check_inputs(
      logits, labels, axis=axis, where=where,
      fn_name='soft_label_cross_entropy')
  distance_KxK = validate_distance(distance, num_classes=num_classes)
  _check_positive(temperature, 'temperature', 'soft_label_cross_entropy')
  dtype = _compute_dtype(logits_BxK.dtype)
  costs_BxK = _gather_rows(distance_KxK.astype(dtype), labels_B)
  targets_BxK = jax.nn.softmax(-costs_BxK / temperature, axis=-1)
  log_probs_BxK = jax.nn.log_softmax(logits_BxK.astype(dtype), axis=-1)
  loss_B = -jnp.sum(targets_BxK * log_probs_BxK, axis=-1)
  return _finish(loss_B, labels_B, num_classes, where, logits_BxK.dtype)


def _cdf_difference(logits_BxK, labels_B, num_classes, dtype):
  """F_p(k) - F_y(k) for k in [0, K), shape [..., K]."""
  probs_BxK = jax.nn.softmax(logits_BxK.astype(dtype), axis=-1)
  label_cdf_BxK = (_index_grid(labels_B, num_classes) >=
                   labels_B[..., None]).astype(dtype)
  return jnp.cumsum(probs_BxK, axis=-1) - label_cdf_BxK


def squared_emd(logits, labels, *, axis: int = -1, where=None) -> Array:
  r"""Squared earth mover's distance on the linear order.

  .. math::
    \ell = \sum_{k} \big(F_p(k) - F_y(k)\big)^2, \qquad
    F_p(k) = \sum_{j \le k} p_j

  Args:
    logits: unnormalized log probabilities, shape ``[..., K]``.
    labels: integer classes in ``[0, K)``, shape ``[...]``.
    axis: the class axis of ``logits``.
    where: optional boolean mask of shape ``[...]``; masked examples give 0.

  Returns:
    Per-example losses, shape ``[...]``.

  >>> float(squared_emd(jnp.array([0., 0.]), jnp.array(1)))
  0.25

  References:
    Hou et al., "Squared Earth Mover's Distance-based Loss for Training Deep
    Neural Networks", 2016.
  """
  logits_BxK, labels_B, num_classes = _check_inputs(
      logits, labels, axis=axis, where=where, fn_name='squared_emd')
  dtype = _compute_dtype(logits_BxK.dtype)
  diff_BxK = _cdf_difference(logits_BxK, labels_B, num_classes, dtype)
  loss_B = jnp.sum(diff_BxK**2, axis=-1)
  return _finish(loss_B, labels_B, num_classes, where, logits_BxK.dtype)


def circular_emd(logits, labels, *, axis: int = -1, where=None) -> Array:
  r"""Earth mover's (Wasserstein-1) distance on a circle of ``K`` classes.

  .. math::
    D_k = F_p(k) - F_y(k), \qquad \ell = \sum_k \big|D_k - \mathrm{median}(D)\big|

  With unit spacing between neighbouring classes and class ``K - 1`` next to
  class 0, this is the exact W1 distance on the circle (Werman et al. 1985;
  Rabin et al. 2011), i.e. :func:`expected_cost` with :func:`cyclic_distance`
  for a one-hot target, computed without the matrix.

  Args:
    logits: unnormalized log probabilities, shape ``[..., K]``.
    labels: integer classes in ``[0, K)``, shape ``[...]``.
    axis: the class axis of ``logits``.
    where: optional boolean mask of shape ``[...]``; masked examples give 0.

  Returns:
    Per-example losses, shape ``[...]``.

  >>> round(float(circular_emd(jnp.array([100., -100., -100., -100.]),
  ...                          jnp.array(3))), 4)
  1.0

  References:
    Rabin, Delon & Gousseau, "Transportation Distances on the Circle", J. Math.
    Imaging Vis. 2011.
  """
  logits_BxK, labels_B, num_classes = _check_inputs(
      logits, labels, axis=axis, where=where, fn_name='circular_emd')
  dtype = _compute_dtype(logits_BxK.dtype)
  diff_BxK = _cdf_difference(logits_BxK, labels_B, num_classes, dtype)
  median_B = jnp.median(diff_BxK, axis=-1, keepdims=True)
  loss_B = jnp.sum(jnp.abs(diff_BxK - median_B), axis=-1)
  return _finish(loss_B, labels_B, num_classes, where, logits_BxK.dtype)


def class_distance_weighted_ce(logits, labels, *, distance, alpha: float = 1.0,
                               axis: int = -1, where=None) -> Array:
  r"""Class distance weighted cross-entropy (CDW-CE).

  .. math::
    \ell = -\sum_j C_{yj}^{\alpha} \log(1 - p_j)

  Pushes probability away from each wrong class in proportion to its distance.
  ``log(1 - p_j)`` is computed as ``logsumexp_{k != j} z_k - logsumexp_k z_k``,
  so value and gradient stay finite for logits of magnitude 1e4 even in
  bfloat16, where ``1 - p_j`` itself rounds to 0.

  Args:
    logits: unnormalized log probabilities, shape ``[..., K]``.
    labels: integer classes in ``[0, K)``, shape ``[...]``.
    distance: cost matrix ``C`` of shape ``[K, K]``.
    alpha: exponent ``alpha > 0`` on the costs.
    axis: the class axis of ``logits``.
    where: optional boolean mask of shape ``[...]``; masked examples give 0.

  Returns:
    Per-example losses, shape ``[...]``.

  >>> float(class_distance_weighted_ce(jnp.array([0., 0.]), jnp.array(0),
  ...       distance=linear_distance(2)))  # log 2
  0.6931471824645996

  References:
    Polat et al., "Class Distance Weighted Cross-Entropy Loss for Ulcerative
    Colitis Severity Estimation", MIUA 2022.
  """
  logits_BxK, labels_B, num_classes = _check_inputs(
      logits, labels, axis=axis, where=where,
      fn_name='class_distance_weighted_ce')
  distance_KxK = validate_distance(distance, num_classes=num_classes)
  _check_positive(alpha, 'alpha', 'class_distance_weighted_ce')
  return _distance_weighted_log_one_minus_p(logits_BxK, labels_B, distance_KxK,
                                            alpha, where)


def _distance_weighted_log_one_minus_p(logits_BxK, labels_B, distance_KxK,
                                       alpha, where):
  """-sum_j C[y, j]^alpha log(1 - p_j), stable at saturated logits."""
  num_classes = logits_BxK.shape[-1]
  dtype = _compute_dtype(logits_BxK.dtype)
  others_BxKxK = ~jnp.eye(num_classes, dtype=bool).reshape(
      (1,) * labels_B.ndim + (num_classes, num_classes))
  log_rest_BxK = _masked_log_mass(logits_BxK.astype(dtype), others_BxKxK)
  weights_BxK = _gather_rows(distance_KxK.astype(dtype), labels_B)**alpha
  loss_B = -jnp.sum(weights_BxK * log_rest_BxK, axis=-1)
  return _finish(loss_B, labels_B, num_classes, where, logits_BxK.dtype)


def _masked_log_mass(logits_BxK, mask_BxKxK):
  """log of the softmax mass on the classes ``mask[..., i, :]`` selects.

  Row ``i`` is ``logsumexp_{j in mask_i} z_j - logsumexp_j z_j``: finite (and
  with a finite gradient) for logits of magnitude 1e4, where the mass itself
  rounds to 0 or 1.
  """
  masked_BxKxK = jnp.where(mask_BxKxK, logits_BxK[..., None, :], -jnp.inf)
  return jax.nn.logsumexp(masked_BxKxK, axis=-1) - jax.nn.logsumexp(
      logits_BxK, axis=-1, keepdims=True)


def ordinal_log_loss(logits, labels, *, distance, alpha: float = 1.0,
                     axis: int = -1, where=None) -> Array:
  r"""Ordinal log loss (OLL).

  .. math::
    \ell = -\sum_i \log(1 - p_i)\, C_{y i}^{\alpha}

  Published independently of :func:`class_distance_weighted_ce` (same year)
  with the same formula; both names are kept so that either paper's readers
  find it. Computed the same stable way.

  Args:
    logits: unnormalized log probabilities, shape ``[..., K]``.
    labels: integer classes in ``[0, K)``, shape ``[...]``.
    distance: cost matrix ``C`` of shape ``[K, K]``.
    alpha: exponent ``alpha > 0`` on the costs.
    axis: the class axis of ``logits``.
    where: optional boolean mask of shape ``[...]``; masked examples give 0.

  Returns:
    Per-example losses, shape ``[...]``.

  >>> round(float(ordinal_log_loss(jnp.array([0., 0., 0.]), jnp.array(0),
  ...       distance=linear_distance(3))), 4)  # -(1 + 2) log(2/3)
  1.2164

  References:
    Castagnos, Mihelich & Dognin, "A Simple Log-based Loss Function for
    Ordinal Text Classification", COLING 2022.
  """
  logits_BxK, labels_B, num_classes = _check_inputs(
      logits, labels, axis=axis, where=where, fn_name='ordinal_log_loss')
  distance_KxK = validate_distance(distance, num_classes=num_classes)
  _check_positive(alpha, 'alpha', 'ordinal_log_loss')
  return _distance_weighted_log_one_minus_p(logits_BxK, labels_B, distance_KxK,
                                            alpha, where)


def slace_loss(logits, labels, *, distance, alpha: float = 1.0,
               axis: int = -1, where=None) -> Array:
  r"""SLACE: soft labels accumulating cross-entropy.

  .. math::
    w = \mathrm{softmax}(-\alpha\, C_{y,:}), \qquad
    A_j = \sum_{i:\, C_{y i} \le C_{y j}} p_i, \qquad
    \ell = -\sum_j w_j \log A_j

  ``A_j`` is the probability of landing no farther from the truth than class
  ``j``: a prediction is rewarded for every class it beats in distance, so
  the loss is monotone in the distance (the paper's "proximity dominance").
  With :func:`linear_distance` it equals dlordinal's ``SLACELoss`` (which
  adds 1e-9 inside the log); any distance works, :func:`cyclic_distance`
  included. ``log A_j`` is computed from logsumexps, finite at logits of
  1e4.

  Args:
    logits: unnormalized log probabilities, shape ``[..., K]``.
    labels: integer classes in ``[0, K)``, shape ``[...]``.
    distance: cost matrix ``C`` of shape ``[K, K]``.
    alpha: ``alpha > 0``, the sharpness of the weights.
    axis: the class axis of ``logits``.
    where: optional boolean mask of shape ``[...]``; masked examples give 0.

  Returns:
    Per-example losses, shape ``[...]``.

  >>> round(float(slace_loss(jnp.array([0., 0.]), jnp.array(0),
  ...       distance=linear_distance(2))), 4)  # -sigmoid(1) log(1/2)
  0.5067

  References:
    Nachmani, Genossar, Scheuer, Dar & Calderon, "SLACE: A Monotone and
    Balance-Sensitive Loss Function for Ordinal Regression", AAAI 2025.
  """
  logits_BxK, labels_B, num_classes = _check_inputs(
      logits, labels, axis=axis, where=where, fn_name='slace_loss')
  distance_KxK = validate_distance(distance, num_classes=num_classes)
  _check_positive(alpha, 'alpha', 'slace_loss')
  dtype = _compute_dtype(logits_BxK.dtype)
  costs_BxK = _gather_rows(distance_KxK.astype(dtype), labels_B)
  weights_BxK = jax.nn.softmax(-alpha * costs_BxK, axis=-1)
  # Row j selects the classes i with C[y, i] <= C[y, j].
  no_farther_BxKxK = costs_BxK[..., None, :] <= costs_BxK[..., :, None]
  log_accumulated_BxK = _masked_log_mass(logits_BxK.astype(dtype),
                                         no_farther_BxKxK)
  loss_B = -jnp.sum(weights_BxK * log_accumulated_BxK, axis=-1)
  return _finish(loss_B, labels_B, num_classes, where, logits_BxK.dtype)


# ----------------------------------------------------------------------------
# Soft-label targets: one matrix of target distributions, one loss.


def soft_target_cross_entropy(logits, labels, *, targets, axis: int = -1,
                              where=None) -> Array:
  r"""Cross-entropy against row ``y`` of a matrix of target distributions.

  .. math::
    \ell = -\sum_j Q_{y j} \log p_j

  ``Q`` is any ``[K, K]`` matrix whose rows are distributions, usually one
  from :func:`soft_label_matrix`. The identity matrix gives cross-entropy.

  Args:
    logits: unnormalized log probabilities, shape ``[..., K]``.
    labels: integer classes in ``[0, K)``, shape ``[...]``.
    targets: ``Q``, shape ``[K, K]``, non-negative rows that sum to 1 (checked
      when concrete).
    axis: the class axis of ``logits``.
    where: optional boolean mask of shape ``[...]``; masked examples give 0.

  Returns:
    Per-example losses, shape ``[...]``.

  >>> q = soft_label_matrix('binomial', 3)
  >>> round(float(soft_target_cross_entropy(jnp.zeros(3), jnp.array(1),
  ...                                       targets=q)), 4)  # log 3
  1.0986

  References:
    Liu et al., "Unimodal regularized neuron stick-breaking for ordinal
    classification", Neurocomputing 2020 (soft labels as targets).
  """
  logits_BxK, labels_B, num_classes = _check_inputs(
      logits, labels, axis=axis, where=where,
      fn_name='soft_target_cross_entropy')
  targets_KxK = _validate_targets(targets, num_classes)
  dtype = _compute_dtype(logits_BxK.dtype)
  log_probs_BxK = jax.nn.log_softmax(logits_BxK.astype(dtype), axis=-1)
  targets_BxK = _gather_rows(targets_KxK.astype(dtype), labels_B)
  loss_B = -jnp.sum(targets_BxK * log_probs_BxK, axis=-1)
  return _finish(loss_B, labels_B, num_classes, where, logits_BxK.dtype)


def _validate_targets(targets, num_classes):
  if isinstance(targets, jax.core.Tracer):
    targets_KxK = targets
  else:
    targets_KxK = np.asarray(targets, np.float64)
  if targets_KxK.shape != (num_classes, num_classes):
    raise ValueError(f'soft_target_cross_entropy: targets must have shape '
                     f'({num_classes}, {num_classes}) to match the logits, got '
                     f'{tuple(targets_KxK.shape)}.')
  if not isinstance(targets_KxK, jax.core.Tracer):
    if not np.all(np.isfinite(targets_KxK)) or np.any(targets_KxK < 0):
      raise ValueError('soft_target_cross_entropy: targets must be finite '
                       'and non-negative.')
    if not np.allclose(targets_KxK.sum(axis=1), 1.0, atol=1e-4):
      raise ValueError('soft_target_cross_entropy: every row of targets must '
                       'sum to 1 (a distribution over the classes).')
  return jnp.asarray(targets_KxK, jnp.float32)


SOFT_LABEL_FAMILIES = ('exponential', 'binomial', 'poisson', 'beta',
                       'triangular', 'geometric', 'von_mises')


def soft_label_matrix(family: str, num_classes: int, **params) -> Array:
  r"""Unimodal target distributions for every label, as a ``[K, K]`` matrix.

  Row ``y`` is the target distribution for label ``y``; every row sums to 1.
  The first six families equal dlordinal 2.7's ``get_<family>_soft_labels``
  with the same parameters and defaults:

  - ``'exponential'`` (``p=1``, ``tau=1``): ``softmax_j(-|j - y|^p / tau)``.
  - ``'binomial'``: ``Binomial(K - 1, q_y)`` with ``q_y`` evenly spaced from
    0.1 to 0.9.
  - ``'poisson'``: ``softmax_j(Poisson(j; y + 1))`` (softmax of the pmf, as
    dlordinal does).
  - ``'beta'``: ``[0, 1]`` cut into ``K`` intervals, each row the mass of a
    beta distribution ``B(a_y, b_y)`` on them, with Vargas et al.'s parameter
    table (``K`` from 3 to 14).
  - ``'triangular'`` (``alpha2=0.01``): the mass of a triangular
    distribution per interval, ``alpha2`` on each neighbour.
  - ``'geometric'`` (``alpha=0.1``): ``1 - alpha`` on ``y``, ``alpha`` spread
    over the others in proportion to ``alpha^{|j - y|}``.

  and one for the cyclic case, which none of them has:

  - ``'von_mises'`` (``kappa=5``):
    :math:`Q_{yj} \propto \exp(\kappa \cos(2\pi (j - y) / K))`, unimodal on
    the circle, so the targets of 9 spill onto 0 and those of 0 onto 9. The
    default puts ``e`` times more mass on the label than on each neighbour at
    ``K = 10``, like ``'exponential'``'s default.

  Args:
    family: one of :data:`SOFT_LABEL_FAMILIES`.
    num_classes: ``K >= 2``.
    **params: the family's parameters (above); others raise ``ValueError``.

  Returns:
    A float32 matrix of shape ``[K, K]``.

  >>> soft_label_matrix('binomial', 3)
  Array([[0.81, 0.18, 0.01],
         [0.25, 0.5 , 0.25],
         [0.01, 0.18, 0.81]], dtype=float32)

  References:
    Liu et al., Neurocomputing 2020 (binomial, Poisson, exponential);
    Vargas et al., "Unimodal regularisation based on beta distribution for
    deep ordinal regression", Pattern Recognit. 2022; Vargas et al., "Soft
    labelling based on triangular distributions for ordinal classification",
    Inf. Fusion 2023; Haas & Hüllermeier, "A geometric framework for
    ordinal regression", 2023 (geometric).
  """
  builders = {'exponential': _exponential_soft_labels,
              'binomial': _binomial_soft_labels,
              'poisson': _poisson_soft_labels, 'beta': _beta_soft_labels,
              'triangular': _triangular_soft_labels,
              'geometric': _geometric_soft_labels,
              'von_mises': _von_mises_soft_labels}
  if family not in builders:
    raise ValueError(f'soft_label_matrix: unknown family {family!r}; choose '
                     f'one of {", ".join(SOFT_LABEL_FAMILIES)}.')
  if not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
    raise ValueError('soft_label_matrix: num_classes must be an integer >= 2, '
                     f'got {num_classes!r}.')
  builder = builders[family]
  allowed = builder.__kwdefaults__ or {}
  unknown = sorted(set(params) - set(allowed))
  if unknown:
    raise ValueError(
        f'soft_label_matrix: family {family!r} takes '
        f'{", ".join(allowed) or "no parameters"}, got {", ".join(unknown)}.')
  matrix_KxK = builder(int(num_classes), **params)
  return jnp.asarray(matrix_KxK / matrix_KxK.sum(axis=1, keepdims=True),
                     jnp.float32)


def _row_softmax(x_KxK):
  e_KxK = np.exp(x_KxK - x_KxK.max(axis=1, keepdims=True))
  return e_KxK / e_KxK.sum(axis=1, keepdims=True)


def _positive_param(value, name):
  if not (isinstance(value, (int, float, np.number)) and 0 < value < math.inf):
    raise ValueError(f'soft_label_matrix: {name} must be a finite number > 0, '
                     f'got {value!r}.')


def _exponential_soft_labels(k, *, p=1.0, tau=1.0):
  _positive_param(p, 'p')
  _positive_param(tau, 'tau')
  offsets_KxK = np.abs(np.arange(k)[None, :] - np.arange(k)[:, None])
  return _row_softmax(-offsets_KxK.astype(np.float64)**p / tau)


def _log_binomial_pmf(n, j_K, log_q, log_1mq):
  log_choose_K = np.array([math.lgamma(n + 1) - math.lgamma(j + 1) -
                           math.lgamma(n - j + 1) for j in j_K])
  return log_choose_K + j_K * log_q + (n - j_K) * log_1mq


def _binomial_soft_labels(k):
  j_K = np.arange(k)
  rows = [np.exp(_log_binomial_pmf(k - 1, j_K, math.log(q), math.log1p(-q)))
          for q in np.linspace(0.1, 0.9, k)]
  return np.array(rows)


def _poisson_soft_labels(k):
  j_K = np.arange(k)
  log_factorial_K = np.array([math.lgamma(j + 1) for j in j_K])
  pmf_KxK = np.exp(j_K[None, :] * np.log(j_K[:, None] + 1.0) -
                   (j_K[:, None] + 1.0) - log_factorial_K[None, :])
  return _row_softmax(pmf_KxK)


def _interval_edges(k):
  return np.linspace(1e-9, 1 - 1e-9, k + 1)  # dlordinal's get_intervals


# Vargas et al. 2022, Table 1: (a, b) of the beta distribution of each class,
# for K = 3..14 (dlordinal's "standard" set; its third parameter is always 1).
_BETA_PARAMS = {
    3: [(1, 4), (4, 4), (4, 1)],
    4: [(1, 6), (6, 10), (10, 6), (6, 1)],
    5: [(1, 8), (6, 14), (12, 12), (14, 6), (8, 1)],
    6: [(1, 10), (7, 20), (15, 20), (20, 15), (20, 7), (10, 1)],
    7: [(1, 12), (7, 26), (16, 28), (24, 24), (28, 16), (26, 7), (12, 1)],
    8: [(1, 14), (7, 31), (17, 37), (27, 35), (35, 27), (37, 17), (31, 7),
        (14, 1)],
    9: [(1, 16), (8, 40), (18, 47), (30, 47), (40, 40), (47, 30), (47, 18),
        (40, 8), (16, 1)],
    10: [(1, 18), (8, 45), (19, 57), (32, 59), (45, 55), (55, 45), (59, 32),
         (57, 19), (45, 8), (18, 1)],
    11: [(1, 21), (8, 51), (20, 68), (34, 73), (48, 69), (60, 60), (69, 48),
         (73, 34), (68, 20), (51, 8), (21, 1)],
    12: [(1, 23), (8, 56), (20, 76), (35, 85), (51, 85), (65, 77), (77, 65),
         (85, 51), (85, 35), (76, 20), (56, 8), (23, 1)],
    13: [(1, 25), (8, 61), (20, 84), (36, 98), (53, 100), (70, 95), (84, 84),
         (95, 70), (100, 53), (98, 36), (84, 20), (61, 8), (25, 1)],
    14: [(1, 27), (2, 17), (5, 23), (9, 27), (13, 28), (18, 28), (23, 27),
         (27, 23), (28, 18), (28, 13), (27, 9), (23, 5), (17, 2), (27, 1)],
}


def _beta_soft_labels(k):
  import scipy.special  # pylint: disable=g-import-not-at-top
  if k not in _BETA_PARAMS:
    raise ValueError("soft_label_matrix: family 'beta' has published "
                     f'parameters for 3 to 14 classes, not {k}.')
  edges = _interval_edges(k)
  return np.array([np.diff(scipy.special.betainc(a, b, edges))
                   for a, b in _BETA_PARAMS[k]])


def _triangular_cdf(x, a, b, c):
  if x <= a:
    return 0.0
  if a < x < c:
    return (x - a)**2 / ((b - a) * (c - a))
  if c < x < b:
    return 1 - (b - x)**2 / ((b - a) * (b - c))
  return 1.0


def _triangular_soft_labels(k, *, alpha2=0.01):
  """Vargas et al. 2023: triangles placed so each neighbour gets ``alpha2``."""
  if not 0 < alpha2 < 0.5:
    raise ValueError('soft_label_matrix: alpha2 must lie in (0, 0.5), got '
                     f'{alpha2!r}.')
  root = math.sqrt(2 * alpha2)
  c_minus = (1 - 2 * alpha2) * (2 * alpha2 - root)
  alpha1 = ((1 - math.sqrt(1 - 4 * c_minus)) / 2)**2
  c1 = ((k - 1) / k)**2 * (1 - 2 * alpha2) * (root * (-1 + root))
  alpha3 = ((1 - math.sqrt(1 - 4 * c1)) / 2)**2
  den = 2.0 * k * (1 - 2 * alpha2)

  def lower(j):  # a_j: the root that lies below (j - 1) / K
    base = 2.0 * j - 2 - 4 * j * alpha2 + 2 * alpha2
    return (base + root) / den if (base + root) / den < (j - 1.0) / k else (
        base - root) / den

  def upper(j):  # b_j: the root that lies above j / K
    base = 2.0 * j - 4 * j * alpha2 + 2 * alpha2
    return (base + root) / den if (base + root) / den > j / k else (
        base - root) / den

  last_a = 1.0 + 1.0 / (k * (math.sqrt(alpha3) - 1.0))
  if last_a <= 0:
    last_a = 1.0 + 1.0 / (-k * (math.sqrt(alpha3) - 1.0))
  edges = _interval_edges(k)
  rows = []
  for j in range(1, k + 1):
    if j == 1:
      a, b, c = 0.0, 1.0 / ((1.0 - math.sqrt(alpha1)) * k), 0.0
    elif j == k:
      a, b, c = last_a, 1.0, 1.0
    else:
      a, b = lower(j), upper(j)
      c = (a + b) / 2.0
    cdf = [_triangular_cdf(x, a, b, c) for x in edges]
    rows.append(np.diff(cdf))
  return np.array(rows)


def _geometric_soft_labels(k, *, alpha=0.1):
  if not 0 <= alpha < 1:
    raise ValueError(f'soft_label_matrix: alpha must lie in [0, 1), got '
                     f'{alpha!r}.')
  offsets_KxK = np.abs(np.arange(k)[None, :] - np.arange(k)[:, None])
  if alpha == 0:
    return np.eye(k)
  decay_KxK = np.where(offsets_KxK > 0, float(alpha)**offsets_KxK, 0.0)
  return np.where(offsets_KxK == 0, 1 - alpha,
                  alpha * decay_KxK / decay_KxK.sum(axis=1, keepdims=True))


def _von_mises_soft_labels(k, *, kappa=5.0):
  _positive_param(kappa, 'kappa')
  angles_KxK = 2 * math.pi * (np.arange(k)[None, :] - np.arange(k)[:, None]) / k
  return _row_softmax(kappa * np.cos(angles_KxK))


# ----------------------------------------------------------------------------
# Rank-consistent binary decompositions (K - 1 outputs).


def _binary_cross_entropy(logits, targets):
  """-[t log sigmoid(z) + (1 - t) log sigmoid(-z)], elementwise and stable."""
  return targets * jax.nn.softplus(-logits) + (1 - targets) * jax.nn.softplus(
      logits)


def coral_loss(logits, labels, *, axis: int = -1, where=None) -> Array:
  r"""CORAL: K - 1 binary tasks "is the label greater than k?".

  .. math::
    \ell = -\sum_{k=0}^{K-2} \big[ t_k \log \sigma(z_k)
      + (1 - t_k) \log(1 - \sigma(z_k)) \big], \qquad t_k = [y > k]

  Rank consistency (``sigma(z_k)`` decreasing in ``k``) comes from the model's
  last layer sharing one weight vector across the ``K - 1`` outputs, each with
  its own bias; see ``model.py``.

  Args:
    logits: the ``K - 1`` task logits, shape ``[..., K - 1]``.
    labels: integer classes in ``[0, K)``, shape ``[...]``.
    axis: the task axis of ``logits``.
    where: optional boolean mask of shape ``[...]``; masked examples give 0.

  Returns:
    Per-example losses, shape ``[...]``.

  >>> round(float(coral_loss(jnp.array([0., 0.]), jnp.array(1))), 4)  # 2 log 2
  1.3863

  References:
    Cao, Mirjalili & Raschka, "Rank consistent ordinal regression for neural
    networks with application to age estimation", Pattern Recognit. Lett. 2020.
  """
  logits_BxT, labels_B, num_classes = _check_inputs(
      logits, labels, axis=axis, where=where, num_outputs_offset=-1,
      fn_name='coral_loss')
  dtype = _compute_dtype(logits_BxT.dtype)
  targets_BxT = (labels_B[..., None] >
                 _index_grid(labels_B, num_classes - 1)).astype(dtype)
  loss_B = jnp.sum(
      _binary_cross_entropy(logits_BxT.astype(dtype), targets_BxT), axis=-1)
  return _finish(loss_B, labels_B, num_classes, where, logits_BxT.dtype)


def corn_loss(logits, labels, *, axis: int = -1, where=None) -> Array:
  r"""CORN: conditional binary tasks "is y > k, given y > k - 1?".

  .. math::
    \ell = \sum_{k=0}^{\min(y, K-2)} \mathrm{BCE}\big(z_k, [y > k]\big)

  Task ``k`` is trained only on examples whose label is at least ``k``, so the
  product of the conditional probabilities is rank consistent for any model.
  The original normalises by the total number of (example, task) pairs in the
  batch; this per-example form sums over the tasks an example takes part in,
  which differs from it by a batch-level constant factor.

  Args:
    logits: the ``K - 1`` task logits, shape ``[..., K - 1]``.
    labels: integer classes in ``[0, K)``, shape ``[...]``.
    axis: the task axis of ``logits``.
    where: optional boolean mask of shape ``[...]``; masked examples give 0.

  Returns:
    Per-example losses, shape ``[...]``.

  >>> round(float(corn_loss(jnp.array([0., 0.]), jnp.array(0))), 4)  # log 2
  0.6931

  References:
    Shi, Cao & Raschka, "Deep Neural Networks for Rank-Consistent Ordinal
    Regression Based On Conditional Probabilities", Pattern Anal. Appl. 2023
    (arXiv 2111.08851, 2021).
  """
  logits_BxT, labels_B, num_classes = _check_inputs(
      logits, labels, axis=axis, where=where, num_outputs_offset=-1,
      fn_name='corn_loss')
  dtype = _compute_dtype(logits_BxT.dtype)
  tasks_BxT = _index_grid(labels_B, num_classes - 1)
  targets_BxT = (labels_B[..., None] > tasks_BxT).astype(dtype)
  active_BxT = labels_B[..., None] >= tasks_BxT
  bce_BxT = _binary_cross_entropy(logits_BxT.astype(dtype), targets_BxT)
  loss_B = jnp.sum(jnp.where(active_BxT, bce_BxT, 0.0), axis=-1)
  return _finish(loss_B, labels_B, num_classes, where, logits_BxT.dtype)


def _probs_from_exceedance(exceed_BxT):
  """P(y > k) for k < K - 1 -> class probabilities, shape [..., K]."""
  ones_Bx1 = jnp.ones_like(exceed_BxT[..., :1])
  zeros_Bx1 = jnp.zeros_like(exceed_BxT[..., :1])
  at_least_BxK1 = jnp.concatenate([ones_Bx1, exceed_BxT, zeros_Bx1], axis=-1)
  return at_least_BxK1[..., :-1] - at_least_BxK1[..., 1:]


def coral_probs(logits, *, axis: int = -1) -> Array:
  r"""Class probabilities from CORAL's ``K - 1`` task logits.

  ``p_k = P(y > k - 1) - P(y > k)`` with ``P(y > k) = sigma(z_k)``. If the
  outputs are not rank consistent (a model without CORAL's shared-weight head),
  negative differences are clipped to 0 and the result renormalised.

  Args:
    logits: shape ``[..., K - 1]``.
    axis: the task axis.

  Returns:
    Probabilities of shape ``[..., K]`` (class axis last).

  >>> coral_probs(jnp.array([0., 0.]))
  Array([0.5, 0. , 0.5], dtype=float32)
  """
  logits_BxT = jnp.moveaxis(jnp.asarray(logits), axis, -1)
  probs_BxK = jnp.maximum(
      _probs_from_exceedance(jax.nn.sigmoid(logits_BxT)), 0.0)
  return probs_BxK / jnp.sum(probs_BxK, axis=-1, keepdims=True)


def corn_probs(logits, *, axis: int = -1) -> Array:
  r"""Class probabilities from CORN's ``K - 1`` conditional task logits.

  ``P(y > k) = prod_{i <= k} sigma(z_i)``, and ``p_k = P(y > k-1) - P(y > k)``.

  Args:
    logits: shape ``[..., K - 1]``.
    axis: the task axis.

  Returns:
    Probabilities of shape ``[..., K]`` (class axis last).

  >>> corn_probs(jnp.array([0., 0.]))
  Array([0.5 , 0.25, 0.25], dtype=float32)
  """
  logits_BxT = jnp.moveaxis(jnp.asarray(logits), axis, -1)
  exceed_BxT = jnp.exp(jnp.cumsum(jax.nn.log_sigmoid(logits_BxT), axis=-1))
  return _probs_from_exceedance(exceed_BxT)


# ----------------------------------------------------------------------------
# Ordinal output heads: raw outputs -> class probabilities, and their NLL.

_TINY = 1e-12  # smallest gap kept between two cumulative probabilities


def _log1mexp(x):
  """``log(1 - exp(-x))`` for ``x > 0``, accurate at both ends (Maechler 2012).

  ``x`` is floored at a tiny positive value, so that a zero or negative gap
  (thresholds out of order) gives a large finite value rather than NaN.
  """
  x = jnp.maximum(x, _TINY)
  # Each branch sees only the inputs it is accurate for, so that the branch
  # not taken cannot put a NaN into the gradient.
  small = jnp.minimum(x, math.log(2))
  large = jnp.maximum(x, math.log(2))
  return jnp.where(x < math.log(2), jnp.log(-jnp.expm1(-small)),
                   jnp.log1p(-jnp.exp(-large)))


def _logit_link(z):
  return jax.nn.log_sigmoid(z), jax.nn.log_sigmoid(-z)


def _probit_link(z):
  return (jax.scipy.stats.norm.logcdf(z), jax.scipy.stats.norm.logcdf(-z))


def _cloglog_link(z):
  # F(z) = 1 - exp(-e^z): log(1 - F) = -e^z (capped so that it stays finite),
  # log F = log(1 - exp(-e^z)), which is z itself to float precision far left.
  log_sf = -jnp.exp(jnp.minimum(z, 50.0))
  log_cdf = jnp.where(z < -20.0, z, _log1mexp(jnp.exp(jnp.clip(z, -20.0, 50.0))))
  return log_cdf, log_sf


CLM_LINKS = {'logit': _logit_link, 'probit': _probit_link,
             'cloglog': _cloglog_link}


def _clm_log_probs(z_BxT, link):
  """log P(y = k) from z_k = theta_k - f; differences taken in log space."""
  log_cdf_BxT, log_sf_BxT = CLM_LINKS[link](z_BxT)
  # Middle classes: F(z_k) - F(z_{k-1}), written with F in the lower half and
  # with the survival function 1 - F in the upper half, where F rounds to 1.
  via_cdf_BxM = log_cdf_BxT[..., 1:] + _log1mexp(
      log_cdf_BxT[..., 1:] - log_cdf_BxT[..., :-1])
  via_sf_BxM = log_sf_BxT[..., :-1] + _log1mexp(
      log_sf_BxT[..., :-1] - log_sf_BxT[..., 1:])
  middle_BxM = jnp.where(z_BxT[..., :-1] > 0, via_sf_BxM, via_cdf_BxM)
  return jnp.concatenate(
      [log_cdf_BxT[..., :1], middle_BxM, log_sf_BxT[..., -1:]], axis=-1)


def _check_link(link, fn_name):
  if link not in CLM_LINKS:
    raise ValueError(f'{fn_name}: link must be one of '
                     f'{", ".join(CLM_LINKS)}, got {link!r}.')


def clm_probs(z, *, link: str, axis: int = -1) -> Array:
  r"""Class probabilities of a cumulative link model (CLM).

  .. math::
    P(y \le k) = F(z_k), \quad z_k = \theta_k - f, \qquad
    p_k = F(z_k) - F(z_{k-1})

  for ``K - 1`` non-decreasing thresholds ``theta`` and a one-dimensional
  projection ``f`` of the input, with ``F`` the logistic (``'logit'``),
  standard normal (``'probit'``) or complementary log-log
  (``1 - exp(-e^z)``, ``'cloglog'``) distribution function. The model keeps
  the thresholds ordered by construction (``model.py``: first threshold plus
  cumulative squares); for unordered ``z`` the negative differences are
  floored near 0 and the result renormalised.

  Args:
    z: ``theta - f``, shape ``[..., K - 1]``.
    link: ``'logit'``, ``'probit'`` or ``'cloglog'``.
    axis: the threshold axis of ``z``.

  Returns:
    Probabilities of shape ``[..., K]`` (class axis last).

  >>> [round(float(p), 4) for p in clm_probs(jnp.array([-1., 1.]),
  ...                                          link='logit')]
  [0.2689, 0.4621, 0.2689]

  References:
    McCullagh, "Regression Models for Ordinal Data", J. R. Stat. Soc. B 1980;
    Vargas, Gutiérrez & Hervás-Martínez, "Cumulative link models for deep
    ordinal classification", Neurocomputing 2020.
  """
  _check_link(link, 'clm_probs')
  z_BxT = jnp.moveaxis(jnp.asarray(z), axis, -1)
  dtype = _compute_dtype(z_BxT.dtype)
  probs_BxK = jnp.exp(_clm_log_probs(z_BxT.astype(dtype), link))
  probs_BxK = probs_BxK / jnp.sum(probs_BxK, axis=-1, keepdims=True)
  return probs_BxK.astype(z_BxT.dtype)


def clm_loss(z, labels, *, link: str, axis: int = -1, where=None) -> Array:
  r"""Negative log-likelihood of a cumulative link model, ``-log p_y``.

  See :func:`clm_probs`. The class probability is a difference of two
  distribution-function values; it is taken in log space (lower tail with
  ``F``, upper tail with ``1 - F``), so value and gradient stay finite for
  ``z`` of magnitude 1e4.

  Args:
    z: ``theta - f``, shape ``[..., K - 1]``.
    labels: integer classes in ``[0, K)``, shape ``[...]``.
    link: ``'logit'``, ``'probit'`` or ``'cloglog'``.
    axis: the threshold axis of ``z``.
    where: optional boolean mask of shape ``[...]``; masked examples give 0.

  Returns:
    Per-example losses, shape ``[...]``.

  >>> round(float(clm_loss(jnp.array([0., 0.]), jnp.array(0), link='logit')), 4)
  0.6931

  References:
    Vargas, Gutiérrez & Hervás-Martínez, Neurocomputing 2020.
  """
  z_BxT, labels_B, num_classes = _check_inputs(
      z, labels, axis=axis, where=where, num_outputs_offset=-1,
      fn_name='clm_loss')
  _check_link(link, 'clm_loss')
  dtype = _compute_dtype(z_BxT.dtype)
  log_probs_BxK = _clm_log_probs(z_BxT.astype(dtype), link)
  return _nll(log_probs_BxK, labels_B, num_classes, where, z_BxT.dtype)


def _nll(log_probs_BxK, labels_B, num_classes, where, dtype):
  loss_B = -jnp.take_along_axis(
      log_probs_BxK, jnp.clip(labels_B, 0, num_classes - 1)[..., None],
      axis=-1)[..., 0]
  return _finish(loss_B, labels_B, num_classes, where, dtype)


def _binomial_log_probs(score_Bx1, num_classes):
  n = num_classes - 1
  j_1xK = jnp.arange(num_classes, dtype=score_Bx1.dtype).reshape(
      (1,) * (score_Bx1.ndim - 1) + (num_classes,))
  log_choose_K = np.array([math.lgamma(n + 1) - math.lgamma(j + 1) -
                           math.lgamma(n - j + 1) for j in range(n + 1)])
  log_choose_1xK = jnp.asarray(log_choose_K, score_Bx1.dtype).reshape(
      j_1xK.shape)
  return (log_choose_1xK + j_1xK * jax.nn.log_sigmoid(score_Bx1) +
          (n - j_1xK) * jax.nn.log_sigmoid(-score_Bx1))


def binomial_probs(score, *, num_classes: int, axis: int = -1) -> Array:
  r"""Binomial head: ``P(j) = Binomial(j; K - 1, sigmoid(score))``.

  One output decides the whole unimodal distribution: its mode moves from
  class 0 to class ``K - 1`` as the score grows.

  Args:
    score: shape ``[..., 1]``.
    num_classes: ``K >= 2``.
    axis: the axis of ``score`` that has size 1.

  Returns:
    Probabilities of shape ``[..., K]`` (class axis last).

  >>> binomial_probs(jnp.array([0.]), num_classes=3)
  Array([0.25, 0.5 , 0.25], dtype=float32)

  References:
    da Costa, Alonso, Cardoso & Pinto, "The unimodal model for the
    classification of ordinal data", Neural Networks 2008; Liu et al.,
    Neurocomputing 2020.
  """
  score_Bx1 = _check_head_outputs(score, num_classes, 1, axis, 'binomial_probs')
  dtype = _compute_dtype(score_Bx1.dtype)
  return jnp.exp(_binomial_log_probs(score_Bx1.astype(dtype),
                                     num_classes)).astype(score_Bx1.dtype)


def binomial_loss(score, labels, *, num_classes: int, axis: int = -1,
                  where=None) -> Array:
  r"""Negative log-likelihood of the binomial head, ``-log P(y)``.

  See :func:`binomial_probs`; computed from log-sigmoids, finite at scores of
  magnitude 1e4.

  Args:
    score: shape ``[..., 1]``.
    labels: integer classes in ``[0, K)``, shape ``[...]``.
    num_classes: ``K >= 2``.
    axis: the axis of ``score`` that has size 1.
    where: optional boolean mask of shape ``[...]``; masked examples give 0.

  Returns:
    Per-example losses, shape ``[...]``.

  >>> round(float(binomial_loss(jnp.array([0.]), jnp.array(1),
  ...                           num_classes=3)), 4)  # -log 0.5
  0.6931
  """
  score_Bx1, labels_B, _ = _check_inputs(
      score, labels, axis=axis, where=where, num_classes=num_classes,
      num_outputs=1, fn_name='binomial_loss')
  dtype = _compute_dtype(score_Bx1.dtype)
  log_probs_BxK = _binomial_log_probs(score_Bx1.astype(dtype), num_classes)
  return _nll(log_probs_BxK, labels_B, num_classes, where, score_Bx1.dtype)


def _check_head_outputs(outputs, num_classes, num_outputs, axis, fn_name):
  outputs = jnp.asarray(outputs)
  if not jnp.issubdtype(outputs.dtype, jnp.floating):
    raise TypeError(f'{fn_name}: the outputs must be a floating-point array, '
                    f'got {outputs.dtype}.')
  if outputs.ndim < 1:
    raise ValueError(f'{fn_name}: the outputs need an axis of size '
                     f'{num_outputs}, got a scalar.')
  outputs = jnp.moveaxis(outputs, axis, -1)
  if outputs.shape[-1] != num_outputs:
    raise ValueError(f'{fn_name}: the outputs must have {num_outputs} '
                     f'entries on axis {axis}, got {outputs.shape[-1]}.')
  if not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
    raise ValueError(f'{fn_name}: num_classes must be an integer >= 2, got '
                     f'{num_classes!r}.')
  return outputs


def _poisson_logits(score_Bx1, num_classes, temperature_Bx1):
  # Rate clipped as dlordinal's PoissonLayer does: no overflow at +-1e4.
  rate_Bx1 = jnp.clip(jax.nn.softplus(score_Bx1), 1e-8, 1e4)
  j_1xK = jnp.arange(num_classes, dtype=score_Bx1.dtype).reshape(
      (1,) * (score_Bx1.ndim - 1) + (num_classes,))
  log_factorial_1xK = jnp.asarray(
      [math.lgamma(j + 1) for j in range(num_classes)],
      score_Bx1.dtype).reshape(j_1xK.shape)
  log_pmf_BxK = j_1xK * jnp.log(rate_Bx1) - rate_Bx1 - log_factorial_1xK
  return log_pmf_BxK / temperature_Bx1


def _temperature_column(temperature, batch_shape, fn_name):
  """A float or a ``[...]`` array of temperatures as ``[..., 1]``."""
  if not isinstance(temperature, jax.core.Tracer) and not np.all(
      np.asarray(temperature) > 0):
    raise ValueError(f'{fn_name}: temperature must be > 0, got {temperature!r}.')
  temperature = jnp.asarray(temperature, jnp.float32)
  if temperature.ndim == 0:
    return temperature.reshape((1,) * (len(batch_shape) + 1))
  if temperature.shape != tuple(batch_shape):
    raise ValueError(f'{fn_name}: temperature must be a number or have the '
                     f'batch shape {tuple(batch_shape)}, got '
                     f'{temperature.shape}.')
  return temperature[..., None]


def poisson_probs(score, *, num_classes: int, temperature=1.0,
                  axis: int = -1) -> Array:
  r"""Poisson head: ``softmax_j(log Poisson(j; softplus(score)) / T)``.

  The rate ``softplus(score)`` places the mode; the temperature ``T`` sets how
  peaked the distribution is (learned in the model, as dlordinal does).

  Args:
    score: shape ``[..., 1]``.
    num_classes: ``K >= 2``.
    temperature: ``T > 0``: a number, or an array of the batch shape.
    axis: the axis of ``score`` that has size 1.

  Returns:
    Probabilities of shape ``[..., K]`` (class axis last).

  >>> rate_1 = jnp.log(jnp.e - 1)  # softplus(rate_1) = 1
  >>> [round(float(p), 4) for p in poisson_probs(jnp.array([rate_1]),
  ...                                              num_classes=3)]
  [0.4, 0.4, 0.2]

  References:
    Beckham & Pal, "Unimodal probability distributions for deep ordinal
    classification", ICML 2017.
  """
  score_Bx1 = _check_head_outputs(score, num_classes, 1, axis, 'poisson_probs')
  dtype = _compute_dtype(score_Bx1.dtype)
  temperature_Bx1 = _temperature_column(temperature, score_Bx1.shape[:-1],
                                        'poisson_probs')
  logits_BxK = _poisson_logits(score_Bx1.astype(dtype), num_classes,
                               temperature_Bx1.astype(dtype))
  return jax.nn.softmax(logits_BxK, axis=-1).astype(score_Bx1.dtype)


def poisson_loss(score, labels, *, num_classes: int, temperature=1.0,
                 axis: int = -1, where=None) -> Array:
  r"""Negative log-likelihood of the Poisson head; see :func:`poisson_probs`.

  Args:
    score: shape ``[..., 1]``.
    labels: integer classes in ``[0, K)``, shape ``[...]``.
    num_classes: ``K >= 2``.
    temperature: ``T > 0``: a number, or an array of the batch shape (a
      learned temperature broadcast over the batch).
    axis: the axis of ``score`` that has size 1.
    where: optional boolean mask of shape ``[...]``; masked examples give 0.

  Returns:
    Per-example losses, shape ``[...]``.

  >>> round(float(poisson_loss(jnp.array([jnp.log(jnp.e - 1)]), jnp.array(2),
  ...                          num_classes=3)), 4)  # -log 0.2
  1.6094
  """
  score_Bx1, labels_B, _ = _check_inputs(
      score, labels, axis=axis, where=where, num_classes=num_classes,
      num_outputs=1, fn_name='poisson_loss')
  dtype = _compute_dtype(score_Bx1.dtype)
  temperature_Bx1 = _temperature_column(temperature, labels_B.shape,
                                        'poisson_loss')
  logits_BxK = _poisson_logits(score_Bx1.astype(dtype), num_classes,
                               temperature_Bx1.astype(dtype))
  return _nll(jax.nn.log_softmax(logits_BxK, axis=-1), labels_B, num_classes,
              where, score_Bx1.dtype)


def _cos_to_classes(outputs_Bx2, num_classes):
  """cos(predicted angle - 2 pi j / K) for every class j, shape [..., K]."""
  angles_1xK = (2 * math.pi / num_classes) * jnp.arange(
      num_classes, dtype=outputs_Bx2.dtype).reshape(
          (1,) * (outputs_Bx2.ndim - 1) + (num_classes,))
  # Normalising (cos, sin) instead of taking atan2 keeps the gradient
  # finite at the origin.
  norm_Bx1 = jnp.sqrt(jnp.sum(outputs_Bx2**2, axis=-1, keepdims=True) + _TINY)
  return (outputs_Bx2[..., :1] * jnp.cos(angles_1xK) +
          outputs_Bx2[..., 1:] * jnp.sin(angles_1xK)) / norm_Bx1


def von_mises_probs(outputs, *, num_classes: int, kappa: float = 1.0,
                    axis: int = -1) -> Array:
  r"""Circular head: class probabilities around a predicted angle.

  .. math::
    p_j \propto \exp\big(\kappa \cos(\hat\phi - 2\pi j / K)\big), \qquad
    \hat\phi = \operatorname{atan2}(o_2, o_1)

  The two outputs are read as (cos, sin) of the predicted angle, so class
  ``K - 1`` sits next to class 0 by construction, not by a cost matrix.

  Args:
    outputs: shape ``[..., 2]``, (cos, sin) up to scale.
    num_classes: ``K >= 2``.
    kappa: concentration ``kappa > 0``.
    axis: the axis of ``outputs`` that has size 2.

  Returns:
    Probabilities of shape ``[..., K]`` (class axis last).

  >>> von_mises_probs(jnp.array([0., 1.]), num_classes=4, kappa=1.0).argmax()
  Array(1, dtype=int32)

  References:
    Beyer, Hermans & Leibe, "Biternion Nets: Continuous Head Pose Regression
    from Discrete Training Labels", GCPR 2015.
  """
  outputs_Bx2 = _check_head_outputs(outputs, num_classes, 2, axis,
                                    'von_mises_probs')
  _check_positive(kappa, 'kappa', 'von_mises_probs')
  dtype = _compute_dtype(outputs_Bx2.dtype)
  cos_BxK = _cos_to_classes(outputs_Bx2.astype(dtype), num_classes)
  return jax.nn.softmax(kappa * cos_BxK, axis=-1).astype(outputs_Bx2.dtype)


def von_mises_loss(outputs, labels, *, num_classes: int, kappa: float = 1.0,
                   axis: int = -1, where=None) -> Array:
  r"""Von Mises loss of a circular head (biternion loss).

  .. math::
    \ell = 1 - \exp\big(\kappa (\cos(\hat\phi - 2\pi y / K) - 1)\big)

  0 at the right angle, growing with the angular (cyclic) distance to the
  label and bounded by ``1 - e^{-2 kappa}``; a bounded loss is robust to
  outliers such as mislabelled images.

  Args:
    outputs: shape ``[..., 2]``, (cos, sin) up to scale.
    labels: integer classes in ``[0, K)``, shape ``[...]``.
    num_classes: ``K >= 2``.
    kappa: concentration ``kappa > 0``.
    axis: the axis of ``outputs`` that has size 2.
    where: optional boolean mask of shape ``[...]``; masked examples give 0.

  Returns:
    Per-example losses, shape ``[...]``.

  >>> round(float(von_mises_loss(jnp.array([-1., 0.]), jnp.array(0),
  ...                            num_classes=4, kappa=1.0)), 4)  # 1 - e^-2
  0.8647

  References:
    Beyer, Hermans & Leibe, GCPR 2015.
  """
  outputs_Bx2, labels_B, _ = _check_inputs(
      outputs, labels, axis=axis, where=where, num_classes=num_classes,
      num_outputs=2, fn_name='von_mises_loss')
  _check_positive(kappa, 'kappa', 'von_mises_loss')
  dtype = _compute_dtype(outputs_Bx2.dtype)
  cos_BxK = _cos_to_classes(outputs_Bx2.astype(dtype), num_classes)
  cos_B = jnp.take_along_axis(
      cos_BxK, jnp.clip(labels_B, 0, num_classes - 1)[..., None], axis=-1)[..., 0]
  loss_B = 1 - jnp.exp(kappa * (cos_B - 1))
  return _finish(loss_B, labels_B, num_classes, where, outputs_Bx2.dtype)


# ----------------------------------------------------------------------------
# Batch-level loss.


def weighted_kappa_loss(logits, labels, *, distance, axis: int = -1,
                        where=None, epsilon: float = 1e-10) -> Array:
  r"""Weighted kappa loss over a whole batch; returns a **scalar**.

  .. math::
    O = \sum_n e_{y_n} p_n^\top, \quad
    E = \frac{1}{N} \Big(\sum_n e_{y_n}\Big) \Big(\sum_n p_n\Big)^\top, \quad
    \ell = \log \frac{\sum_{ij} W_{ij} O_{ij}}{\sum_{ij} W_{ij} E_{ij}}

  ``log(1 - kappa)`` for the soft confusion matrix ``O``; minimising it
  maximises weighted kappa. Any weight matrix ``W`` works; quadratic kappa uses
  ``linear_distance(K, power=2)``. Unlike the other losses it does not
  decompose over examples, so it cannot be reduced by the caller.

  Args:
    logits: unnormalized log probabilities, shape ``[..., K]``.
    labels: integer classes in ``[0, K)``, shape ``[...]``.
    distance: weight matrix ``W`` of shape ``[K, K]``.
    axis: the class axis of ``logits``.
    where: optional boolean mask of shape ``[...]``; masked examples are left
      out of ``O`` and ``E``.
    epsilon: added to numerator and denominator so a perfect batch stays
      finite.

  Returns:
    A scalar loss.

  >>> round(float(weighted_kappa_loss(jnp.zeros((2, 2)), jnp.array([0, 1]),
  ...       distance=linear_distance(2))), 4)
  0.0

  References:
    de la Torre, Puig & Valls, "Weighted kappa loss function for multi-class
    classification of ordinal data in deep learning", Pattern Recognit. Lett.
    2018.
  """
  logits_BxK, labels_B, num_classes = _check_inputs(
      logits, labels, axis=axis, where=where, fn_name='weighted_kappa_loss')
  weights_KxK = validate_distance(distance, num_classes=num_classes)
  dtype = _compute_dtype(logits_BxK.dtype)
  probs_NxK = jax.nn.softmax(logits_BxK.astype(dtype), axis=-1).reshape(
      -1, num_classes)
  labels_N = labels_B.reshape(-1)
  keep_N = jnp.ones(labels_N.shape, dtype) if where is None else jnp.asarray(
      where).reshape(-1).astype(dtype)
  onehot_NxK = jax.nn.one_hot(labels_N, num_classes, dtype=dtype) * keep_N[:, None]
  probs_NxK = probs_NxK * keep_N[:, None]
  observed_KxK = onehot_NxK.T @ probs_NxK
  expected_KxK = jnp.outer(onehot_NxK.sum(0), probs_NxK.sum(0)) / jnp.maximum(
      keep_N.sum(), 1.0)
  weights_KxK = weights_KxK.astype(dtype)
  loss = jnp.log((jnp.sum(weights_KxK * observed_KxK) + epsilon) /
                 (jnp.sum(weights_KxK * expected_KxK) + epsilon))
  in_range = jnp.all((labels_N >= 0) & (labels_N < num_classes))
  return jnp.where(in_range, loss, jnp.nan).astype(logits_BxK.dtype)


# ----------------------------------------------------------------------------
# Registry and mixing with cross-entropy.


def _softmax_probs(logits, *, axis: int = -1) -> Array:
  return jax.nn.softmax(jnp.moveaxis(jnp.asarray(logits), axis, -1), axis=-1)


def _split_poisson_outputs(outputs, axis):
  """The Poisson head's outputs (score, log T) -> score [..., 1], T [...]."""
  outputs_Bx2 = jnp.moveaxis(jnp.asarray(outputs), axis, -1)
  if outputs_Bx2.shape[-1] != 2:
    raise ValueError('the Poisson head has 2 outputs (score, log temperature), '
                     f'got {outputs_Bx2.shape[-1]}.')
  return outputs_Bx2[..., :1], jnp.exp(outputs_Bx2[..., 1])


def poisson_head_loss(outputs, labels, *, num_classes: int, axis: int = -1,
                      where=None) -> Array:
  """:func:`poisson_loss` for a model that also outputs its learned log T."""
  score_Bx1, temperature_B = _split_poisson_outputs(outputs, axis)
  return poisson_loss(score_Bx1, labels, num_classes=num_classes,
                      temperature=temperature_B, where=where)


def poisson_head_probs(outputs, *, num_classes: int, axis: int = -1) -> Array:
  """:func:`poisson_probs` for a model that also outputs its learned log T."""
  score_Bx1, temperature_B = _split_poisson_outputs(outputs, axis)
  return poisson_probs(score_Bx1, num_classes=num_classes,
                       temperature=temperature_B)


class Head(NamedTuple):
  """The model's last layer for a loss, as data; ``model.py`` builds it.

  Attributes:
    kind: ``'dense'``: a linear layer of ``num_outputs`` units.
      ``'coral'``: one shared weight vector and ``K - 1`` ordered biases
      (rank consistent). ``'clm'``: a one-unit projection ``f`` and ``K - 1``
      learned thresholds kept ordered by construction (the first plus
      cumulative squares), output ``theta - f``. ``'poisson'``: a one-unit
      score and a learned log temperature, output ``[score, log T]``.
    num_outputs: the size of the model's output for ``K`` classes.
  """
  kind: str
  num_outputs: Callable[[int], int]


SOFTMAX_HEAD = Head('dense', lambda num_classes: num_classes)


class LossSpec(NamedTuple):
  """What a training loop needs to know about a registered loss.

  Attributes:
    fn: the loss function.
    hyperparams: the keyword hyperparameters ``fn`` takes (besides axis/where).
    probs: maps the model's outputs to class probabilities ``[..., K]``.
    probs_hyperparams: the keyword hyperparameters ``probs`` takes.
    head: the model's last layer (:class:`Head`).
    per_example: False for batch-level losses that return a scalar.
  """
  fn: Callable[..., Array]
  hyperparams: tuple[str, ...] = ()
  probs: Callable[..., Array] = _softmax_probs
  probs_hyperparams: tuple[str, ...] = ()
  head: Head = SOFTMAX_HEAD
  per_example: bool = True

  def num_outputs(self, num_classes: int) -> int:
    return self.head.num_outputs(num_classes)


_K_MINUS_1 = lambda num_classes: num_classes - 1

LOSSES: dict[str, LossSpec] = {
    'cross_entropy': LossSpec(optax.softmax_cross_entropy_with_integer_labels),
    'expected_value_mse': LossSpec(expected_value_mse),
    'circular_mse': LossSpec(circular_mse),
    'expected_cost': LossSpec(expected_cost, ('distance',)),
    'soft_label_cross_entropy': LossSpec(soft_label_cross_entropy,
                                         ('distance', 'temperature')),
    'soft_target_cross_entropy': LossSpec(soft_target_cross_entropy,
                                          ('targets',)),
    'squared_emd': LossSpec(squared_emd),
    'circular_emd': LossSpec(circular_emd),
    'class_distance_weighted_ce': LossSpec(class_distance_weighted_ce,
                                           ('distance', 'alpha')),
    'ordinal_log_loss': LossSpec(ordinal_log_loss, ('distance', 'alpha')),
    'slace': LossSpec(slace_loss, ('distance', 'alpha')),
    'coral': LossSpec(coral_loss, probs=coral_probs,
                      head=Head('coral', _K_MINUS_1)),
    'corn': LossSpec(corn_loss, probs=corn_probs,
                     head=Head('dense', _K_MINUS_1)),
    'clm': LossSpec(clm_loss, ('link',), probs=clm_probs,
                    probs_hyperparams=('link',), head=Head('clm', _K_MINUS_1)),
    'binomial': LossSpec(binomial_loss, ('num_classes',), probs=binomial_probs,
                         probs_hyperparams=('num_classes',),
                         head=Head('dense', lambda num_classes: 1)),
    'poisson': LossSpec(poisson_head_loss, ('num_classes',),
                        probs=poisson_head_probs,
                        probs_hyperparams=('num_classes',),
                        head=Head('poisson', lambda num_classes: 2)),
    'von_mises': LossSpec(von_mises_loss, ('num_classes', 'kappa'),
                          probs=von_mises_probs,
                          probs_hyperparams=('num_classes', 'kappa'),
                          head=Head('dense', lambda num_classes: 2)),
    'weighted_kappa': LossSpec(weighted_kappa_loss, ('distance',),
                               per_example=False),
}


def get_loss(name: str) -> LossSpec:
  """Looks a loss up in :data:`LOSSES` by name, with a helpful error."""
  try:
    return LOSSES[name]
  except KeyError:
    raise ValueError(f'unknown loss {name!r}; choose one of: '
                     f'{", ".join(sorted(LOSSES))}.') from None


def make_loss(name: str, *, ce_weight: float | None = None,
              **hyperparams) -> Callable[[Array, Array], Array]:
  r"""Binds a registered loss to its hyperparameters, optionally mixed with CE.

  .. math::
    \ell_\lambda = \mathrm{CE} + \lambda\, \ell_{\text{name}}

  With ``ce_weight=None`` the loss is used alone; ``ce_weight=0`` gives exactly
  cross-entropy. Hyperparameters the loss does not take are ignored, so one
  configuration can drive every loss; None means the loss's default. A batch-level loss, mixed, is added to
  every example's CE so that the batch mean is ``mean CE + lambda * loss``.

  Args:
    name: a key of :data:`LOSSES`.
    ce_weight: ``lambda >= 0``, or None for the loss alone.
    **hyperparams: e.g. ``distance``, ``temperature``, ``alpha``.

  Returns:
    ``fn(logits, labels) -> losses`` (per example, or a scalar for batch-level
    losses used alone).

  >>> ce = make_loss('expected_cost', ce_weight=0.0,
  ...                distance=linear_distance(3))
  >>> round(float(ce(jnp.zeros(3), jnp.array(0))), 4)  # log 3
  1.0986
  """
  spec = get_loss(name)
  bound = _bind(name, spec.fn, spec.hyperparams, hyperparams)

  def loss_fn(logits, labels):
    return spec.fn(logits, labels, **bound)

  if ce_weight is None:
    return loss_fn
  if not ce_weight >= 0:
    raise ValueError(f'ce_weight must be >= 0, got {ce_weight!r}.')
  if spec.head != SOFTMAX_HEAD:
    raise ValueError(f'loss {name!r} has its own output head, not softmax '
                     'logits, and cannot be mixed with cross-entropy; leave '
                     'ce_weight unset.')

  def mixed_fn(logits, labels):
    ce_B = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    if ce_weight == 0:
      return ce_B
    return ce_B + ce_weight * loss_fn(logits, labels)

  return mixed_fn


def make_probs(name: str, **hyperparams) -> Callable[[Array], Array]:
  """Binds a registered loss's ``probs`` to its hyperparameters.

  Args:
    name: a key of :data:`LOSSES`.
    **hyperparams: e.g. ``num_classes``, ``link``, ``kappa``; the ones the
      probs function does not take are ignored, None means its default.

  Returns:
    ``fn(outputs) -> probabilities [..., K]``.

  >>> probs = make_probs('binomial', num_classes=3, distance=None)
  >>> probs(jnp.zeros((1, 1))).shape
  (1, 3)
  """
  spec = get_loss(name)
  bound = _bind(name, spec.probs, spec.probs_hyperparams, hyperparams)
  return functools.partial(spec.probs, **bound)


_EXAMPLES = {'distance': 'linear_distance(10)', 'num_classes': '10',
             'link': "'logit'", 'targets': "soft_label_matrix('binomial', 10)"}


def _bind(name, fn, names, hyperparams):
  """The hyperparameters of ``names`` that were given (not None).

  Raises ValueError for a required one (keyword-only, no default) missing.
  """
  bound = {h: hyperparams[h] for h in names if hyperparams.get(h) is not None}
  for param in inspect.signature(fn).parameters.values():
    if (param.kind == param.KEYWORD_ONLY and param.default is param.empty
        and param.name not in bound):
      example = _EXAMPLES.get(param.name, '...')
      raise ValueError(f'loss {name!r} needs {param.name}=..., e.g. '
                       f'{param.name}={example}.')
  return bound
