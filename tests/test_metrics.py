"""Tests for metrics.py against plain numpy, including absent classes."""

import jax
import numpy as np
import pytest

import losses
import metrics

K = 10
LINEAR = np.asarray(losses.linear_distance(K))
CYCLIC = np.asarray(losses.cyclic_distance(K))


def np_weighted_kappa(preds, labels, weights):
  observed = np.zeros((K, K))
  np.add.at(observed, (labels, preds), 1)
  expected = np.outer(observed.sum(1), observed.sum(0)) / observed.sum()
  return 1 - (weights * observed).sum() / (weights * expected).sum()


@pytest.fixture
def absent_class_batch():
  """Labels only from {0, 5, 9}; predictions anywhere."""
  rng = np.random.default_rng(0)
  labels = rng.choice([0, 5, 9], size=40).astype(np.int32)
  preds = np.clip(labels + rng.integers(-3, 4, size=40), 0, K - 1).astype(
      np.int32)
  return preds, labels


def test_basic_metrics_match_numpy(absent_class_batch):
  preds, labels = absent_class_batch
  jit = jax.jit
  np.testing.assert_allclose(jit(metrics.accuracy)(preds, labels),
                             np.mean(preds == labels))
  np.testing.assert_allclose(
      jit(lambda p, y: metrics.mean_distance(p, y, distance=LINEAR))(
          preds, labels),
      np.mean(np.abs(preds - labels)), rtol=1e-6)
  np.testing.assert_allclose(
      metrics.mean_distance(preds, labels, distance=CYCLIC),
      np.mean(np.minimum(np.abs(preds - labels), K - np.abs(preds - labels))),
      rtol=1e-6)
  np.testing.assert_allclose(jit(metrics.off_by_one_accuracy)(preds, labels),
                             np.mean(np.abs(preds - labels) <= 1))


def test_macro_metrics_average_only_present_classes(absent_class_batch):
  preds, labels = absent_class_batch
  per_class = [np.mean(np.abs(preds[labels == c] - c)) for c in (0, 5, 9)]
  amae = jax.jit(lambda p, y: metrics.macro_mean_distance(
      p, y, distance=LINEAR))(preds, labels)
  np.testing.assert_allclose(amae, np.mean(per_class), rtol=1e-6)
  np.testing.assert_allclose(
      metrics.max_mean_distance(preds, labels, distance=LINEAR),
      np.max(per_class), rtol=1e-6)


def test_confusion_matrix_keeps_absent_classes(absent_class_batch):
  preds, labels = absent_class_batch
  cm = jax.jit(lambda p, y: metrics.confusion_matrix(p, y, num_classes=K))(
      preds, labels)
  want = np.zeros((K, K), np.int32)
  np.add.at(want, (labels, preds), 1)
  np.testing.assert_array_equal(cm, want)
  assert cm.shape == (K, K) and cm.sum() == 40


def test_quadratic_weighted_kappa_matches_numpy(absent_class_batch):
  preds, labels = absent_class_batch
  qwk = jax.jit(lambda p, y: metrics.quadratic_weighted_kappa(
      p, y, num_classes=K))(preds, labels)
  np.testing.assert_allclose(qwk, np_weighted_kappa(preds, labels, LINEAR**2),
                             rtol=1e-5)
  np.testing.assert_allclose(
      metrics.quadratic_weighted_kappa(preds, labels, num_classes=K,
                                       weights=CYCLIC),
      np_weighted_kappa(preds, labels, CYCLIC), rtol=1e-5)
  assert float(metrics.quadratic_weighted_kappa(
      labels, labels, num_classes=K)) == 1.0


def test_bayes_decision_linear_is_the_median():
  rng = np.random.default_rng(1)
  probs = rng.dirichlet(np.ones(K), size=200).astype(np.float32)
  cdf = np.cumsum(probs, -1)
  median = np.argmax(cdf >= 0.5, axis=-1)
  got = jax.jit(lambda p: metrics.bayes_decision(p, distance=LINEAR))(probs)
  np.testing.assert_array_equal(got, median)


