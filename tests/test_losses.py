"""Tests for losses.py: numpy references, gradients, limits, stability, errors,
the registry."""

import functools
import itertools
import types

import hypothesis
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.optimize
from hypothesis import strategies as st
from jax import test_util as jtu
from scipy.special import expit as np_sigmoid
from scipy.special import softmax as np_softmax

import losses
from conftest import BFLOAT16_SLOW, everyday_subset, num_outputs_of

K = 10
LINEAR = np.abs(np.arange(K)[:, None] - np.arange(K)[None, :]).astype(
    np.float64)
CYCLIC = np.minimum(LINEAR, K - LINEAR)
BINOMIAL_Q = np.asarray(losses.soft_label_matrix('binomial', K))

# A value for every hyperparameter of a registered loss or probs function.
HYPERPARAMS = {'distance': LINEAR, 'temperature': 0.7, 'power': 1.5,
               'sharpness': 1.5, 'kappa': 2.0, 'targets': BINOMIAL_Q,
               'num_classes': K, 'link': 'logit', 'epsilon': 0.3,
               'stability': 1e-10}


def own(names):
  """The hyperparameters ``names`` (a LossSpec's) of :data:`HYPERPARAMS`."""
  return {name: HYPERPARAMS[name] for name in names}


SOFTMAX_LOSSES = sorted(name for name, spec in losses.LOSSES.items()
                        if spec.takes_logits)



# ----------------------------------------------------------------------------
# numpy reference implementations (float64, one example at a time).


def ref_expected_value_mse(z, y):
  return 0.5 * (np.sum(np.arange(len(z)) * np_softmax(z)) - y)**2


def ref_circular_mse(z, y):
  k = len(z)
  mean = np.sum(np_softmax(z) * np.exp(2j * np.pi * np.arange(k) / k))
  return 0.5 * abs(mean - np.exp(2j * np.pi * y / k))**2


def ref_expected_cost(z, y, c):
  return np.sum(np_softmax(z) * c[y])


def ref_soft_label_ce(z, y, c, t, eps=1.0):
  q = (1 - eps) * np.eye(len(z))[y] + eps * np_softmax(-c[y] / t)
  return -np.sum(q * np.log(np_softmax(z)))


def ref_label_smoothing(z, y, eps):
  q = (1 - eps) * np.eye(len(z))[y] + eps / len(z)
  return -np.sum(q * np.log(np_softmax(z)))


def ref_squared_emd(z, y):
  cdf_y = (np.arange(len(z)) >= y).astype(float)
  return np.sum((np.cumsum(np_softmax(z)) - cdf_y)**2)


def ref_circular_emd(z, y):
  # Brute force min over the shift mu; the optimum lies at one of the D_k.
  cdf_y = (np.arange(len(z)) >= y).astype(float)
  d = np.cumsum(np_softmax(z)) - cdf_y
  return min(np.sum(np.abs(d - mu)) for mu in d)


def ref_cdw_ce(z, y, c, alpha):
  p = np_softmax(z)
  return -np.sum(c[y]**alpha * np.log(1 - p))


def ref_slace(z, y, c, alpha):
  p = np_softmax(z)
  w = np_softmax(-alpha * c[y])
  accumulated = np.array([p[c[y] <= c[y, j]].sum() for j in range(len(z))])
  return -np.sum(w * np.log(accumulated))


def ref_coral(z, y):
  t = (y > np.arange(len(z))).astype(float)
  s = np_sigmoid(z)
  return -np.sum(t * np.log(s) + (1 - t) * np.log(1 - s))


def ref_corn(z, y):
  total = 0.0
  for k in range(min(y, len(z) - 1) + 1):
    s = np_sigmoid(z[k])
    total -= np.log(s) if y > k else np.log(1 - s)
  return total


def ref_weighted_kappa(z_n, y_n, w):
  p = np.stack([np_softmax(z) for z in z_n])
  onehot = np.eye(w.shape[0])[y_n]
  observed = onehot.T @ p
  expected = np.outer(onehot.sum(0), p.sum(0)) / len(y_n)
  return np.log((np.sum(w * observed) + 1e-10) / (np.sum(w * expected) + 1e-10))


