"""experiments.py: the study on a tiny grid, its tables, the notebook."""

import csv
import dataclasses
import json
import os
import re
import shlex
import shutil
from fractions import Fraction

import numpy as np
import pytest

import corruptions
import losses
import train
from conftest import ROOT, learnable_dataset
from study import cells, engine, experiments, loss_table, stats, tuning
from study import plan as study_plan
from study import report as study_report
from study import rows as study_rows
from study.records import (
  Choice,
  FamilyResult,
  FinalCell,
  RegimeResult,
  TuningCell,
  TuningPoint,
)
from trainer import loop
from trainer.cli import build_parser, config_from_args
from trainer.config import Config
from trainer.resolve import resolve


@pytest.fixture(scope='module')
def tiny_study(tmp_path_factory):
  root = tmp_path_factory.mktemp('study')
  dataset = learnable_dataset(num_train=600, num_test=128)
  log = []
  study = experiments.run_study('tiny', dataset, root / 'results',
                                root / 'runs', base=Config(),
                                log=log.append)
  rows = study_report.write_report(study, root / 'results')
  return root, dataset, study, rows, log


@pytest.mark.slow
def test_study_writes_cells_tables_and_plots(tiny_study):
  root, _, study, rows, _ = tiny_study
  results = root / 'results'
  for name in ('study.csv', 'study.md', 'study_attribution.png',
               'study_pareto.png'):
    assert (results / name).stat().st_size > 0, name
  grid = study_plan.GRIDS['tiny']
  # scarce: its test split; clean: its test split, the shifted mean, four
  # kinds and twelve corruptions.
  # clean adds the best distance-aware family of scarce (its only one).
  assert list(study['clean'].families) == [
      *grid.regimes['clean'].families, 'sord[linear]']
  expected = (len(grid.regimes['scarce'].families) +
              len(study['clean'].families) * (1 + 1 + 4 + 12))
  assert len(rows) == expected
  with open(results / 'study.csv') as f:
    table = list(csv.DictReader(f))
  for column in ('regime', 'family', 'role', 'best_control', 'decoding',
                 'epoch', 'learning_rate', 'seeds', 'accuracy',
                 'mean_digit_distance', 'error_rate', 'mean_error_distance',
                 'far_share_of_errors', 'mean_digit_distance_vs_control_p_holm',
                 'mean_digit_distance_vs_control_p_holm_all',
                 'mean_digit_distance_vs_ce_p_holm', 'fewer_part',
                 'closer_part', 'command'):
    assert column in table[0], column
  family = study['scarce'].families['sord[linear]']
  row = next(r for r in table if r['regime'] == 'scarce' and
             r['family'] == 'sord[linear]')
  decoding = family.choice.decoding
  per_seed = [v for cell in family.finals
              for v in cell.scores['test'][decoding]['accuracy']['per_seed']]
  np.testing.assert_allclose(float(row['accuracy']), np.mean(per_seed))
  assert row['seeds'] in ('0;1', '0;1;2;3')
  text = (results / 'study.md').read_text()
  for heading in ('## scarce (train 96 images, label noise 0.2, validation '
                  'labels clean, budget 2 epochs)', '## clean (train 536 '
                  'images, label noise 0, budget 1 epochs)', '## shifted',
                  '## shifted[blur]'):
    assert heading in text
  assert 'Holm' in text and '| stripe | occlusion/texture |' in text
  answer = text.split('## The answer per regime')[1].split('\n## ')[0]
  assert [line.split(' | ')[0] for line in answer.splitlines()
          if line.startswith('| ')][1:] == [
              '| scarce', '| clean', '| shifted', '| shifted[noise]',
              '| shifted[blur]', '| shifted[geometric]',
              '| shifted[occlusion/texture]']


