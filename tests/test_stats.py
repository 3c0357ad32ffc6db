"""The confirmation's estimators on synthetic data whose seed and image
variances are known."""

import numpy as np
import pytest

from study import power, stats


def _differences(rng, seeds, images, sd_seed, sd_image, sd_residual):
  return (sd_seed * rng.standard_normal((seeds, 1))
          + sd_image * rng.standard_normal((1, images))
          + sd_residual * rng.standard_normal((seeds, images)))


@pytest.mark.parametrize('sd_seed, sd_image', [(0.02, 0.1), (0.002, 0.5)])
def test_the_two_way_bootstrap_spread_matches_the_known_variance(sd_seed,
                                                                  sd_image):
  # MDE-like: a's values are b's plus the differences; den is 1.
  rng = np.random.default_rng(0)
  s, n = 20, 3000
  delta = _differences(rng, s, n, sd_seed, sd_image, 0.05)
  base = rng.uniform(0, 1, (s, n))
  ones = np.ones((s, n))
  samples = stats.two_way_bootstrap((base + delta, ones), (base, ones),
                                        replicates=2000, seed=1)
  np.testing.assert_allclose(samples.mean(), delta.mean(), atol=0.2 * (
      samples.std()))
  want = np.sqrt(sd_seed**2 / s + sd_image**2 / n + 0.05**2 / (s * n))
  np.testing.assert_allclose(samples.std(), want, rtol=0.3)
  # The seeds-only spread misses the images' share where it dominates.
  seeds_only = delta.mean(axis=1).std(ddof=1) / np.sqrt(s)
  if sd_image**2 / n > 10 * sd_seed**2 / s:
    assert seeds_only < 0.5 * samples.std()


def test_the_interval_covers_the_truth_at_about_its_level():
  rng = np.random.default_rng(2)
  covered = 0
  for trial in range(60):
    delta = 0.01 + _differences(rng, 10, 400, 0.01, 0.2, 0.1)
    ones = np.ones_like(delta)
    lo, hi = stats.percentile_interval(stats.two_way_bootstrap(
        (delta, ones), (np.zeros_like(delta), ones), replicates=400,
        seed=trial))
    covered += lo <= 0.01 <= hi
  assert covered >= 51  # 95 % nominal; 85 % at the least over 60 trials


def test_ratio_values_per_seed():
  num = np.array([[2, 0, 3, 0], [1, 1, 0, 0]])
  np.testing.assert_allclose(stats.per_seed(num, num > 0), [2.5, 1.0])
  np.testing.assert_allclose(stats.per_seed(num, np.ones_like(num)),
                             [1.25, 0.5])


def test_p_values():
  assert stats.bootstrap_p(np.array([0.1, 0.2, 0.3, -0.1])) == 0.5
  assert stats.bootstrap_p(np.array([0.1, 0.2])) == 0.0
  # Ten positive differences: 2 of 1024 sign patterns are as extreme.
  p = stats.sign_flip_p(np.arange(1, 11), flips=200_000, seed=0)
  np.testing.assert_allclose(p, 2 / 1024, rtol=0.15)
  assert stats.sign_flip_p(np.array([1.0, -1.0, 1.0, -1.0])) == 1.0


def test_shapes_must_agree():
  with pytest.raises(ValueError, match='seeds x images'):
    stats.two_way_bootstrap((np.ones((2, 3)), np.ones((2, 3))),
                                (np.ones((2, 4)), np.ones((2, 4))))


def test_the_bootstrap_and_the_power_analysis_agree():
  rng = np.random.default_rng(3)
  delta = _differences(rng, 30, 2000, 0.01, 0.2, 0.3)
  ones = np.ones_like(delta)
  c = stats.variance_components(delta)
  samples = stats.two_way_bootstrap((delta, ones), (0 * delta, ones),
                                        replicates=1000)
  np.testing.assert_allclose(samples.var(), power.variance_of_mean(
      c, 30, 2000), rtol=0.35)
