"""Distance-aware classification losses for JAX, in the style of optax.

Copy this file into your project or import it: it needs jax, numpy and optax
(scipy for the beta soft labels only) and nothing else of ours.

**The signature rule.** Every loss is

    ``fn(<outputs>, labels, *, <hyperparameters>, axis=-1, where=None)``

and returns per-example losses of shape ``[...]``; the caller reduces.

- The first argument is called ``logits`` exactly where the loss reads
  unnormalized log probabilities over the ``K`` classes (a softmax head,
  shape ``[..., K]``); such losses can be mixed with cross-entropy
  (:func:`make_loss`'s ``ce_weight``). Every other head's raw output is called
  ``outputs``: CORAL's and CORN's ``K - 1`` task logits, the CLM's ``K - 1``
  values ``theta - f``, the binomial and Poisson heads' one score, the
  learned-temperature Poisson head's two values, the von Mises head's
  (cos, sin).
- ``labels`` are integer classes of shape ``[...]``.
- Hyperparameters are keyword-only, each with one meaning in the whole file
  (``epsilon``: the weight of a smoothing distribution mixed into the
  one-hot target).
- ``axis`` is the class (or output) axis of the first argument; ``where`` a
  boolean mask of shape ``[...]``: masked examples give exactly 0.
- The named exception: :func:`weighted_kappa_loss` is a batch-level loss and
  returns a scalar (``where`` leaves examples out of the batch).

Probability functions (``*_probs``) take the same first argument, keyword-only
hyperparameters and ``axis``, and return ``[..., K]`` with the class axis last.

A *distance* is a ``K x K`` matrix ``C`` where ``C[i, j]`` is the cost of
predicting class ``j`` when the truth is ``i``. :func:`linear_distance` and
:func:`cyclic_distance` build the two orders of the digits; any matrix
accepted by :func:`validate_distance` (a user's own confusability matrix, say)
works too.

Bad input is caught at trace time (dtypes, ranks, shapes, hyperparameters)
with a ``TypeError`` or ``ValueError`` whose message names the argument
(the traceback names the function). Values are checked when they are
concrete: labels outside ``[0, K)`` raise, while under
``jax.jit`` they make that example's loss NaN rather than silently wrong.
Numeric hyperparameters (weights, temperatures, exponents, concentrations,
smoothing shares, distance and target matrices) may be traced, so that a
hyperparameter sweep compiles as one vmapped program; their value checks then
wait for concrete values.

Shapes are written as suffixes of array names, ``logits_BxK``, in the
project's one legend (``trainer/programs.py`` uses the same letters): B
batch (any batch shape in this file), K classes, T = K - 1 thresholds or
binary tasks, O outputs of a model's head, N images of a split, M images a
seed trains on, S seeds, P points of a hyperparameter sweep, E steps of an
epoch, Q passes of an evaluation, H, W, C image height, width, channels; a
digit is that size, as in ``outputs_Bx1``.

Contents, by section:

- Distances: :func:`linear_distance`, :func:`cyclic_distance`,
  :func:`validate_distance`.
- Softmax losses: :func:`cross_entropy`, :func:`expected_value_mse`,
  :func:`circular_mse`,
  :func:`expected_cost`, :func:`soft_label_cross_entropy`,
  :func:`label_smoothing_cross_entropy`,
  :func:`squared_emd`, :func:`circular_emd`,
  :func:`class_distance_weighted_ce` (alias :func:`ordinal_log_loss`),
  :func:`slace_loss`.
- Soft-label targets: :func:`soft_target_cross_entropy`,
  :data:`SOFT_LABEL_FAMILIES`, :func:`soft_label_matrix`.
- Rank-consistent binary tasks: :func:`coral_loss`, :func:`corn_loss`,
  :func:`coral_probs`, :func:`corn_probs`.
- Ordinal output heads: :data:`CLM_LINKS`, :func:`clm_probs`,
  :func:`clm_loss`, :func:`binomial_probs`, :func:`binomial_loss`,
  :func:`poisson_probs`, :func:`poisson_loss`, :func:`poisson_head_outputs`,
  :func:`poisson_head_probs`, :func:`poisson_head_loss`,
  :func:`von_mises_probs`, :func:`von_mises_loss`, :func:`copoc_probs`,
  :func:`copoc_loss`.
- Batch-level loss: :func:`weighted_kappa_loss`.
- Registry: :class:`LossSpec`, :data:`LOSSES`, :func:`get_loss`,
  :func:`make_loss`, :func:`make_probs`. (Which model head each loss needs
  is the model's business: ``model.py``.)
- Shared checks and maths (private), at the end.
"""

from __future__ import annotations

__all__ = [
    'CLM_LINKS',
    'LOSSES',
    'SOFT_LABEL_FAMILIES',
    'LossSpec',
    'binomial_loss',
    'binomial_probs',
    'circular_emd',
    'circular_mse',
    'class_distance_weighted_ce',
    'clm_loss',
    'clm_probs',
    'copoc_loss',
    'copoc_probs',
    'coral_loss',
    'coral_probs',
    'corn_loss',
    'corn_probs',
    'cross_entropy',
    'cyclic_distance',
    'expected_cost',
    'expected_value_mse',
    'get_loss',
    'label_smoothing_cross_entropy',
    'linear_distance',
    'make_loss',
    'make_probs',
    'ordinal_log_loss',
    'poisson_head_loss',
    'poisson_head_outputs',
    'poisson_head_probs',
    'poisson_loss',
    'poisson_probs',
    'slace_loss',
    'soft_label_cross_entropy',
    'soft_label_matrix',
    'soft_target_cross_entropy',
    'squared_emd',
    'validate_distance',
    'von_mises_loss',
    'von_mises_probs',
    'weighted_kappa_loss',
]

import functools
import inspect
import math
from collections.abc import Callable
from typing import Any, NamedTuple, overload

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike, DTypeLike

# ----------------------------------------------------------------------------
# Distances.


def linear_distance(num_classes: int, *, power: float = 1.0) -> jax.Array:
  r"""Linear-order distance :math:`C_{ij} = |i - j|^p`.

  Args:
    num_classes: number of classes ``K`` (at least 2).
    power: exponent ``p > 0``; 1 gives the absolute error, 2 the squared error.

  Returns:
    A float32 matrix of shape ``[K, K]``.

  >>> linear_distance(4)[0]
  Array([0., 1., 2., 3.], dtype=float32)
  """
  _check_num_classes(num_classes)
  _check_positive('power', power)
  return _class_offsets(num_classes)**power


def cyclic_distance(num_classes: int, *, power: float = 1.0) -> jax.Array:
  r"""Distance on a circle of ``K`` classes.

  .. math::
    C_{ij} = \min(|i - j|, K - |i - j|)^p

  With ``K = 10`` the digit 9 sits next to 0.

  Args:
    num_classes: number of classes ``K`` (at least 2).
    power: exponent ``p > 0``.

  Returns:
    A float32 matrix of shape ``[K, K]``.

  >>> cyclic_distance(10)[0, 9]
  Array(1., dtype=float32)
  """
  _check_num_classes(num_classes)
  _check_positive('power', power)
  offsets_KxK = _class_offsets(num_classes)
  return jnp.minimum(offsets_KxK, num_classes - offsets_KxK)**power


def validate_distance(matrix: ArrayLike, *, num_classes: int | None = None,
                      name: str = 'distance') -> jax.Array:
  """Checks that ``matrix`` is a valid distance and returns it as a jax array.

  A valid distance is a square floating-point (or integer) matrix whose
  entries are finite and non-negative, with zeros on the diagonal. It need not
  be symmetric and need not satisfy the triangle inequality. The value checks
  run when ``matrix`` is concrete; a traced matrix gets the shape checks only.

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
  values_KxK = _check_square_matrix(matrix, num_classes=num_classes, name=name)
  if values_KxK is not None and np.any(np.diag(values_KxK) != 0):
    raise ValueError(f'{name} has a non-zero diagonal; predicting the true '
                     'class must cost 0 (set the diagonal to 0).')
  matrix_KxK = jnp.asarray(matrix)
  if not jnp.issubdtype(matrix_KxK.dtype, jnp.floating):
    matrix_KxK = matrix_KxK.astype(jnp.float32)
  return matrix_KxK


# ----------------------------------------------------------------------------
# Softmax losses.


def cross_entropy(logits: ArrayLike, labels: ArrayLike, *, axis: int = -1,
                  where: ArrayLike | None = None) -> jax.Array:
  r"""Cross-entropy with integer labels: optax's, in this file's signature.

  .. math::
    \ell = -\log p_y, \qquad p = \mathrm{softmax}(z)

  ``where`` masks examples, as everywhere in this file (optax's own ``where``
  masks classes).

  Args:
    logits: unnormalized log probabilities, shape ``[..., K]``.
    labels: integer classes in ``[0, K)``, shape ``[...]``.
    axis: the class axis of ``logits``.
    where: optional boolean mask of shape ``[...]``; masked examples give 0.

  Returns:
    Per-example losses, shape ``[...]``.

  >>> round(float(cross_entropy(jnp.zeros(3), jnp.array(0))), 4)  # log 3
  1.0986
  """
  logits_BxK, labels_B, num_classes = _check_inputs(
      logits, labels, axis=axis, where=where)
  loss_B = optax.softmax_cross_entropy_with_integer_labels(logits_BxK,
                                                           labels_B)
  return _finish(loss_B, labels_B, num_classes, where, logits_BxK.dtype)


def _softmax_probs(logits: ArrayLike, *, axis: int = -1) -> jax.Array:
  logits_BxK, _, _ = _check_inputs(logits, axis=axis)
  return jax.nn.softmax(logits_BxK, axis=-1)


def expected_value_mse(logits: ArrayLike, labels: ArrayLike, *, axis: int = -1,
                       where: ArrayLike | None = None) -> jax.Array:
  r"""Squared error of the expected class index.

  .. math::
    \ell = \tfrac12 \Big(\sum_j j\, p_j - y\Big)^2, \qquad
    p = \mathrm{softmax}(z)

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
      logits, labels, axis=axis, where=where)
  dtype = _compute_dtype(logits_BxK.dtype)
  probs_BxK = jax.nn.softmax(logits_BxK.astype(dtype), axis=-1)
  mean_B = probs_BxK @ _class_grid(num_classes, 0, dtype)
  loss_B = 0.5 * (mean_B - labels_B.astype(dtype))**2
  return _finish(loss_B, labels_B, num_classes, where, logits_BxK.dtype)


