"""Tests for the ordinal output heads and soft-label targets in losses.py.

numpy/scipy references in float64, dlordinal 2.7 parity from a committed file
(tests/data/dlordinal_reference.json, made by make_dlordinal_reference.py),
gradients, stability at +-1e4, rotation invariance of the cyclic constructions.
"""

import functools
import itertools
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from jax import test_util as jtu
from scipy.special import expit as np_sigmoid
from scipy.special import softmax as np_softmax

import losses
from conftest import (
  BFLOAT16_SLOW,
  everyday_subset,
  num_outputs_of,
)

K = 10
REFERENCE = json.loads((pathlib.Path(__file__).parent / 'data' /
                        'dlordinal_reference.json').read_text())


# ----------------------------------------------------------------------------
# float64 references, one example at a time.

CDFS = {'logit': np_sigmoid, 'probit': scipy.stats.norm.cdf,
        'cloglog': lambda z: 1 - np.exp(-np.exp(z))}


def ref_clm_probs(z, link):
  cdf = np.concatenate([[0.0], CDFS[link](z), [1.0]])
  return np.diff(cdf)


def ref_binomial_probs(s, k=K):
  return scipy.stats.binom.pmf(np.arange(k), k - 1, np_sigmoid(s[0]))


def ref_poisson_probs(s, k=K, t=1.0):
  rate = np.clip(np.logaddexp(0, s[0]), 1e-8, 1e4)
  return np_softmax(scipy.stats.poisson.logpmf(np.arange(k), rate) / t)


def ref_poisson_head_probs(o, k=K):
  return ref_poisson_probs(o[:1], k, t=np.exp(o[1]))


def ref_von_mises_probs(o, k=K, kappa=1.0):
  angle = np.arctan2(o[1], o[0])
  return np_softmax(kappa * np.cos(angle - 2 * np.pi * np.arange(k) / k))


def ref_von_mises_loss(o, y, k=K, kappa=1.0):
  angle = np.arctan2(o[1], o[0])
  return 1 - np.exp(kappa * (np.cos(angle - 2 * np.pi * y / k) - 1))


def ref_copoc_probs(eta):
  """Dey et al.'s construction, step by step."""
  v = np.concatenate([eta[:1], np.abs(eta[1:])])
  return np_softmax(-np.abs(np.cumsum(v)))


def nll(probs_fn):
  return lambda z, y: -np.log(probs_fn(z)[y])


BINOMIAL_Q = np.asarray(losses.soft_label_matrix('binomial', K), np.float64)
VON_MISES_Q = np.asarray(losses.soft_label_matrix('von_mises', K), np.float64)

# name -> (jax loss with hyperparameters bound, numpy reference, outputs,
#          whether the reference needs sorted outputs)
CASES = {
    **{f'clm_{link}': (functools.partial(losses.clm_loss, link=link),
                       nll(functools.partial(ref_clm_probs, link=link)),
                       K - 1, True) for link in CDFS},
    'binomial': (functools.partial(losses.binomial_loss, num_classes=K),
                 nll(ref_binomial_probs), 1, False),
    'poisson': (functools.partial(losses.poisson_loss, num_classes=K),
                nll(ref_poisson_probs), 1, False),
    'poisson_t': (functools.partial(losses.poisson_loss, num_classes=K,
                                    temperature=0.6),
                  nll(functools.partial(ref_poisson_probs, t=0.6)), 1, False),
    'poisson_head': (functools.partial(losses.poisson_head_loss,
                                       num_classes=K),
                     nll(ref_poisson_head_probs), 2, False),
    'copoc': (losses.copoc_loss, nll(ref_copoc_probs), K, False),
    'von_mises': (functools.partial(losses.von_mises_loss, num_classes=K),
                  ref_von_mises_loss, 2, False),
    'von_mises_kappa4': (
        functools.partial(losses.von_mises_loss, num_classes=K, kappa=4.0),
        functools.partial(ref_von_mises_loss, kappa=4.0), 2, False),
    'soft_target_binomial': (
        functools.partial(losses.soft_target_cross_entropy, targets=BINOMIAL_Q),
        lambda z, y: -np.sum(BINOMIAL_Q[y] * np.log(np_softmax(z))), K, False),
    'soft_target_von_mises': (
        functools.partial(losses.soft_target_cross_entropy,
                          targets=VON_MISES_Q),
        lambda z, y: -np.sum(VON_MISES_Q[y] * np.log(np_softmax(z))), K,
        False),
}