def test_bayes_decision_zero_one_cost_is_argmax():
  rng = np.random.default_rng(2)
  probs = rng.dirichlet(np.ones(K), size=50).astype(np.float32)
  got = metrics.bayes_decision(probs, distance=1 - np.eye(K))
  np.testing.assert_array_equal(got, np.argmax(probs, -1))


def test_bayes_decision_cyclic_wraps():
  probs = np.zeros(K, np.float32)
  probs[[8, 2]] = 0.3
  probs[[9, 1]] = 0.1
  probs[0] = 0.2  # linear median is 2; on the circle 0 costs least
  assert int(metrics.bayes_decision(probs, distance=LINEAR)) == 2
  assert int(metrics.bayes_decision(probs, distance=CYCLIC)) == 0


def test_ranked_probability_score():
  rng = np.random.default_rng(3)
  probs = rng.dirichlet(np.ones(K), size=30).astype(np.float32)
  labels = rng.integers(0, K, 30).astype(np.int32)
  want = np.mean([np.sum((np.cumsum(p) - (np.arange(K) >= y))**2)
                  for p, y in zip(probs, labels, strict=True)]) / (K - 1)
  np.testing.assert_allclose(jax.jit(metrics.ranked_probability_score)(
      probs, labels), want, rtol=1e-5)
  assert float(metrics.ranked_probability_score(
      np.eye(K, dtype=np.float32)[labels], labels)) == 0


@pytest.mark.parametrize('preds, labels, error, match', [
    (np.zeros(3, np.float32), np.zeros(3, np.int32), TypeError,
     '^preds must be integer'),
    (np.zeros(3, np.int32), np.zeros(3, np.float32), TypeError,
     'labels must be integer'),
    (np.zeros(3, np.int32), np.zeros(4, np.int32), ValueError, 'same shape'),
])
def test_bad_metric_input_raises(preds, labels, error, match):
  with pytest.raises(error, match=match):
    metrics.mean_distance(preds, labels, distance=LINEAR)


@pytest.mark.parametrize('distance', [LINEAR, CYCLIC])
def test_mean_distance_is_error_rate_times_mean_error_distance(
    absent_class_batch, distance):
  preds, labels = absent_class_batch
  wrong = preds != labels
  error_distance = jax.jit(
      lambda p, y: metrics.mean_error_distance(p, y, distance=distance))(
          preds, labels)
  np.testing.assert_allclose(error_distance,
                             distance[labels, preds][wrong].mean(), rtol=1e-6)
  np.testing.assert_allclose(
      (1 - metrics.accuracy(preds, labels)) * error_distance,
      metrics.mean_distance(preds, labels, distance=distance), rtol=1e-6)
  far = np.abs(preds - labels) >= 3
  np.testing.assert_allclose(
      jax.jit(metrics.far_share_of_errors)(preds, labels),
      far[wrong].mean(), rtol=1e-6)


def test_error_attribution_without_errors_is_zero():
  labels = np.arange(K, dtype=np.int32)
  assert float(metrics.mean_error_distance(labels, labels,
                                           distance=LINEAR)) == 0.0
  assert float(metrics.far_share_of_errors(labels, labels)) == 0.0


def test_far_error_rate_counts_mistakes_at_least_min_distance_off():
  rng = np.random.default_rng(3)
  preds, labels = rng.integers(0, 10, 200), rng.integers(0, 10, 200)
  gap = np.abs(preds - labels)
  for min_distance in (1, 3, 9):
    np.testing.assert_allclose(
        metrics.far_error_rate(preds, labels, min_distance=min_distance),
        np.mean(gap >= min_distance), rtol=1e-6)
  # The default: 7 for a 3 is far, 4 or 5 is not.
  assert float(metrics.far_error_rate(np.array([7, 4, 5, 3]),
                                      np.array([3, 3, 3, 3]))) == 0.25