def circular_mse(logits: ArrayLike, labels: ArrayLike, *, axis: int = -1,
                 where: ArrayLike | None = None) -> jax.Array:
  r"""Squared error of the expected position on the unit circle.

  .. math::
    \ell = \tfrac12 \Big|\sum_j p_j e^{2\pi i j/K} - e^{2\pi i y/K}\Big|^2

  Class ``j`` is placed at angle ``2 pi j / K``, so class ``K - 1``
  neighbours class 0. This is the natural circular analogue of
  :func:`expected_value_mse`: the mean of a distribution on the circle is its
  mean in the embedding plane (the first trigonometric moment, as in circular
  statistics), and the loss is the squared Euclidean error of that mean. For
  a one-hot ``p`` at distance ``d`` it equals ``1 - cos(2 pi d / K)``, which
  grows with the cyclic distance.

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
    Mardia & Jupp, "Directional Statistics", Wiley 2000, ch. 2 (circular
    mean).
  """
  logits_BxK, labels_B, num_classes = _check_inputs(
      logits, labels, axis=axis, where=where)
  dtype = _compute_dtype(logits_BxK.dtype)
  probs_BxK = jax.nn.softmax(logits_BxK.astype(dtype), axis=-1)
  angles_K = _class_angles(num_classes, 0, dtype)
  label_angles_B = 2 * math.pi * labels_B.astype(dtype) / num_classes
  dx_B = probs_BxK @ jnp.cos(angles_K) - jnp.cos(label_angles_B)
  dy_B = probs_BxK @ jnp.sin(angles_K) - jnp.sin(label_angles_B)
  loss_B = 0.5 * (dx_B**2 + dy_B**2)
  return _finish(loss_B, labels_B, num_classes, where, logits_BxK.dtype)


def expected_cost(logits: ArrayLike, labels: ArrayLike, *,
                  distance: ArrayLike, axis: int = -1,
                  where: ArrayLike | None = None) -> jax.Array:
  r"""Expected misclassification cost under the predicted distribution.

  .. math::
    \ell = \sum_j p_j\, C_{y j}

  This equals the Wasserstein-1 (earth mover's) distance between ``p`` and
  the one-hot label for any cost ``C``: all mass must move to ``y``, so the
  only transport plan moves ``p_j`` from ``j`` to ``y``.

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
    Neural Networks", 2016; Frogner et al., "Learning with a Wasserstein
    Loss", NeurIPS 2015.
  """
  logits_BxK, labels_B, num_classes = _check_inputs(
      logits, labels, axis=axis, where=where)
  distance_KxK = validate_distance(distance, num_classes=num_classes)
  dtype = _compute_dtype(logits_BxK.dtype)
  probs_BxK = jax.nn.softmax(logits_BxK.astype(dtype), axis=-1)
  costs_BxK = _gather_rows(distance_KxK.astype(dtype), labels_B)
  loss_B = jnp.sum(probs_BxK * costs_BxK, axis=-1)
  return _finish(loss_B, labels_B, num_classes, where, logits_BxK.dtype)


def soft_label_cross_entropy(logits: ArrayLike, labels: ArrayLike, *,
                             distance: ArrayLike, temperature: ArrayLike = 1.0,
                             epsilon: ArrayLike = 1.0, axis: int = -1,
                             where: ArrayLike | None = None) -> jax.Array:
  r"""Cross-entropy against soft ordinal labels (SORD), optionally smoothed.

  .. math::
    q_j = (1 - \varepsilon)\,[j = y] + \varepsilon\,
      \frac{e^{-C_{yj}/T}}{\sum_k e^{-C_{yk}/T}}, \qquad
    \ell = -\sum_j q_j \log p_j

  With ``epsilon = 1`` (the default) this is SORD: as ``T -> 0`` the target
  becomes one-hot and the loss cross-entropy; a larger ``T`` spreads the
  target over neighbouring classes. A smaller ``epsilon`` keeps
  ``1 - epsilon`` of the mass on the label: label smoothing whose smoothing
  mass decays with the distance (as ``T -> inf`` it is exactly
  :func:`label_smoothing_cross_entropy`). With :func:`cyclic_distance` the
  soft labels wrap around the circle. The targets are
  :func:`soft_target_cross_entropy`'s with ``Q = (1 - eps) I + eps
  softmax(-C / T)`` row by row.

  Args:
    logits: unnormalized log probabilities, shape ``[..., K]``.
    labels: integer classes in ``[0, K)``, shape ``[...]``.
    distance: cost matrix ``C`` of shape ``[K, K]``.
    temperature: ``T > 0``.
    epsilon: the weight of the distance's soft labels mixed into the one-hot
      target, in ``(0, 1]``.
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
      logits, labels, axis=axis, where=where)
  distance_KxK = validate_distance(distance, num_classes=num_classes)
  _check_positive('temperature', temperature)
  _check_share('epsilon', epsilon)
  dtype = _compute_dtype(logits_BxK.dtype)
  targets_KxK = _smoothed(_soft_labels_from_distance(
      distance_KxK.astype(dtype), temperature), epsilon)
  return _soft_target_cross_entropy(logits_BxK, labels_B, targets_KxK,
                                    num_classes, where)


def label_smoothing_cross_entropy(logits: ArrayLike, labels: ArrayLike, *,
                                  epsilon: ArrayLike = 0.1, axis: int = -1,
                                  where: ArrayLike | None = None
                                  ) -> jax.Array:
  r"""Cross-entropy against label-smoothed targets: the distance-blind control.

  .. math::
    q_j = (1 - \varepsilon)\,[j = y] + \varepsilon / K, \qquad
    \ell = -\sum_j q_j \log p_j

  Every wrong class gets the same share of the target, whatever its distance
  to the label; ``epsilon -> 0`` gives cross-entropy.

  Args:
    logits: unnormalized log probabilities, shape ``[..., K]``.
    labels: integer classes in ``[0, K)``, shape ``[...]``.
    epsilon: the weight of the uniform distribution mixed into the one-hot
      target, in ``(0, 1]``.
    axis: the class axis of ``logits``.
    where: optional boolean mask of shape ``[...]``; masked examples give 0.

  Returns:
    Per-example losses, shape ``[...]``.

  >>> round(float(label_smoothing_cross_entropy(
  ...     jnp.array([0., 0.]), jnp.array(0), epsilon=0.5)), 4)  # log 2
  0.6931

  References:
    Szegedy et al., "Rethinking the Inception Architecture for Computer
    Vision", CVPR 2016.
  """
  logits_BxK, labels_B, num_classes = _check_inputs(
      logits, labels, axis=axis, where=where)
  _check_share('epsilon', epsilon)
  dtype = _compute_dtype(logits_BxK.dtype)
  uniform_KxK = jnp.full((num_classes, num_classes), 1 / num_classes, dtype)
  return _soft_target_cross_entropy(logits_BxK, labels_B,
                                    _smoothed(uniform_KxK, epsilon),
                                    num_classes, where)


def squared_emd(logits: ArrayLike, labels: ArrayLike, *, axis: int = -1,
                where: ArrayLike | None = None) -> jax.Array:
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
      logits, labels, axis=axis, where=where)
  dtype = _compute_dtype(logits_BxK.dtype)
  diff_BxK = _cdf_difference(logits_BxK, labels_B, num_classes, dtype)
  loss_B = jnp.sum(diff_BxK**2, axis=-1)
  return _finish(loss_B, labels_B, num_classes, where, logits_BxK.dtype)


def circular_emd(logits: ArrayLike, labels: ArrayLike, *, axis: int = -1,
                 where: ArrayLike | None = None) -> jax.Array:
  r"""Earth mover's (Wasserstein-1) distance on a circle of ``K`` classes.

  .. math::
    D_k = F_p(k) - F_y(k), \qquad
    \ell = \sum_k \big|D_k - \mathrm{median}(D)\big|

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
    Rabin, Delon & Gousseau, "Transportation Distances on the Circle", J.
    Math. Imaging Vis. 2011.
  """
  logits_BxK, labels_B, num_classes = _check_inputs(
      logits, labels, axis=axis, where=where)
  dtype = _compute_dtype(logits_BxK.dtype)
  diff_BxK = _cdf_difference(logits_BxK, labels_B, num_classes, dtype)
  median_Bx1 = jnp.median(diff_BxK, axis=-1, keepdims=True)
  loss_B = jnp.sum(jnp.abs(diff_BxK - median_Bx1), axis=-1)
  return _finish(loss_B, labels_B, num_classes, where, logits_BxK.dtype)


def class_distance_weighted_ce(logits: ArrayLike, labels: ArrayLike, *,
                               distance: ArrayLike, power: ArrayLike = 1.0,
                               axis: int = -1,
                               where: ArrayLike | None = None) -> jax.Array:
  r"""Class distance weighted cross-entropy (CDW-CE).

  .. math::
    \ell = -\sum_j C_{yj}^{\alpha} \log(1 - p_j)

  Pushes probability away from each wrong class in proportion to its
  distance. ``log(1 - p_j)`` is computed as
  ``logsumexp_{k != j} z_k - logsumexp_k z_k``, so value and gradient stay
  finite for logits of magnitude 1e4 even in bfloat16, where ``1 - p_j``
  itself rounds to 0. Also published, the same year and with the same
  formula, as the ordinal log loss (OLL); :func:`ordinal_log_loss` is this
  function under that name (its errors name ``class_distance_weighted_ce``).

  Args:
    logits: unnormalized log probabilities, shape ``[..., K]``.
    labels: integer classes in ``[0, K)``, shape ``[...]``.
    distance: cost matrix ``C`` of shape ``[K, K]``.
    power: the exponent ``alpha > 0`` on the costs (the papers' alpha).
    axis: the class axis of ``logits``.
    where: optional boolean mask of shape ``[...]``; masked examples give 0.

  Returns:
    Per-example losses, shape ``[...]``.

  >>> float(class_distance_weighted_ce(jnp.array([0., 0.]), jnp.array(0),
  ...       distance=linear_distance(2)))  # log 2
  0.6931471824645996

  References:
    Polat et al., "Class Distance Weighted Cross-Entropy Loss for Ulcerative
    Colitis Severity Estimation", MIUA 2022; Castagnos, Mihelich & Dognin,
    "A Simple Log-based Loss Function for Ordinal Text Classification",
    COLING 2022 (OLL).
  """
  logits_BxK, labels_B, num_classes = _check_inputs(
      logits, labels, axis=axis, where=where)
  distance_KxK = validate_distance(distance, num_classes=num_classes)
  _check_positive('power', power)
  return _distance_weighted_log_one_minus_p(logits_BxK, labels_B, distance_KxK,
                                            power, where)


# Castagnos, Mihelich & Dognin's ordinal log loss (OLL), COLING 2022,
# published the same year with the same formula: one function, two names.
ordinal_log_loss = class_distance_weighted_ce


def slace_loss(logits: ArrayLike, labels: ArrayLike, *, distance: ArrayLike,
               sharpness: ArrayLike = 1.0, axis: int = -1,
               where: ArrayLike | None = None) -> jax.Array:
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
    sharpness: ``alpha > 0``, the sharpness of the weights (the paper's
      alpha).
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
      logits, labels, axis=axis, where=where)
  distance_KxK = validate_distance(distance, num_classes=num_classes)
  _check_positive('sharpness', sharpness)
  dtype = _compute_dtype(logits_BxK.dtype)
  costs_BxK = _gather_rows(distance_KxK.astype(dtype), labels_B)
  weights_BxK = jax.nn.softmax(-costs_BxK * sharpness, axis=-1)
  # Row j selects the classes i with C[y, i] <= C[y, j].
  no_farther_BxKxK = costs_BxK[..., None, :] <= costs_BxK[..., :, None]
  log_accumulated_BxK = _masked_log_mass(logits_BxK.astype(dtype),
                                         no_farther_BxKxK)
  loss_B = -jnp.sum(weights_BxK * log_accumulated_BxK, axis=-1)
  return _finish(loss_B, labels_B, num_classes, where, logits_BxK.dtype)


def _cdf_difference(logits_BxK: jax.Array, labels_B: jax.Array,
                    num_classes: int, dtype: DTypeLike) -> jax.Array:
  """F_p(k) - F_y(k) for k in [0, K), shape [..., K]."""
  probs_BxK = jax.nn.softmax(logits_BxK.astype(dtype), axis=-1)
  label_cdf_BxK = (_class_grid(num_classes, labels_B.ndim) >=
                   labels_B[..., None]).astype(dtype)
  return jnp.cumsum(probs_BxK, axis=-1) - label_cdf_BxK


def _distance_weighted_log_one_minus_p(
    logits_BxK: jax.Array, labels_B: jax.Array, distance_KxK: jax.Array,
    power: ArrayLike, where: ArrayLike | None) -> jax.Array:
  """-sum_j C[y, j]^power log(1 - p_j), stable at saturated logits."""
  num_classes = logits_BxK.shape[-1]
  dtype = _compute_dtype(logits_BxK.dtype)
  others_BxKxK = ~jnp.eye(num_classes, dtype=bool).reshape(
      (1,) * labels_B.ndim + (num_classes, num_classes))
  log_rest_BxK = _masked_log_mass(logits_BxK.astype(dtype), others_BxKxK)
  weights_BxK = _gather_rows(distance_KxK.astype(dtype), labels_B)**power
  loss_B = -jnp.sum(weights_BxK * log_rest_BxK, axis=-1)
  return _finish(loss_B, labels_B, num_classes, where, logits_BxK.dtype)


def _masked_log_mass(logits_BxK: jax.Array,
                     mask_BxKxK: jax.Array) -> jax.Array:
  """log of the softmax mass on the classes ``mask[..., i, :]`` selects.

  Row ``i`` is ``logsumexp_{j in mask_i} z_j - logsumexp_j z_j``: finite (and
  with a finite gradient) for logits of magnitude 1e4, where the mass itself
  rounds to 0 or 1.
  """
  masked_BxKxK = jnp.where(mask_BxKxK, logits_BxK[..., None, :], -jnp.inf)
  return jax.nn.logsumexp(masked_BxKxK, axis=-1) - jax.nn.logsumexp(
      logits_BxK, axis=-1, keepdims=True)


# ----------------------------------------------------------------------------
# Soft-label targets: one matrix of target distributions, one loss.


def soft_target_cross_entropy(logits: ArrayLike, labels: ArrayLike, *,
                              targets: ArrayLike, axis: int = -1,
                              where: ArrayLike | None = None) -> jax.Array:
  r"""Cross-entropy against row ``y`` of a matrix of target distributions.

  .. math::
    \ell = -\sum_j Q_{y j} \log p_j

  ``Q`` is any ``[K, K]`` matrix whose rows are distributions, usually one
  from :func:`soft_label_matrix`. The identity matrix gives cross-entropy.

  Args:
    logits: unnormalized log probabilities, shape ``[..., K]``.
    labels: integer classes in ``[0, K)``, shape ``[...]``.
    targets: ``Q``, shape ``[K, K]``, non-negative rows that sum to 1
      (checked when concrete).
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
      logits, labels, axis=axis, where=where)
  values_KxK = _check_square_matrix(targets, num_classes=num_classes,
                                    name='targets')
  if values_KxK is not None and not np.allclose(values_KxK.sum(axis=1), 1.0,
                                                atol=1e-4):
    raise ValueError('targets: every row must sum to 1 (a distribution over '
                     'the classes).')
  return _soft_target_cross_entropy(logits_BxK, labels_B, jnp.asarray(targets),
                                    num_classes, where)


