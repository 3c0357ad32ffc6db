"""The confirmation's report on synthetic cells and per-image files: the
choices replayed from the cells, the estimates, a dropped group, Holm."""

import dataclasses
import json

import numpy as np
import pytest

from conftest import ROOT
from study import (
  confirm,
  confirm_cells,
  confirm_families,
  confirm_readme,
  confirm_report,
  confirm_rows,
  power,
  stats,
  tuning,
)
from study.records import Choice, TuningCell, TuningPoint
from trainer.resolve import grid_points


def _evaluation(epoch, argmax, bayes):
  """One evaluated epoch of a tuning point: each decoding's mean MDE over
  the three tuning seeds, which score it -0.01, 0 and +0.01 off."""
  return {'epoch': epoch, 'argmax': {'mean_digit_distance': argmax},
          'bayes': {'mean_digit_distance': bayes},
          'mean_digit_distance_per_seed': {
              'argmax': [argmax - 0.01, argmax, argmax + 0.01],
              'bayes': [bayes - 0.01, bayes, bayes + 0.01]}}


def _write_tuning(cells_dir, regime, name, family, best, bayes=False):
  """The family's grid cell, its best point at ``best`` (inside the grid)
  and epoch 8, with argmax decoding (or Bayes)."""
  config = confirm.CONFIRMATION.tuning_config(regime, family)
  points = []
  for hp in grid_points(config.sweep):
    mde = sum(abs(np.log2(v / best[k])) for k, v in hp.items()) / 10 + 0.1
    points.append({'hyperparameters': hp, 'diverged': None, 'curve': [
        _evaluation(e, mde + abs(8 - e) / 100, mde + (-0.05 if bayes else 1))
        for e in range(2, 13, 2)]})
  path = cells_dir / regime / f'tune-{name}.json'
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps({'config': dataclasses.asdict(config),
                              'seeds': [100, 101, 102], 'num_train': 2000,
                              'wall_s': 1.0, 'points': points}))