# The heads whose per-head properties the everyday lane checks (every head
# in the slow lane): the binomial, cumulative link, unimodal, Poisson and
# von Mises heads.
EVERYDAY_HEADS = ('binomial', 'clm_logit', 'copoc', 'poisson_head', 'von_mises')


def random_inputs(seed, batch_shape, num_outputs, *, sort=False, scale=2.0):
  rng = np.random.default_rng(seed)
  outputs = scale * rng.standard_normal(batch_shape + (num_outputs,))
  if sort:
    outputs = np.sort(outputs, axis=-1)
  labels = rng.integers(0, K, size=batch_shape).astype(np.int32)
  return outputs.astype(np.float32), labels


@pytest.mark.parametrize('name', everyday_subset(sorted(CASES), EVERYDAY_HEADS))
@pytest.mark.parametrize('batch_shape', [(), (7,), (2, 3)])
def test_matches_numpy_reference_under_jit(name, batch_shape):
  fn, ref, num_outputs, sort = CASES[name]
  outputs, labels = random_inputs(0, batch_shape, num_outputs, sort=sort)
  got = jax.jit(fn)(outputs, labels)
  assert got.shape == batch_shape
  want = [ref(o, y) for o, y in zip(
      outputs.reshape(-1, num_outputs).astype(np.float64), labels.reshape(-1),
      strict=True)]
  np.testing.assert_allclose(np.asarray(got).reshape(-1), want, rtol=2e-5,
                             atol=2e-5)