def _soft_labels_from_distance(distance_KxK: jax.Array,
                               temperature: ArrayLike) -> jax.Array:
  """Row y: softmax_j(-C[y, j] / T), SORD's targets."""
  return jax.nn.softmax(-distance_KxK / temperature, axis=-1)


def _smoothed(targets_KxK: jax.Array, epsilon: ArrayLike) -> jax.Array:
  """(1 - epsilon) one-hot + epsilon targets, row by row."""
  identity_KxK = jnp.eye(targets_KxK.shape[0], dtype=targets_KxK.dtype)
  share = jnp.asarray(epsilon, targets_KxK.dtype)
  return (1 - share) * identity_KxK + share * targets_KxK


def _soft_target_cross_entropy(logits_BxK: jax.Array, labels_B: jax.Array,
                               targets_KxK: jax.Array, num_classes: int,
                               where: ArrayLike | None) -> jax.Array:
  dtype = _compute_dtype(logits_BxK.dtype)
  log_probs_BxK = jax.nn.log_softmax(logits_BxK.astype(dtype), axis=-1)
  targets_BxK = _gather_rows(targets_KxK.astype(dtype), labels_B)
  loss_B = -jnp.sum(targets_BxK * log_probs_BxK, axis=-1)
  return _finish(loss_B, labels_B, num_classes, where, logits_BxK.dtype)


#: The families :func:`soft_label_matrix` builds (dlordinal's six, then a
#: von Mises family on the circle).
SOFT_LABEL_FAMILIES = ('exponential', 'binomial', 'poisson', 'beta',
                       'triangular', 'geometric', 'von_mises')


def soft_label_matrix(family: str, num_classes: int,
                      **params: float) -> jax.Array:
  r"""Unimodal target distributions for every label, as a ``[K, K]`` matrix.

  Row ``y`` is the target distribution for label ``y``; every row sums to 1.
  The parameters must be concrete numbers (the matrix is built on the host).
  The first six families equal dlordinal 2.7's ``get_<family>_soft_labels``
  with the same parameters and defaults:

  - ``'exponential'`` (``p=1``, ``tau=1``): ``softmax_j(-|j - y|^p / tau)``,
    the targets of :func:`soft_label_cross_entropy` with ``linear_distance``.
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

  >>> q = soft_label_matrix('binomial', 3)  # Binomial(2, 0.1) for label 0
  >>> q.shape, [round(float(p), 4) for p in q[0]]
  ((3, 3), [0.81, 0.18, 0.01])

  References:
    Liu et al., Neurocomputing 2020 (binomial, Poisson, exponential);
    Vargas et al., "Unimodal regularisation based on beta distribution for
    deep ordinal regression", Pattern Recognit. 2022; Vargas et al., "Soft
    labelling based on triangular distributions for ordinal classification",
    Inf. Fusion 2023; Haas & Hüllermeier, "A geometric framework for ordinal
    regression", 2023 (geometric).
  """
  builders: dict[str, Callable[..., ArrayLike]] = {
      'exponential': _exponential_soft_labels,
      'binomial': _binomial_soft_labels, 'poisson': _poisson_soft_labels,
      'beta': _beta_soft_labels, 'triangular': _triangular_soft_labels,
      'geometric': _geometric_soft_labels,
      'von_mises': _von_mises_soft_labels}
  if family not in builders:
    raise ValueError(f'unknown family {family!r}; choose '
                     f'one of {", ".join(SOFT_LABEL_FAMILIES)}.')
  _check_num_classes(num_classes)
  builder = builders[family]
  bound = _bind(family, builder, params)
  matrix_KxK = jnp.asarray(builder(int(num_classes), **bound), jnp.float32)
  return matrix_KxK / matrix_KxK.sum(axis=1, keepdims=True)


def _exponential_soft_labels(k: int, *, p: float = 1.0,
                             tau: float = 1.0) -> jax.Array:
  _check_positive('p', p)
  _check_positive('tau', tau)
  return _soft_labels_from_distance(linear_distance(k, power=p), tau)


def _binomial_soft_labels(k: int) -> jax.Array:
  q_Kx1 = jnp.linspace(0.1, 0.9, k)[:, None]
  return jnp.exp(_log_binomial_pmf(jnp.log(q_Kx1), jnp.log1p(-q_Kx1), k))


def _poisson_soft_labels(k: int) -> jax.Array:
  rate_Kx1 = jnp.arange(1.0, k + 1.0)[:, None]
  return jax.nn.softmax(jnp.exp(_log_poisson_pmf(rate_Kx1, k)), axis=1)


def _interval_edges(k: int) -> np.ndarray:
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


def _beta_soft_labels(k: int) -> np.ndarray:
  # Imported here: only this family needs scipy (jax's float32 betainc is
  # 7e-6 off dlordinal), and `import losses` stays light.
  import scipy.special
  if k not in _BETA_PARAMS:
    raise ValueError("family 'beta' has published "
                     f'parameters for 3 to 14 classes, not {k}.')
  edges = _interval_edges(k)
  return np.array([np.diff(scipy.special.betainc(a, b, edges))
                   for a, b in _BETA_PARAMS[k]])


def _triangular_cdf(x: float, a: float, b: float, c: float) -> float:
  if x <= a:
    return 0.0
  if a < x < c:
    return (x - a)**2 / ((b - a) * (c - a))
  if c < x < b:
    return 1 - (b - x)**2 / ((b - a) * (b - c))
  return 1.0


