"""The power analysis's variance components and detectable effects, on
synthetic differences whose seed, image and residual variances are known."""

import json
import pathlib

import numpy as np
import pytest

import corruptions
from study import cells, power, stats


def _simulate(rng, seeds, images, sd_seed=0.01, sd_image=0.2, sd_residual=0.5,
              mean=-0.003):
  return (mean + sd_seed * rng.standard_normal((seeds, 1))
          + sd_image * rng.standard_normal((1, images))
          + sd_residual * rng.standard_normal((seeds, images)))


def test_the_components_recover_known_variances():
  c = stats.variance_components(_simulate(np.random.default_rng(0), 200,
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
      stats.variance_components(_simulate(rng, 100, 2000)), 10, 500)
  np.testing.assert_allclose(np.var(means, ddof=1), predicted, rtol=0.2)


def test_the_detectable_effect_is_z_times_the_standard_error():
  # 1.96 + 0.8416 standard errors at alpha 0.05 and 80 % power.
  np.testing.assert_allclose(power.detectable_effect(1e-6, alpha=0.05),
                             2.8016e-3, rtol=1e-4)
  assert power.detectable_effect(1e-6, alpha=0.05 / 3) > 2.8016e-3


def test_one_seed_is_not_enough():
  with pytest.raises(ValueError, match='at least 2 seeds'):
    stats.variance_components(np.zeros((1, 10)))


def _fake_run(workdir, rng, shifted=True, seeds=3, images=50):
  """A run's predictions.npz: the test split and, with ``shifted``, each
  corruption's first ``images`` test images."""
  labels = rng.integers(0, 10, images)
  arrays = {'labels': labels, 'argmax': rng.integers(0, 10, (seeds, images)),
            'bayes': rng.integers(0, 10, (seeds, images))}
  if shifted:
    for name in corruptions.CORRUPTIONS:
      arrays[f'test[{name}]_labels'] = labels
      for decoding in ('argmax', 'bayes'):
        arrays[f'test[{name}]_{decoding}'] = rng.integers(
            0, 10, (seeds, images)).astype(np.int8)
  workdir.mkdir(parents=True)
  np.savez_compressed(workdir / 'predictions.npz', **arrays)
  return arrays


def test_a_kind_of_shift_averages_its_corruptions_per_image(tmp_path):
  arrays = _fake_run(tmp_path / 'run', np.random.default_rng(0))
  geometric = power.distances_SxN(tmp_path / 'run', kind='geometric')
  expected = np.mean([np.abs(arrays[f'test[{name}]_argmax'].astype(int)
                             - arrays['labels'])
                      for name in corruptions.KINDS['geometric']], axis=0)
  np.testing.assert_allclose(geometric, expected)
  # The kept int8 file gives the same, and the clean split as before.
  cells.save_distances(tmp_path / 'run', tmp_path / 'kept.npz', None,
                       bare='test', seeds=False)
  np.testing.assert_allclose(
      power.distances_SxN(tmp_path / 'kept.npz', kind='geometric'), expected)
  np.testing.assert_array_equal(
      power.distances_SxN(tmp_path / 'kept.npz', 'bayes'),
      np.abs(arrays['bayes'] - arrays['labels']))
  with pytest.raises(ValueError, match="no kind 'tilt'"):
    power.distances_SxN(tmp_path / 'run', kind='tilt')


def test_the_command_line_names_a_kind_and_needs_its_sets(tmp_path, capsys):
  rng = np.random.default_rng(1)
  for name in ('a', 'b'):
    _fake_run(tmp_path / name, rng)
  _fake_run(tmp_path / 'clean', rng, shifted=False)
  out = tmp_path / 'power.json'
  assert power.main(['--pair', str(tmp_path / 'a'), str(tmp_path / 'b'),
                     '--name', 'pilot', '--kind', 'blur', '--out', str(out),
                     '--seeds', '10', '--images', '100']) == 0
  result = json.loads(out.read_text())
  assert list(result) == ['pilot:blur'] and result['pilot:blur']['kind'] == (
      'blur')
  with pytest.raises(SystemExit) as exit_info:
    power.main(['--pair', str(tmp_path / 'a'), str(tmp_path / 'clean'),
                '--name', 'x', '--kind', 'noise', '--out', str(out)])
  assert exit_info.value.code == 2
  assert 'run it with --shifted_test' in capsys.readouterr().err


SHIFT = pathlib.Path(__file__).resolve().parent.parent / 'results' / 'shift'


def test_the_shift_pilots_power_recomputes_from_its_kept_files(tmp_path):
  committed = json.loads((SHIFT / 'power.json').read_text())
  pair = [str(SHIFT / 'pilot' / f'scarce2000-{role}.npz')
          for role in ('reference', 'challenger')]
  out = tmp_path / 'power.json'
  for name, entry in committed.items():
    kind = ['--kind', entry['kind']] if entry['kind'] else []
    designs = {key: sorted({str(row[key]) for row in entry['table']},
                           key=int) for key in ('seeds', 'images')}
    assert power.main(['--pair', *pair, '--name', name.split(':')[0], *kind,
                       '--alpha', str(entry['alpha']), '--seeds',
                       ','.join(designs['seeds']), '--images',
                       ','.join(designs['images']), '--out', str(out)]) == 0
  fresh = json.loads(out.read_text())
  assert list(fresh) == list(committed)
  for name, entry in committed.items():
    assert {k: v for k, v in fresh[name].items() if k != 'pair'} == {
        k: v for k, v in entry.items() if k != 'pair'}, name
