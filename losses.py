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
                  fn_name: str):
  """Validates dtypes, ranks and label values; moves the class axis last.

  Returns (logits_BxK, labels_B, num_classes) where B stands for any batch
  shape and K for the number of logits along ``axis``.
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
  num_classes = logits_BxK.shape[-1] - num_outputs_offset
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
  dtype = _compute_dtype(logits_BxK.dtype)
  logits_BxK = logits_BxK.astype(dtype)
  others_KxK = ~jnp.eye(num_classes, dtype=bool).reshape(
      (1,) * labels_B.ndim + (num_classes, num_classes))
  # Row j holds the logits with z_j removed, giving log(sum_{k != j} e^{z_k}).
  masked_BxKxK = jnp.where(others_KxK, logits_BxK[..., None, :], -jnp.inf)
  log_rest_BxK = jax.nn.logsumexp(masked_BxKxK, axis=-1)
  log_one_minus_p_BxK = log_rest_BxK - jax.nn.logsumexp(
      logits_BxK, axis=-1, keepdims=True)
  weights_BxK = _gather_rows(distance_KxK.astype(dtype), labels_B)**alpha
  loss_B = -jnp.sum(weights_BxK * log_one_minus_p_BxK, axis=-1)
  return _finish(loss_B, labels_B, num_classes, where, logits_BxK.dtype)


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


class LossSpec(NamedTuple):
  """What a training loop needs to know about a registered loss.

  Attributes:
    fn: the loss function.
    hyperparams: the keyword hyperparameters ``fn`` takes (besides axis/where).
    probs: maps the model's outputs to class probabilities ``[..., K]``.
    num_outputs: the model's output size for ``K`` classes.
    per_example: False for batch-level losses that return a scalar.
  """
  fn: Callable[..., Array]
  hyperparams: tuple[str, ...] = ()
  probs: Callable[..., Array] = _softmax_probs
  num_outputs: Callable[[int], int] = lambda num_classes: num_classes
  per_example: bool = True


LOSSES: dict[str, LossSpec] = {
    'cross_entropy': LossSpec(optax.softmax_cross_entropy_with_integer_labels),
    'expected_value_mse': LossSpec(expected_value_mse),
    'circular_mse': LossSpec(circular_mse),
    'expected_cost': LossSpec(expected_cost, ('distance',)),
    'soft_label_cross_entropy': LossSpec(soft_label_cross_entropy,
                                         ('distance', 'temperature')),
    'squared_emd': LossSpec(squared_emd),
    'circular_emd': LossSpec(circular_emd),
    'class_distance_weighted_ce': LossSpec(class_distance_weighted_ce,
                                           ('distance', 'alpha')),
    'coral': LossSpec(coral_loss, probs=coral_probs,
                      num_outputs=lambda num_classes: num_classes - 1),
    'corn': LossSpec(corn_loss, probs=corn_probs,
                     num_outputs=lambda num_classes: num_classes - 1),
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
  if 'distance' in spec.hyperparams and hyperparams.get('distance') is None:
    raise ValueError(f'loss {name!r} needs distance=..., e.g. '
                     'linear_distance(10).')
  bound = {h: hyperparams[h] for h in spec.hyperparams
           if hyperparams.get(h) is not None}

  def loss_fn(logits, labels):
    return spec.fn(logits, labels, **bound)

  if ce_weight is None:
    return loss_fn
  if not ce_weight >= 0:
    raise ValueError(f'ce_weight must be >= 0, got {ce_weight!r}.')
  if spec.num_outputs(10) != 10:
    raise ValueError(f'loss {name!r} uses K - 1 outputs and cannot be mixed '
                     'with cross-entropy; leave ce_weight unset.')

  def mixed_fn(logits, labels):
    ce_B = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    if ce_weight == 0:
      return ce_B
    return ce_B + ce_weight * loss_fn(logits, labels)

  return mixed_fn