def _triangular_soft_labels(k: int, *, alpha2: float = 0.01) -> np.ndarray:
  """Vargas et al. 2023: triangles placed so each neighbour gets ``alpha2``."""
  if not 0 < alpha2 < 0.5:
    raise ValueError('alpha2 must lie in (0, 0.5), got '
                     f'{alpha2!r}.')
  root = math.sqrt(2 * alpha2)
  c_minus = (1 - 2 * alpha2) * (2 * alpha2 - root)
  alpha1 = ((1 - math.sqrt(1 - 4 * c_minus)) / 2)**2
  c1 = ((k - 1) / k)**2 * (1 - 2 * alpha2) * (root * (-1 + root))
  alpha3 = ((1 - math.sqrt(1 - 4 * c1)) / 2)**2
  den = 2.0 * k * (1 - 2 * alpha2)

  def lower(j: int) -> float:  # a_j: the root that lies below (j - 1) / K
    base = 2.0 * j - 2 - 4 * j * alpha2 + 2 * alpha2
    return (base + root) / den if (base + root) / den < (j - 1.0) / k else (
        base - root) / den

  def upper(j: int) -> float:  # b_j: the root that lies above j / K
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


def _geometric_soft_labels(k: int, *, alpha: float = 0.1) -> jax.Array:
  if not 0 <= alpha < 1:
    raise ValueError(f'alpha must lie in [0, 1), got '
                     f'{alpha!r}.')
  if alpha == 0:
    return jnp.eye(k)
  offsets_KxK = _class_offsets(k)
  decay_KxK = jnp.where(offsets_KxK > 0, alpha**offsets_KxK, 0.0)
  return jnp.where(offsets_KxK == 0, 1 - alpha,
                   alpha * decay_KxK / decay_KxK.sum(axis=1, keepdims=True))


def _von_mises_soft_labels(k: int, *, kappa: float = 5.0) -> jax.Array:
  _check_positive('kappa', kappa)
  # The angle between two classes from their whole number of steps apart on
  # the circle, so that every row is exactly a rotation of the first.
  angles_KxK = (2 * math.pi / k) * cyclic_distance(k)
  return jax.nn.softmax(kappa * jnp.cos(angles_KxK), axis=1)


# ----------------------------------------------------------------------------
# Rank-consistent binary decompositions (T = K - 1 outputs).


def coral_loss(outputs: ArrayLike, labels: ArrayLike, *, axis: int = -1,
               where: ArrayLike | None = None) -> jax.Array:
  r"""CORAL: K - 1 binary tasks "is the label greater than k?".

  .. math::
    \ell = -\sum_{k=0}^{K-2} \big[ t_k \log \sigma(z_k)
      + (1 - t_k) \log(1 - \sigma(z_k)) \big], \qquad t_k = [y > k]

  Rank consistency (``sigma(z_k)`` decreasing in ``k``) comes from the
  model's last layer sharing one weight vector across the ``K - 1`` outputs,
  each with its own bias; see ``model.py``.

  Args:
    outputs: the ``K - 1`` task outputs, shape ``[..., K - 1]``.
    labels: integer classes in ``[0, K)``, shape ``[...]``.
    axis: the task axis of ``outputs``.
    where: optional boolean mask of shape ``[...]``; masked examples give 0.

  Returns:
    Per-example losses, shape ``[...]``.

  >>> round(float(coral_loss(jnp.array([0., 0.]), jnp.array(1))), 4)
  1.3863

  References:
    Cao, Mirjalili & Raschka, "Rank consistent ordinal regression for neural
    networks with application to age estimation", Pattern Recognit. Lett.
    2020.
  """
  outputs_BxT, labels_B, num_classes = _check_inputs(
      outputs, labels, axis=axis, where=where, tasks=True)
  dtype = _compute_dtype(outputs_BxT.dtype)
  targets_BxT = (labels_B[..., None] >
                 _class_grid(num_classes - 1, labels_B.ndim)).astype(dtype)
  bce_BxT = optax.sigmoid_binary_cross_entropy(outputs_BxT.astype(dtype),
                                               targets_BxT)
  loss_B = jnp.sum(bce_BxT, axis=-1)
  return _finish(loss_B, labels_B, num_classes, where, outputs_BxT.dtype)


def corn_loss(outputs: ArrayLike, labels: ArrayLike, *, axis: int = -1,
              where: ArrayLike | None = None) -> jax.Array:
  r"""CORN: conditional binary tasks "is y > k, given y > k - 1?".

  .. math::
    \ell = \sum_{k=0}^{\min(y, K-2)} \mathrm{BCE}\big(z_k, [y > k]\big)

  Task ``k`` is trained only on examples whose label is at least ``k``, so
  the product of the conditional probabilities is rank consistent for any
  model. The original normalises by the total number of (example, task) pairs
  in the batch; this per-example form sums over the tasks an example takes
  part in, which differs from it by a batch-level constant factor.

  Args:
    outputs: the ``K - 1`` task outputs, shape ``[..., K - 1]``.
    labels: integer classes in ``[0, K)``, shape ``[...]``.
    axis: the task axis of ``outputs``.
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
  outputs_BxT, labels_B, num_classes = _check_inputs(
      outputs, labels, axis=axis, where=where, tasks=True)
  dtype = _compute_dtype(outputs_BxT.dtype)
  tasks_BxT = _class_grid(num_classes - 1, labels_B.ndim)
  targets_BxT = (labels_B[..., None] > tasks_BxT).astype(dtype)
  active_BxT = labels_B[..., None] >= tasks_BxT
  bce_BxT = optax.sigmoid_binary_cross_entropy(outputs_BxT.astype(dtype),
                                               targets_BxT)
  loss_B = jnp.sum(jnp.where(active_BxT, bce_BxT, 0.0), axis=-1)
  return _finish(loss_B, labels_B, num_classes, where, outputs_BxT.dtype)


def coral_probs(outputs: ArrayLike, *, axis: int = -1) -> jax.Array:
  r"""Class probabilities from CORAL's ``K - 1`` task outputs.

  ``p_k = P(y > k - 1) - P(y > k)`` with ``P(y > k) = sigma(z_k)``. If the
  outputs are not rank consistent (a model without CORAL's shared-weight
  head), negative differences are clipped to 0 and the result renormalised.

  Args:
    outputs: shape ``[..., K - 1]``.
    axis: the task axis.

  Returns:
    Probabilities of shape ``[..., K]`` (class axis last).

  >>> coral_probs(jnp.array([0., 0.]))
  Array([0.5, 0. , 0.5], dtype=float32)
  """
  outputs_BxT, _, _ = _check_inputs(outputs, axis=axis, tasks=True)
  probs_BxK = jnp.maximum(
      _probs_from_exceedance(jax.nn.sigmoid(outputs_BxT)), 0.0)
  return probs_BxK / jnp.sum(probs_BxK, axis=-1, keepdims=True)


def corn_probs(outputs: ArrayLike, *, axis: int = -1) -> jax.Array:
  r"""Class probabilities from CORN's ``K - 1`` conditional task outputs.

  ``P(y > k) = prod_{i <= k} sigma(z_i)``, and
  ``p_k = P(y > k - 1) - P(y > k)``.

  Args:
    outputs: shape ``[..., K - 1]``.
    axis: the task axis.

  Returns:
    Probabilities of shape ``[..., K]`` (class axis last).

  >>> corn_probs(jnp.array([0., 0.]))
  Array([0.5 , 0.25, 0.25], dtype=float32)
  """
  outputs_BxT, _, _ = _check_inputs(outputs, axis=axis, tasks=True)
  exceed_BxT = jnp.exp(jnp.cumsum(jax.nn.log_sigmoid(outputs_BxT), axis=-1))
  return _probs_from_exceedance(exceed_BxT)


def _probs_from_exceedance(exceed_BxT: jax.Array) -> jax.Array:
  """P(y > k) for k < K - 1 -> class probabilities, shape [..., K]."""
  ones_Bx1 = jnp.ones_like(exceed_BxT[..., :1])
  zeros_Bx1 = jnp.zeros_like(exceed_BxT[..., :1])
  at_least_BxK = jnp.concatenate([ones_Bx1, exceed_BxT], axis=-1)
  above_BxK = jnp.concatenate([exceed_BxT, zeros_Bx1], axis=-1)
  return at_least_BxK - above_BxK


# ----------------------------------------------------------------------------
# Ordinal output heads: raw outputs -> class probabilities, and their NLL.


def _logit_link(z: jax.Array) -> tuple[jax.Array, jax.Array]:
  return jax.nn.log_sigmoid(z), jax.nn.log_sigmoid(-z)


def _probit_link(z: jax.Array) -> tuple[jax.Array, jax.Array]:
  return (jax.scipy.stats.norm.logcdf(z), jax.scipy.stats.norm.logcdf(-z))


def _cloglog_link(z: jax.Array) -> tuple[jax.Array, jax.Array]:
  # F(z) = 1 - exp(-e^z): log(1 - F) = -e^z (capped so that it stays finite),
  # log F = log(1 - exp(-e^z)), which is z itself to float precision far left.
  log_sf = -jnp.exp(jnp.minimum(z, 50.0))
  log_cdf = jnp.where(z < -20.0, z,
                      _log1mexp(jnp.exp(jnp.clip(z, -20.0, 50.0))))
  return log_cdf, log_sf


#: The CLM head's links: link name -> z -> (log F(z), log(1 - F(z))).
CLM_LINKS: dict[str, Callable[[jax.Array], tuple[jax.Array, jax.Array]]] = {
    'logit': _logit_link, 'probit': _probit_link, 'cloglog': _cloglog_link}


def clm_probs(outputs: ArrayLike, *, link: str, axis: int = -1) -> jax.Array:
  r"""Class probabilities of a cumulative link model (CLM).

  .. math::
    P(y \le k) = F(z_k), \quad z_k = \theta_k - f, \qquad
    p_k = F(z_k) - F(z_{k-1})

  for ``K - 1`` non-decreasing thresholds ``theta`` and a one-dimensional
  projection ``f`` of the input, with ``F`` the logistic (``'logit'``),
  standard normal (``'probit'``) or complementary log-log
  (``1 - exp(-e^z)``, ``'cloglog'``) distribution function. The model keeps
  the thresholds ordered by construction (``model.py``: first threshold plus
  cumulative squares); for unordered ``outputs`` the negative differences are
  floored near 0 and the result renormalised.

  Args:
    outputs: ``theta - f``, shape ``[..., K - 1]``.
    link: ``'logit'``, ``'probit'`` or ``'cloglog'``.
    axis: the threshold axis of ``outputs``.

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
  outputs_BxT, _, _ = _check_inputs(outputs, axis=axis, tasks=True)
  _check_link(link)
  dtype = _compute_dtype(outputs_BxT.dtype)
  probs_BxK = jnp.exp(_clm_log_probs(outputs_BxT.astype(dtype), link))
  probs_BxK = probs_BxK / jnp.sum(probs_BxK, axis=-1, keepdims=True)
  return probs_BxK.astype(outputs_BxT.dtype)