@pytest.mark.slow
def test_choices_are_made_on_validation_only(tiny_study):
  _, _, study, _, _ = tiny_study
  for result in study.values():
    for family in result.families.values():
      choice = family.choice
      assert choice == tuning.choose(family.tuning, exact_ties=False)
      # Tuning never looked at the test split; finals use fresh seeds.
      for cell in family.tuning:
        assert not cell.config.score_test
        assert cell.config.clean_validation == (
            result.regime.label_noise > 0)
        assert {k for p in cell.points for e in p.curve for k in e} == {
            'epoch', 'argmax', 'bayes', 'mean_digit_distance_per_seed'}
      assert all(c.seeds == [100, 101] for c in family.tuning)
      assert family.finals[0].seeds == [0, 1]
      final = family.finals[0].config
      assert final.learning_rate == choice.config.learning_rate
      assert loop.last_epoch(final) == choice.epoch
    controls = {f: fam.choice.validation_mde
                for f, fam in result.families.items()
                if fam.role == study_plan.CONTROL}
    assert result.best_control == min(controls, key=controls.get)
    # More seeds where the finals' validation MDE (seeds 0-1) is within two
    # standard errors of the best control's.
    def validation_mde(family):
      first = dataclasses.replace(family, finals=family.finals[:1])
      return study_rows.values(first, ['validation'], 'mean_digit_distance')

    best = result.families[result.best_control]
    any_close = False
    for name, family in result.families.items():
      close = experiments.needs_more_seeds(*study_rows.paired(
          validation_mde(family), validation_mde(best)))
      if name != result.best_control:
        assert len(family.finals) == 1 + close, name
        any_close = any_close or close
    assert len(best.finals) == 1 + any_close


@pytest.mark.slow
def test_own_hyperparameter_fixed_from_another_regime(tiny_study):
  _, _, study, _, log = tiny_study
  # scarce is tuned once, though clean needs its choices twice.
  tunes = [line for line in log if line.startswith('[scarce] tune ')]
  assert len(tunes) == len(set(tunes)) == len(study['scarce'].families)
  regime = study_plan.GRIDS['tiny'].regimes['clean']
  source = study[regime.own_from].families
  for name, family in study['clean'].families.items():
    own = study_plan.FAMILIES[name].own
    for cell in family.tuning:
      assert set(cell.config.sweep) <= {'learning_rate'}, name
      if own is not None:
        assert getattr(cell.config, own[0]) == getattr(
            source[name].choice.config, own[0]), name


def test_every_plan_names_known_regimes_and_families():
  for grid in study_plan.GRIDS.values():
    for regime in grid.regimes.values():
      assert set(regime.families) <= set(study_plan.FAMILIES)
      for other in (*regime.plus_best_of, regime.own_from):
        assert other is None or other in grid.regimes
      if regime.own_from is not None:
        # plus_best_of's family joins too: it needs its own choice there.
        everything = {f for o in regime.plus_best_of
                      for f in grid.regimes[o].families}
        assert set(regime.families) | everything <= set(
            grid.regimes[regime.own_from].families)
  noisy = study_plan.GRIDS['full'].regimes['noisy40']
  assert noisy.label_noise > 0 and noisy.clean_validation


@pytest.mark.slow
def test_a_rate_on_an_edge_is_flagged_only_after_every_extension(tiny_study):
  # Recomputed from the cells' own records, not with experiments' helpers: a
  # chosen rate on an edge of what was tried is flagged, and only after every
  # allowed extension ran.
  _, _, study, _, _ = tiny_study
  grid = study_plan.GRIDS['tiny']
  for result in study.values():
    for name, family in result.families.items():
      cells = family.tuning
      tried = sorted({point.hyperparameters.get(
          'learning_rate', cell.config.learning_rate)
                      for cell in cells for point in cell.points})
      rate = family.choice.config.learning_rate
      assert rate in tried, name
      on_edge = rate in (tried[0], tried[-1])
      assert family.rate_on_edge == on_edge, name
      if on_edge:
        assert len(cells) == 1 + grid.max_extensions, (name, tried)
      # Each extension goes one factor of two past the rates before it.
      first = sorted(cells[0].config.sweep.get(
          'learning_rate', [cells[0].config.learning_rate]))
      for cell in cells[1:]:
        rate_added = cell.config.learning_rate
        assert rate_added in (first[0] / 2, first[-1] * 2), (name, rate_added)
        first = sorted([*first, rate_added])