# name -> (jax fn with hyperparameters bound, per-example numpy reference,
#          number of model outputs).
CASES = {
    'expected_value_mse': (losses.expected_value_mse, ref_expected_value_mse,
                           K),
    'circular_mse': (losses.circular_mse, ref_circular_mse, K),
    'expected_cost_linear': (
        functools.partial(losses.expected_cost, distance=LINEAR),
        functools.partial(ref_expected_cost, c=LINEAR), K),
    'expected_cost_cyclic_sq': (
        functools.partial(losses.expected_cost, distance=CYCLIC**2),
        functools.partial(ref_expected_cost, c=CYCLIC**2), K),
    'soft_label_ce': (
        functools.partial(losses.soft_label_cross_entropy, distance=LINEAR,
                          temperature=0.7),
        functools.partial(ref_soft_label_ce, c=LINEAR, t=0.7), K),
    'soft_label_ce_cyclic': (
        functools.partial(losses.soft_label_cross_entropy, distance=CYCLIC),
        functools.partial(ref_soft_label_ce, c=CYCLIC, t=1.0), K),
    'soft_label_ce_smoothed': (
        functools.partial(losses.soft_label_cross_entropy, distance=LINEAR,
                          temperature=0.5, epsilon=0.2),
        functools.partial(ref_soft_label_ce, c=LINEAR, t=0.5, eps=0.2), K),
    'label_smoothing': (
        functools.partial(losses.label_smoothing_cross_entropy, epsilon=0.1),
        functools.partial(ref_label_smoothing, eps=0.1), K),
    'squared_emd': (losses.squared_emd, ref_squared_emd, K),
    'circular_emd': (losses.circular_emd, ref_circular_emd, K),
    'cdw_ce': (
        functools.partial(losses.class_distance_weighted_ce, distance=LINEAR,
                          power=2.0),
        functools.partial(ref_cdw_ce, c=LINEAR, alpha=2.0), K),
    'slace_linear': (
        functools.partial(losses.slace_loss, distance=LINEAR),
        functools.partial(ref_slace, c=LINEAR, alpha=1.0), K),
    'slace_cyclic': (
        functools.partial(losses.slace_loss, distance=CYCLIC, sharpness=2.0),
        functools.partial(ref_slace, c=CYCLIC, alpha=2.0), K),
    'coral': (losses.coral_loss, ref_coral, K - 1),
    'corn': (losses.corn_loss, ref_corn, K - 1),
}


# Four kinds run the per-loss properties every day (distance-weighted
# softmax, cyclic, rank-consistent, soft targets), every loss in the slow
# lane, where test_loss_golden also pins every loss's value and gradient.
EVERYDAY_CASES = ('cdw_ce', 'circular_emd', 'corn', 'soft_label_ce_smoothed')


def everyday_cases(names):
  names = sorted(names)
  return everyday_subset(names, [n for n in EVERYDAY_CASES if n in names])


def random_inputs(seed, batch_shape, num_outputs, scale=3.0):
  rng = np.random.default_rng(seed)
  logits = (scale * rng.standard_normal(batch_shape + (num_outputs,))).astype(
      np.float32)
  labels = rng.integers(0, K, size=batch_shape).astype(np.int32)
  return logits, labels


@pytest.mark.parametrize('name', everyday_cases(CASES))
@pytest.mark.parametrize('batch_shape', [(), (7,), (2, 3)])
def test_matches_numpy_reference_under_jit(name, batch_shape):
  fn, ref, num_outputs = CASES[name]
  logits, labels = random_inputs(0, batch_shape, num_outputs)
  got = jax.jit(fn)(logits, labels)
  assert got.shape == batch_shape
  flat_logits = logits.reshape(-1, num_outputs).astype(np.float64)
  want = np.array([ref(z, y) for z, y in zip(flat_logits, labels.reshape(-1),
                                             strict=True)])
  np.testing.assert_allclose(np.asarray(got).reshape(-1), want, rtol=2e-5,
                             atol=2e-5)


def test_weighted_kappa_matches_numpy_reference_and_is_scalar():
  logits, labels = random_inputs(1, (32,), K)
  weights = LINEAR**2
  got = jax.jit(functools.partial(losses.weighted_kappa_loss,
                                  distance=weights))(logits, labels)
  assert got.shape == ()
  np.testing.assert_allclose(got, ref_weighted_kappa(
      logits.astype(np.float64), labels, weights), rtol=1e-5)


def test_weighted_kappa_where_drops_examples():
  logits, labels = random_inputs(2, (12,), K)
  keep = np.arange(12) < 8
  masked = losses.weighted_kappa_loss(logits, labels, distance=LINEAR,
                                      where=keep)
  subset = losses.weighted_kappa_loss(logits[:8], labels[:8], distance=LINEAR)
  np.testing.assert_allclose(masked, subset, rtol=1e-6)