def clm_loss(outputs: ArrayLike, labels: ArrayLike, *, link: str,
             axis: int = -1, where: ArrayLike | None = None) -> jax.Array:
  r"""Negative log-likelihood of a cumulative link model, ``-log p_y``.

  See :func:`clm_probs`. The class probability is a difference of two
  distribution-function values; it is taken in log space (lower tail with
  ``F``, upper tail with ``1 - F``), so value and gradient stay finite for
  ``outputs`` of magnitude 1e4.

  Args:
    outputs: ``theta - f``, shape ``[..., K - 1]``.
    labels: integer classes in ``[0, K)``, shape ``[...]``.
    link: ``'logit'``, ``'probit'`` or ``'cloglog'``.
    axis: the threshold axis of ``outputs``.
    where: optional boolean mask of shape ``[...]``; masked examples give 0.

  Returns:
    Per-example losses, shape ``[...]``.

  >>> round(float(clm_loss(jnp.array([0., 0.]), jnp.array(0),
  ...                      link='logit')), 4)
  0.6931

  References:
    Vargas, Gutiérrez & Hervás-Martínez, Neurocomputing 2020.
  """
  outputs_BxT, labels_B, num_classes = _check_inputs(
      outputs, labels, axis=axis, where=where, tasks=True)
  _check_link(link)
  dtype = _compute_dtype(outputs_BxT.dtype)
  log_probs_BxK = _clm_log_probs(outputs_BxT.astype(dtype), link)
  return _nll(log_probs_BxK, labels_B, num_classes, where, outputs_BxT.dtype)


def _check_link(link: str) -> None:
  if link not in CLM_LINKS:
    raise ValueError(f'link must be one of '
                     f'{", ".join(CLM_LINKS)}, got {link!r}.')


def _clm_log_probs(z_BxT: jax.Array, link: str) -> jax.Array:
  """log P(y = k) = log(F(z_k) - F(z_{k-1})), with F(z_{-1}) = 0, F(z_T) = 1.

  The difference is taken in log space, with F where z_{k-1} <= 0 and with
  the survival function 1 - F above, where F rounds to 1. The padding's
  infinite gaps give log1mexp(inf) = 0, with a zero gradient.
  """
  log_cdf_BxT, log_sf_BxT = CLM_LINKS[link](z_BxT)
  # Class k lies between z_{k-1} and z_k: pad log F and log(1 - F) with their
  # values at -inf and +inf to have both bounds for every class.
  zero_Bx1 = jnp.zeros_like(z_BxT[..., :1])
  minus_inf_Bx1 = jnp.full_like(zero_Bx1, -jnp.inf)
  log_cdf_BxK = jnp.concatenate([log_cdf_BxT, zero_Bx1], axis=-1)
  log_cdf_below_BxK = jnp.concatenate([minus_inf_Bx1, log_cdf_BxT], axis=-1)
  log_sf_BxK = jnp.concatenate([log_sf_BxT, minus_inf_Bx1], axis=-1)
  log_sf_below_BxK = jnp.concatenate([zero_Bx1, log_sf_BxT], axis=-1)
  via_cdf_BxK = log_cdf_BxK + _log1mexp(log_cdf_BxK - log_cdf_below_BxK)
  via_sf_BxK = log_sf_below_BxK + _log1mexp(log_sf_below_BxK - log_sf_BxK)
  upper_BxK = jnp.concatenate([zero_Bx1 > 0, z_BxT > 0], axis=-1)
  return jnp.where(upper_BxK, via_sf_BxK, via_cdf_BxK)


def binomial_probs(outputs: ArrayLike, *, num_classes: int,
                   axis: int = -1) -> jax.Array:
  r"""Binomial head: ``P(j) = Binomial(j; K - 1, sigmoid(score))``.

  One output decides the whole unimodal distribution: its mode moves from
  class 0 to class ``K - 1`` as the score grows.

  Args:
    outputs: the score, shape ``[..., 1]``.
    num_classes: ``K >= 2``.
    axis: the axis of ``outputs`` that has size 1.

  Returns:
    Probabilities of shape ``[..., K]`` (class axis last).

  >>> binomial_probs(jnp.array([0.]), num_classes=3)
  Array([0.25, 0.5 , 0.25], dtype=float32)

  References:
    da Costa, Alonso, Cardoso & Pinto, "The unimodal model for the
    classification of ordinal data", Neural Networks 2008; Liu et al.,
    Neurocomputing 2020.
  """
  outputs_Bx1, _, _ = _check_inputs(
      outputs, axis=axis, num_classes=num_classes, num_outputs=1)
  dtype = _compute_dtype(outputs_Bx1.dtype)
  log_probs_BxK = _binomial_head_log_probs(outputs_Bx1.astype(dtype),
                                           num_classes)
  return jnp.exp(log_probs_BxK).astype(outputs_Bx1.dtype)


def binomial_loss(outputs: ArrayLike, labels: ArrayLike, *, num_classes: int,
                  axis: int = -1, where: ArrayLike | None = None) -> jax.Array:
  r"""Negative log-likelihood of the binomial head, ``-log P(y)``.

  See :func:`binomial_probs`; computed from log-sigmoids, finite at scores of
  magnitude 1e4.

  Args:
    outputs: the score, shape ``[..., 1]``.
    labels: integer classes in ``[0, K)``, shape ``[...]``.
    num_classes: ``K >= 2``.
    axis: the axis of ``outputs`` that has size 1.
    where: optional boolean mask of shape ``[...]``; masked examples give 0.

  Returns:
    Per-example losses, shape ``[...]``.

  >>> round(float(binomial_loss(jnp.array([0.]), jnp.array(1),
  ...                           num_classes=3)), 4)  # -log 0.5
  0.6931
  """
  outputs_Bx1, labels_B, _ = _check_inputs(
      outputs, labels, axis=axis, where=where, num_classes=num_classes,
      num_outputs=1)
  dtype = _compute_dtype(outputs_Bx1.dtype)
  log_probs_BxK = _binomial_head_log_probs(outputs_Bx1.astype(dtype),
                                           num_classes)
  return _nll(log_probs_BxK, labels_B, num_classes, where, outputs_Bx1.dtype)


def _binomial_head_log_probs(score_Bx1: jax.Array,
                             num_classes: int) -> jax.Array:
  return _log_binomial_pmf(jax.nn.log_sigmoid(score_Bx1),
                           jax.nn.log_sigmoid(-score_Bx1), num_classes)


def copoc_probs(outputs: ArrayLike, *, axis: int = -1) -> jax.Array:
  r"""COPOC head (Dey, Merugu & Kaveri, NeurIPS 2023): unimodal probabilities
  from K unconstrained outputs.

  .. math::
    v_1 = \eta_1,\quad v_k = |\eta_k|\ (k > 1), \qquad
    r_k = \sum_{j \le k} v_j, \qquad p = \mathrm{softmax}(-|r|)

  The partial sums ``r`` never fall, so ``-|r|`` rises while ``r < 0`` and
  falls after: every output is unimodal, so every set of classes above a
  probability threshold is an interval (the paper's conformal sets).
  dlordinal's ``COPOC`` layer with its default transforms, then a softmax.

  Args:
    outputs: ``eta``, shape ``[..., K]``.
    axis: the class axis of ``outputs``.

  Returns:
    Probabilities of shape ``[..., K]`` (class axis last).

  >>> [round(float(p), 4) for p in copoc_probs(jnp.array([-1., 1., 1.]))]
  [0.2119, 0.5761, 0.2119]

  References:
    Dey, Merugu & Kaveri, "Conformal Prediction Sets for Ordinal
    Classification", NeurIPS 2023.
  """
  outputs_BxK, _, _ = _check_inputs(outputs, axis=axis)
  dtype = _compute_dtype(outputs_BxK.dtype)
  return jax.nn.softmax(_copoc_logits(outputs_BxK.astype(dtype)),
                        axis=-1).astype(outputs_BxK.dtype)


def copoc_loss(outputs: ArrayLike, labels: ArrayLike, *, axis: int = -1,
               where: ArrayLike | None = None) -> jax.Array:
  r"""Negative log-likelihood of the COPOC head, ``-log P(y)``.

  See :func:`copoc_probs`.

  Args:
    outputs: ``eta``, shape ``[..., K]``.
    labels: integer classes in ``[0, K)``, shape ``[...]``.
    axis: the class axis of ``outputs``.
    where: optional boolean mask of shape ``[...]``; masked examples give 0.

  Returns:
    Per-example losses, shape ``[...]``.

  >>> round(float(copoc_loss(jnp.array([-1., 1., 1.]), jnp.array(2))), 4)
  1.5514
  """
  outputs_BxK, labels_B, num_classes = _check_inputs(
      outputs, labels, axis=axis, where=where)
  dtype = _compute_dtype(outputs_BxK.dtype)
  log_probs_BxK = jax.nn.log_softmax(
      _copoc_logits(outputs_BxK.astype(dtype)), axis=-1)
  return _nll(log_probs_BxK, labels_B, num_classes, where, outputs_BxK.dtype)


def _copoc_logits(eta_BxK: jax.Array) -> jax.Array:
  steps_BxK = jnp.concatenate([eta_BxK[..., :1], jnp.abs(eta_BxK[..., 1:])],
                              axis=-1)
  return -jnp.abs(jnp.cumsum(steps_BxK, axis=-1))


def poisson_probs(outputs: ArrayLike, *, num_classes: int,
                  temperature: ArrayLike = 1.0, axis: int = -1) -> jax.Array:
  r"""Poisson head: ``softmax_j(log Poisson(j; softplus(score)) / T)``.

  The rate ``softplus(score)`` places the mode; the temperature ``T`` sets
  how peaked the distribution is. A model that learns ``T``, as dlordinal
  does, uses :func:`poisson_head_probs`.

  Args:
    outputs: the score, shape ``[..., 1]``.
    num_classes: ``K >= 2``.
    temperature: ``T > 0``: a number, or an array of the batch shape.
    axis: the axis of ``outputs`` that has size 1.

  Returns:
    Probabilities of shape ``[..., K]`` (class axis last).

  >>> score = jnp.log(jnp.e - 1)  # a rate softplus(score) of 1
  >>> [round(float(p), 4) for p in poisson_probs(jnp.array([score]),
  ...                                              num_classes=3)]
  [0.4, 0.4, 0.2]

  References:
    Beckham & Pal, "Unimodal probability distributions for deep ordinal
    classification", ICML 2017.
  """
  outputs_Bx1, _, _ = _check_inputs(
      outputs, axis=axis, num_classes=num_classes, num_outputs=1)
  temperature_Bx1 = _temperature_column(temperature,
                                        outputs_Bx1.shape[:-1])
  dtype = _compute_dtype(outputs_Bx1.dtype)
  log_probs_BxK = _poisson_head_log_probs(
      outputs_Bx1.astype(dtype), temperature_Bx1.astype(dtype), num_classes)
  return jnp.exp(log_probs_BxK).astype(outputs_Bx1.dtype)