def _cell(rates, mde_of_rate, epochs=(1, 2), diverged=()):
  """A tuning cell whose points have the given validation MDE; the rates in
  ``diverged`` diverged."""
  return TuningCell(Config(validation_size=5000,
                           sweep={'learning_rate': list(rates)}), [100, 101],
                    64, 1.0, tuple(TuningPoint(
      {'learning_rate': r},
      [{'epoch': e, 'argmax': {'mean_digit_distance': mde_of_rate(r) + e},
        'bayes': {'mean_digit_distance': mde_of_rate(r) + 2 * e}}
       for e in epochs], 'loss NaN at step 3' if r in diverged else None)
      for r in rates))


def next_rate(cells):
  """The study's next extension cell's rate, or None."""
  rule = experiments.edge_rule(study_plan.GRIDS['full'])
  step = tuning.next_extension(cells, rule, cells[0].config)
  return None if step is None else step[2]


def test_choose_and_the_edge_rule():
  cells = [_cell([1e-3, 2e-3, 4e-3], lambda r: abs(np.log2(r / 4e-3)))]
  choice = tuning.choose(cells)
  assert (choice.config.learning_rate, choice.epoch, choice.decoding,
          choice.validation_mde) == (4e-3, 1, 'argmax', 1.0)
  assert choice.config.sweep == {}
  assert next_rate(cells) == 8e-3       # on the upper edge
  cells.append(_cell([8e-3], lambda r: 5.0))
  assert next_rate(cells) is None       # now inside
  cells = [_cell([1e-3, 2e-3], lambda r: r)]
  assert next_rate(cells) == 5e-4       # on the lower edge
  # A point that diverged is never chosen, but its rate was tried.
  cells = [_cell([1e-3, 2e-3, 4e-3], lambda r: r, diverged=[1e-3])]
  assert tuning.choose(cells).config.learning_rate == 2e-3
  assert next_rate(cells) is None
  # The study's limit is in all, not per side.
  rule = experiments.edge_rule(study_plan.GRIDS['full'])
  cells = [_cell([1e-3, 2e-3], lambda r: r)]
  assert tuning.next_extension(cells, rule, cells[0].config, {
      ('learning_rate', 'top'): 6}) is None


def test_equal_distance_sums_tie_and_the_earlier_epoch_wins():
  # scarce500's label smoothing tuning (results/confirmation): both points
  # sum 2 573 digit distances over 5 000 images x 3 seeds; their float32
  # means differ in the ninth decimal.
  def point(rate, epoch, mde):
    return TuningPoint({'learning_rate': rate}, [
        {'epoch': e, 'argmax': {'mean_digit_distance': mde if e == epoch
                                else 1.0},
         'bayes': {'mean_digit_distance': 1.0}} for e in (12, 16, 20)], None)
  cell = TuningCell(Config(validation_size=5000,
                           sweep={'learning_rate': [0.003, 0.006]}),
                    [100, 101, 102], 500, 1.0,
                    (point(0.003, 20, 0.1715333263),
                     point(0.006, 16, 0.1715333313)))
  assert tuning.exact_mde(0.1715333263, cell) == Fraction(2573, 15000)
  assert tuning.exact_mde(0.1715333313, cell) == Fraction(2573, 15000)
  choice = tuning.choose([cell])
  assert (choice.config.learning_rate, choice.epoch) == (0.006, 16)
  assert choice.validation_mde == 0.1715333313
  # The study's order: the float means as they are.
  assert tuning.choose([cell], exact_ties=False).epoch == 20
  # One distance more is not a tie.
  cell = dataclasses.replace(cell, points=(
      point(0.003, 20, 2573 / 15000), point(0.006, 16, 2574 / 15000)))
  assert tuning.choose([cell]).epoch == 20


