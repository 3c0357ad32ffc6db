"""A plain run, a 4-point sweep and two study cells on a small real-MNIST
subset give the metrics they gave at 319ed63, before the refactors of issues
26-28.

tests/data/run_golden.json holds the runs' final metrics, recorded by running
the two commands below in a checkout of 319ed63 (``PYTHONPATH=.:tests python
tests/test_run_golden.py --write DIR`` reads the two workdirs back from DIR).
tests/data/study_cell_golden.json holds a tuning cell and a final cell of the
study (less their wall time and configuration), recorded by
:func:`study_cells` in a checkout of 319ed63, where ``run_cell``,
``tuning_curves`` and ``final_scores`` lived in experiments.py and ``Config``
in config.py.
"""

import json
import pathlib
import sys

import numpy as np
import pytest

import data
import train
from conftest import MNIST_DIR, needs_mnist
from study import cells
from trainer.config import Config

GOLDEN = pathlib.Path(__file__).parent / 'data' / 'run_golden.json'
STUDY_GOLDEN = pathlib.Path(__file__).parent / 'data' / 'study_cell_golden.json'
SUBSET = ['--train_size', '512', '--validation_size', '1000', '--epochs', '2',
          '--num_seeds', '2', '--loss', 'soft_label_cross_entropy', '--quiet']
RUNS = {
    'plain': [*SUBSET, '--temperature', '0.7'],
    'sweep': [*SUBSET, '--sweep', 'learning_rate=0.003,0.006', '--sweep',
              'temperature=0.5,1'],
}


def final_metrics(summary: dict) -> list:
  """Each point's final metrics, seconds left out."""
  points = summary.get('points') or [{'final': summary['final']}]
  return [{split: point['final'][split] for split in ('validation', 'test')}
          for point in points]


def leaves(tree, path=''):
  if isinstance(tree, dict):
    for key, value in sorted(tree.items()):
      yield from leaves(value, f'{path}/{key}')
  elif isinstance(tree, list) and tree and isinstance(tree[0], dict | list):
    for i, value in enumerate(tree):
      yield from leaves(value, f'{path}/{i}')
  else:
    yield path, tree


@pytest.mark.slow
@needs_mnist
@pytest.mark.parametrize('name', sorted(RUNS))
def test_metrics_equal_those_recorded_before_the_refactor(name, tmp_path):
  workdir = tmp_path / name
  assert train.main(['--data_dir', str(MNIST_DIR), '--workdir', str(workdir),
                     *RUNS[name]]) == 0
  got = final_metrics(json.loads((workdir / 'summary.json').read_text()))
  want = json.loads(GOLDEN.read_text())[name]
  got_leaves, want_leaves = dict(leaves(got)), dict(leaves(want))
  assert got_leaves.keys() == want_leaves.keys()
  for path, value in want_leaves.items():
    np.testing.assert_allclose(got_leaves[path], value, rtol=1e-6, atol=1e-6,
                               err_msg=path)


def study_cells(dataset: dict, folder: pathlib.Path) -> dict:
  """A 4-point tuning cell (seeds 100-101, validation only, noisy labels) and
  a final cell (seeds 0-1, stopped after its first epoch), as the study
  keeps them, less wall time and configuration."""
  common = dict(train_size=256, validation_size=1000, epochs=2, num_seeds=2,
                loss='soft_label_cross_entropy', label_noise=0.2,
                clean_validation=True)
  configs = {
      'tune': (Config(**common, seed=100, score_test=False,
                      sweep={'learning_rate': [0.003, 0.006],
                             'temperature': [0.5, 1.0]}), cells.tuning_curves),
      'final': (Config(**common, temperature=0.5, stop_after=1, eval_every=1),
                cells.final_scores)}
  out = {}
  for name, (config, make_cell) in configs.items():
    cell = cells.run_cell(folder / 'study' / 'r' / f'{name}.json', config,
                          folder / 'runs', dataset, lambda m: None, make_cell)
    out[name] = {k: v for k, v in cell.items()
                 if k not in ('wall_s', 'config')}
  return out


@pytest.mark.slow
@needs_mnist
def test_study_cells_equal_those_recorded_before_the_refactor(tmp_path):
  got = study_cells(data.load_mnist(MNIST_DIR), tmp_path)
  want = json.loads(STUDY_GOLDEN.read_text())
  got_leaves, want_leaves = dict(leaves(got)), dict(leaves(want))
  assert got_leaves.keys() == want_leaves.keys()
  for path, value in want_leaves.items():
    if value is None:  # a point that did not diverge
      assert got_leaves[path] is None, path
      continue
    np.testing.assert_allclose(got_leaves[path], value, rtol=1e-6, atol=1e-6,
                               err_msg=path)


if __name__ == '__main__':
  if sys.argv[1:2] != ['--write'] or len(sys.argv) != 3:
    sys.exit('usage: python tests/test_run_golden.py --write DIR (holding '
             'the workdirs plain/ and sweep/ of RUNS, run at 319ed63)')
  folder = pathlib.Path(sys.argv[2])
  GOLDEN.write_text(json.dumps({
      name: final_metrics(json.loads(
          (folder / name / 'summary.json').read_text())) for name in RUNS},
      indent=1) + '\n')
  print(f'wrote {GOLDEN}')


def test_the_recorded_runs_are_the_ones_this_file_runs(tmp_path):
  # The slow tests read these records by name; a run's flags must still
  # pass the command line's checks, resolve's included (nothing trained).
  from trainer.cli import build_parser, config_from_args
  recorded = json.loads(GOLDEN.read_text())
  assert sorted(recorded) == sorted(RUNS)
  for name, flags in RUNS.items():
    parser = build_parser()
    argv = [*flags, '--workdir', str(tmp_path / name)]
    config_from_args(parser.parse_args(argv), parser, argv)
    values = [value for _, value in leaves(recorded[name])]
    assert values and all(np.all(np.isfinite(v)) for v in values), name
  assert sorted(json.loads(STUDY_GOLDEN.read_text())) == ['final', 'tune']