def poisson_loss(outputs: ArrayLike, labels: ArrayLike, *, num_classes: int,
                 temperature: ArrayLike = 1.0, axis: int = -1,
                 where: ArrayLike | None = None) -> jax.Array:
  r"""Negative log-likelihood of the Poisson head; see :func:`poisson_probs`.

  Args:
    outputs: the score, shape ``[..., 1]``.
    labels: integer classes in ``[0, K)``, shape ``[...]``.
    num_classes: ``K >= 2``.
    temperature: ``T > 0``: a number, or an array of the batch shape.
    axis: the axis of ``outputs`` that has size 1.
    where: optional boolean mask of shape ``[...]``; masked examples give 0.

  Returns:
    Per-example losses, shape ``[...]``.

  >>> round(float(poisson_loss(jnp.array([jnp.log(jnp.e - 1)]), jnp.array(2),
  ...                          num_classes=3)), 4)  # -log 0.2
  1.6094
  """
  outputs_Bx1, labels_B, _ = _check_inputs(
      outputs, labels, axis=axis, where=where, num_classes=num_classes,
      num_outputs=1)
  temperature_Bx1 = _temperature_column(temperature,
                                        labels_B.shape)
  dtype = _compute_dtype(outputs_Bx1.dtype)
  log_probs_BxK = _poisson_head_log_probs(
      outputs_Bx1.astype(dtype), temperature_Bx1.astype(dtype), num_classes)
  return _nll(log_probs_BxK, labels_B, num_classes, where, outputs_Bx1.dtype)


# The learned log temperature is clipped to this range before exp, so that the
# head's loss and gradient stay finite at any output: T from 4.5e-5 to 2.2e4.
_LOG_TEMPERATURE_RANGE = (-10.0, 10.0)


def poisson_head_outputs(score: ArrayLike,
                         log_temperature: ArrayLike) -> jax.Array:
  """Packs the outputs of a Poisson head that learns its temperature.

  The layout, read by :func:`poisson_head_probs` and
  :func:`poisson_head_loss`: ``[..., 2]`` holding the score (entry 0) and
  ``log T`` (entry 1). Those two clip ``log T`` to ``[-10, 10]`` before
  taking ``T = exp(log T)``, so value and gradient stay finite for any
  output; the gradient of ``log T`` is 0 outside that range.

  Args:
    score: the head's score, shape ``[..., 1]``.
    log_temperature: the learned ``log T``, broadcastable to ``score``'s shape
      (a learned parameter of shape ``[1]``, say).

  Returns:
    The head's outputs, shape ``[..., 2]``.

  >>> poisson_head_outputs(jnp.array([[0.5], [2.0]]), jnp.zeros(1))
  Array([[0.5, 0. ],
         [2. , 0. ]], dtype=float32)
  """
  score_Bx1 = jnp.asarray(score)
  log_temperature_Bx1 = jnp.broadcast_to(log_temperature, score_Bx1.shape)
  return jnp.concatenate([score_Bx1, log_temperature_Bx1], axis=-1)


def poisson_head_probs(outputs: ArrayLike, *, num_classes: int,
                       axis: int = -1) -> jax.Array:
  """:func:`poisson_probs` with the temperature the model learned.

  Args:
    outputs: :func:`poisson_head_outputs`' layout, shape ``[..., 2]``.
    num_classes: ``K >= 2``.
    axis: the axis of ``outputs`` that has size 2.

  Returns:
    Probabilities of shape ``[..., K]`` (class axis last).

  >>> poisson_head_probs(jnp.array([0., 0.]), num_classes=3).shape
  (3,)
  """
  outputs_Bx2, _, _ = _check_inputs(
      outputs, axis=axis, num_classes=num_classes, num_outputs=2)
  dtype = _compute_dtype(outputs_Bx2.dtype)
  log_probs_BxK = _poisson_head_log_probs(
      *_split_poisson_outputs(outputs_Bx2.astype(dtype)), num_classes)
  return jnp.exp(log_probs_BxK).astype(outputs_Bx2.dtype)


def poisson_head_loss(outputs: ArrayLike, labels: ArrayLike, *,
                      num_classes: int, axis: int = -1,
                      where: ArrayLike | None = None) -> jax.Array:
  """:func:`poisson_loss` with the temperature the model learned.

  Args:
    outputs: :func:`poisson_head_outputs`' layout, shape ``[..., 2]``.
    labels: integer classes in ``[0, K)``, shape ``[...]``.
    num_classes: ``K >= 2``.
    axis: the axis of ``outputs`` that has size 2.
    where: optional boolean mask of shape ``[...]``; masked examples give 0.

  Returns:
    Per-example losses, shape ``[...]``.

  >>> round(float(poisson_head_loss(jnp.array([jnp.log(jnp.e - 1), 0.]),
  ...                               jnp.array(2), num_classes=3)), 4)
  1.6094
  """
  outputs_Bx2, labels_B, _ = _check_inputs(
      outputs, labels, axis=axis, where=where, num_classes=num_classes,
      num_outputs=2)
  dtype = _compute_dtype(outputs_Bx2.dtype)
  log_probs_BxK = _poisson_head_log_probs(
      *_split_poisson_outputs(outputs_Bx2.astype(dtype)), num_classes)
  return _nll(log_probs_BxK, labels_B, num_classes, where, outputs_Bx2.dtype)


def _split_poisson_outputs(
    outputs_Bx2: jax.Array) -> tuple[jax.Array, jax.Array]:
  """:func:`poisson_head_outputs`' layout -> (score, T), each ``[..., 1]``."""
  log_temperature_Bx1 = jnp.clip(outputs_Bx2[..., 1:], *_LOG_TEMPERATURE_RANGE)
  return outputs_Bx2[..., :1], jnp.exp(log_temperature_Bx1)


def _temperature_column(temperature: ArrayLike,
                        batch_shape: tuple[int, ...]) -> jax.Array:
  """A number or a ``[...]`` array of temperatures as ``[..., 1]``."""
  _check_positive('temperature', temperature)
  temperature_B = jnp.asarray(temperature, jnp.float32)
  if temperature_B.ndim == 0:
    return temperature_B.reshape((1,) * (len(batch_shape) + 1))
  if temperature_B.shape != tuple(batch_shape):
    raise ValueError(f'temperature must be a number or have the '
                     f'batch shape {tuple(batch_shape)}, got '
                     f'{temperature_B.shape}.')
  return temperature_B[..., None]


def _poisson_head_log_probs(score_Bx1: jax.Array, temperature_Bx1: jax.Array,
                            num_classes: int) -> jax.Array:
  # Rate clipped as dlordinal's PoissonLayer does: no overflow at +-1e4.
  rate_Bx1 = jnp.clip(jax.nn.softplus(score_Bx1), 1e-8, 1e4)
  return jax.nn.log_softmax(
      _log_poisson_pmf(rate_Bx1, num_classes) / temperature_Bx1, axis=-1)


def von_mises_probs(outputs: ArrayLike, *, num_classes: int,
                    kappa: ArrayLike = 1.0, axis: int = -1) -> jax.Array:
  r"""Circular head: class probabilities around a predicted angle.

  .. math::
    p_j \propto \exp\big(\kappa \cos(\hat\phi - 2\pi j / K)\big), \qquad
    \hat\phi = \operatorname{atan2}(o_2, o_1)

  The two outputs are read as (cos, sin) of the predicted angle, so class
  ``K - 1`` sits next to class 0 by construction, not by a cost matrix. Only
  their direction counts: their scale is divided out.

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
  outputs_Bx2, _, _ = _check_inputs(
      outputs, axis=axis, num_classes=num_classes, num_outputs=2)
  _check_positive('kappa', kappa)
  dtype = _compute_dtype(outputs_Bx2.dtype)
  cos_BxK = _cos_to_classes(outputs_Bx2.astype(dtype), num_classes)
  return jax.nn.softmax(kappa * cos_BxK, axis=-1).astype(outputs_Bx2.dtype)


def von_mises_loss(outputs: ArrayLike, labels: ArrayLike, *, num_classes: int,
                   kappa: ArrayLike = 1.0, axis: int = -1,
                   where: ArrayLike | None = None) -> jax.Array:
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
      num_outputs=2)
  _check_positive('kappa', kappa)
  dtype = _compute_dtype(outputs_Bx2.dtype)
  cos_BxK = _cos_to_classes(outputs_Bx2.astype(dtype), num_classes)
  cos_B = _take_label(cos_BxK, labels_B)
  loss_B = 1 - jnp.exp(kappa * (cos_B - 1))
  return _finish(loss_B, labels_B, num_classes, where, outputs_Bx2.dtype)


def _cos_to_classes(outputs_Bx2: jax.Array, num_classes: int) -> jax.Array:
  """cos(predicted angle - 2 pi j / K) for every class j, shape [..., K]."""
  angles_1xK = _class_angles(num_classes, outputs_Bx2.ndim - 1,
                             outputs_Bx2.dtype)
  # Normalising (cos, sin) instead of taking atan2 keeps the gradient
  # finite at the origin.
  norm_Bx1 = jnp.sqrt(jnp.sum(outputs_Bx2**2, axis=-1, keepdims=True) + _TINY)
  return (outputs_Bx2[..., :1] * jnp.cos(angles_1xK) +
          outputs_Bx2[..., 1:] * jnp.sin(angles_1xK)) / norm_Bx1


# ----------------------------------------------------------------------------
# Batch-level loss.


def weighted_kappa_loss(logits: ArrayLike, labels: ArrayLike, *,
                        distance: ArrayLike, stability: float = 1e-10,
                        axis: int = -1,
                        where: ArrayLike | None = None) -> jax.Array:
  r"""Weighted kappa loss over a whole batch; returns a **scalar**.

  .. math::
    O = \sum_b e_{y_b} p_b^\top, \quad
    E = \frac{1}{n} \Big(\sum_b e_{y_b}\Big) \Big(\sum_b p_b\Big)^\top, \quad
    \ell = \log \frac{\sum_{ij} W_{ij} O_{ij}}{\sum_{ij} W_{ij} E_{ij}}

  over the ``n`` examples ``b`` of the batch. ``log(1 - kappa)`` for the soft
  confusion matrix ``O``; minimising it maximises weighted kappa. Any weight
  matrix ``W`` works; quadratic kappa uses ``linear_distance(K, power=2)``.
  Unlike the other losses it does not decompose over examples, so it cannot
  be reduced by the caller.

  Args:
    logits: unnormalized log probabilities, shape ``[..., K]``.
    labels: integer classes in ``[0, K)``, shape ``[...]``.
    distance: weight matrix ``W`` of shape ``[K, K]``.
    stability: added to numerator and denominator so that a perfect batch
      stays finite (not a smoothing weight, which ``epsilon`` is elsewhere).
    axis: the class axis of ``logits``.
    where: optional boolean mask of shape ``[...]``; masked examples are left
      out of ``O`` and ``E``.

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
      logits, labels, axis=axis, where=where)
  weights_KxK = validate_distance(distance, num_classes=num_classes)
  dtype = _compute_dtype(logits_BxK.dtype)
  # One flat batch: O and E sum over every example.
  labels_B = labels_B.reshape(-1)
  keep_B = jnp.ones(labels_B.shape, dtype) if where is None else jnp.asarray(
      where).reshape(-1).astype(dtype)
  probs_BxK = jax.nn.softmax(logits_BxK.astype(dtype), axis=-1).reshape(
      -1, num_classes) * keep_B[:, None]
  onehot_BxK = jax.nn.one_hot(labels_B, num_classes,
                              dtype=dtype) * keep_B[:, None]
  observed_KxK = onehot_BxK.T @ probs_BxK
  expected_KxK = jnp.outer(onehot_BxK.sum(0), probs_BxK.sum(0)) / jnp.maximum(
      keep_B.sum(), 1.0)
  weights_KxK = weights_KxK.astype(dtype)
  loss = jnp.log((jnp.sum(weights_KxK * observed_KxK) + stability) /
                 (jnp.sum(weights_KxK * expected_KxK) + stability))
  in_range = jnp.all((labels_B >= 0) & (labels_B < num_classes))
  return jnp.where(in_range, loss, jnp.nan).astype(logits_BxK.dtype)