def test_best_distance_aware_family_by_mean_rank():
  def tuned(mdes):
    return {f: FamilyResult(study_plan.FAMILIES[f].role, (),
                            Choice(Config(), 2, 'argmax', m), False)
            for f, m in mdes.items()}

  a = tuned({'label_smoothing': 0.01, 'sord[linear]': 0.05, 'corn': 0.04,
             'clm[logit]': 0.06})
  b = tuned({'label_smoothing': 0.01, 'sord[linear]': 0.03, 'corn': 0.05,
             'clm[logit]': 0.02})
  # Ranks: sord 1 and 1, corn 0 and 2, clm 2 and 0: a tie broken by name;
  # the control is never a candidate.
  assert experiments.best_distance_aware([a, b]) == 'clm[logit]'
  assert experiments.best_distance_aware([a]) == 'corn'


@pytest.mark.slow
def test_a_tuning_cell_whose_points_all_diverge_is_kept(tmp_path):
  dataset = learnable_dataset(num_train=96, num_test=16)
  config = Config(optimizer='sgd', schedule='constant', learning_rate=1e30,
                  validation_size=32, score_test=False)
  path = tmp_path / 'study' / 'r' / 'tune-x.json'
  with pytest.raises(train.TrainingError):
    cells.run_cell(path, config, tmp_path / 'runs', dataset, print,
                         cells.tuning_curves)
  cell = cells.run_cell(path, config, tmp_path / 'runs', dataset, print,
                              cells.tuning_curves,
                              cells.diverged_points)
  (point,) = cell['points']
  assert re.search('loss became (nan|inf)', point['diverged'])
  assert point['curve'] == [] and cell['seeds'] == [0]
  ok = _cell([1e-3, 2e-3, 4e-3], lambda r: r)
  # Its rate counts as tried: 1e-3 is no longer the lowest.
  diverged = TuningCell.from_json(
      dict(cell, config=dict(cell['config'], learning_rate=5e-4)))
  assert tuning.values_tried([ok, diverged], 'learning_rate')[0] == 5e-4
  assert tuning.choose([ok, diverged]).config.learning_rate == 1e-3
  assert next_rate([ok, diverged]) is None


def test_more_seeds_when_within_two_standard_errors():
  reference = np.array([0.10, 0.11, 0.12, 0.10, 0.11])
  assert experiments.needs_more_seeds(reference + [0.01, -0.01, 0.0, 0.005,
                                                   -0.004], reference)
  # 1.7 standard errors from zero: within two, so more seeds.
  assert experiments.needs_more_seeds(reference + [0.01, 0.02, -0.005, 0.015,
                                                   0.0], reference)
  assert not experiments.needs_more_seeds(reference - 0.02 + [
      0.001, -0.001, 0.0, 0.0005, 0.0], reference)


def test_more_seeds_are_decided_on_validation_not_test():
  def family(validation, test):
    scores = {split: {'argmax': {'mean_digit_distance': {'per_seed': v}}}
              for split, v in (('validation', validation), ('test', test))}
    final = FinalCell(Config(), [0, 1, 2], 64, 1.0, scores)
    return FamilyResult(study_plan.CONTROL, (),
                        Choice(Config(), 1, 'argmax', 0.0), False, (final,))

  control = [0.10, 0.20, 0.30]
  families = {
      'control': family(control, control),
      # Within two standard errors on validation, far apart on test.
      'close_on_validation': family([0.11, 0.19, 0.31],
                                    [0.50, 0.61, 0.70]),
      # The other way round.
      'close_on_test': family([0.50, 0.61, 0.70], [0.11, 0.19, 0.31]),
  }
  assert experiments.close_to_control(families, 'control') == [
      'close_on_validation']


@pytest.mark.slow
def test_attribution_adds_up_to_the_mde_difference(tiny_study):
  _, _, _, rows, _ = tiny_study
  for r in rows:
    np.testing.assert_allclose(r['fewer_part'] + r['closer_part'],
                               r['mean_digit_distance_vs_control'],
                               atol=1e-6)
    if r['family'] == r['best_control']:
      assert r['mean_digit_distance_vs_control'] == 0
      assert r['mean_digit_distance_vs_control_p_holm'] == 1.0


