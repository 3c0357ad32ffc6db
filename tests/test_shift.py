"""The confirmation under shift's engine (study/shift.py), with a fake
training step: which finals run, in what order, on what terms, and what
each keeps."""

import dataclasses
import json

import numpy as np
import pytest

import corruptions
from committed import registered_before_its_cells
from conftest import ROOT
from shift_fixtures import corrupted, write_shift_finals
from study import cells, confirm, engine, shift, shift_rows
from study.confirm_cells import tuned


def _fake_run(path, config, runs_dir, *args):
  """A final that trained: its per-image predictions in its workdir."""
  workdir = runs_dir / 'cells' / path.stem
  workdir.mkdir(parents=True)
  rng = np.random.default_rng(config.seed)
  arrays = {'seeds': np.arange(config.seed, config.seed + 10)}
  for name in shift.KEPT_SETS:
    n = config.shifted_size if '[' in name else CLEAN
    labels = rng.integers(0, 10, n)
    arrays[f'{name}_labels'] = labels
    for decoding in ('argmax', 'bayes'):
      arrays[f'{name}_{decoding}'] = rng.integers(0, 10, (10, n)).astype(
          np.int8)
  np.savez(workdir / 'predictions.npz', **arrays)
  return {'config': dataclasses.asdict(config),
          'seeds': list(range(config.seed, config.seed + 10)),
          'num_train': 2000, 'wall_s': 1.0}


CLEAN = 60  # the fake's clean confirmation images (30 000 in a real run)


@pytest.fixture
def small(monkeypatch):
  """The shift with fewer shifted images, so that the fake predictions stay
  small."""
  finals = shift.SHIFT.finals
  small = dataclasses.replace(shift.SHIFT, finals=dataclasses.replace(
      finals, fields={**finals.fields, 'shifted_size': 40}))
  monkeypatch.setattr(shift, 'SHIFT', small)
  return small


def _run_shift(protocol, tmp_path, data_dir):
  results = tmp_path / 'results'
  shift.run_shift(protocol, protocol.store(
      results, runs_dir=tmp_path / 'runs', data_dir=data_dir,
      log=lambda m: None), shift.confirmed(results))


def test_the_primaries_run_first_on_their_confirmed_terms(tmp_path,
                                                         monkeypatch, small):
  ran = []

  def fake(path, config, runs_dir, *args):
    ran.append((path.stem, config))
    return _fake_run(path, config, runs_dir)

  monkeypatch.setattr(engine, 'run_cell', fake)
  (tmp_path / 'results').mkdir()
  (tmp_path / 'results' / 'confirmation').symlink_to(
      ROOT / 'results' / 'confirmation')
  _run_shift(small, tmp_path, '../shared/mnist')
  assert [stem for stem, _ in ran] == [
      f'final-{family}-s{2000 + 10 * g}'
      for family in ('label_smoothing', 'smoothed_sord', 'cross_entropy',
                     'label_smoothing_matched')
      for g in range(12)]
  choices = {name: t.choice for name, t in tuned(
      ROOT / 'results' / 'confirmation' / 'cells', 'scarce2000').items()}
  for stem, config in ran:
    family = stem.split('-')[1]
    (confirmed, *_) = confirm.CONFIRMATION.finals.configs(choices[family])
    # The confirmation's final command but for the seeds and shifted sets.
    assert dataclasses.replace(
        config, seed=1000, shifted_test=False, shifted_confirmation=False,
        shifted_size=2000) == confirmed
    assert (config.num_seeds, config.shifted_test,
            config.shifted_confirmation, config.shifted_size) == (
                10, True, True, 40)
  # Every final keeps its per-image distances, int8, for every kept set.
  with np.load(tmp_path / 'results' / 'shift' / 'images' /
               'final-smoothed_sord-s2110.npz') as f:
    assert list(f['seeds']) == list(range(2110, 2120))
    for name in shift.KEPT_SETS:
      assert f[f'{name}_argmax'].dtype == np.int8
      assert f[f'{name}_bayes'].shape == (
          10, 40 if '[' in name else CLEAN)


def test_the_kept_distances_are_the_predictions_distances(tmp_path, small):
  config = small.finals.configs(tuned(
      ROOT / 'results' / 'confirmation' / 'cells', 'scarce2000')[
          'label_smoothing'].choice)[0]
  _fake_run(tmp_path / 'final-x-s2000.json', config, tmp_path)
  cells.save_distances(tmp_path / 'cells' / 'final-x-s2000',
                       tmp_path / 'kept.npz', shift.KEPT_SETS, bare=None,
                       seeds=True)
  with np.load(tmp_path / 'cells' / 'final-x-s2000' / 'predictions.npz') as p, \
      np.load(tmp_path / 'kept.npz') as kept:
    for name in ('confirmation[rotate]', 'confirmation'):
      np.testing.assert_array_equal(
          kept[f'{name}_bayes'],
          np.abs(p[f'{name}_bayes'].astype(int) - p[f'{name}_labels']))


def test_the_kept_sets_are_every_corruption_and_the_clean_split():
  assert (*(f'confirmation[{c}]'
                               for c in corruptions.CORRUPTIONS),
                             'confirmation') == shift.KEPT_SETS