# ----------------------------------------------------------------------------
# Registry and mixing with cross-entropy.


class LossSpec(NamedTuple):
  """A registered loss and the function that reads its outputs as
  probabilities.

  Attributes:
    fn: the loss function.
    probs: maps the loss's outputs to class probabilities ``[..., K]``.

  The hyperparameters each takes are read from their signatures.
  """
  fn: Callable[..., jax.Array]
  probs: Callable[..., jax.Array] = _softmax_probs

  @property
  def hyperparams(self) -> tuple[str, ...]:
    """The keyword hyperparameters of ``fn``, those :func:`make_loss`
    takes."""
    return _hyperparams(self.fn)

  @property
  def probs_hyperparams(self) -> tuple[str, ...]:
    """The keyword hyperparameters of ``probs``, those :func:`make_probs`
    takes."""
    return _hyperparams(self.probs)

  @property
  def takes_logits(self) -> bool:
    """Whether ``fn`` reads softmax logits over the K classes (and so can be
    mixed with cross-entropy), by the signature rule."""
    return next(iter(inspect.signature(self.fn).parameters)) == 'logits'


#: The registry: every loss by name, with the function that reads its
#: outputs as probabilities (:func:`make_loss`, :func:`make_probs`).
LOSSES: dict[str, LossSpec] = {
    'cross_entropy': LossSpec(cross_entropy),
    'expected_value_mse': LossSpec(expected_value_mse),
    'circular_mse': LossSpec(circular_mse),
    'expected_cost': LossSpec(expected_cost),
    'soft_label_cross_entropy': LossSpec(soft_label_cross_entropy),
    'label_smoothing_cross_entropy': LossSpec(label_smoothing_cross_entropy),
    'soft_target_cross_entropy': LossSpec(soft_target_cross_entropy),
    'squared_emd': LossSpec(squared_emd),
    'circular_emd': LossSpec(circular_emd),
    'class_distance_weighted_ce': LossSpec(class_distance_weighted_ce),
    'slace': LossSpec(slace_loss),
    'coral': LossSpec(coral_loss, coral_probs),
    'corn': LossSpec(corn_loss, corn_probs),
    'clm': LossSpec(clm_loss, clm_probs),
    'binomial_head': LossSpec(binomial_loss, binomial_probs),
    'copoc_head': LossSpec(copoc_loss, copoc_probs),
    'poisson_head': LossSpec(poisson_head_loss, poisson_head_probs),
    'von_mises_head': LossSpec(von_mises_loss, von_mises_probs),
    'weighted_kappa': LossSpec(weighted_kappa_loss),
}


def get_loss(name: str) -> LossSpec:
  """Looks a loss up in :data:`LOSSES` by name, with a helpful error."""
  try:
    return LOSSES[name]
  except KeyError:
    raise ValueError(f'unknown loss {name!r}; choose one of: '
                     f'{", ".join(sorted(LOSSES))}.') from None


def make_loss(name: str, *, ce_weight: ArrayLike | None = None,
              **hyperparams: Any) -> Callable[..., jax.Array]:
  r"""Binds a registered loss to its hyperparameters, optionally mixed with CE.

  .. math::
    \ell_\lambda = \mathrm{CE} + \lambda\, \ell_{\text{name}}

  With ``ce_weight=None`` the loss is used alone; a concrete
  ``ce_weight=0`` gives exactly cross-entropy. A batch-level loss, mixed, is
  added to every example's CE so that the batch mean is
  ``mean CE + lambda * loss``. Numeric hyperparameters and ``ce_weight`` may
  be traced (``make_loss`` called inside ``jax.vmap`` over a sweep).

  Args:
    name: a key of :data:`LOSSES`.
    ce_weight: ``lambda >= 0``, or None for the loss alone; only for losses
      that take softmax ``logits``.
    **hyperparams: the loss's own hyperparameters, ``LOSSES[name].hyperparams``
      (e.g. ``distance``, ``temperature``, ``epsilon``); None means the loss's
      default.

  Returns:
    ``fn(outputs, labels, *, axis=-1, where=None) -> losses``, per example
    (or a scalar for a batch-level loss used alone), equal to the direct call.

  Raises:
    ValueError: for an unknown loss, a hyperparameter it does not take, a
      required one missing, or a mix of CE with a loss that has its own head.

  >>> loss_fn = make_loss('soft_label_cross_entropy', ce_weight=0.0,
  ...                     distance=linear_distance(3))
  >>> round(float(loss_fn(jnp.zeros(3), jnp.array(0))), 4)  # CE: log 3
  1.0986
  """
  spec = get_loss(name)
  bound = _bind(name, spec.fn, hyperparams)

  def loss_fn(outputs: ArrayLike, labels: ArrayLike, *, axis: int = -1,
              where: ArrayLike | None = None) -> jax.Array:
    return spec.fn(outputs, labels, **bound, axis=axis, where=where)

  if ce_weight is None:
    return loss_fn
  _check_positive('ce_weight', ce_weight, or_zero=True)
  if not spec.takes_logits:
    raise ValueError(f'loss {name!r} has its own output head, not softmax '
                     'logits, and cannot be mixed with cross-entropy; leave '
                     'ce_weight unset.')
  # The registered softmax losses are finite at any finite logits, so a
  # traced ce_weight of 0 gives CE + 0 * loss = CE exactly too.
  only_ce = not _is_traced(ce_weight) and np.all(np.asarray(ce_weight) == 0)

  def mixed_fn(logits: ArrayLike, labels: ArrayLike, *, axis: int = -1,
               where: ArrayLike | None = None) -> jax.Array:
    ce_B = cross_entropy(logits, labels, axis=axis, where=where)
    if only_ce:
      return ce_B
    mixed_B = ce_B + ce_weight * loss_fn(logits, labels, axis=axis,
                                         where=where)
    # A batch-level loss is one number added to every example, masked or not.
    return mixed_B if where is None else jnp.where(where, mixed_B, 0.0)

  return mixed_fn


def make_probs(name: str,
               **hyperparams: Any) -> Callable[..., jax.Array]:
  """Binds a registered loss's ``probs`` to its hyperparameters.

  Args:
    name: a key of :data:`LOSSES`.
    **hyperparams: the probs function's own hyperparameters,
      ``LOSSES[name].probs_hyperparams`` (e.g. ``num_classes``, ``link``,
      ``kappa``); None means its default. Numeric ones may be traced.

  Returns:
    ``fn(outputs, *, axis=-1) -> probabilities [..., K]``.

  Raises:
    ValueError: for an unknown loss, a hyperparameter its probs function does
      not take, or a required one missing.

  >>> probs = make_probs('binomial_head', num_classes=3)
  >>> probs(jnp.zeros((1, 1))).shape
  (1, 3)
  """
  spec = get_loss(name)
  return functools.partial(spec.probs, **_bind(name, spec.probs, hyperparams))


_NOT_HYPERPARAMS = ('axis', 'where')
_EXAMPLES = {'distance': 'linear_distance(10)', 'num_classes': '10',
             'link': "'logit'", 'targets': "soft_label_matrix('binomial', 10)"}


def _hyperparams(fn: Callable[..., Any]) -> tuple[str, ...]:
  """The keyword-only parameters of ``fn`` other than axis and where."""
  return tuple(p.name for p in inspect.signature(fn).parameters.values()
               if p.kind == p.KEYWORD_ONLY and p.name not in _NOT_HYPERPARAMS)


def _bind(name: str, fn: Callable[..., Any],
          hyperparams: dict[str, Any]) -> dict[str, Any]:
  """The hyperparameters given, those set to None left to ``fn``'s defaults.

  Raises ValueError for a name ``fn`` does not take or for a required one
  (keyword-only without a default) missing.
  """
  names = _hyperparams(fn)
  unknown = sorted(set(hyperparams) - set(names))
  if unknown:
    raise ValueError(f'{name!r} takes '
                     f'{", ".join(names) or "no hyperparameters"}, got '
                     f'{", ".join(unknown)}.')
  bound = {h: value for h, value in hyperparams.items() if value is not None}
  for param in inspect.signature(fn).parameters.values():
    if (param.kind == param.KEYWORD_ONLY and param.default is param.empty
        and param.name not in bound):
      example = _EXAMPLES.get(param.name, '...')
      raise ValueError(f'{name!r} needs {param.name}=..., e.g. '
                       f'{param.name}={example}.')
  return bound


# ----------------------------------------------------------------------------
# Shared checks and maths.

_TINY = 1e-12  # smallest gap kept between two cumulative probabilities