@pytest.mark.slow
def test_holm_within_a_regime_and_across_regimes(tiny_study):
  _, _, _, rows, _ = tiny_study
  test = 'mean_digit_distance_vs_control'
  for regime in ('scarce', 'clean'):
    group = [r for r in study_rows.rows_of(rows, regime)
             if r['family'] != r['best_control']]
    np.testing.assert_allclose([r[f'{test}_p_holm'] for r in group],
                               stats.holm([r[f'{test}_p']
                                                  for r in group]))
  across = [r for r in rows if r['regime'] in ('scarce', 'clean', 'shifted')
            and r['family'] != r['best_control']]
  np.testing.assert_allclose([r[f'{test}_p_holm_all'] for r in across],
                             stats.holm([r[f'{test}_p']
                                                for r in across]))
  assert all(np.isnan(r[f'{test}_p_holm_all']) for r in rows
             if r['regime'].startswith('shifted:'))


@pytest.mark.slow
def test_rerun_skips_every_finished_cell(tiny_study):
  root, dataset, _, rows, _ = tiny_study
  log = []
  study = experiments.run_study('tiny', dataset, root / 'results',
                                root / 'runs', base=Config(),
                                log=log.append)
  # Nothing trained: run_cell logs '  <regime>/<cell>: <seconds>s' per run.
  assert not [line for line in log if re.fullmatch(r'  \S+/\S+: \d+s', line)]
  assert [line for line in log if line.endswith('on an edge; adds 0.012')]
  again = study_rows.study_rows(study)
  assert json.dumps(again) == json.dumps(rows)


@pytest.mark.slow
def test_changed_plan_refuses_to_reuse_a_cell(tiny_study, tmp_path):
  root, dataset, _, _, _ = tiny_study
  cell = root / 'results' / 'study' / 'scarce' / 'final-ce.json'
  with pytest.raises(ValueError, match='another configuration'):
    cells.run_cell(cell, Config(epochs=7), tmp_path, dataset,
                         print, cells.final_scores)


@pytest.mark.slow
def test_row_command_reproduces_the_row(tiny_study, tmp_path):
  _, dataset, study, rows, _ = tiny_study
  # The best control's row: seeds 0-3 when any family was close to it
  # (then its command runs both final cells' seeds at once).
  row = next(r for r in rows if r['regime'] == 'scarce' and
             r['family'] == r['best_control'])
  assert f"--num_seeds {row['n_seeds']}" in row['command']
  args = shlex.split(row['command'])[2:]
  parser = build_parser()
  argv = args + ['--workdir', str(tmp_path / 'w')]
  config = config_from_args(parser.parse_args(argv), parser, argv)[0]
  family = study['scarce'].families[row['family']]
  saved = family.finals[0].config
  assert config == dataclasses.replace(
      saved, data_dir='../shared/mnist', num_seeds=row['n_seeds'])
  again = train.train_and_evaluate(dataclasses.replace(config, data_dir=None),
                                   tmp_path / 'w', dataset=dataset)
  decoding = family.choice.decoding
  for metric in ('accuracy', 'mean_digit_distance'):
    np.testing.assert_allclose(
        again['final']['test'][decoding][metric]['mean'], row[metric],
        rtol=1e-6)


def test_the_committed_report_regenerates_from_the_committed_cells(tmp_path):
  # Every cell is committed: the study only reads them (a missing one would
  # need the dataset, which is not given) and the report comes out the same.
  shutil.copytree(ROOT / 'results' / 'study', tmp_path / 'study')
  study = experiments.run_study('full', None, tmp_path, tmp_path / 'runs',
                                base=Config(data_dir='../shared/mnist'),
                                log=lambda message: None)
  study_report.write_report(study, tmp_path)
  for name in ('study.csv', 'study.md'):
    assert (tmp_path / name).read_text() == (
        ROOT / 'results' / name).read_text(), name
  assert not (tmp_path / 'runs').exists()  # nothing trained


