"""The power analysis's variance components and detectable effects, on
synthetic differences whose seed, image and residual variances are known."""

import numpy as np
import pytest

from study import power


def _simulate(rng, seeds, images, sd_seed=0.01, sd_image=0.2, sd_residual=0.5,
              mean=-0.003):
  return (mean + sd_seed * rng.standard_normal((seeds, 1))
          + sd_image * rng.standard_normal((1, images))
          + sd_residual * rng.standard_normal((seeds, images)))


def test_the_components_recover_known_variances():
  c = power.variance_components(_simulate(np.random.default_rng(0), 200,
                                          4000))
  np.testing.assert_allclose([c.var_seed, c.var_image, c.var_residual],
                             [0.01**2, 0.2**2, 0.5**2], rtol=0.25)
  assert (c.num_seeds, c.num_images) == (200, 4000)


def test_the_variance_of_the_mean_is_that_of_repeated_studies():
  # New seeds and new images each time: the spread of the means matches
  # the formula's prediction from one study's components.
  rng = np.random.default_rng(1)
  means = [_simulate(rng, 10, 500).mean() for _ in range(400)]
  predicted = power.variance_of_mean(
      power.variance_components(_simulate(rng, 100, 2000)), 10, 500)
  np.testing.assert_allclose(np.var(means, ddof=1), predicted, rtol=0.2)


def test_the_detectable_effect_is_z_times_the_standard_error():
  # 1.96 + 0.8416 standard errors at alpha 0.05 and 80 % power.
  np.testing.assert_allclose(power.detectable_effect(1e-6, alpha=0.05),
                             2.8016e-3, rtol=1e-4)
  assert power.detectable_effect(1e-6, alpha=0.05 / 3) > 2.8016e-3


def test_one_seed_is_not_enough():
  with pytest.raises(ValueError, match='at least 2 seeds'):
    power.variance_components(np.zeros((1, 10)))