def _is_traced(value: object) -> bool:
  """Whether ``value`` is abstract, so its values cannot be checked now."""
  return isinstance(value, jax.core.Tracer)


def _check_num_classes(num_classes: int) -> None:
  if not isinstance(num_classes, int | np.integer) or num_classes < 2:
    raise ValueError('num_classes must be an integer >= 2, got '
                     f'{num_classes!r}.')


def _check_positive(name: str, value: ArrayLike, *,
                    or_zero: bool = False) -> None:
  """Every entry of a concrete ``value`` finite and > 0 (>= 0 with or_zero).

  A traced value is left to the caller, who alone knows it.
  """
  if _is_traced(value):
    return
  values = np.asarray(value)
  if not jnp.issubdtype(values.dtype, jnp.number):
    raise TypeError(f'{name} must be a number, got {value!r}.')
  values = values.astype(np.float64)
  in_range = values >= 0 if or_zero else values > 0
  if not np.all(np.isfinite(values) & in_range):
    raise ValueError(f'{name} must be finite and '
                     f'{">=" if or_zero else ">"} 0, got {value!r}.')


def _check_share(name: str, value: ArrayLike) -> None:
  """A concrete ``value`` in (0, 1]; a traced one is left to the caller."""
  _check_positive(name, value)
  if not _is_traced(value) and not np.all(np.asarray(value) <= 1):
    raise ValueError(f'{name} must be <= 1, got {value!r}.')


def _check_square_matrix(matrix: ArrayLike, *, num_classes: int | None,
                         name: str) -> np.ndarray | None:
  """Checks a ``[K, K]`` matrix of finite, non-negative numbers.

  Returns its entries as float64 for the caller's own value checks, or None
  when ``matrix`` is traced: only its shape is checked then.
  """
  if not _is_traced(matrix):
    dtype = np.asarray(matrix).dtype
    if not jnp.issubdtype(dtype, jnp.number):
      raise ValueError(f'{name} must be a numeric matrix, got dtype {dtype}.')
  shape = np.shape(matrix)
  if len(shape) != 2 or shape[0] != shape[1]:
    raise ValueError(f'{name} must be a square [K, K] matrix, got shape '
                     f'{tuple(shape)}.')
  if num_classes is not None and shape[0] != num_classes:
    raise ValueError(
        f'{name} is {shape[0]}x{shape[0]} but the logits have {num_classes} '
        f'classes; build it with num_classes={num_classes}.')
  if _is_traced(matrix):
    return None
  values_KxK = np.asarray(matrix).astype(np.float64)
  if not np.all(np.isfinite(values_KxK)):
    raise ValueError(f'{name} has NaN or infinite entries; every entry must '
                     'be a finite number.')
  if np.any(values_KxK < 0):
    raise ValueError(f'{name} has negative entries; entries must be >= 0.')
  return values_KxK


@overload
def _check_inputs(outputs: ArrayLike, labels: None = None, *, axis: int,
                  where: ArrayLike | None = None,
                  num_classes: int | None = None, num_outputs: int = 0,
                  tasks: bool = False) -> tuple[jax.Array, None, int]: ...


@overload
def _check_inputs(outputs: ArrayLike, labels: ArrayLike, *, axis: int,
                  where: ArrayLike | None = None,
                  num_classes: int | None = None, num_outputs: int = 0,
                  tasks: bool = False) -> tuple[jax.Array, jax.Array, int]: ...


def _check_inputs(
    outputs: ArrayLike, labels: ArrayLike | None = None, *, axis: int,
    where: ArrayLike | None = None, num_classes: int | None = None,
    num_outputs: int = 0, tasks: bool = False,
) -> tuple[jax.Array, jax.Array | None, int]:
  """Checks a loss's or probs function's inputs; moves the output axis last.

  The output axis holds K softmax ``logits`` by default, or a head's
  ``outputs``: the T = K - 1 thresholds or task logits with ``tasks``, or a
  fixed ``num_outputs`` for the ``num_classes`` it is given (the signature
  rule names the argument so). Dtypes, ranks and shapes are checked at trace
  time, label values when the labels are concrete. A probs function passes
  no labels.

  Returns:
    (the outputs with their output axis last, the labels as a jax array or
    None, K).
  """
  name = 'outputs' if tasks or num_classes is not None else 'logits'
  outputs = jnp.asarray(outputs)
  if not jnp.issubdtype(outputs.dtype, jnp.floating):
    raise TypeError(f'{name} must be a floating-point array, got '
                    f'{outputs.dtype}; cast with {name}.astype(jnp.float32).')
  if outputs.ndim < 1:
    raise ValueError(f'{name} must have an output axis, got a scalar.')
  outputs = jnp.moveaxis(outputs, axis, -1)
  size = outputs.shape[-1]
  if num_classes is None:
    num_classes = size + 1 if tasks else size
    if num_classes < 2:
      raise ValueError(f'need at least 2 classes, got {name} with {size} '
                       f'entries on axis {axis}.')
  else:
    _check_num_classes(num_classes)
    if size != num_outputs:
      raise ValueError(f'{name} must have {num_outputs} entries on axis '
                       f'{axis}, got {size}.')
  if labels is None:
    return outputs, None, num_classes
  labels_B = jnp.asarray(labels)
  if not jnp.issubdtype(labels_B.dtype, jnp.integer):
    raise TypeError('labels must be an integer array of class indices, got '
                    f'{labels_B.dtype}; cast with labels.astype(jnp.int32).')
  if outputs.shape[:-1] != labels_B.shape:
    raise ValueError(
        f'labels must have the shape of {name} without axis {axis}, '
        f'{outputs.shape[:-1]}, got {labels_B.shape}.')
  if where is not None and np.shape(where) != labels_B.shape:
    raise ValueError(f'where must have the shape of labels, '
                     f'{labels_B.shape}, got {np.shape(where)}.')
  if not _is_traced(labels_B):
    # In numpy: jnp would stage the check into a jit that closes over labels.
    values_B = np.asarray(labels_B)
    if values_B.size and (values_B.min() < 0 or
                          values_B.max() >= num_classes):
      raise ValueError(
          f'labels must lie in [0, {num_classes}), got values from '
          f'{values_B.min()} to {values_B.max()}.')
  return outputs, labels_B, num_classes


def _compute_dtype(dtype: DTypeLike) -> DTypeLike:
  """Low-precision inputs are computed in float32 for stability."""
  return jnp.promote_types(dtype, jnp.float32)


def _finish(loss_B: jax.Array, labels_B: jax.Array, num_classes: int,
            where: ArrayLike | None, dtype: DTypeLike) -> jax.Array:
  """Masks with ``where``, turns out-of-range labels into NaN, casts back."""
  in_range_B = (labels_B >= 0) & (labels_B < num_classes)
  loss_B = jnp.where(in_range_B, loss_B, jnp.nan)
  if where is not None:
    loss_B = jnp.where(where, loss_B, 0.0)
  return loss_B.astype(dtype)


def _take_label(values_BxK: jax.Array, labels_B: jax.Array) -> jax.Array:
  """``values[..., y]`` for every label, shape [...]; labels kept in range."""
  index_Bx1 = jnp.clip(labels_B, 0, values_BxK.shape[-1] - 1)[..., None]
  return jnp.take_along_axis(values_BxK, index_Bx1, axis=-1)[..., 0]


def _nll(log_probs_BxK: jax.Array, labels_B: jax.Array, num_classes: int,
         where: ArrayLike | None, dtype: DTypeLike) -> jax.Array:
  loss_B = -_take_label(log_probs_BxK, labels_B)
  return _finish(loss_B, labels_B, num_classes, where, dtype)


def _gather_rows(matrix_KxK: jax.Array, labels_B: jax.Array) -> jax.Array:
  """Row ``C[y]`` for every label, shape [..., K]; labels clipped in range."""
  return jnp.take(matrix_KxK, jnp.clip(labels_B, 0, matrix_KxK.shape[0] - 1),
                  axis=0)


def _per_class(values_K: ArrayLike, ndim: int, dtype: DTypeLike) -> jax.Array:
  """A value per class along a new last axis after ``ndim`` axes of size 1.

  Broadcasting by explicit rank keeps the losses usable under
  ``jax_numpy_rank_promotion='raise'``.
  """
  return jnp.asarray(values_K, dtype).reshape((1,) * ndim + (-1,))


def _class_grid(num_classes: int, ndim: int,
                dtype: DTypeLike = jnp.int32) -> jax.Array:
  """0, ..., K - 1 laid out as :func:`_per_class`."""
  return _per_class(np.arange(num_classes), ndim, dtype)


def _class_angles(num_classes: int, ndim: int, dtype: DTypeLike) -> jax.Array:
  """Class j's angle 2 pi j / K, laid out as :func:`_per_class`."""
  return (2 * math.pi / num_classes) * _class_grid(num_classes, ndim, dtype)


def _class_offsets(num_classes: int) -> jax.Array:
  """|i - j| for every pair of classes, float32 [K, K]."""
  k_K = jnp.arange(num_classes, dtype=jnp.float32)
  return jnp.abs(k_K[:, None] - k_K[None, :])


def _log_factorials(num_classes: int) -> np.ndarray:
  """log j! for j in [0, K), in float64 so that every dtype gets them exact."""
  return np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, num_classes)))])


def _log_binomial_pmf(log_q_Bx1: jax.Array, log_1mq_Bx1: jax.Array,
                      num_classes: int) -> jax.Array:
  """log Binomial(j; K - 1, q) for j in [0, K), from log q and log(1 - q)."""
  n = num_classes - 1
  log_factorial_K = _log_factorials(num_classes)
  log_choose_1xK = _per_class(
      log_factorial_K[n] - log_factorial_K - log_factorial_K[::-1],
      log_q_Bx1.ndim - 1, log_q_Bx1.dtype)
  j_1xK = _class_grid(num_classes, log_q_Bx1.ndim - 1, log_q_Bx1.dtype)
  return log_choose_1xK + j_1xK * log_q_Bx1 + (n - j_1xK) * log_1mq_Bx1


def _log_poisson_pmf(rate_Bx1: jax.Array, num_classes: int) -> jax.Array:
  """log Poisson(j; rate) for j in [0, K), shape [..., K]."""
  j_1xK = _class_grid(num_classes, rate_Bx1.ndim - 1, rate_Bx1.dtype)
  log_factorial_1xK = _per_class(_log_factorials(num_classes),
                                 rate_Bx1.ndim - 1, rate_Bx1.dtype)
  return j_1xK * jnp.log(rate_Bx1) - rate_Bx1 - log_factorial_1xK


def _log1mexp(x: jax.Array) -> jax.Array:
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
