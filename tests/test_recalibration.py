"""Resampling the calibration images (study/recalibration.py) and the sets'
estimates (study/sets_estimates.py): every replicate threshold read off a
window equals conformal.py's threshold recomputed on the resampled images,
and the cross-fitted kept arrays equal each fold's sets."""

import numpy as np
import pytest

import conformal
import losses
from study import prediction_sets, recalibration, sets_estimates
from trainer import sets as run_sets

LINEAR = np.asarray(losses.linear_distance(10))


def _probs(n, rng, noise=1.2, width=0.8, labels=None):
  labels = rng.integers(0, 10, n) if labels is None else labels
  centres = labels + rng.normal(0, noise, n)
  logits = -np.abs(np.arange(10)[None, :] - centres[:, None]) / width
  logits += rng.gumbel(size=(n, 10))
  probs = np.exp(logits - logits.max(-1, keepdims=True))
  return (probs / probs.sum(-1, keepdims=True)).astype(np.float32), labels


def _threshold(method, scores, labels, alpha):
  if method == 'lac':
    return float(conformal.calibrate(scores, labels, alpha=alpha)[0])
  return float(conformal.risk_control_threshold(
      scores, labels, distance=LINEAR, alpha=alpha))


@pytest.mark.parametrize('method,alpha', [
    pytest.param('lac', 0.05, marks=pytest.mark.slow), ('lac', 0.01),
    ('risk', 0.01), pytest.param('risk', 0.005, marks=pytest.mark.slow)])
def test_a_replicate_s_threshold_is_conformal_s_on_the_resampled_images(
    method, alpha):
  rng = np.random.default_rng(0)
  probs, labels = _probs(1500, rng)
  scores = recalibration.scores(method, probs)
  calibrated = recalibration.window(recalibration.method_losses(
      method, scores, labels, alpha, LINEAR), method, alpha, 9.0, width=60)
  assert calibrated.lambdas_G[calibrated.center] == _threshold(
      method, scores, labels, alpha)
  kept = calibrated.arrays('w')
  counts = rng.multinomial(1500, np.full(1500, 1 / 1500), size=12)
  positions, clipped = recalibration.replicate_positions(
      kept, 'w', counts.astype(np.float64), counts.sum(axis=1))
  assert clipped == 0
  assert len(set(positions.tolist())) > 3  # the thresholds do move
  for count, position in zip(counts, positions, strict=True):
    resampled = np.repeat(np.arange(1500), count)
    assert calibrated.lambdas_G[position] == _threshold(
        method, scores[resampled], labels[resampled], alpha)
  unit, none = recalibration.replicate_positions(
      kept, 'w', np.ones((1, 1500)), np.array([1500.0]))
  assert unit.tolist() == [calibrated.center] and none == 0


def test_a_window_s_curves_are_the_sets_at_each_threshold():
  rng = np.random.default_rng(1)
  probs, labels = _probs(800, rng)
  test_probs, test_labels = _probs(300, rng)
  kept = recalibration.kept_window(
      'lac', recalibration.scores('lac', probs), labels,
      recalibration.scores('lac', test_probs), test_labels, alpha=0.02,
      distance_KxK=LINEAR, prefix='w', width=5)
  calibrated = recalibration.window(recalibration.method_losses(
      'lac', recalibration.scores('lac', probs), labels, 0.02, LINEAR),
      'lac', 0.02, 9.0, width=5)
  assert int(kept['w_groups']) == 11
  for g, threshold in enumerate(calibrated.lambdas_G):
    sets = np.asarray(conformal.prediction_sets(
        recalibration.scores('lac', test_probs), threshold))
    assert kept['w_size_curve'][g] == pytest.approx(sets.sum(-1).mean())
    assert kept['w_covered_curve'][g] == pytest.approx(
        np.mean(conformal.covered(sets, test_labels)))
    assert kept['w_distance_curve'][g] == pytest.approx(np.mean(
        conformal.distance_to_set(sets, test_labels, distance=LINEAR)))
  shifted = recalibration.replicate_offsets(kept, 'w', 'size',
                                            np.array([5, 0, 10]))
  curve = kept['w_size_curve']
  assert shifted.tolist() == pytest.approx(
      [0.0, curve[0] - curve[5], curve[10] - curve[5]])


