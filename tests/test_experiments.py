"""experiments.py: the study on a tiny grid, its tables, the notebook."""

import csv
import dataclasses
import json
import os
import shlex

import numpy as np
import pytest

import experiments
import losses
import study_report
import train
from cli import build_parser, config_from_args
from config import Config
from conftest import ROOT
from resolve import resolve
from test_train import learnable_dataset


@pytest.fixture(scope='module')
def tiny_study(tmp_path_factory):
  root = tmp_path_factory.mktemp('study')
  dataset = learnable_dataset(num_train=600, num_test=128)
  log = []
  study = experiments.run_study('tiny', dataset, root / 'results',
                                root / 'runs', base=Config(),
                                log=log.append)
  rows = study_report.study_rows(study)
  study_report.write_tables(study, rows, root / 'results')
  study_report.write_plots(study, rows, root / 'results')
  return root, dataset, study, rows, log


def test_study_writes_cells_tables_and_plots(tiny_study):
  root, _, study, rows, _ = tiny_study
  results = root / 'results'
  for name in ('study.csv', 'study.md', 'study_curves.png', 'study_pareto.png',
               'study_far_errors.png'):
    assert (results / name).stat().st_size > 0, name
  families = experiments.tiny_families()
  regimes = ['scarce', 'clean', 'shifted']
  assert len(rows) == 2 * len(families) * len(regimes)
  with open(results / 'study.csv') as f:
    table = list(csv.DictReader(f))
  for column in ('regime', 'config', 'loss', 'decoding', 'train_size',
                 'label_noise', 'epochs', 'batch_size', 'learning_rate',
                 'seeds', 'n_seeds', 'accuracy', 'mean_digit_distance',
                 'far_error_rate', 'command'):
    assert column in table[0], column
  # The table holds the final cells' test numbers, per seed averaged.
  final = study['scarce']['finals']['sord[linear]']
  row = next(r for r in table if r['regime'] == 'scarce' and
             r['config'] == 'sord[linear]' and r['decoding'] == 'argmax')
  np.testing.assert_allclose(float(row['accuracy']), np.mean(
      final['cell']['test']['argmax']['accuracy']['per_seed']))
  assert row['seeds'] == '0;1' and row['n_seeds'] == '2'
  assert row['train_size'] == '96'
  text = (results / 'study.md').read_text()
  assert '## shifted' in text and 'Holm' in text


def test_choices_are_made_on_validation_only(tiny_study):
  _, _, study, rows, _ = tiny_study
  for regime in study.values():
    for final in regime['finals'].values():
      best = min(final['tuned'], key=experiments.validation_mde)
      assert final['decoding'] == experiments.validation_mde(best)[1]
      assert final['cell']['config']['learning_rate'] == best['config'][
          'learning_rate']
      # Tuning never looked at the test split; finals use fresh seeds.
      assert all('test' not in cell for cell in final['tuned'])
      assert final['cell']['seeds'] == [0, 1]
      assert all(c['seeds'] == [study_report.TUNE_SEED] for c in final['tuned'])
  assert sum(r['chosen'] for r in rows) == len(rows) // 2


def test_rerun_skips_every_finished_cell(tiny_study):
  root, dataset, _, rows, _ = tiny_study
  log = []
  study = experiments.run_study('tiny', dataset, root / 'results',
                                root / 'runs', base=Config(),
                                log=log.append)
  assert not [line for line in log if line.startswith('  ')]  # nothing trained
  assert study_report.study_rows(study) == rows


def test_changed_plan_refuses_to_reuse_a_cell(tiny_study, tmp_path):
  root, dataset, _, _, _ = tiny_study
  cell = next((root / 'results' / 'study' / 'scarce').glob('final-ce.json'))
  with pytest.raises(ValueError, match='another configuration'):
    experiments.run_cell(cell, Config(epochs=7), tmp_path, dataset,
                         print, {})


def test_row_command_reproduces_the_row(tiny_study, tmp_path):
  _, dataset, study, rows, _ = tiny_study
  row = next(r for r in rows if r['regime'] == 'scarce' and
             r['config'] == 'ce' and r['chosen'])
  args = shlex.split(row['command'])[2:]
  parser = build_parser()
  argv = args + ['--workdir', str(tmp_path / 'w')]
  config, _ = config_from_args(parser.parse_args(argv), parser, argv)
  saved = study['scarce']['finals']['ce']['cell']['config']
  assert dataclasses.asdict(config) == dict(saved, data_dir='../shared/mnist')
  again = train.train_and_evaluate(dataclasses.replace(config, data_dir=None),
                                   tmp_path / 'w', dataset=dataset)
  assert (again['final']['test']['argmax']['mean_digit_distance']['mean'] ==
          row['mean_digit_distance'])


def test_choose_epochs_stops_when_the_gain_is_within_one_standard_error():
  def curve(accs):
    return {e: {'validation': {'argmax': {'accuracy': {'mean': a}}}}
            for e, a in accs.items()}

  # At 99 % on 5 000 images one standard error is 0.14 pp.
  assert experiments.choose_epochs(curve({1: 0.985, 2: 0.9895, 3: 0.990}),
                                   5000) == 2
  assert experiments.choose_epochs(curve({1: 0.985, 2: 0.987, 3: 0.990}),
                                   5000) == 3


def test_statistics():
  mean, half = study_report.mean_ci([1.0, 2.0, 3.0])
  assert mean == 2.0
  np.testing.assert_allclose(half, 4.302652729911275 / np.sqrt(3), rtol=1e-9)
  diff, p = study_report.paired_test([1.0, 2.0, 3.5], [1.0, 1.5, 2.0])
  np.testing.assert_allclose(diff, 2 / 3)
  assert 0 < p < 1
  np.testing.assert_allclose(study_report.holm([0.01, 0.04, 0.03, 0.5]),
                             [0.04, 0.09, 0.09, 0.5])
  points = np.array([[99.0, 0.03], [98.0, 0.02], [97.0, 0.05], [99.0, 0.04]])
  np.testing.assert_array_equal(study_report.pareto_front(points),
                                [True, True, False, False])


def test_every_registered_loss_is_in_the_study_or_the_loss_table():
  covered = {o.get('loss', 'cross_entropy')
             for o in experiments.every_loss().values()}
  assert covered == set(losses.LOSSES)
  for overrides in list(experiments.every_loss().values()) + [
      dict(o, **cells[0][1])
      for o, cells in experiments.full_families().values()]:
    resolve(Config(**overrides))


def test_loss_table_writes_one_row_per_configuration(tmp_path, monkeypatch):
  monkeypatch.setattr(experiments, 'every_loss', lambda: {
      'cross_entropy': {'loss': 'cross_entropy'}, 'clm[probit]': {
          'loss': 'clm', 'link': 'probit'}})
  rows = experiments.run_loss_table(
      learnable_dataset(num_train=128, num_test=64), tmp_path,
      tmp_path / 'runs',
      base=Config(), log=lambda _: None)
  assert [r['name'] for r in rows] == ['cross_entropy', 'clm[probit]']
  text = (tmp_path / 'losses.md').read_text()
  assert '--loss clm --link probit' in text and '| clm[probit] |' in text


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
                     (['--data_dir', '/nonexistent'], '--data_dir')):
    with pytest.raises(SystemExit) as exit_info:
      experiments.main(argv)
    assert exit_info.value.code == 2
    assert flag in capsys.readouterr().err