def _write_finals(root, regime, name, distances_SxN, diverged_group=None,
                  bayes_SxN=None):
  """The family's final groups, each cell holding the final configuration
  of its choice (replayed from the tuning cells written before)."""
  choice = confirm_cells.tuned(root / 'cells', regime)[name].choice
  configs = confirm.CONFIRMATION.finals.configs(choice)
  for g in range(confirm.FINAL_GROUPS):
    seed = confirm.FINAL_SEED + 10 * g
    stem = f'final-{name}-s{seed}'
    cell = {'config': dataclasses.asdict(configs[g]),
            'seeds': list(range(seed, seed + 10)), 'num_train': 2000,
            'wall_s': 1.0}
    blocks = {'argmax': distances_SxN[10 * g:10 * g + 10],
              'bayes': (distances_SxN if bayes_SxN is None
                        else bayes_SxN)[10 * g:10 * g + 10]}
    # The test split's per-seed scores: this block's, shifted by 0.01.
    cell['test'] = {decoding: {
        'mean_digit_distance': {'per_seed': list(block.mean(axis=1) + 0.01)},
        'mean_error_distance': {'per_seed': list(
            block.sum(axis=1) / (block > 0).sum(axis=1) + 0.01)}}
        for decoding, block in blocks.items()}
    if g == diverged_group:
      cell['diverged'] = 'loss became nan'
    (root / 'cells' / regime).mkdir(parents=True, exist_ok=True)
    (root / 'cells' / regime / f'{stem}.json').write_text(json.dumps(cell))
    if g != diverged_group:
      (root / 'images' / regime).mkdir(parents=True, exist_ok=True)
      np.savez_compressed(root / 'images' / regime / f'{stem}.npz',
                          argmax=blocks['argmax'].astype(np.int8),
                          bayes=blocks['bayes'].astype(np.int8),
                          seeds=cell['seeds'])


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
  rows = confirm_rows.hypothesis_rows(
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
  confirm_rows.verdicts(rows)
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
  confirm_rows.verdicts(rows)
  assert [r['verdict'] for r in rows] == [
      'lower', 'unstable (not interpreted)', 'unstable (not interpreted)']
  np.testing.assert_allclose([r['p_holm'] for r in rows], [0.02, 0.003, 1.0])


def test_a_p_no_replicate_reached_is_written_as_its_bound(tmp_path):
  confirm_report.write_csv([{'p_bootstrap': 0.0, 'p_t': 0.0, 'delta': 0.5}],
                           tmp_path / 'c.csv')
  assert (tmp_path / 'c.csv').read_text().splitlines()[1] == '< 5e-05,0,0.5'


def _synthetic_scarce2000(root, n=200):
  """Every scarce2000 family's tuning and finals (noisy40 not run): smoothed
  SORD decodes with Bayes (its argmax distances all 9: never read), and
  cross-entropy's group 1020-1029 diverged."""
  best = {'learning_rate': 0.006, 'epsilon': 0.5, 'temperature': 1.0}
  tuned = {**confirm.families('scarce2000'),
           **confirm.secondary_families('scarce2000')}
  for name, family in tuned.items():
    _write_tuning(root / 'cells', 'scarce2000', name, family,
                  dict(best, temperature=3.0) if name == 'smoothed_sord'
                  else best, bayes=name == 'smoothed_sord')
  rng = np.random.default_rng(1)
  reference = (rng.uniform(size=(80, n)) < 0.1) * rng.integers(1, 6, (80, n))
  finals = {'label_smoothing': reference,
            'smoothed_sord': np.where(rng.uniform(size=(80, n)) < 0.2, 0,
                                      reference),
            'sord_linear': reference, 'sord_permuted': reference,
            'label_smoothing_matched': np.where(
                rng.uniform(size=(80, n)) < 0.5, 0, reference),
            'cross_entropy': reference + (reference > 0)}
  for name, distances in finals.items():
    if name == 'smoothed_sord':
      _write_finals(root, 'scarce2000', name, np.full_like(distances, 9),
                    bayes_SxN=distances)
    else:
      _write_finals(root, 'scarce2000', name, distances,
                    diverged_group=2 if name == 'cross_entropy' else None)
  return finals


def test_secondary_pairs_families_and_the_test_split(tmp_path):
  finals = _synthetic_scarce2000(tmp_path / 'confirmation')
  kept = np.r_[0:20, 30:80]  # the seeds of the groups cross-entropy kept
  messages = []
  secondary = confirm_rows.secondary_rows(tmp_path, log=messages.append,
                                          replicates=200)
  assert [(r['challenger'], r['reference']) for r in secondary] == [
      *confirm_rows.SECONDARY_PAIRS['scarce2000'],
      *confirm_rows.POST_HOC_PAIRS['scarce2000']]
  assert [r['metric'] for r in secondary[-2:]] == ['mean_error_distance'] * 2
  assert {r['verdict'] for r in secondary[-2:]} == {confirm_rows.POST_HOC}
  assert len(messages) == sum(len(confirm_rows.SECONDARY_PAIRS[regime])
                              for regime in ('noisy40', 'scarce500'))
  # Every secondary row drops the group that diverged in any family.
  assert {(r['n_seeds'], r['groups_dropped']) for r in secondary} == {(70, 1)}
  by_pair = {(r['challenger'], r['reference']): r for r in secondary}
  matched = by_pair['label_smoothing_matched', 'label_smoothing']
  np.testing.assert_allclose(matched['delta'], (
      finals['label_smoothing_matched'] - finals['label_smoothing'])[
          kept].mean(), rtol=1e-9)
  ce = by_pair['label_smoothing', 'cross_entropy']
  np.testing.assert_allclose(ce['delta'], -np.mean(
      finals['label_smoothing'][kept] > 0), rtol=1e-9)
  assert ce['ci95_high'] < 0 and ce['verdict'] == 'secondary (uncorrected)'
  # Uncorrected: detectable at alpha 0.05, not at the primaries' 0.05 / 3.
  h = confirm_rows.Hypothesis('x', 'scarce2000', 'label_smoothing',
                              'cross_entropy', 'mean_digit_distance', 0.03)
  primary_style = confirm_rows.estimate(
      h, finals['label_smoothing'][kept], finals['cross_entropy'][kept],
      replicates=200)
  np.testing.assert_allclose(
      ce['detectable_share'] / primary_style['detectable_share'],
      confirm_rows.SECONDARY_DETECT_Z / confirm_rows.DETECT_Z, rtol=1e-9)
  for z, alpha in ((confirm_rows.SECONDARY_DETECT_Z, 0.05),
                   (confirm_rows.DETECT_Z, 0.05 / 3)):
    assert z == pytest.approx(power.detectable_effect(1.0, alpha=alpha),
                              abs=1e-4)
  assert by_pair['smoothed_sord', 'cross_entropy']['decodings'] == (
      'bayes/argmax')

  families = {r['family']: r for r in confirm_families.family_rows(
      tmp_path, replicates=200)}
  assert set(families) == set(finals)
  smoothing = families['label_smoothing']
  np.testing.assert_allclose(smoothing['mde'],
                             finals['label_smoothing'][kept].mean(),
                             rtol=1e-9)
  assert smoothing['mde_ci95_low'] < smoothing['mde'] < smoothing[
      'mde_ci95_high']
  np.testing.assert_allclose(smoothing['test_mde'],
                             finals['label_smoothing'][kept].mean() + 0.01,
                             rtol=1e-9)
  assert (smoothing['epsilon'], smoothing['epoch'], smoothing['tuning']) == (
      0.5, 8, 'complete')
  np.testing.assert_allclose(families['smoothed_sord']['mde'],
                             finals['smoothed_sord'][kept].mean(), rtol=1e-9)
  # At smoothed SORD's chosen off-label mass (ε 0.5, temperature 3).
  assert families['label_smoothing_matched']['epsilon'] == 0.4251
  assert np.isnan(families['label_smoothing_matched']['validation_mde'])
  assert families['sord_permuted']['distance'] == confirm.PERMUTED_ORDER
  assert families['label_smoothing_matched']['command'].startswith(
      'python train.py --data_dir ../shared/mnist --loss '
      'label_smoothing_cross_entropy --epsilon 0.4251 --learning_rate 0.006 '
      '--epochs 12 --stop_after 8 --seed 1000 --num_seeds 10 '
      '--confirmation_size 30000')

  primaries = confirm_rows.hypothesis_rows(tmp_path, log=messages.append,
                                           replicates=200)
  h1 = primaries[0]
  # The primaries keep the registered rule: only their own pair's groups.
  assert (h1['n_seeds'], h1['decodings']) == (80, 'bayes/argmax')
  np.testing.assert_allclose(h1['delta'], (finals['smoothed_sord']
                                           - finals['label_smoothing']).mean(),
                             rtol=1e-9)
  test_rows = confirm_rows.test_split_rows(tmp_path, primaries)
  assert [r['hypothesis'] for r in test_rows] == ['H1', 'H3']
  challenger, reference = (finals[f].mean(axis=1) + 0.01
                           for f in ('smoothed_sord', 'label_smoothing'))
  np.testing.assert_allclose(test_rows[0]['delta'],
                             np.mean(challenger - reference), rtol=1e-9)
  assert test_rows[1]['delta'] == 0  # the same synthetic distances

  sensitivity = confirm_families.sensitivity_rows(tmp_path)
  text = confirm_report.markdown(primaries, secondary, test_rows,
                                 list(families.values()), sensitivity,
                                 [('primaries', 3600.0)])
  assert text.count('\n| H1 | scarce2000 |') == 2  # primary, test split
  assert '| scarce2000 | label_smoothing - cross_entropy (argmax/argmax) |' \
      in text
  assert (f"| {100 * ce['detectable_share']:.1f} % | 70 x "
          in text.split('## Secondary: other pairs')[1].split('\n## ')[0])
  assert '| noisy40 |' not in text


def test_a_final_cell_of_another_configuration_is_refused(tmp_path):
  _synthetic_scarce2000(tmp_path / 'confirmation')
  cells_dir = tmp_path / 'confirmation' / 'cells'
  path = cells_dir / 'scarce2000' / 'final-label_smoothing-s1030.json'
  cell = json.loads(path.read_text())
  cell['config']['epsilon'] = 0.6
  path.write_text(json.dumps(cell))
  choice = confirm_cells.tuned(cells_dir, 'scarce2000')[
      'label_smoothing'].choice
  with pytest.raises(ValueError, match=r'final-label_smoothing-s1030\.json '
                     'holds another configuration'):
    confirm_cells.final_cells(cells_dir, 'scarce2000', 'label_smoothing',
                              choice)
  # The headline estimates and each family's rows read it the same way.
  with pytest.raises(ValueError, match='holds another configuration'):
    confirm_rows.hypothesis_rows(tmp_path, log=print, replicates=200)
  with pytest.raises(ValueError, match='holds another configuration'):
    confirm_families.family_rows(tmp_path, replicates=200)


def test_two_groups_dropped_make_a_secondary_row_unstable(tmp_path):
  finals = _synthetic_scarce2000(tmp_path / 'confirmation')
  _write_finals(tmp_path / 'confirmation', 'scarce2000',
                'label_smoothing_matched', finals['label_smoothing_matched'],
                diverged_group=5)
  secondary = confirm_rows.secondary_rows(tmp_path, log=lambda m: None,
                                          replicates=200)
  assert {(r['n_seeds'], r['groups_dropped'], r['verdict'])
          for r in secondary} == {(60, 2, 'unstable (not interpreted)')}


def test_a_secondary_p_is_bounded_by_its_own_replicates(tmp_path):
  confirm_report.write_csv([{'p_bootstrap': 0.0, 'replicates': 2000}],
                           tmp_path / 'c.csv')
  assert (tmp_path / 'c.csv').read_text().splitlines()[1] == '< 0.0005,2000'


def test_the_readme_table_reads_the_csv_it_was_written_to(tmp_path):
  row = {'hypothesis': 'H1', 'regime': 'scarce2000',
         'challenger': 'smoothed_sord', 'reference': 'label_smoothing',
         'metric': 'mean_digit_distance', 'challenger_value': 0.0768,
         'reference_value': 0.08, 'delta': -0.0032, 'ci95_low': -0.0048,
         'ci95_high': -0.0016, 'p_bootstrap': 0.0, 'p_holm': float('nan'),
         'detectable_share': 0.037, 'verdict': 'pending (Holm needs all)',
         'n_seeds': 80}
  confirm_report.write_csv([row], tmp_path / 'c.csv')
  (read,) = confirm_report.read_csv(tmp_path / 'c.csv')
  assert read['n_seeds'] == 80 and read['p_bootstrap'] == '< 5e-05'
  assert confirm_readme.readme_answer([read])[2] == (
      '| H1 | scarce2000 | MDE: smoothed_sord 0.0768 vs label_smoothing '
      '0.0800 | -0.0032 (-4.0 %) | [-0.0048, -0.0016] (-6.0 % to -2.0 %) | '
      '< 5e-05 (pending) | 3.7 % | pending (Holm needs all) |')


def test_the_advice_over_cross_entropy_reads_its_rows():
  def row(challenger, delta, low, high, **extra):
    return {'regime': 'noisy40', 'challenger': challenger,
            'reference': 'cross_entropy', 'reference_value': 0.25,
            'metric': 'mean_digit_distance',
            'delta': delta, 'ci95_low': low, 'ci95_high': high, **extra}
  secondary = [row('label_smoothing', -0.05, -0.06, -0.04,
                   fewer_part=-0.052, closer_part=0.002),
               row('smoothed_sord', -0.045, -0.055, -0.035),
               row('label_smoothing', 0.5, 0.4, 0.6, split='test'),
               {**row('label_smoothing', 0.9, 0.8, 1.0), 'regime': 'x'}]
  assert confirm_readme.over_cross_entropy(secondary, 'noisy40') == (
      'Over plain cross-entropy (MDE 0.2500, tuned on the same terms; '
      'secondary): label smoothing -0.0500 (-20.0 %, 95 % interval -0.0600 '
      'to -0.0400; fewer mistakes -0.0520, closer +0.0020), smoothed SORD '
      '-0.0450 (-18.0 %, -0.0550 to -0.0350).')


def test_the_secondary_regimes_sentence_reads_its_row():
  row = {'regime': 'scarce500', 'challenger': 'smoothed_sord',
         'reference': 'label_smoothing', 'challenger_value': 0.21,
         'reference_value': 0.2, 'delta': 0.01, 'ci95_low': -0.002,
         'ci95_high': 0.022, 'p_bootstrap': '< 0.0005', 'replicates': 2000,
         'detectable_share': 0.031, 'split': '',
         'metric': 'mean_digit_distance'}
  secondary = [row, {**row, 'split': 'test', 'delta': 9.0},
               {**row, 'regime': 'scarce2000', 'delta': 8.0}]
  assert confirm_readme.secondary_pair(secondary, 'scarce500') == (
      "In scarce500, smoothed SORD's MDE minus label smoothing's is +0.0100 "
      "(0.2100 against 0.2000; 95 % interval -0.0020 to +0.0220, -1.0 % to "
      "+11.0 %; p < 0.0005; detectable 3.1 % at alpha 0.05).")


def test_the_matched_mass_sentence_reads_its_rows():
  secondary = [{'regime': regime, 'challenger': 'smoothed_sord',
                'reference': 'label_smoothing_matched', 'delta': delta,
                'ci95_low': delta - 0.001, 'ci95_high': delta + 0.001,
                'reference_value': 0.1, 'split': '',
                'metric': 'mean_digit_distance'}
               for regime, delta in (('noisy40', -0.002),
                                     ('scarce2000', 0.003))]
  secondary.append({**secondary[0], 'split': 'test', 'delta': 9.0})
  assert confirm_readme.at_matched_mass(secondary) == (
      "At the same mean off-label mass, smoothed SORD's MDE minus label "
      "smoothing's is +0.0030 in scarce2000 (95 % interval +0.0020 to "
      "+0.0040, +2.0 % to +4.0 %) and -0.0020 in noisy40 (95 % interval "
      "-0.0030 to -0.0010, -3.0 % to -1.0 %).")
  assert confirm_readme.at_matched_mass(secondary, ['noisy40']) == (
      "At the same mean off-label mass, smoothed SORD's MDE minus label "
      "smoothing's is -0.0020 in noisy40 (95 % interval -0.0030 to -0.0010, "
      "-3.0 % to -1.0 %).")


COMMITTED = ROOT / 'results' / 'confirmation' / 'confirmation.csv'


def test_the_readme_and_the_answers_page_state_the_committed_answer():
  primary = confirm_report.read_csv(COMMITTED)
  secondary = confirm_report.read_csv(COMMITTED.with_name('secondary.csv'))
  readme = ' '.join((ROOT / 'README.md').read_text().split())
  assert confirm_readme.front_page(primary, secondary) in readme
  page = ROOT / 'docs' / 'confirmation.md'
  lines = confirm_readme.readme_answer(primary)
  assert len(lines) > 2
  for line in lines:
    assert line in page.read_text().splitlines(), line
  # The advice's sentences, which the page wraps.
  words = ' '.join(page.read_text().split())
  families = confirm_report.read_csv(COMMITTED.with_name('families.csv'))
  sensitivity = confirm_report.read_csv(
      COMMITTED.with_name('sensitivity.csv'))
  regimes = confirm.ALL_REGIMES
  for advice in (*(confirm_readme.over_cross_entropy(secondary, regime)
                   for regime in regimes),
                 confirm_readme.at_matched_mass(secondary),
                 *(confirm_readme.at_matched_mass(secondary, [regime])
                   for regime in confirm.SECONDARY_REGIMES),
                 *(confirm_readme.secondary_pair(secondary, regime)
                   for regime in confirm.SECONDARY_REGIMES),
                 confirm_readme.h3_against_label_smoothing(primary,
                                                           secondary),
                 *(confirm_report.tuning_sensitivity(sensitivity, regime)
                   for regime in confirm.REGIMES),
                 confirm_readme.tied_control(secondary, families),
                 confirm_readme.matched_epsilon_moves(secondary, families),
                 *(confirm_readme.recipe_sentence(regime, primary + secondary,
                                                  families)
                   for regime in regimes)):
    assert advice in words, advice
  # A regime's recipe, by the registered rule (the simplest family within
  # its band of the lowest MDE), with the command that made its cells;
  # label smoothing's beside it. A regime without a band has none.
  for regime in regimes:
    recipe = confirm_readme.recipe(regime, primary + secondary, families)
    (smoothing,) = [r for r in families if (r['regime'], r['family']) == (
        regime, 'label_smoothing')]
    for row in (recipe, smoothing):
      if row is not None:
        assert f"`{row['command']}`" in words, row['command']


def test_holm_keeps_a_bound_a_bound():
  # p < 1e-4 (no replicate reached), then two exact p-values.
  assert stats.holm_with_bounds([1e-4, 0.01, 0.3],
                                       [True, False, False]) == [
      (pytest.approx(3e-4), True), (pytest.approx(0.02), False),
      (pytest.approx(0.3), False)]
  # An exact p that sets the running maximum ends the bound.
  assert stats.holm_with_bounds([0.01, 0.025], [True, False]) == [
      (pytest.approx(0.02), True), (pytest.approx(0.025), False)]
  assert stats.holm_with_bounds([0.01, 0.015], [True, False]) == [
      (pytest.approx(0.02), True), (pytest.approx(0.02), True)]
  # Tied with a bound, the exact value is the adjusted one.
  assert stats.holm_with_bounds([0.01, 0.02], [True, False])[1] == (
      pytest.approx(0.02), False)
  # At equal values the bound ranks first (its true p is smaller), in
  # either order given: both adjusted values are then only bounds.
  for p_values, bounded in (([0.01, 0.01], [False, True]),
                            ([0.01, 0.01], [True, False])):
    assert stats.holm_with_bounds(p_values, bounded) == [
        (pytest.approx(0.02), True)] * 2


def test_a_primary_p_no_replicate_reached_gets_holms_bound():
  common = dict(band_share=0.03, groups_dropped=0, reference_value=1.0,
                replicates=20_000, ci90_low=-0.5, ci90_high=0.5)
  rows = [dict(p_bootstrap=0.0, delta=-0.6, **common),
          dict(p_bootstrap=0.635, delta=0.01, **common),
          dict(p_bootstrap=0.676, delta=0.01, **common)]
  confirm_rows.verdicts(rows)
  assert [r['p_holm'] for r in rows] == ['< 0.00015', 1.0, 1.0]
  assert rows[0]['verdict'] == 'lower'
  assert confirm_report.p_text(rows[0]['p_holm']) == '< 0.00015'


def test_uniformly_random_mistakes():
  assert confirm_rows.uniform_error_distance() == pytest.approx(330 / 90)
  # Three classes: |0-1|, |0-2|, |1-0|, |1-2|, |2-0|, |2-1| over 6.
  assert confirm_rows.uniform_error_distance(3) == pytest.approx(8 / 6)


def test_the_tuning_sensitivity_reads_the_neighbours(tmp_path):
  _synthetic_scarce2000(tmp_path / 'confirmation')
  rows = confirm_families.sensitivity_rows(tmp_path)
  moves = {(r['family'], r['hyperparameter'], r['neighbour']): r
           for r in rows}
  # label smoothing: chosen lr 0.006, ε 0.5, epoch 8 (argmax); the fake
  # MDE adds |log2(v / best)| / 10 per hyperparameter and |8 - e| / 100.
  assert {k[1:] for k in moves if k[0] == 'label_smoothing'} == {
      ('epoch', 6), ('epoch', 10), ('learning_rate', 0.003),
      ('learning_rate', 0.012), ('epsilon', 0.3), ('epsilon', 0.7)}
  np.testing.assert_allclose(
      moves['label_smoothing', 'learning_rate', 0.003]['delta'], 0.1,
      rtol=1e-6)
  np.testing.assert_allclose(
      moves['label_smoothing', 'epsilon', 0.3]['delta'],
      abs(np.log2(0.3 / 0.5)) / 10, rtol=1e-6)
  np.testing.assert_allclose(moves['label_smoothing', 'epoch', 10]['delta'],
                             0.02, rtol=1e-6)
  # Smoothed SORD also moves its temperature, at its Bayes decoding.
  assert moves['smoothed_sord', 'temperature', 6.0]['decoding'] == 'bayes'
  np.testing.assert_allclose(
      moves['smoothed_sord', 'temperature', 1.5]['delta'], 0.1, rtol=1e-6)
  assert {r['label'] for r in rows} == {confirm_rows.POST_HOC}


def test_a_value_tried_only_elsewhere_is_not_tried_at_the_choice():
  """An edge extension varies one hyperparameter: at the extended learning
  rate no other ε was tried."""
  base = confirm.CONFIRMATION.tuning_config(
      'scarce2000', confirm.families('scarce2000')['label_smoothing'])

  def point(hp, mde):
    return TuningPoint(hyperparameters=hp, diverged=None, curve=[
        _evaluation(e, mde + abs(8 - e) / 100, 1.0) for e in (6, 8, 10)])

  grid = TuningCell(base, [100, 101, 102], 2000, 1.0, tuple(
      point({'learning_rate': lr, 'epsilon': eps}, 0.1 + lr + eps / 10)
      for lr in (0.003, 0.006) for eps in (0.3, 0.5)))
  chosen = dataclasses.replace(base, sweep={}, learning_rate=0.0015,
                               epsilon=0.5)
  extension = TuningCell(dataclasses.replace(chosen), [100, 101, 102], 2000,
                         1.0, (point({}, 0.05),))
  # Seed 102 scores the grid's lr 0.003, ε 0.5 0.03 worse than the others.
  grid.points[1].curve[1]['mean_digit_distance_per_seed']['argmax'][2] += 0.03
  tuned = tuning.Tuning((grid, extension), Choice(chosen, 8, 'argmax', 0.05),
                        ())
  moves = {(m['hyperparameter'], m['neighbour']): m for m in
           confirm_families.tuning_moves(tuned, ['learning_rate', 'epsilon'])}
  assert set(moves) == {('epoch', 6), ('epoch', 10),
                        ('learning_rate', 0.003), ('epsilon', 0.3)}
  np.testing.assert_allclose(moves['learning_rate', 0.003]['validation_mde'],
                             0.1 + 0.003 + 0.05 + 0.01)
  # Paired differences 0.103, 0.103, 0.133: their standard error.
  np.testing.assert_allclose(moves['learning_rate', 0.003]['delta_se'],
                             np.std([0, 0, 0.03], ddof=1) / np.sqrt(3))
  np.testing.assert_allclose(moves['epoch', 10]['delta'], 0.02)
  # The seeds move together here: a paired difference with no spread.
  np.testing.assert_allclose(moves['epoch', 10]['delta_se'], 0, atol=1e-12)
  assert np.isnan(moves['epsilon', 0.3]['validation_mde'])
  assert np.isnan(moves['epsilon', 0.3]['delta_se'])


def test_the_recipe_rule():
  def family(name, mde, regime='scarce2000'):
    return {'regime': regime, 'family': name, 'mde': mde}

  def pair(a, b, low, high, regime='scarce2000'):
    return {'regime': regime, 'challenger': a, 'reference': b, 'split': '',
            'metric': 'mean_digit_distance', 'ci90_low': low,
            'ci90_high': high}

  families = [family('cross_entropy', 0.12), family('label_smoothing', 0.080),
              family('smoothed_sord', 0.078), family('sord_linear', 0.09),
              family('label_smoothing_matched', 0.070)]  # not tuned
  far = pair('cross_entropy', 'smoothed_sord', 0.03, 0.05)
  inside = [far, pair('smoothed_sord', 'label_smoothing', -0.003, 0.001)]
  outside = [far, pair('smoothed_sord', 'label_smoothing', -0.0035, 0.001),
             pair('sord_linear', 'smoothed_sord', 0.008, 0.016)]
  # Smoothed SORD is lowest; label smoothing is simpler and within 4 %.
  assert confirm_readme.recipe('scarce2000', inside, families)['family'] == (
      'label_smoothing')
  # Outside ±4 % of 0.078 (0.00312): the lowest is the recipe.
  assert confirm_readme.recipe('scarce2000', outside, families)['family'] == (
      'smoothed_sord')
  # No row for a pair: the rule cannot judge it.
  with pytest.raises(ValueError, match='no confirmation row of '
                     'label_smoothing against smoothed_sord'):
    confirm_readme.recipe('scarce2000', [far], families)
  # Cross-entropy within the band would be simplest of all.
  ce = [pair('cross_entropy', 'smoothed_sord', -0.001, 0.001), *inside[1:]]
  assert confirm_readme.recipe('scarce2000', ce, families)['family'] == (
      'cross_entropy')
  # scarce500 registered no band: no recipe, a lead.
  assert confirm_readme.recipe('scarce500', inside, [
      {**f, 'regime': 'scarce500'} for f in families]) is None
  assert confirm_readme.recipe_sentence('scarce500', [], []) == (
      'scarce500 registered no equivalence band, so it gets no recipe: its '
      'estimates are a lead.')
  assert confirm_readme.recipe_sentence('scarce2000', inside, families) == (
      'The recipe in scarce2000 is label_smoothing (MDE 0.0800): the '
      'simplest tuned family within ±4 % of the lowest MDE on the '
      'confirmation (90 % interval over seeds and images; a rule set post '
      'hoc).')


def test_the_post_hoc_and_tied_sentences_read_their_rows():
  def row(challenger, reference, delta, low, high, metric, **extra):
    return {'regime': extra.pop('regime', 'scarce2000'),
            'challenger': challenger, 'reference': reference,
            'metric': metric, 'split': '', 'delta': delta, 'ci95_low': low,
            'ci95_high': high, **extra}

  primary = [{'hypothesis': 'H3', 'reference_value': 3.8311}]
  secondary = [
      row('sord_linear', 'label_smoothing', -0.54, -0.6, -0.48,
          'mean_error_distance', challenger_value=3.19,
          reference_value=3.73),
      row('smoothed_sord', 'label_smoothing', -0.08, -0.15, -0.01,
          'mean_error_distance', challenger_value=3.66,
          reference_value=3.73),
      row('smoothed_sord', 'label_smoothing_tied', -0.001, -0.002, 0.0005,
          'mean_digit_distance', regime='scarce500', reference_value=0.17,
          p_bootstrap=0.2, replicates=2000)]
  assert confirm_readme.h3_against_label_smoothing(primary, secondary) == (
      'Against label smoothing (post hoc, chosen after the results were '
      "known; argmax decoding), SORD's mistakes are 0.54 digits closer (3.19 "
      "against 3.73; 95 % interval 0.48 to 0.60) and smoothed SORD's 0.08 "
      "closer (3.66; 0.01 to 0.15). H3's control is not neutral: SORD over "
      'the permuted order makes mistakes 3.83 digits away, farther than a '
      'uniformly random wrong digit (3.67).')
  families = [{'regime': 'scarce500', 'family': 'label_smoothing_tied',
               'epsilon': 0.9, 'learning_rate': 0.003, 'epoch': 20,
               'budget': 24}]
  assert confirm_readme.tied_control(secondary, families) == (
      'At the other tied point (ε 0.9, learning rate 0.003, epoch 20 of 24), '
      "label smoothing scores 0.1700, and smoothed SORD's MDE minus it is "
      '-0.0010 (95 % interval -0.0020 to +0.0005, -1.2 % to +0.3 %; p 0.2).')
  sensitivity = [
      {'regime': 'noisy40', 'family': family, 'delta_share': share,
       'delta_se_share': se}
      for family, share, se in (('label_smoothing', 0.024, 0.004),
                                ('label_smoothing', 0.231, 0.073),
                                ('label_smoothing', float('nan'),
                                 float('nan')),
                                ('smoothed_sord', 0.014, 0.007))]
  assert confirm_report.tuning_sensitivity(sensitivity, 'noisy40') == (
      'Tuning sensitivity in noisy40 (post hoc, validation MDE of the three '
      'tuning seeds): one grid step from the choice (learning rate, ε, '
      'temperature or epoch) moves it by label_smoothing +2.4 % to +23.1 % '
      '(standard errors 0.4 to 7.3 %; 2 of 3 neighbours tried) and '
      'smoothed_sord +1.4 % to +1.4 % (standard errors 0.7 to 0.7 %; 1 of 1 '
      'neighbours tried), beside a band of ±3 %; the moves are biased '
      'upward, the choice being the validation minimum.')
  matched = [row('label_smoothing_matched', 'label_smoothing', delta,
                 delta - 0.001, delta + 0.001, 'mean_digit_distance',
                 regime=regime, reference_value=0.1)
             for regime, delta in (('scarce2000', 0.0001),
                                   ('noisy40', 0.0015),
                                   ('scarce500', -0.002))]
  epsilons = [{'regime': regime, 'family': family, 'epsilon': epsilon}
              for regime, pair in (('scarce2000', (0.5, 0.4251)),
                                   ('noisy40', (0.7, 0.677)),
                                   ('scarce500', (0.3, 0.4836)))
              for family, epsilon in zip(
                  ('label_smoothing', 'label_smoothing_matched'), pair,
                  strict=True)]
  assert confirm_readme.matched_epsilon_moves(matched, epsilons) == (
      "On the confirmation, label smoothing moved to smoothed SORD's "
      'off-label mass changes its MDE by +0.0001 in scarce2000 (ε 0.4251 for '
      '0.5; 95 % interval -0.9 % to +1.1 %), +0.0015 in noisy40 (ε 0.677 for '
      '0.7; 95 % interval +0.5 % to +2.5 %) and -0.0020 in scarce500 (ε '
      '0.4836 for 0.3; 95 % interval -3.0 % to -1.0 %).')
