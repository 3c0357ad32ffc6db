"""The confirmation's report on synthetic cells and per-image files: the
choices replayed from the cells, the estimates, a dropped group, Holm."""

import dataclasses
import json

import numpy as np

from study import confirm, confirm_report
from trainer.resolve import grid_points


def _write_tuning(cells_dir, regime, name, family, best):
  """The family's grid cell, its best point at ``best`` (inside the grid)
  and epoch 8."""
  config = confirm.tuning_config(confirm.regime_base(regime), family)
  points = []
  for hp in grid_points(config.sweep):
    mde = sum(abs(np.log2(v / best[k])) for k, v in hp.items()) / 10 + 0.1
    points.append({'hyperparameters': hp, 'diverged': None, 'curve': [
        {'epoch': e, 'argmax': {'mean_digit_distance': mde + abs(8 - e) / 100},
         'bayes': {'mean_digit_distance': mde + 1}}
        for e in range(2, 13, 2)]})
  path = cells_dir / regime / f'tune-{name}.json'
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps({'config': dataclasses.asdict(config),
                              'seeds': [100, 101, 102], 'num_train': 2000,
                              'wall_s': 1.0, 'points': points}))


def _write_finals(root, regime, name, distances_SxN, diverged_group=None):
  for g in range(confirm.FINAL_GROUPS):
    seed = confirm.FINAL_SEED + 10 * g
    stem = f'final-{name}-s{seed}'
    cell = {'config': {}, 'seeds': list(range(seed, seed + 10))}
    if g == diverged_group:
      cell['diverged'] = 'loss became nan'
    (root / 'cells' / regime).mkdir(parents=True, exist_ok=True)
    (root / 'cells' / regime / f'{stem}.json').write_text(json.dumps(cell))
    if g != diverged_group:
      (root / 'images' / regime).mkdir(parents=True, exist_ok=True)
      block = distances_SxN[10 * g:10 * g + 10].astype(np.int8)
      np.savez_compressed(root / 'images' / regime / f'{stem}.npz',
                          argmax=block, bayes=block, seeds=cell['seeds'])


def test_rows_from_synthetic_cells(tmp_path):
  root = tmp_path / 'confirmation'
  families = confirm.families('scarce2000')
  best = {'learning_rate': 0.006, 'epsilon': 0.5, 'temperature': 1.0}
  best_smoothed = dict(best, temperature=3.0)
  for name, family in families.items():
    _write_tuning(root / 'cells', 'scarce2000', name, family,
                  best_smoothed if name == 'smoothed_sord' else best)
  rng = np.random.default_rng(0)
  n = 300
  reference = (rng.uniform(size=(80, n)) < 0.1) * rng.integers(1, 6, (80, n))
  challenger = np.where(rng.uniform(size=(80, n)) < 0.2, 0, reference)
  _write_finals(root, 'scarce2000', 'label_smoothing', reference)
  _write_finals(root, 'scarce2000', 'smoothed_sord', challenger,
                diverged_group=3)
  _write_finals(root, 'scarce2000', 'sord_linear', reference)
  _write_finals(root, 'scarce2000', 'sord_permuted', reference + (
      reference > 0))
  messages = []
  rows = confirm_report.hypothesis_rows(
      tmp_path, log=messages.append, replicates=300)
  assert len(messages) == 1 and messages[0].startswith('H2: not ready')
  h1, h3 = rows
  kept = [g for g in range(8) if g != 3]
  seeds = np.concatenate([np.arange(10 * g, 10 * g + 10) for g in kept])
  assert (h1['n_seeds'], h1['n_images'], h1['groups_dropped']) == (70, n, 1)
  np.testing.assert_allclose(
      h1['delta'], challenger[seeds].mean() - reference[seeds].mean(),
      rtol=1e-9)
  assert h1['ci95_low'] < h1['delta'] < h1['ci95_high'] < 0
  assert h1['decodings'] == 'argmax/argmax' and h1['tuning'] == 'complete'
  np.testing.assert_allclose(h1['fewer_part'] + h1['closer_part'],
                             h1['delta'], rtol=1e-9)
  # H3: every error one step further under the permuted order.
  np.testing.assert_allclose(h3['delta'], -1.0)
  assert h3['verdict'] == 'pending (Holm needs all)'


def test_verdicts_use_holm_and_the_band():
  common = dict(reference_value=1.0, band_share=0.03, groups_dropped=0)
  rows = [dict(p_bootstrap=0.01, delta=-0.01, ci90_low=-0.02,
               ci90_high=-0.005, **common),
          dict(p_bootstrap=0.03, delta=0.001, ci90_low=-0.01,
               ci90_high=0.012, **common),
          dict(p_bootstrap=0.5, delta=0.05, ci90_low=-0.01, ci90_high=0.1,
               **common)]
  confirm_report.verdicts(rows)
  assert [r['verdict'] for r in rows] == [
      'lower and equivalent within 3 %', 'equivalent within 3 %',
      'not resolved']
  np.testing.assert_allclose([r['p_holm'] for r in rows], [0.03, 0.06, 0.5])


def test_an_unstable_row_counts_in_holm_but_gets_no_verdict():
  rows = [dict(p_bootstrap=0.01, delta=-0.01, reference_value=1.0,
               band_share=0.03, ci90_low=-0.04, ci90_high=-0.005,
               groups_dropped=0),
          dict(p_bootstrap=0.001, delta=-0.5, reference_value=1.0,
               band_share=0.03, ci90_low=-0.6, ci90_high=-0.4,
               groups_dropped=2),
          dict(p_bootstrap=float('nan'), band_share=0.03, groups_dropped=8)]
  confirm_report.verdicts(rows)
  assert [r['verdict'] for r in rows] == [
      'lower', 'unstable (not interpreted)', 'unstable (not interpreted)']
  np.testing.assert_allclose([r['p_holm'] for r in rows], [0.02, 0.003, 1.0])


def test_a_p_no_replicate_reached_is_written_as_its_bound(tmp_path):
  confirm_report.write_csv([{'p_bootstrap': 0.0, 'p_t': 0.0, 'delta': 0.5}],
                           tmp_path / 'c.csv')
  assert (tmp_path / 'c.csv').read_text().splitlines()[1] == '< 5e-05,0,0.5'
