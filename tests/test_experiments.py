"""experiments.py on a tiny synthetic grid, and the notebook run end to end."""

import csv
import dataclasses
import json
import os

import numpy as np
import pytest

import experiments
import losses
import train
from conftest import ROOT
from test_train import learnable_dataset


@pytest.fixture(scope='module')
def smoke_results(tmp_path_factory):
  root = tmp_path_factory.mktemp('grid')
  base = train.Config(epochs=1, batch_size=32, num_seeds=2)
  dataset = learnable_dataset()
  workdirs = experiments.run_grid(experiments.smoke_grid(), base,
                                  root / 'runs', dataset=dataset)
  rows = experiments.write_results(workdirs, root / 'results')
  return root, workdirs, rows, base, dataset


def test_grid_writes_tables_and_plots(smoke_results):
  root, workdirs, rows, _, _ = smoke_results
  results = root / 'results'
  for name in ('results.csv', 'results.md', 'pareto.png', 'lambda_sweep.png',
               'confusion.png', 'error_distances.png'):
    assert (results / name).stat().st_size > 0, name
  with open(results / 'results.csv') as f:
    table = list(csv.DictReader(f))
  assert len(table) == 2 * len(experiments.smoke_grid())
  # The CSV holds the same numbers as the runs' summaries.
  summary = json.loads((workdirs['coral'] / 'summary.json').read_text())
  row = next(r for r in table if r['config'] == 'coral' and
             r['decoding'] == 'bayes')
  per_seed = summary['final']['test']['bayes']['accuracy']['per_seed']
  np.testing.assert_allclose(float(row['accuracy']), np.mean(per_seed))
  base = next(r for r in rows if r['config'] == 'cross_entropy' and
              r['decoding'] == 'argmax')
  assert base['accuracy_diff'] == 0 and base['accuracy_p'] == 1.0
  text = (results / 'results.md').read_text()
  assert 'cross_entropy' in text and '0.1 p' in text
  # The header says how the grid was trained, so old results stay readable
  # after the defaults change.
  assert text.startswith('Test split, 2 seeds per configuration, 1 epoch(s) '
                         'each at batch size 32 and peak learning rate 0.003;')


def test_rerun_skips_finished_configurations(smoke_results):
  root, _, _, base, dataset = smoke_results
  log = []
  experiments.run_grid(experiments.smoke_grid(), base, root / 'runs',
                       dataset=dataset, log=log.append)
  assert len(log) == len(experiments.smoke_grid())
  assert all(line.endswith('done, skipped') for line in log)


def test_rerun_with_changed_config_refuses(smoke_results):
  root, _, _, base, dataset = smoke_results
  with pytest.raises(ValueError, match='another configuration'):
    experiments.run_grid({'cross_entropy': {}},
                         dataclasses.replace(base, epochs=2), root / 'runs',
                         dataset=dataset)


def test_statistics():
  mean, half = experiments.mean_ci([1.0, 2.0, 3.0])
  assert mean == 2.0
  np.testing.assert_allclose(half, 4.302652729911275 / np.sqrt(3), rtol=1e-9)
  diff, p = experiments.paired_test([1.0, 2.0, 3.5], [1.0, 1.5, 2.0])
  np.testing.assert_allclose(diff, 2 / 3)
  assert 0 < p < 1
  points = np.array([[99.0, 0.03], [98.0, 0.02], [97.0, 0.05], [99.0, 0.04]])
  np.testing.assert_array_equal(experiments.pareto_front(points),
                                [True, True, False, False])


def test_notebook_runs_top_to_bottom(smoke_results):
  nbformat = pytest.importorskip('nbformat')
  nbclient = pytest.importorskip('nbclient')
  root = smoke_results[0]
  notebook = nbformat.read(ROOT / 'notebooks' / 'ordinal_losses.ipynb',
                           as_version=4)
  os.environ['ORDINAL_RESULTS_DIR'] = str(root / 'results')
  try:
    nbclient.NotebookClient(notebook, timeout=120, kernel_name='python3',
                            resources={'metadata': {'path': str(ROOT / 'notebooks')}}
                            ).execute()
  finally:
    del os.environ['ORDINAL_RESULTS_DIR']
  outputs = [o for c in notebook.cells if c.cell_type == 'code'
             for o in c.outputs]
  assert not [o for o in outputs if o.output_type == 'error']
  assert any('cross_entropy' in json.dumps(o) for o in outputs)


@pytest.mark.parametrize('flag, value', [('--learning_rate', '0'),
                                         ('--learning_rate', '-1e-3'),
                                         ('--learning_rate', 'inf'),
                                         ('--learning_rate', 'nan'),
                                         ('--batch_size', '0')])
def test_bad_flags_exit_2_naming_the_flag(flag, value, capsys):
  with pytest.raises(SystemExit) as exit_info:
    experiments.main([flag, value, '--data_dir', '/nonexistent'])
  assert exit_info.value.code == 2
  assert flag in capsys.readouterr().err


def test_full_grid_covers_every_registered_loss_with_valid_configs():
  grid = experiments.full_grid()
  assert {o.get('loss', 'cross_entropy') for o in grid.values()} == set(
      losses.LOSSES)
  for overrides in grid.values():
    config = train.Config(**overrides)
    train.make_loss_fn(config, train.load_distance(config.distance))