def test_infinite_thresholds_keep_a_one_group_window():
  rng = np.random.default_rng(2)
  probs, labels = _probs(20, rng)
  scores = recalibration.scores('lac', probs)
  too_few = recalibration.window(recalibration.method_losses(
      'lac', scores, labels, 0.01, LINEAR), 'lac', 0.01, 9.0)
  assert too_few.lambdas_G.tolist() == [np.inf]
  kept = too_few.arrays('w')
  position, clipped = recalibration.replicate_positions(
      kept, 'w', np.ones((2, 20)), np.full(2, 20.0))
  assert position.tolist() == [0, 0] and clipped == 0
  easy = np.eye(10, dtype=np.float32)[labels] * 0.99 + 0.001
  risk = recalibration.window(recalibration.method_losses(
      'risk', recalibration.scores('risk', easy), labels, 0.2, LINEAR),
      'risk', 0.2, 9.0)
  assert risk.lambdas_G.tolist() == [-np.inf]


def test_the_allowance_is_conformal_s_rule():
  # n = 99, alpha 0.05: the 95th smallest score, so 4 may lie above it.
  assert recalibration.allowance('lac', 99, 0.05, 1.0) == 4
  assert recalibration.allowance('lac', np.array([9, 19]), 0.1, 1.0
                                 ).tolist() == [0, 1]
  # n = 499, alpha 0.01: (500 * 0.01 - 1) * 9 = 36 distance units.
  assert recalibration.allowance('risk', 499, 0.01, 9.0) == pytest.approx(36)


def _family(rng, num_seeds=3, n=400, test=None, noise=1.2):
  """Kept arrays of ``num_seeds`` models of one split's images."""
  labels_N = np.random.default_rng(99).integers(0, 10, n)
  probs_SxNxK = np.stack([_probs(n, rng, noise, labels=labels_N)[0]
                          for _ in range(num_seeds)])
  seeds = np.arange(7, 7 + num_seeds)
  return prediction_sets.kept_sets(probs_SxNxK, labels_N, test, seeds), (
      probs_SxNxK, labels_N)


@pytest.mark.slow
def test_the_kept_arrays_are_each_fold_s_sets():
  rng = np.random.default_rng(3)
  test_probs = np.stack([_probs(50, rng)[0] for _ in range(2)])
  test_labels = rng.integers(0, 10, 50)
  kept, (probs, labels) = _family(rng, num_seeds=2, n=120,
                                  test=(test_probs, test_labels))
  assert kept['seeds'].tolist() == [7, 8]
  np.testing.assert_array_equal(kept['evaluation_labels'], labels)
  digits = np.arange(10)[None, :]
  for name in prediction_sets.WINDOWED:
    method, alpha = prediction_sets.measure(name)
    for s in range(2):
      for fold, (calibration, evaluation) in enumerate(
          prediction_sets.folds(120)):
        masks = run_sets.method_sets(
            method, probs[s][calibration], labels[calibration],
            probs[s][evaluation], alpha=alpha, distance_KxK=LINEAR)
        low = kept[f'evaluation_{name}_low'][s][evaluation]
        high = kept[f'evaluation_{name}_high'][s][evaluation]
        np.testing.assert_array_equal(
            masks, (digits >= low[:, None]) & (digits <= high[:, None]))
        prefix = f'window_{name}_s{s}_f{fold}'
        centre = int(kept[f'{prefix}_center'])
        assert kept[f'{prefix}_size_curve'][centre] == pytest.approx(
            (high - low + 1).mean())
        # The window's images are positions in the split, of this fold.
        assert set(kept[f'{prefix}_drop_images'].tolist()) <= set(
            calibration.tolist())
  for name in (*prediction_sets.WINDOWED,
               *prediction_sets.SECONDARY_MEASURES):
    method, alpha = prediction_sets.measure(name)
    for s in range(2):
      test_masks = run_sets.method_sets(
          method, probs[s][0::2], labels[0::2], test_probs[s], alpha=alpha,
          distance_KxK=LINEAR)
      assert kept[f'test_{name}_size'][s] == pytest.approx(
          test_masks.sum(-1).mean())
      assert kept[f'test_{name}_covered'][s] == pytest.approx(np.mean(
          conformal.covered(test_masks, test_labels)))
  for name in prediction_sets.SECONDARY_MEASURES:
    assert kept[f'evaluation_{name}_size'].shape == (2,)
    assert np.all(kept[f'evaluation_{name}_size'] >= 1)
  assert kept['evaluation_lac@0.1_plain_size'].shape == (2,)
  assert not any(k.startswith('test_') and k.endswith(('_low', '_high'))
                 for k in kept)