def test_command_for_turns_on_off_fields_into_flags():
  config = Config(label_noise=0.4, clean_validation=True, shifted_test=True,
                  score_test=False)
  args = shlex.split(study_rows.command_for(config))
  assert {'--clean_validation', '--shifted_test', '--no_test'} <= set(args)
  parser = build_parser()
  argv = args[2:] + ['--workdir', 'w']
  parsed = config_from_args(parser.parse_args(argv), parser, argv)[0]
  assert parsed == dataclasses.replace(config, data_dir='../shared/mnist')


def test_command_for_names_the_data_folder_it_is_given():
  args = shlex.split(study_rows.command_for(Config(epochs=2), '/data/mnist'))
  assert args == ['python', 'train.py', '--data_dir', '/data/mnist',
                  '--epochs', '2']


def test_group_names_parse_back_to_what_groups_wrote():
  regime = study_plan.GRIDS['tiny'].regimes['clean']
  parsed = [study_rows.parse_group(g)
            for g in study_rows.groups('clean', regime)]
  assert parsed[:2] == [('test', 'clean'), ('shifted', '')]
  assert [name for kind, name in parsed if kind == 'kind'] == list(
      corruptions.KINDS)
  assert [name for kind, name in parsed if kind == 'corruption'] == list(
      corruptions.CORRUPTIONS)


def test_statistics():
  mean, half = stats.mean_ci([1.0, 2.0, 3.0])
  assert mean == 2.0
  np.testing.assert_allclose(half, 4.302652729911275 / np.sqrt(3), rtol=1e-9)
  diff, p = stats.paired_test([1.0, 2.0, 3.5], [1.0, 1.5, 2.0])
  np.testing.assert_allclose(diff, 2 / 3)
  assert 0 < p < 1
  assert np.isnan(stats.paired_test([1.0], [0.5])[1])  # one seed
  assert stats.paired_test([1.0, 2.0], [0.5, 1.5])[1] == 0.0
  np.testing.assert_allclose(stats.holm([0.01, 0.04, 0.03, 0.5]),
                             [0.04, 0.09, 0.09, 0.5])
  points = np.array([[99.0, 0.03], [98.0, 0.02], [97.0, 0.05], [99.0, 0.04]])
  np.testing.assert_array_equal(study_rows.pareto_front(points),
                                [True, True, False, False])


# Registered losses that are no study family (results/protocol.md lists the
# 20): the loss table's one epoch is all they get.
# copoc_head was registered after the study (issue 40): in the loss table.
NOT_IN_THE_STUDY = {'coral', 'squared_emd', 'circular_emd', 'circular_mse',
                    'class_distance_weighted_ce', 'weighted_kappa',
                    'copoc_head'}


def test_every_registered_loss_is_in_the_study_or_the_committed_loss_table():
  study_losses = {f.overrides.get('loss', 'cross_entropy')
                  for f in study_plan.FAMILIES.values()}
  assert study_losses <= set(losses.LOSSES)
  assert set(losses.LOSSES) - study_losses == NOT_IN_THE_STUDY
  # The committed table was made after the last loss was registered.
  table = (ROOT / 'results' / 'losses.md').read_text().splitlines()
  rows = [line.split('|')[1].strip() for line in table
          if line.startswith('| ') and not line.startswith('| loss |')]
  assert sorted(rows) == sorted(loss_table.every_loss())
  base = Config(validation_size=5000, train_size=500)
  for family in study_plan.FAMILIES.values():
    for rates in ([1.5e-3, 3e-3], [6e-3]):
      tuned = experiments.tuned_grid(family, rates)
      protocol = engine.Protocol('study', engine.Finals(0, 1, 1),
                                 regimes={'r': base}, tune_seeds=2)
      assert resolve(protocol.tuning_config('r', tuned)
                     ).num_points == len(rates) * (2 if family.own else 1)
  roles = [f.role for f in study_plan.FAMILIES.values()]
  assert roles.count(study_plan.CONTROL) == 3