# Slow lane: the fast lane's goldens (test_loss_golden) hold every head's
# value and gradient at 1e-6; finite differences re-derive them.
@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(CASES))
def test_gradients_match_finite_differences(name):
  fn, _, num_outputs, sort = CASES[name]
  outputs, labels = random_inputs(1, (4,), num_outputs, sort=sort, scale=1.0)
  with jax.enable_x64(True):
    jtu.check_grads(lambda o: fn(o, labels),
                    (jnp.asarray(outputs, jnp.float64),), order=1,
                    modes=['rev'], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize('name', everyday_subset(sorted(CASES),
                                                 ('clm_logit', 'poisson_head')))
def test_vmap_where_and_axis(name):
  fn, _, num_outputs, sort = CASES[name]
  outputs, labels = random_inputs(2, (5,), num_outputs, sort=sort)
  full = np.asarray(fn(outputs, labels))
  np.testing.assert_allclose(jax.vmap(fn)(outputs, labels), full, rtol=1e-6)
  where = np.array([True, False, True, False, True])
  masked = np.asarray(fn(outputs, labels, where=where))
  np.testing.assert_array_equal(masked[~where], 0.0)
  np.testing.assert_allclose(masked[where], full[where])
  np.testing.assert_allclose(fn(outputs.T, labels, axis=0), full, rtol=1e-6)


EXTREMES = (-1e4, 0.0, 1e4)


def extreme_outputs(seed, num_outputs, dtype):
  """Outputs of -1e4, 0 and 1e4 with labels: every combination of them with
  every label for heads of one or two outputs (score and log T, say), else
  32 random rows."""
  if num_outputs <= 2:
    rows = list(itertools.product(EXTREMES, repeat=num_outputs))
    outputs = np.repeat(rows, K, axis=0)
    labels = np.tile(np.arange(K), len(rows))
  else:
    rng = np.random.default_rng(seed)
    outputs = rng.choice(EXTREMES, size=(32, num_outputs))
    labels = rng.integers(0, K, 32)
  return jnp.asarray(outputs, dtype), labels.astype(np.int32)


def assert_finite_value_and_gradient(fn, outputs):
  # Compiled as one program, as a training step would be (op by op, each
  # operation would compile on its own).
  value, grad = jax.jit(jax.value_and_grad(
      lambda o: jnp.sum(fn(o).astype(jnp.float32))))(outputs)
  assert np.isfinite(float(value))
  assert np.all(np.isfinite(np.asarray(grad, np.float32)))


# Slow lane (one compile per head and dtype); the fast lane keeps the
# cumulative link's and the Poisson head's probabilities at extreme outputs
# (below) and the softmax losses' extreme logits.
@pytest.mark.slow
@pytest.mark.parametrize('name', everyday_subset(sorted(CASES), EVERYDAY_HEADS))
@pytest.mark.parametrize('dtype', [jnp.float32, BFLOAT16_SLOW])
def test_finite_value_and_gradient_at_extreme_outputs(name, dtype):
  fn, _, num_outputs, _ = CASES[name]
  outputs, labels = extreme_outputs(3, num_outputs, dtype)
  assert_finite_value_and_gradient(lambda o: fn(o, labels), outputs)
  assert fn(outputs, labels).dtype == dtype


# Every day: the cumulative link and the Poisson head, whose tails
# underflow first; every registered loss in the slow lane.
@pytest.mark.parametrize('name', everyday_subset(sorted(losses.LOSSES),
                                                 ('clm', 'poisson_head')))
@pytest.mark.parametrize('dtype', [jnp.float32, BFLOAT16_SLOW])
def test_registered_probs_finite_at_extreme_outputs(name, dtype):
  spec = losses.get_loss(name)
  outputs, _ = extreme_outputs(4, num_outputs_of(name, K), dtype)
  probs_fn = losses.make_probs(name, **own(spec.probs_hyperparams))
  probs = np.asarray(probs_fn(outputs), np.float32)
  assert probs.shape == (len(outputs), K)
  np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-2)
  # Probabilities sum to 1: weight them so that the gradient is not 0.
  weights_1xK = jnp.arange(K, dtype=jnp.float32)[None, :]
  assert_finite_value_and_gradient(lambda o: probs_fn(o) * weights_1xK, outputs)


@pytest.mark.parametrize('name', everyday_subset(sorted(CASES), EVERYDAY_HEADS))
def test_out_of_range_labels_under_jit_give_nan(name):
  fn, _, num_outputs, sort = CASES[name]
  outputs, _ = random_inputs(4, (3,), num_outputs, sort=sort)
  loss = jax.jit(fn)(outputs, jnp.array([1, K, -1], jnp.int32))
  assert np.isfinite(loss[0]) and np.isnan(loss[1]) and np.isnan(loss[2])


