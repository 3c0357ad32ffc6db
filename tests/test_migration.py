"""Configurations saved before the renames of 2026-12-02 still load.

``binomial``, ``poisson`` and ``von_mises`` became ``binomial_head``,
``poisson_head`` and ``von_mises_head``; ``alpha`` became ``power``,
``sharpness`` or ``soft_label_param``; a soft-label family's ``temperature``
or ``kappa`` became ``soft_label_param``. The committed cells under results/
were written with the old names and are read through the migration.
"""

import dataclasses
import json
import pathlib

import pytest

import train
from study import cells
from trainer.config import Config, migrate
from trainer.resolve import resolve

RESULTS = pathlib.Path(__file__).resolve().parent.parent / 'results'
CELLS = sorted([*RESULTS.glob('study/*/*.json'),
                *RESULTS.glob('losses/*.json')])


def committed_cell(relative: str) -> dict:
  cell = json.loads((RESULTS / relative).read_text())
  assert 'alpha' in cell['config'] or 'kappa' in cell['config']  # old names
  return cells.migrate_cell(cell)


def test_every_committed_cell_loads_and_the_renamed_ones_resolve():
  assert len(CELLS) >= 224  # as committed on 2026-12-02
  for path in CELLS:
    saved = json.loads(path.read_text())['config']
    config = Config(**migrate(saved))
    if migrate(saved) != {k: v for k, v in saved.items() if k != 'alpha'}:
      resolve(config)


@pytest.mark.parametrize('relative, field, value', [
    ('study/scarce500/final-slace_linear_.json', 'sharpness', 2.0),
    ('study/scarce500/final-soft_geometric_.json', 'soft_label_param', 0.3),
    ('study/scarce500/final-soft_von_mises_.json', 'soft_label_param', 5.0),
    ('study/scarce500/final-von_mises.json', 'kappa', 3.0),
])
def test_an_old_cell_gets_its_value_under_the_new_name(relative, field, value):
  config = Config(**committed_cell(relative)['config'])
  assert getattr(config, field) == value
  assert config.sweep == {}


def test_an_old_tuning_cell_renames_its_sweep_and_its_points():
  cell = committed_cell('study/scarce500/tune-soft_geometric_.json')
  assert cell['config']['sweep'] == {'learning_rate': [0.0015, 0.003, 0.006],
                                     'soft_label_param': [0.1, 0.3]}
  assert cell['points'][0]['hyperparameters'] == {'learning_rate': 0.0015,
                                                  'soft_label_param': 0.1}
  assert resolve(Config(**cell['config'])).num_points == 6


def test_old_head_names_become_the_new_ones():
  assert Config(**committed_cell(
      'study/scarce500/final-binomial.json')['config']).loss == 'binomial_head'
  assert migrate({'loss': 'poisson'}) == {'loss': 'poisson_head'}


@pytest.mark.parametrize('config', [
    Config(loss='slace', sharpness=2.0, sweep={'sharpness': [1.0, 2.0]}),
    Config(loss='soft_target_cross_entropy', soft_labels='von_mises',
           soft_label_param=2.0),
    Config(loss='soft_target_cross_entropy', soft_labels='exponential',
           sweep={'soft_label_param': [0.5, 2.0]}),
    Config(loss='soft_target_cross_entropy', soft_labels='geometric',
           soft_label_param=0.3),
    Config(loss='von_mises_head', kappa=3.0),
    Config(loss='class_distance_weighted_ce', power=2.0),
    Config(loss='soft_label_cross_entropy', temperature=3.0, epsilon=0.6),
], ids=str)
def test_a_configuration_saved_today_comes_back_unchanged(config):
  saved = json.loads(json.dumps(dataclasses.asdict(config)))
  assert Config(**migrate(saved)) == config


@pytest.mark.slow
def test_a_workdir_saved_with_old_names_resumes(fake_dir, tmp_path):
  workdir = tmp_path / 'run'
  common = ['--data_dir', str(fake_dir), '--workdir', str(workdir), '--quiet']
  assert train.main(common + ['--loss', 'slace', '--sharpness', '2',
                              '--epochs', '1']) == 0
  saved_path = workdir / 'config.json'
  saved = json.loads(saved_path.read_text())
  saved['alpha'] = saved.pop('sharpness')  # as written before the rename
  saved_path.write_text(json.dumps(saved))
  assert train.main(common + ['--resume', '--epochs', '2']) == 0
  summary = json.loads((workdir / 'summary.json').read_text())
  assert summary['epochs_completed'] == 2
  assert summary['config']['sharpness'] == 2.0
  assert 'alpha' not in summary['config']


def test_the_committed_ordinal_log_loss_cell_loads_as_its_one_registry_name():
  # ordinal_log_loss left the registry on 2026-12-07 (one name per
  # function); its one-epoch cell stays on record and loads as CDW-CE.
  cell = cells.migrate_cell(json.loads(
      (RESULTS / 'losses' / 'ordinal_log_loss.json').read_text()))
  config = Config(**cell['config'])
  assert config.loss == 'class_distance_weighted_ce'
  resolve(config)