def test_a_rerun_skips_what_is_done(tmp_path, monkeypatch, small):
  calls = []

  def fake(path, config, runs_dir, *args):
    calls.append(path.stem)
    if path.exists():
      return json.loads(path.read_text())
    cell = _fake_run(path, config, runs_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cell))
    return cell

  monkeypatch.setattr(engine, 'run_cell', fake)
  (tmp_path / 'results').mkdir()
  (tmp_path / 'results' / 'confirmation').symlink_to(
      ROOT / 'results' / 'confirmation')
  for _ in range(2):
    _run_shift(small, tmp_path, None)
  assert len(calls) == 96  # the second pass reads every cell back


@pytest.mark.skipif(not (ROOT / '.git').exists(), reason='not a git clone')
def test_the_shift_protocol_entered_git_before_any_of_its_cells():
  registered_before_its_cells('# Shift protocol (issue 37)',
                              'results/shift/cells', 'results/shift/images')


def test_the_shift_pilot_kept_the_test_splits_sets_only():
  for path in (ROOT / 'results' / 'shift' / 'pilot').glob('*.npz'):
    with np.load(path) as f:
      assert f.files and all(name in ('argmax', 'bayes')
                             or name.startswith('test[') for name in f.files)


def test_no_committed_cell_but_the_shifts_scored_a_corrupted_confirmation():
  scored = []
  for path in (ROOT / 'results').rglob('*.json'):
    cell = json.loads(path.read_text())
    if isinstance(cell, dict) and isinstance(cell.get('config'), dict) and (
        cell['config'].get('shifted_confirmation')
        or any(key.startswith('confirmation[') for key in cell)):
      scored.append(path.relative_to(ROOT / 'results').parts[0])
  assert set(scored) <= {'shift'}, scored


def _write_shift_finals(root, family, distances_CxSxN, diverged_group=None):
  """A family's twelve groups: ``distances_CxSxN`` (12 corruptions x 120
  seeds x N images) as its distances; beside ``root``, the committed
  confirmation whose choices the cells hold."""
  if not (root.parent / 'confirmation').exists():
    (root.parent / 'confirmation').symlink_to(
        ROOT / 'results' / 'confirmation')
  write_shift_finals(root, family, corrupted(distances_CxSxN),
                     diverged_group)


def test_the_primary_rows_per_kind(tmp_path):
  rng = np.random.default_rng(0)
  n = 60
  reference = (rng.uniform(size=(12, 120, n)) < 0.2) * rng.integers(
      1, 6, (12, 120, n))
  # Smoothed SORD: a fifth of label smoothing's mistakes gone under the
  # geometric corruptions only (indices 3-6), the same elsewhere.
  challenger = reference.copy()
  challenger[3:7] = np.where(rng.uniform(size=(4, 120, n)) < 0.2, 0,
                             reference[3:7])
  root = tmp_path / 'shift'
  _write_shift_finals(root, 'label_smoothing', reference)
  _write_shift_finals(root, 'smoothed_sord', challenger, diverged_group=4)
  messages = []
  rows = shift_rows.primary_rows(tmp_path, log=messages.append,
                                 replicates=300)
  assert not messages
  by_kind = {r['kind']: r for r in rows}
  assert [r['hypothesis'] for r in rows] == ['S1', 'S2', 'S3', 'S4']
  kept = np.r_[0:40, 50:120]  # group 2040-2049 diverged: dropped from both
  geometric = by_kind['geometric']
  assert (geometric['n_seeds'], geometric['n_images'],
          geometric['groups_dropped']) == (110, n, 1)
  np.testing.assert_allclose(
      geometric['delta'], (challenger[3:7] - reference[3:7])[:, kept].mean(),
      rtol=1e-9)
  np.testing.assert_allclose(geometric['fewer_part']
                             + geometric['closer_part'],
                             geometric['delta'], rtol=1e-9)
  assert geometric['ci95_high'] < 0 and geometric['verdict'].startswith(
      'lower')
  assert geometric['groups_ci95_low'] < geometric['delta'] < geometric[
      'groups_ci95_high']
  assert geometric['band_share'] == 0.03 and by_kind['noise'][
      'band_share'] == 0.065
  for kind in ('noise', 'blur', 'occlusion/texture'):
    assert by_kind[kind]['delta'] == 0
    assert by_kind[kind]['p_holm'] == 1.0
  # Detected with 80 % power at alpha 0.05 / 4 (Holm's first step).
  np.testing.assert_allclose(shift_rows.DETECT_Z, 2.4977 + 0.8416, atol=1e-4)


def test_a_kind_waits_for_both_families(tmp_path):
  rng = np.random.default_rng(1)
  _write_shift_finals(tmp_path / 'shift', 'label_smoothing',
                      rng.integers(0, 3, (12, 120, 10)))
  messages = []
  assert shift_rows.primary_rows(tmp_path, log=messages.append) == []
  assert len(messages) == 4 and 'final-smoothed_sord-s2000.json' in (
      messages[0])