@pytest.mark.parametrize('link', sorted(CDFS))
def test_clm_probs_match_reference_and_loss_is_their_nll(link):
  z, labels = random_inputs(5, (6,), K - 1, sort=True)
  probs = np.asarray(losses.clm_probs(z, link=link))
  want = np.array([ref_clm_probs(row.astype(np.float64), link) for row in z])
  np.testing.assert_allclose(probs, want, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(
      losses.clm_loss(z, labels, link=link),
      -np.log(probs[np.arange(6), labels]), rtol=1e-5)


def test_clm_tail_probabilities_keep_their_precision():
  # F(z_1) - F(z_0) with both deep in the upper tail: 1 - F is used there.
  z = jnp.array([30.0, 31.0], jnp.float32)
  got = float(losses.clm_loss(z, jnp.int32(1), link='logit'))
  # sigma(31) - sigma(30) = sigma(-30) - sigma(-31): the float64 reference
  # is only accurate written this way (the other cancels to ~0.2 %).
  want = -np.log(np_sigmoid(-30.0) - np_sigmoid(-31.0))  # ~ 30.4587
  np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize('fn, kwargs', [
    (losses.binomial_probs, {}), (losses.poisson_probs, {}),
    (losses.poisson_probs, {'temperature': 0.6}),
])
def test_one_dimensional_heads_match_reference(fn, kwargs):
  scores = np.linspace(-6, 6, 13, dtype=np.float32)[:, None]
  got = np.asarray(fn(scores, num_classes=K, **kwargs))
  if fn is losses.binomial_probs:
    ref = ref_binomial_probs
  else:
    ref = functools.partial(ref_poisson_probs, t=kwargs.get('temperature', 1.0))
  np.testing.assert_allclose(got, [ref(s.astype(np.float64)) for s in scores],
                             rtol=1e-5, atol=1e-7)


def test_von_mises_probs_match_reference():
  outputs, _ = random_inputs(6, (8,), 2)
  got = np.asarray(losses.von_mises_probs(outputs, num_classes=K, kappa=3.0))
  np.testing.assert_allclose(
      got, [ref_von_mises_probs(o.astype(np.float64), kappa=3.0)
            for o in outputs], rtol=1e-5, atol=1e-7)


# ----------------------------------------------------------------------------
# dlordinal 2.7 parity.


def soft_labels_case_id(case):
  params = '-'.join(f'{k}={v}' for k, v in case['params'].items())
  return f"{case['family']}-{case['num_classes']}-{params}"


@pytest.mark.parametrize('case', REFERENCE['soft_labels'],
                         ids=soft_labels_case_id)
def test_soft_labels_equal_dlordinal(case):
  got = losses.soft_label_matrix(case['family'], case['num_classes'],
                                 **case['params'])
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(got, case['matrix'], atol=1e-5)


@pytest.mark.parametrize('case', [
    pytest.param(case, id=case['link'], marks=() if case['link'] == 'logit'
                 else pytest.mark.slow) for case in REFERENCE['clm']])
def test_clm_equals_dlordinal(case):
  z = (np.asarray(case['thresholds'])[None, :] -
       np.asarray(case['projected'])[:, None]).astype(np.float32)
  np.testing.assert_allclose(losses.clm_probs(z, link=case['link']),
                             case['probs'], atol=1e-5)


def test_binomial_head_equals_dlordinal():
  case = REFERENCE['binomial'][0]
  score = np.asarray(case['score'], np.float32)[:, None]
  np.testing.assert_allclose(losses.binomial_probs(score, num_classes=K),
                             case['probs'], atol=1e-5)


def test_copoc_head_equals_dlordinal_and_is_unimodal():
  (case,) = REFERENCE['copoc']
  eta = np.asarray(case['outputs'], np.float32)
  probs = np.asarray(losses.copoc_probs(eta))
  np.testing.assert_allclose(probs, case['probs'], atol=1e-5)
  # Unimodal: rises to the mode, falls after, for every input.
  eta = np.random.default_rng(7).normal(0, 4, (500, K)).astype(np.float32)
  probs = np.asarray(losses.copoc_probs(eta), np.float64)
  mode = probs.argmax(axis=1)
  steps = np.diff(probs, axis=1)
  rising = np.arange(K - 1)[None, :] < mode[:, None]
  assert np.all(steps[rising] >= -1e-7) and np.all(steps[~rising] <= 1e-7)


@pytest.mark.parametrize('case', REFERENCE['poisson'],
                         ids=lambda c: f"T={c['temperature']}")
def test_poisson_head_equals_dlordinal(case):
  score = np.asarray(case['score'], np.float32)[:, None]
  got = losses.poisson_probs(score, num_classes=K,
                             temperature=case['temperature'])
  np.testing.assert_allclose(got, case['probs'], atol=1e-5)
  outputs = losses.poisson_head_outputs(
      score, np.log(np.float32([case['temperature']])))
  np.testing.assert_allclose(losses.poisson_head_probs(outputs, num_classes=K),
                             case['probs'], atol=1e-5)


@pytest.mark.parametrize('case', REFERENCE['slace'],
                         ids=lambda c: f"alpha={c['alpha']}")
def test_slace_equals_dlordinal(case):
  got = losses.slace_loss(np.asarray(case['logits'], np.float32),
                          np.asarray(case['labels'], np.int32),
                          distance=losses.linear_distance(K),
                          sharpness=case['alpha'])
  np.testing.assert_allclose(got, case['loss'], rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------
# Soft-label matrices: distributions, unimodality, the circle.


def is_unimodal(row):
  """Non-decreasing up to the mode and non-increasing after it."""
  mode = int(np.argmax(row))
  tol = 1e-7
  return (np.all(np.diff(row[:mode + 1]) >= -tol) and
          np.all(np.diff(row[mode:]) <= tol))


@pytest.mark.parametrize('family', losses.SOFT_LABEL_FAMILIES)
@pytest.mark.parametrize('num_classes', everyday_subset([3, 10, 14], [10]))
def test_soft_label_rows_are_unimodal_distributions(family, num_classes):
  q = np.asarray(losses.soft_label_matrix(family, num_classes), np.float64)
  assert q.shape == (num_classes, num_classes)
  assert np.all(q >= 0)
  np.testing.assert_allclose(q.sum(axis=1), 1.0, atol=1e-6)
  if family == 'von_mises':
    # Unimodal on the circle: unimodal once the row is rotated to start
    # opposite its label.
    rows = [np.roll(row, num_classes // 2 - y) for y, row in enumerate(q)]
  else:
    rows = list(q)
  assert all(is_unimodal(row) for row in rows)
  if family not in ('binomial', 'poisson', 'beta'):  # these put the mode on y
    np.testing.assert_array_equal(q.argmax(axis=1), np.arange(num_classes))


def test_von_mises_soft_labels_wrap_around_and_are_rotation_invariant():
  q = np.asarray(losses.soft_label_matrix('von_mises', K, kappa=3.0))
  np.testing.assert_allclose(q[0, 9], q[0, 1], rtol=1e-6)  # 9 next to 0
  for shift in (1, 4, 7):
    np.testing.assert_allclose(np.roll(q, (shift, shift), axis=(0, 1)), q,
                               rtol=1e-6)
  assert q[0, 0] / q[0, 1] == pytest.approx(
      np.exp(3.0 * (1 - np.cos(2 * np.pi / K))), rel=1e-5)


@pytest.mark.parametrize('shift', [1, 3, 9])
def test_von_mises_head_is_rotation_invariant(shift):
  outputs, labels = random_inputs(7, (8,), 2)
  angle = 2 * np.pi * shift / K
  rotation = np.array([[np.cos(angle), -np.sin(angle)],
                       [np.sin(angle), np.cos(angle)]], np.float32)
  rotated = outputs @ rotation.T
  np.testing.assert_allclose(
      losses.von_mises_loss(rotated, (labels + shift) % K, num_classes=K),
      losses.von_mises_loss(outputs, labels, num_classes=K), atol=1e-5)
  np.testing.assert_allclose(
      losses.von_mises_probs(rotated, num_classes=K),
      np.roll(losses.von_mises_probs(outputs, num_classes=K), shift, axis=-1),
      atol=1e-5)


def test_von_mises_loss_grows_with_cyclic_distance_to_zero_at_truth():
  for label in (0, 9):
    angles = 2 * np.pi * np.arange(K) / K
    outputs = np.stack([np.cos(angles), np.sin(angles)], -1).astype(np.float32)
    loss = np.asarray(losses.von_mises_loss(
        outputs, np.full(K, label, np.int32), num_classes=K))
    cyclic = np.asarray(losses.cyclic_distance(K))[label]
    assert loss[label] == pytest.approx(0.0, abs=1e-6)
    for d in range(5):
      assert loss[cyclic == d].max() < loss[cyclic == d + 1].min() + 1e-7


def test_soft_targets_with_identity_are_cross_entropy():
  z, labels = random_inputs(8, (9,), K)
  np.testing.assert_allclose(
      losses.soft_target_cross_entropy(z, labels, targets=np.eye(K)),
      -jax.nn.log_softmax(z)[np.arange(9), labels], rtol=1e-6)


# ----------------------------------------------------------------------------
# Bad input names the argument.


@pytest.mark.parametrize('call, error, match', [
    (lambda: losses.soft_label_matrix('gaussian', 5), ValueError,
     "unknown family 'gaussian'"),
    (lambda: losses.soft_label_matrix('binomial', 1), ValueError,
     'num_classes must be an integer >= 2'),
    (lambda: losses.soft_label_matrix('binomial', 5, tau=1.0), ValueError,
     "^'binomial' takes no hyperparameters, got tau"),
    (lambda: losses.soft_label_matrix('exponential', 5, tau=0.0), ValueError,
     '^tau must be finite and > 0'),
    (lambda: losses.soft_label_matrix('von_mises', 5, kappa=np.inf),
     ValueError, 'kappa must be finite and > 0'),
    (lambda: losses.soft_label_matrix('beta', 20), ValueError,
     'parameters for 3 to 14 classes'),
    (lambda: losses.soft_label_matrix('geometric', 5, alpha=1.0), ValueError,
     r'alpha must lie in \[0, 1\)'),
    (lambda: losses.soft_target_cross_entropy(
        np.zeros((2, 3), np.float32), np.zeros(2, np.int32),
        targets=np.eye(4)), ValueError,
     'targets is 4x4 but the logits have 3 classes'),
    (lambda: losses.soft_target_cross_entropy(
        np.zeros((2, 3), np.float32), np.zeros(2, np.int32),
        targets=-np.eye(3)), ValueError, 'targets has negative entries'),
    (lambda: losses.soft_target_cross_entropy(
        np.zeros((2, 3), np.float32), np.zeros(2, np.int32),
        targets=2 * np.eye(3)), ValueError, 'must sum to 1'),
    (lambda: losses.clm_loss(np.zeros((2, 3), np.float32),
                             np.zeros(2, np.int32), link='tanh'),
     ValueError, 'link must be one of logit, probit, cloglog'),
    (lambda: losses.clm_probs(np.zeros(3), link='identity'), ValueError,
     'link must be one of'),
    (lambda: losses.binomial_loss(np.zeros((2, 3), np.float32),
                                  np.zeros(2, np.int32), num_classes=K),
     ValueError,
     '^outputs must have 1 entries on axis -1, got 3'),
    (lambda: losses.poisson_head_loss(np.zeros((2, 1), np.float32),
                                      np.zeros(2, np.int32), num_classes=K),
     ValueError, '^outputs must have 2 entries'),
    (lambda: losses.coral_probs(np.zeros((2, 3), np.int32)), TypeError,
     '^outputs must be a floating'),
    (lambda: losses.binomial_loss(np.zeros((2, 1), np.float32),
                                  np.array([0, K], np.int32), num_classes=K),
     ValueError, r'labels must lie in \[0, 10\)'),
    (lambda: losses.poisson_loss(np.zeros((2, 1), np.int32),
                                 np.zeros(2, np.int32), num_classes=K),
     TypeError, '^outputs must be a floating'),
    (lambda: losses.poisson_loss(np.zeros((2, 1), np.float32),
                                 np.zeros(2, np.int32), num_classes=K,
                                 temperature=np.array([1.0, 0.0])), ValueError,
     '^temperature must be finite and > 0'),
    (lambda: losses.poisson_probs(np.zeros((2, 1), np.float32), num_classes=K,
                                  temperature=np.ones(3)), ValueError,
     'temperature must be a number or have the batch shape'),
    (lambda: losses.von_mises_loss(np.zeros((2, 2), np.float32),
                                   np.zeros(2, np.int32), num_classes=K,
                                   kappa=-1.0), ValueError,
     '^kappa must be finite and > 0'),
    (lambda: losses.von_mises_probs(np.zeros((2, 3)), num_classes=K),
     ValueError, 'must have 2 entries'),
    (lambda: losses.von_mises_probs(np.zeros((2, 2)), num_classes=1),
     ValueError, 'num_classes must be an integer >= 2'),
    (lambda: losses.slace_loss(np.zeros((2, 3), np.float32),
                               np.zeros(2, np.int32),
                               distance=losses.linear_distance(3),
                               sharpness=0.0),
     ValueError, '^sharpness must be finite and > 0'),
    (lambda: losses.make_loss('clm'), ValueError, 'needs link='),
    (lambda: losses.make_loss('soft_target_cross_entropy'), ValueError,
     'needs targets='),
    (lambda: losses.make_loss('binomial_head', ce_weight=1.0, num_classes=K),
     ValueError, 'cannot be mixed'),
])
def test_bad_input_raises_naming_the_argument(call, error, match):
  with pytest.raises(error, match=match):
    call()


# ----------------------------------------------------------------------------
# The registry: every head is data, and probs/loss agree.


def own(names):
  """A value for each of a head's hyperparameters ``names``."""
  values = {'num_classes': K, 'link': 'probit', 'kappa': 2.0}
  return {name: values[name] for name in names}


@pytest.mark.parametrize('name', ['clm', 'binomial_head', 'poisson_head',
                                  'von_mises_head'])
def test_registered_heads_loss_is_nll_of_their_probs(name):
  spec = losses.get_loss(name)
  loss_fn = losses.make_loss(name, **own(spec.hyperparams))
  probs_fn = losses.make_probs(name, **own(spec.probs_hyperparams))
  outputs, labels = random_inputs(9, (6,), num_outputs_of(name, K),
                                  sort=name == 'clm')
  probs = np.asarray(probs_fn(outputs))
  assert probs.shape == (6, K)
  np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
  if name == 'von_mises_head':  # a bounded loss, not a likelihood
    return
  np.testing.assert_allclose(loss_fn(outputs, labels),
                             -np.log(probs[np.arange(6), labels]), rtol=1e-5)


def test_poisson_head_reads_its_learned_temperature():
  score = np.array([[0.3], [2.0]], np.float32)
  outputs = losses.poisson_head_outputs(score, np.log([0.5]))
  np.testing.assert_allclose(outputs, [[0.3, np.log(0.5)], [2.0, np.log(0.5)]],
                             rtol=1e-6)
  labels = np.array([1, 2], np.int32)
  np.testing.assert_allclose(
      losses.make_loss('poisson_head', num_classes=K)(outputs, labels),
      losses.poisson_loss(score, labels, num_classes=K, temperature=0.5),
      rtol=1e-6)
  np.testing.assert_allclose(
      losses.make_probs('poisson_head', num_classes=K)(outputs),
      losses.poisson_probs(score, num_classes=K, temperature=0.5), rtol=1e-6)


@pytest.mark.parametrize('log_t, clipped', [(25.0, 10.0), (-1e4, -10.0)])
def test_poisson_head_clips_its_log_temperature_to_the_documented_range(
    log_t, clipped):
  score = np.array([[-3.0], [0.5], [4.0]], np.float32)
  labels = np.array([0, 3, 9], np.int32)
  outputs = losses.poisson_head_outputs(score, np.float32([log_t]))
  loss = losses.poisson_head_loss(outputs, labels, num_classes=K)
  np.testing.assert_allclose(
      loss, losses.poisson_loss(score, labels, num_classes=K,
                                temperature=np.exp(clipped)), rtol=1e-6)
  # Past the range the log temperature gets no gradient; the score does.
  grad = jax.jit(jax.grad(lambda o: jnp.sum(losses.poisson_head_loss(
      o, labels, num_classes=K))))(outputs)
  np.testing.assert_array_equal(grad[:, 1], 0.0)
  assert np.all(np.isfinite(grad)) and np.any(grad[:, 0] != 0)