@pytest.mark.slow
def test_groups_join_with_their_windows_renumbered():
  rng = np.random.default_rng(4)
  first, _ = _family(rng, num_seeds=2, n=60)
  second, _ = _family(np.random.default_rng(5), num_seeds=2, n=60)
  second = {**second, 'seeds': np.array([9, 10])}
  joined = sets_estimates.concatenate([first, second])
  assert joined['seeds'].tolist() == [7, 8, 9, 10]
  assert joined['evaluation_lac@0.01_low'].shape == (4, 60)
  np.testing.assert_array_equal(
      joined['window_lac@0.01_s3_f1_size_curve'],
      second['window_lac@0.01_s1_f1_size_curve'])
  with pytest.raises(ValueError, match='disagree on evaluation_labels'):
    sets_estimates.concatenate([first, {
        **second, 'evaluation_labels': second['evaluation_labels'][::-1]}])


@pytest.mark.slow
def test_the_bootstrap_centres_on_the_estimate_and_recalibrating_widens_it():
  rng = np.random.default_rng(6)
  a, _ = _family(rng, num_seeds=4, n=600, noise=1.0)
  b, _ = _family(rng, num_seeds=4, n=600, noise=2.0)
  families = {'a': a, 'b': b}
  contrast = sets_estimates.Contrast(((1.0, 'a'), (-1.0, 'b')),
                                     prediction_sets.MEASURE_LEVELS['lac'])
  observed = float(sets_estimates.contrast_values(families, contrast).mean())
  draws = sets_estimates.bootstrap(families, {'d': contrast},
                                   replicates=400)['d']
  assert draws.samples.shape == draws.fixed.shape == (400,)
  assert abs(draws.fixed.mean() - observed) < 3 * draws.fixed.std() / 20
  assert draws.samples.std() > draws.fixed.std()
  again = sets_estimates.bootstrap(families, {'d': contrast},
                                   replicates=400)['d']
  np.testing.assert_array_equal(again.samples, draws.samples)
  interval = sets_estimates.group_interval(np.arange(20.0), group_size=10)
  assert interval[0] < 9.5 < interval[1]


@pytest.fixture(scope='module')
def fresh_draws():
  """60 independent draws of 4 000 images of one synthetic model, each
  cross-fitted as the protocol does (the check results/protocol.md's sets
  entry quotes)."""
  rng = np.random.default_rng(123)
  draws = []
  for _ in range(60):
    probs, labels = _probs(4000, rng, noise=0.9)
    draws.append(prediction_sets.kept_sets(probs[None], labels, None,
                                           np.array([0])))
  return draws


@pytest.mark.slow
@pytest.mark.parametrize('measure', ['lac', 'risk'])
def test_recalibrating_gives_the_spread_of_fresh_calibration_sets(
    fresh_draws, measure):
  contrast = sets_estimates.Contrast(
      ((1.0, 'f'),), prediction_sets.MEASURE_LEVELS[measure])
  over_draws = np.std([sets_estimates.contrast_values({'f': kept}, contrast)
                       .mean() for kept in fresh_draws], ddof=1)
  for kept in fresh_draws[:5]:
    draws = sets_estimates.bootstrap({'f': kept}, {'c': contrast},
                                     replicates=500, resample_seeds=False)
    recalibrated, fixed = draws['c'].samples.std(), draws['c'].fixed.std()
    assert 0.8 < recalibrated / over_draws < 1.6, (recalibrated, over_draws)
    assert fixed / over_draws < 0.3, (fixed, over_draws)