@pytest.mark.slow
def test_loss_table_writes_one_row_per_configuration(tmp_path, monkeypatch):
  monkeypatch.setattr(loss_table, 'every_loss', lambda: {
      'cross_entropy': {'loss': 'cross_entropy'}, 'clm[probit]': {
          'loss': 'clm', 'link': 'probit'}})
  rows = loss_table.run_loss_table(
      learnable_dataset(num_train=128, num_test=64), tmp_path,
      tmp_path / 'runs',
      base=Config(), log=lambda _: None)
  assert [r['name'] for r in rows] == ['cross_entropy', 'clm[probit]']
  text = (tmp_path / 'losses.md').read_text()
  assert '--loss clm --link probit' in text and '| clm[probit] |' in text


@pytest.mark.slow
def test_notebook_runs_top_to_bottom(tiny_study):
  nbformat = pytest.importorskip('nbformat')
  nbclient = pytest.importorskip('nbclient')
  root = tiny_study[0]
  notebook = nbformat.read(ROOT / 'notebooks' / 'ordinal_losses.ipynb',
                           as_version=4)
  os.environ['ORDINAL_RESULTS_DIR'] = str(root / 'results')
  try:
    nbclient.NotebookClient(notebook, timeout=300, kernel_name='python3',
                            resources={'metadata': {
                                'path': str(ROOT / 'notebooks')}}
                            ).execute()
  finally:
    del os.environ['ORDINAL_RESULTS_DIR']
  outputs = [o for c in notebook.cells if c.cell_type == 'code'
             for o in c.outputs]
  assert not [o for o in outputs if o.output_type == 'error']
  assert any('sord[linear]' in json.dumps(o) for o in outputs)


def test_bad_grid_or_data_exit_2(capsys):
  for argv, flag in ((['--grid', 'huge'], '--grid'),
                     (['--regimes', 'scarce2000,huge'], '--regimes'),
                     (['--data_dir', '/nonexistent'], '--data_dir')):
    with pytest.raises(SystemExit) as exit_info:
      experiments.main(argv)
    assert exit_info.value.code == 2
    assert flag in capsys.readouterr().err


def test_decoding_under_shift_reads_both_decodings_of_the_first_final():
  def split(accuracy, mde):
    return {'accuracy': {'mean': accuracy},
            'mean_digit_distance': {'mean': mde}}

  scores = {'test': {'argmax': split(0.99, 0.03), 'bayes': split(0.97, 0.05)},
            'test[fog]': {'argmax': split(0.8, 0.7),
                          'bayes': split(0.5, 1.2)},
            'test[rotate]': {'argmax': split(0.6, 0.9),
                             'bayes': split(0.4, 1.4)}}
  final = FinalCell(Config(), [0, 1], 100, 1.0, scores)
  family = FamilyResult('control', (), Choice(Config(), 1, 'argmax', 0.03),
                        False, (final,))
  result = RegimeResult(study_plan.GRIDS['full'].regimes['clean'],
                        {'label_smoothing': family}, 'label_smoothing', {})
  assert study_report.decoding_under_shift(result)[2:] == [
      '| label_smoothing | argmax (chosen) | 99.00 % | 0.0300 | 70.00 % | '
      '0.8000 |',
      '| label_smoothing | bayes | 97.00 % | 0.0500 | 45.00 % | 1.3000 |']


def test_a_cell_is_reused_only_for_its_own_data_unless_a_report_replays_it(
    tmp_path):
  config = Config(data_dir='../shared/mnist', validation_size=64)
  path = tmp_path / 'study' / 'r' / 'tune-x.json'
  path.parent.mkdir(parents=True)
  path.write_text(json.dumps({'config': dataclasses.asdict(config),
                              'seeds': [0], 'num_train': 1, 'wall_s': 1.0,
                              'points': []}))
  assert cells.read_cell(path, config)['seeds'] == [0]
  elsewhere = dataclasses.replace(config, data_dir='/other/mnist')
  with pytest.raises(ValueError, match='holds another configuration'):
    cells.read_cell(path, elsewhere)
  assert cells.read_cell(path, elsewhere, any_data_location=True)['seeds'] == [
      0]
  with pytest.raises(ValueError, match='holds another configuration'):
    cells.read_cell(path, dataclasses.replace(config, validation_size=32),
                    any_data_location=True)