# Slow lane: the fast lane's goldens (test_loss_golden) hold every loss's
# value and gradient at 1e-6; finite differences re-derive them.
@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(CASES))
def test_gradients_match_finite_differences(name):
  fn, _, num_outputs = CASES[name]
  logits, labels = random_inputs(3, (4,), num_outputs, scale=1.0)
  with jax.enable_x64(True):
    jtu.check_grads(lambda z: fn(z, labels),
                    (jnp.asarray(logits, jnp.float64),), order=1,
                    modes=['rev'], atol=1e-4, rtol=1e-4)


def test_weighted_kappa_gradient():
  logits, labels = random_inputs(4, (16,), K, scale=1.0)
  with jax.enable_x64(True):
    jtu.check_grads(
        lambda z: losses.weighted_kappa_loss(z, labels, distance=LINEAR**2),
        (jnp.asarray(logits, jnp.float64),), order=1, modes=['rev'],
        atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize('name', everyday_cases(CASES))
def test_vmap_equals_batched_call(name):
  fn, _, num_outputs = CASES[name]
  logits, labels = random_inputs(5, (6,), num_outputs)
  np.testing.assert_allclose(jax.vmap(fn)(logits, labels), fn(logits, labels),
                             rtol=1e-6)


@pytest.mark.parametrize('name', everyday_cases(CASES))
def test_where_zeroes_masked_examples(name):
  fn, _, num_outputs = CASES[name]
  logits, labels = random_inputs(6, (5,), num_outputs)
  where = np.array([True, False, True, False, True])
  got = fn(logits, labels, where=where)
  np.testing.assert_array_equal(np.asarray(got)[~where], 0.0)
  np.testing.assert_allclose(np.asarray(got)[where],
                             np.asarray(fn(logits, labels))[where])


def test_axis_argument_moves_class_axis():
  logits, labels = random_inputs(7, (4,), K)
  np.testing.assert_allclose(
      losses.expected_cost(logits.T, labels, distance=LINEAR, axis=0),
      losses.expected_cost(logits, labels, distance=LINEAR))


# ----------------------------------------------------------------------------
# Limit identities.


def extreme_logits(seed, batch, num_outputs, dtype=jnp.float32):
  """Logits of -1e4, 0 and 1e4, at least one 1e4 per row."""
  rng = np.random.default_rng(seed)
  logits = rng.choice([-1e4, 1e4, 0.0], size=(batch, num_outputs))
  logits[:, 0] = 1e4
  return jnp.asarray(logits, dtype), rng.integers(0, K, batch).astype(np.int32)


@pytest.mark.parametrize('name', everyday_subset(SOFTMAX_LOSSES, (
    'class_distance_weighted_ce', 'soft_label_cross_entropy', 'squared_emd',
    'weighted_kappa')))
def test_mix_with_zero_weight_is_exactly_cross_entropy(name):
  # A traced weight of 0 adds 0 * loss: exact only if the loss is finite,
  # which the extreme logits test.
  hyperparams = own(losses.LOSSES[name].hyperparams)
  ordinary = random_inputs(8, (9,), K)
  for logits, labels in (ordinary, extreme_logits(8, 16, K)):
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    concrete = losses.make_loss(name, ce_weight=0.0, **hyperparams)
    traced = jax.jit(lambda w, z, y: losses.make_loss(
        name, ce_weight=w, **hyperparams)(z, y))
    np.testing.assert_array_equal(concrete(logits, labels), ce)
    np.testing.assert_array_equal(traced(0.0, logits, labels), ce)


def test_mix_adds_weighted_loss():
  logits, labels = random_inputs(9, (9,), K)
  mixed = losses.make_loss('expected_cost', ce_weight=0.3, distance=LINEAR)
  want = (optax.softmax_cross_entropy_with_integer_labels(logits, labels) +
          0.3 * losses.expected_cost(logits, labels, distance=LINEAR))
  np.testing.assert_allclose(mixed(logits, labels), want, rtol=1e-6)


def test_soft_labels_at_low_temperature_are_cross_entropy():
  logits, labels = random_inputs(10, (9,), K)
  np.testing.assert_allclose(
      losses.soft_label_cross_entropy(logits, labels, distance=LINEAR,
                                      temperature=1e-3),
      optax.softmax_cross_entropy_with_integer_labels(logits, labels),
      rtol=1e-6)


def test_smoothed_sord_nests_label_smoothing_and_sord():
  logits, labels = random_inputs(11, (9,), K)
  # At a very high temperature the distance-shaped mass is uniform.
  for eps in (0.1, 0.5):
    np.testing.assert_allclose(
        losses.soft_label_cross_entropy(logits, labels, distance=LINEAR,
                                        temperature=1e6, epsilon=eps),
        losses.label_smoothing_cross_entropy(logits, labels, epsilon=eps),
        rtol=1e-5)
  # epsilon = 1 is SORD; a vanishing epsilon is cross-entropy.
  np.testing.assert_array_equal(
      losses.soft_label_cross_entropy(logits, labels, distance=LINEAR,
                                      epsilon=1.0),
      losses.soft_label_cross_entropy(logits, labels, distance=LINEAR))
  np.testing.assert_allclose(
      losses.label_smoothing_cross_entropy(logits, labels, epsilon=1e-7),
      optax.softmax_cross_entropy_with_integer_labels(logits, labels),
      rtol=1e-5)


@pytest.mark.parametrize('call', [
    lambda z, y, e: losses.label_smoothing_cross_entropy(z, y, epsilon=e),
    lambda z, y, e: losses.soft_label_cross_entropy(z, y, distance=LINEAR,
                                                    epsilon=e),
])
@pytest.mark.parametrize('epsilon', [0.0, 1.5, float('nan')])
def test_epsilon_outside_zero_one_raises(call, epsilon):
  logits, labels = random_inputs(12, (3,), K)
  with pytest.raises(ValueError, match='epsilon'):
    call(logits, labels, epsilon)


def confident_logits(pred, num_outputs, kind, scale=30.0):
  """Logits that put (almost) all probability on class `pred`."""
  if kind == 'softmax':
    return scale * (2 * np.eye(num_outputs)[pred] - 1).astype(np.float32)
  # Binary tasks k = 0..K-2: "y > k" is true exactly for k < pred.
  return scale * np.where(np.arange(num_outputs) < pred, 1.0, -1.0).astype(
      np.float32)


@pytest.mark.parametrize('name', everyday_cases(CASES))
def test_confident_correct_prediction_costs_nothing(name):
  fn, _, num_outputs = CASES[name]
  kind = 'softmax' if num_outputs == K else 'binary'
  if name.startswith('soft_label'):
    fn = functools.partial(fn, temperature=1e-3)
  if name == 'label_smoothing':  # its own limit to a one-hot target
    fn = functools.partial(fn, epsilon=1e-9)
  for y in range(K):
    loss = fn(confident_logits(y, num_outputs, kind), np.int32(y))
    assert float(loss) < 1e-6, (y, float(loss))


def test_label_smoothing_charges_every_wrong_digit_alike():
  costs = [float(losses.label_smoothing_cross_entropy(
      confident_logits(pred, K, 'softmax'), np.int32(3), epsilon=0.2))
           for pred in range(K) if pred != 3]
  np.testing.assert_allclose(costs, costs[0], rtol=1e-6)
  assert costs[0] > 30  # a confident mistake is expensive


MONOTONE = {  # name -> which distance the loss grows with
    'expected_value_mse': LINEAR, 'circular_mse': CYCLIC,
    'expected_cost_linear': LINEAR, 'expected_cost_cyclic_sq': CYCLIC,
    'soft_label_ce': LINEAR, 'soft_label_ce_cyclic': CYCLIC,
    'squared_emd': LINEAR, 'circular_emd': CYCLIC, 'cdw_ce': LINEAR,
    'slace_linear': LINEAR,
    'slace_cyclic': CYCLIC, 'coral': LINEAR,
}


@pytest.mark.parametrize('name', everyday_cases(MONOTONE))
@pytest.mark.parametrize('label', [0, 3, 9])
def test_loss_grows_with_distance_of_prediction(name, label):
  fn, _, num_outputs = CASES[name]
  kind = 'softmax' if num_outputs == K else 'binary'
  dist = MONOTONE[name][label]
  loss = np.array([float(fn(confident_logits(j, num_outputs, kind, 10.0),
                            np.int32(label))) for j in range(K)])
  for d in range(int(dist.max())):
    assert loss[dist == d].max() < loss[dist == d + 1].min(), (d, loss)


def test_corn_grows_with_undershoot_and_never_shrinks():
  # CORN stops at the first "no": every overshoot costs one task, every
  # undershoot one task per missing step.
  for label in [0, 4, 9]:
    loss = [float(losses.corn_loss(confident_logits(j, K - 1, 'binary', 10.0),
                                   np.int32(label))) for j in range(K)]
    below = loss[:label + 1][::-1]
    assert all(a < b for a, b in itertools.pairwise(below))
    assert all(a >= loss[label] for a in loss[label:])


CYCLIC_CASES = ['circular_mse', 'circular_emd', 'expected_cost_cyclic_sq',
                'soft_label_ce_cyclic', 'slace_cyclic']


@pytest.mark.parametrize('name', everyday_cases(CYCLIC_CASES))
@pytest.mark.parametrize('shift', [1, 4, 9])
def test_cyclic_losses_invariant_to_rotation(name, shift):
  fn, _, _ = CASES[name]
  logits, labels = random_inputs(11, (8,), K)
  rotated = fn(np.roll(logits, shift, axis=-1), (labels + shift) % K)
  np.testing.assert_allclose(rotated, fn(logits, labels), rtol=2e-5, atol=1e-6)


def test_cyclic_distance_puts_nine_next_to_zero():
  c = np.asarray(losses.cyclic_distance(10))
  assert c[9, 0] == 1 and c[0, 5] == 5 and c[2, 8] == 4
  np.testing.assert_array_equal(losses.linear_distance(10, power=2), LINEAR**2)


# ----------------------------------------------------------------------------
# Wasserstein-1 against a linear-program oracle.


def w1_linprog(p, q, cost):
  """min_T <T, cost> s.t. T 1 = p, T^T 1 = q, T >= 0."""
  k = len(p)
  a_eq = np.zeros((2 * k, k * k))
  for i in range(k):
    a_eq[i, i * k:(i + 1) * k] = 1
    a_eq[k + i, i::k] = 1
  res = scipy.optimize.linprog(cost.reshape(-1), A_eq=a_eq,
                               b_eq=np.concatenate([p, q]), bounds=(0, None))
  assert res.success
  return res.fun


@pytest.mark.parametrize('seed', range(5))
def test_expected_cost_is_w1_to_one_hot_for_any_cost(seed):
  rng = np.random.default_rng(seed)
  cost = rng.uniform(0, 5, (K, K))
  np.fill_diagonal(cost, 0)
  logits, labels = random_inputs(seed, (3,), K)
  got = losses.expected_cost(logits, labels, distance=cost)
  for z, y, g in zip(logits, labels, np.asarray(got), strict=True):
    p = np_softmax(z.astype(np.float64))
    # Mass moves from predicted class j to the true class y at cost C[y, j].
    want = w1_linprog(p, np.eye(K)[y], cost.T)
    np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('seed', range(3))
def test_circular_emd_is_w1_on_the_circle(seed):
  logits, labels = random_inputs(seed, (4,), K)
  got = losses.circular_emd(logits, labels)
  for z, y, g in zip(logits, labels, np.asarray(got), strict=True):
    want = w1_linprog(np_softmax(z.astype(np.float64)), np.eye(K)[y], CYCLIC)
    np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------
# Numerical stability at extreme logits.


ALL_BOUND = dict(CASES, weighted_kappa=(
    functools.partial(losses.weighted_kappa_loss, distance=LINEAR**2), None, K))


@pytest.mark.parametrize('name', everyday_subset(sorted(ALL_BOUND), (
    'cdw_ce', 'corn', 'expected_cost_cyclic_sq', 'soft_label_ce_smoothed',
    'weighted_kappa')))
@pytest.mark.parametrize('dtype', [jnp.float32, BFLOAT16_SLOW])
def test_finite_value_and_gradient_at_extreme_logits(name, dtype):
  fn, _, num_outputs = ALL_BOUND[name]
  logits, labels = extreme_logits(12, 16, num_outputs, dtype)
  value, grad = jax.jit(jax.value_and_grad(lambda z: jnp.sum(
      fn(z, labels).astype(jnp.float32))))(logits)
  assert np.isfinite(float(value)), name
  assert np.all(np.isfinite(np.asarray(grad, np.float32))), name


def test_cdw_ce_saturated_wrong_prediction_is_large_but_finite():
  logits = jnp.array([-1e4, 1e4, -1e4], jnp.float32)
  loss = losses.class_distance_weighted_ce(
      logits, jnp.int32(0), distance=losses.linear_distance(3))
  np.testing.assert_allclose(loss, 2e4 - np.log(2), rtol=1e-6)  # -log(1 - p_1)


# ----------------------------------------------------------------------------
# Property tests.


PROPERTY_STRATEGIES = dict(
    batch_shape=hnp.array_shapes(min_dims=0, max_dims=2, max_side=4),
    num_classes=st.integers(2, 7),
    seed=st.integers(0, 2**16),
    scale=st.floats(0.0, 50.0))


@jax.jit
def _property_values(logits, labels):
  """Every value the property check reads, as one compiled program: a new
  shape then costs one compile, not one per operation."""
  num_classes = logits.shape[-1]
  lin = losses.linear_distance(num_classes)
  cyc = losses.cyclic_distance(num_classes)
  per_example = [
      losses.expected_value_mse(logits, labels),
      losses.circular_mse(logits, labels),
      losses.expected_cost(logits, labels, distance=lin),
      losses.soft_label_cross_entropy(logits, labels, distance=cyc),
      losses.squared_emd(logits, labels),
      losses.circular_emd(logits, labels),
      losses.class_distance_weighted_ce(logits, labels, distance=lin),
      losses.coral_loss(logits[..., 1:], labels),
      losses.corn_loss(logits[..., 1:], labels),
  ]
  w1_on_the_circle = (losses.expected_cost(logits, labels, distance=cyc),
                      losses.circular_emd(logits, labels))
  probs = [losses.coral_probs(logits[..., 1:]),
           losses.corn_probs(logits[..., 1:])]
  return per_example, w1_on_the_circle, probs


def check_properties(batch_shape, num_classes, seed, scale):
  rng = np.random.default_rng(seed)
  logits = (scale * rng.standard_normal(batch_shape + (num_classes,))).astype(
      np.float32)
  labels = rng.integers(0, num_classes, batch_shape).astype(np.int32)
  per_example, w1_on_the_circle, probs_of = _property_values(logits, labels)
  for loss in per_example:
    assert loss.shape == batch_shape
    assert np.all(np.isfinite(loss)) and np.all(np.asarray(loss) >= -1e-6)
  # W1 on the line and on the circle, two ways.
  np.testing.assert_allclose(*w1_on_the_circle, rtol=1e-4, atol=1e-5)
  for probs in probs_of:
    assert probs.shape == batch_shape + (num_classes,)
    assert np.all(np.asarray(probs) >= 0)
    np.testing.assert_allclose(np.sum(probs, -1), 1.0, rtol=1e-5)


# Each example compiles every loss for a new shape: a few in the fast lane,
# the full count in the slow one.
@pytest.mark.parametrize('examples',
                         [2, pytest.param(10, marks=pytest.mark.slow)])
def test_properties_on_random_shapes(examples):
  # A fresh wrapper per call: settings may decorate a test only once, and
  # both counts can run in one process.
  hypothesis.settings(max_examples=examples, deadline=None)(
      hypothesis.given(**PROPERTY_STRATEGIES)(check_properties))()


def test_coral_probs_clip_inconsistent_ranks():
  # P(y > 1) > P(y > 0): the middle class's negative mass is clipped to 0;
  # the ends keep 1 - sigmoid(-5) = sigmoid(5) each, renormalised.
  probs = losses.coral_probs(jnp.array([-5.0, 5.0]))
  np.testing.assert_allclose(probs, [0.5, 0.0, 0.5], rtol=1e-6)


# ----------------------------------------------------------------------------
# Bad input.


GOOD_LOGITS = np.zeros((3, 4), np.float32)
GOOD_LABELS = np.array([0, 1, 3], np.int32)
DIST4 = np.asarray(losses.linear_distance(4))


@pytest.mark.parametrize('logits, labels, error, match', [
    (GOOD_LOGITS.astype(np.int32), GOOD_LABELS, TypeError,
     '^logits must be a floating'),
    (GOOD_LOGITS, GOOD_LABELS.astype(np.float32), TypeError,
     'labels must be an integer'),
    (GOOD_LOGITS, GOOD_LABELS[:2], ValueError, 'labels must have the shape'),
    (GOOD_LOGITS[0], GOOD_LABELS, ValueError, 'labels must have the shape'),
    (np.float32(0), np.int32(0), ValueError, 'logits must have an output axis'),
    (GOOD_LOGITS, np.array([0, 4, 1], np.int32), ValueError,
     r'labels must lie in \[0, 4\)'),
    (GOOD_LOGITS, np.array([0, -1, 1], np.int32), ValueError,
     r'labels must lie in \[0, 4\)'),
    (np.zeros((3, 1), np.float32), np.zeros(3, np.int32), ValueError,
     'at least 2 classes'),
])
def test_bad_logits_and_labels_raise(logits, labels, error, match):
  with pytest.raises(error, match=match):
    losses.expected_cost(logits, labels, distance=DIST4)


def test_concrete_labels_are_checked_under_jit_too():
  labels = jnp.asarray(GOOD_LABELS)
  loss = jax.jit(lambda z: losses.expected_cost(z, labels, distance=DIST4))
  # Uniform p: the mean distance to the label over the 4 classes.
  np.testing.assert_allclose(loss(GOOD_LOGITS), [1.5, 1.0, 1.5])
  bad = jnp.array([0, 4, 1], jnp.int32)
  with pytest.raises(ValueError, match=r'labels must lie in \[0, 4\)'):
    jax.jit(lambda z: losses.expected_cost(z, bad, distance=DIST4))(
        GOOD_LOGITS)


def test_out_of_range_labels_under_jit_give_nan():
  fn = jax.jit(functools.partial(losses.expected_cost, distance=DIST4))
  loss = fn(GOOD_LOGITS, jnp.array([0, 4, -1], jnp.int32))
  assert np.isfinite(loss[0]) and np.isnan(loss[1]) and np.isnan(loss[2])


@pytest.mark.parametrize('matrix, match', [
    (np.zeros((4, 3)), 'square'),
    (np.zeros((4,)), 'square'),
    (np.ones((4, 4)), 'non-zero diagonal'),
    (DIST4 - 2 * np.eye(4)[::-1], 'negative'),
    (np.where(np.eye(4) > 0, 0.0, np.nan), 'NaN or infinite'),
    (np.where(np.eye(4) > 0, 0.0, np.inf), 'NaN or infinite'),
    (np.asarray(losses.linear_distance(5)), 'logits have 4 classes'),
    (np.array([['a', 'b'], ['c', 'd']]), 'numeric'),
])
def test_bad_distance_raises_naming_it(matrix, match):
  with pytest.raises(ValueError, match=match) as info:
    losses.soft_label_cross_entropy(GOOD_LOGITS, GOOD_LABELS, distance=matrix)
  assert 'distance' in str(info.value)


@pytest.mark.parametrize('call, match', [
    (lambda: losses.soft_label_cross_entropy(
        GOOD_LOGITS, GOOD_LABELS, distance=DIST4, temperature=0.0),
     '^temperature must be finite and > 0, got 0.0'),
    (lambda: losses.soft_label_cross_entropy(
        GOOD_LOGITS, GOOD_LABELS, distance=DIST4, temperature=np.inf),
     'temperature must be finite and > 0, got inf'),
    (lambda: losses.class_distance_weighted_ce(
        GOOD_LOGITS, GOOD_LABELS, distance=DIST4, power=-1.0),
     '^power must be finite and > 0'),
    (lambda: losses.linear_distance(1),
     '^num_classes must be an integer >= 2'),
    (lambda: losses.cyclic_distance(10, power=0),
     '^power must be finite and > 0'),
    (lambda: losses.expected_cost(GOOD_LOGITS, GOOD_LABELS, distance=DIST4,
                                  where=np.ones(2, bool)),
     'where must have the shape'),
    (lambda: losses.get_loss('hinge'), "unknown loss 'hinge'; choose one of"),
    (lambda: losses.make_loss('expected_cost'),
     "^'expected_cost' needs distance="),
    (lambda: losses.make_loss('coral', ce_weight=1.0), 'cannot be mixed'),
    (lambda: losses.make_loss('squared_emd', ce_weight=-1.0),
     '^ce_weight must be finite and >= 0, got -1.0'),
    (lambda: losses.make_loss('soft_label_cross_entropy', distance=LINEAR,
                              temprature=0.1),
     "^'soft_label_cross_entropy' takes distance, temperature, "
     'epsilon, got temprature'),
    (lambda: losses.make_loss('weighted_kappa', distance=LINEAR, epsilon=0.1),
     "^'weighted_kappa' takes distance, stability, got epsilon"),
    (lambda: losses.make_loss('squared_emd', distance=LINEAR),
     "'squared_emd' takes no hyperparameters, got distance"),
    (lambda: losses.make_loss('squared_emd', distance=None),
     "'squared_emd' takes no hyperparameters, got distance"),
    (lambda: losses.make_probs('binomial_head', num_classes=K, kappa=1.0),
     "^'binomial_head' takes num_classes, got kappa"),
    (lambda: losses.make_probs('von_mises_head', kappa=1.0),
     "^'von_mises_head' needs num_classes="),
])
def test_bad_hyperparameters_raise(call, match):
  with pytest.raises(ValueError, match=match):
    call()


def test_validate_distance_accepts_custom_asymmetric_matrix():
  matrix = np.array([[0, 1, 5], [2, 0, 1], [3, 3, 0]])
  got = losses.validate_distance(matrix)
  assert got.dtype == jnp.float32
  np.testing.assert_array_equal(got, matrix)


# ----------------------------------------------------------------------------
# The registry: each loss's own hyperparameters, concrete or traced.


def test_index_lists_every_public_name():
  public = {name for name, value in vars(losses).items()
            if not name.startswith('_')
            and not isinstance(value, types.ModuleType)
            and getattr(value, '__module__', 'losses') == 'losses'}
  assert set(losses.__all__) == public
  contents = losses.__doc__.split('Contents')[1]
  assert [name for name in losses.__all__ if f'`{name}`' not in contents] == []


def test_none_means_the_default():
  logits, labels = random_inputs(14, (5,), K)
  np.testing.assert_array_equal(
      losses.make_loss('slace', distance=LINEAR, sharpness=None)(logits,
                                                                 labels),
      losses.slace_loss(logits, labels, distance=LINEAR))


# hyperparameter -> the values of a sweep over it.
SWEEPS = {
    'ce_weight': [0.0, 0.5, 3.0],
    'temperature': [0.3, 1.0, 2.5],
    'power': [0.5, 1.0, 2.0],
    'sharpness': [0.5, 1.0, 2.0],
    'kappa': [0.5, 2.0, 8.0],
    'epsilon': [0.05, 0.3, 1.0],
    'distance': [LINEAR, CYCLIC],
    'targets': [BINOMIAL_Q, np.eye(K),
                np.asarray(losses.soft_label_matrix('von_mises', K))],
}
SWEPT_LOSS_HYPERPARAMS = sorted(
    [(name, h) for name, spec in losses.LOSSES.items()
     for h in spec.hyperparams if h in SWEEPS] +
    [(name, 'ce_weight') for name in SOFTMAX_LOSSES])


def _each_hyperparameter_once_in_the_fast_lane(pairs):
  """The first loss of each swept hyperparameter runs in the fast lane,
  every (loss, hyperparameter) pair in the slow one."""
  seen = set()
  params = []
  for name, swept in pairs:
    marks = [pytest.mark.slow] if swept in seen else []
    seen.add(swept)
    params.append(pytest.param(name, swept, marks=marks))
  return params


@pytest.mark.parametrize(
    'name, swept',
    _each_hyperparameter_once_in_the_fast_lane(SWEPT_LOSS_HYPERPARAMS))
def test_loss_hyperparameter_can_be_traced_under_vmap(name, swept):
  spec = losses.LOSSES[name]
  outputs, labels = random_inputs(15, (6,), num_outputs_of(name, K))
  fixed = {h: v for h, v in own(spec.hyperparams).items() if h != swept}

  def loss(value):
    return losses.make_loss(name, **fixed, **{swept: value})(outputs, labels)

  got = jax.vmap(loss)(jnp.asarray(np.stack(SWEEPS[swept]), jnp.float32))
  want = [loss(value) for value in SWEEPS[swept]]
  assert got.shape == (len(want), *np.shape(want[0]))
  np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
  assert not np.allclose(want[0], want[1])  # the sweep changes the loss


def test_von_mises_probs_kappa_can_be_traced_under_vmap():
  outputs, _ = random_inputs(16, (6,), 2)

  def probs(kappa):
    return losses.make_probs('von_mises_head', num_classes=K,
                             kappa=kappa)(outputs)

  got = jax.vmap(probs)(jnp.asarray(SWEEPS['kappa']))
  np.testing.assert_allclose(got, [probs(k) for k in SWEEPS['kappa']],
                             rtol=1e-6, atol=1e-6)


def test_traced_hyperparameters_get_the_shape_checks_only():
  logits, labels = random_inputs(17, (3,), K)
  loss = jax.jit(lambda t, c: losses.soft_label_cross_entropy(
      logits, labels, distance=c, temperature=t))
  # A traced value cannot be checked: the formula is applied as it is.
  want = [ref_soft_label_ce(z, y, LINEAR, -1.0)
          for z, y in zip(logits.astype(np.float64), labels, strict=True)]
  np.testing.assert_allclose(loss(-1.0, LINEAR), want, rtol=2e-5)
  with pytest.raises(ValueError, match='distance must be a square'):
    loss(1.0, LINEAR[:3])
