"""The confirmation split (issue 29): set aside from the training images
with ``--confirmation_size``, never trained, tuned or validated on, scored
only where the test split is; without the flag every subset is today's."""

import dataclasses
import hashlib
import json

import numpy as np
import pytest

import data
import losses
import train
from committed import registered_before_its_cells
from conftest import MNIST_DIR, ROOT, learnable_dataset, needs_mnist
from study import cells, confirm, engine, tuning
from study import plan as study_plan
from study.records import Choice, TuningCell, TuningPoint
from trainer.config import FIELDS, Config, ConfigError
from trainer.resolve import resolve
from trainer.run_data import check_data_sizes, prepare_data

CONFIRMATION_SIZE = confirm.CONFIRMATION_SIZE


def _hashes(images: np.ndarray) -> set[str]:
  return {hashlib.sha256(image.tobytes()).hexdigest() for image in images}


def test_the_split_is_fixed_nested_and_disjoint_from_the_rest():
  split = learnable_dataset(num_train=200, num_test=8)['train']
  rest, confirmation = data.hold_out_confirmation(split, 50)
  again = data.hold_out_confirmation(split, 50)[1]
  np.testing.assert_array_equal(confirmation.images, again.images)
  assert len(rest.labels) == 150 and len(confirmation.labels) == 50
  assert not _hashes(rest.images) & _hashes(confirmation.images)
  # A larger split holds a smaller one; size 0 leaves the images as they are.
  larger = data.hold_out_confirmation(split, 80)[1]
  assert _hashes(confirmation.images) <= _hashes(larger.images)
  unchanged, empty = data.hold_out_confirmation(split, 0)
  np.testing.assert_array_equal(unchanged.images, split.images)
  assert len(empty.labels) == 0


def test_its_size_is_checked_with_the_other_data_flags():
  with pytest.raises(ConfigError, match='--confirmation_size 60000 and '
                     '--validation_size 0 leave no training images'):
    check_data_sizes(Config(confirmation_size=60_000), 60_000)
  with pytest.raises(ConfigError, match=r'--train_size 40001 .* 40000 .* '
                     r'and --confirmation_size 15000'):
    check_data_sizes(Config(confirmation_size=15_000, validation_size=5000,
                            train_size=40_001), 60_000)


@pytest.mark.slow
def test_it_is_scored_only_with_the_test_split(tmp_path):
  dataset = learnable_dataset(num_train=320, num_test=32)
  common = dict(confirmation_size=64, validation_size=32, train_size=128,
                epochs=1, num_seeds=2)
  final = train.train_and_evaluate(Config(**common), tmp_path / 'final',
                                   dataset=dataset)['final']
  assert set(final) == {'train_loss', 'validation', 'test', 'confirmation'}
  with np.load(tmp_path / 'final' / 'predictions.npz') as f:
    assert f['confirmation_argmax'].shape == (2, 64)
    assert f['confirmation_argmax'].dtype == np.int8
    pool = data.hold_out_validation(dataset['train'], 32)[0]
    held = data.hold_out_confirmation(pool, 64)[1]
    np.testing.assert_array_equal(f['confirmation_labels'], held.labels)
    accuracy = (f['confirmation_argmax'] == held.labels).mean(axis=1)
  np.testing.assert_allclose(
      accuracy, final['confirmation']['argmax']['accuracy']['per_seed'],
      rtol=1e-6)
  tuning = train.train_and_evaluate(Config(**common, score_test=False),
                                    tmp_path / 'tune', dataset=dataset)
  assert set(tuning['final']) == {'train_loss', 'validation'}


def _regime_configs(confirmation_size: int) -> list[tuple[str, Config]]:
  """Every regime's tuning and final data settings, on the confirmation's
  final seeds (1000-1079) and tuning seeds (100-102)."""
  grid = study_plan.GRIDS['full']
  configs = []
  for name, regime in grid.regimes.items():
    base = Config(confirmation_size=confirmation_size,
                  validation_size=grid.validation_size,
                  train_size=regime.train_size, label_noise=regime.label_noise,
                  clean_validation=regime.clean_validation)
    configs += [(f'{name} finals', dataclasses.replace(
                    base, seed=confirm.FINAL_SEED,
                    num_seeds=confirm.FINAL_GROUPS * confirm.GROUP_SIZE)),
                (f'{name} tuning', dataclasses.replace(
                    base, seed=confirm.TUNE_SEED,
                    num_seeds=confirm.TUNE_SEEDS, score_test=False))]
  return configs


@pytest.mark.slow
@needs_mnist
def test_no_training_subset_or_validation_image_is_a_confirmation_image():
  dataset = data.load_mnist(MNIST_DIR)
  # The study's validation split: the same with the flag, and no image of
  # it (nor of the test split) is a confirmation image.
  pool, study_validation = data.hold_out_validation(dataset['train'], 5000)
  confirmation = data.hold_out_confirmation(pool, CONFIRMATION_SIZE)[1]
  held = _hashes(confirmation.images)
  assert len(held) == CONFIRMATION_SIZE
  assert not held & _hashes(dataset['test'].images)
  for name, config in _regime_configs(CONFIRMATION_SIZE):
    prepared = prepare_data(config, dataset, list(range(
        config.seed, config.seed + config.num_seeds)))
    assert not held & _hashes(prepared.images_NxHxWxC), name
    np.testing.assert_array_equal(prepared.eval_sets['validation'].images,
                                  study_validation.images)
    assert prepared.subset_SxM.shape[1] == (
        config.train_size or 60_000 - CONFIRMATION_SIZE
        - config.validation_size), name
    if config.score_test:
      scored = prepared.eval_sets['confirmation']
      assert _hashes(scored.images) == held, name
      # Clean labels, whatever the regime's label noise.
      np.testing.assert_array_equal(scored.labels, confirmation.labels)
  # The confirmation labels are MNIST's own.
  index = {hashlib.sha256(image.tobytes()).hexdigest(): label for image, label
           in zip(dataset['train'].images, dataset['train'].labels,
                  strict=True)}
  assert all(index[hashlib.sha256(image.tobytes()).hexdigest()] == label
             for image, label in zip(confirmation.images, confirmation.labels,
                                     strict=True))


@pytest.mark.slow
@needs_mnist
def test_without_the_flag_every_split_is_as_before():
  # The pool, validation split and subsets that every committed cell trained
  # on: the same indices as data.hold_out_validation alone gives.
  dataset = data.load_mnist(MNIST_DIR)
  pool, validation = data.hold_out_validation(dataset['train'], 5000)
  order = np.random.default_rng(data.VALIDATION_SEED).permutation(60_000)
  np.testing.assert_array_equal(validation.labels,
                                dataset['train'].labels[np.sort(order[:5000])])
  for name, config in _regime_configs(0):
    prepared = prepare_data(config, dataset, [config.seed])
    assert 'confirmation' not in prepared.eval_sets, name
    np.testing.assert_array_equal(prepared.images_NxHxWxC, pool.images)
    np.testing.assert_array_equal(prepared.subset_SxM[0], data.subset_indices(
        len(pool.labels), config.train_size, config.seed))


# ----------------------------------------------------------------------------
# The engine's registered rules, on synthetic tuning cells (nothing trained).


def _tuning_cell(config, points_mde, last_epoch=12):
  """A tuning cell: each (hyperparameters, mde) point's curve has its best
  validation MDE at ``last_epoch``."""
  return TuningCell(config, [100, 101, 102], 2000, 1.0, tuple(
      TuningPoint(hp, [{'epoch': e, 'argmax': {
          'mean_digit_distance': mde + abs(last_epoch - e) / 100},
                        'bayes': {'mean_digit_distance': mde + 1}}
                       for e in range(2, config.epochs + 1, 2)], None)
      for hp, mde in points_mde))


def _tune(run, cells_dir, regime, name):
  """A confirmation family's tuning through the engine's loop, each cell
  from ``run``."""
  family = confirm.families(regime)[name]
  return tuning.tune(run, cells_dir, name,
                     confirm.CONFIRMATION.tuning_config(regime, family),
                     confirm.EDGES, lambda m: None, tops=family.top)


def _fake_run(mde_of, last_epoch_of=lambda config: 8):
  """A stand-in for running a tuning cell: the MDE of a point is
  ``mde_of(point_config)``."""
  calls = []

  def run(path, config):
    calls.append(path.name)
    points = experiments_grid(config)
    return _tuning_cell(config, [
        (hp, mde_of(dataclasses.replace(config, sweep={}, **hp)))
        for hp in points], last_epoch_of(config))

  return run, calls


def experiments_grid(config):
  from trainer.resolve import grid_points
  return grid_points(config.sweep)


def test_the_registered_grids_are_the_protocols():
  scarce = confirm.families('scarce2000')
  assert list(scarce) == ['label_smoothing', 'smoothed_sord', 'sord_linear']
  assert scarce['label_smoothing'].grid == {
      'learning_rate': (0.003, 0.006, 0.012, 0.024),
      'epsilon': (0.1, 0.3, 0.5, 0.7, 0.9)}
  assert scarce['smoothed_sord'].grid == {
      'learning_rate': (0.003, 0.006, 0.012, 0.024),
      'epsilon': (0.1, 0.3, 0.5, 0.7, 0.9), 'temperature': (1.5, 3.0, 6.0)}
  assert scarce['label_smoothing'].top == {'epsilon': (0.95, 0.975)}
  assert scarce['smoothed_sord'].top == {'epsilon': (1.0,)}
  noisy = confirm.families('noisy40')
  assert list(noisy) == ['label_smoothing', 'smoothed_sord']
  assert noisy['smoothed_sord'].grid['learning_rate'] == (0.00075, 0.0015,
                                                         0.003)
  base = confirm.regime_base('noisy40')
  assert (base.confirmation_size, base.validation_size, base.train_size,
          base.label_noise, base.clean_validation) == (30_000, 5000, 2000,
                                                        0.4, True)
  tuning = confirm.CONFIRMATION.tuning_config('noisy40',
                                              noisy['label_smoothing'])
  assert (tuning.seed, tuning.num_seeds, tuning.score_test) == (100, 3, False)
  assert resolve(tuning).num_points == 15


def test_scarce500_is_registered_on_the_primary_pairs_terms():
  # protocol.md's change log, entry of 2026-12-03.
  assert confirm.SECONDARY_REGIMES == ('scarce500',)
  assert tuple(confirm.TERMS) == confirm.ALL_REGIMES
  scarce = confirm.families('scarce500')
  assert list(scarce) == ['label_smoothing', 'smoothed_sord']
  rates = (0.0015, 0.003, 0.006, 0.012)
  for name, family in scarce.items():
    primary = confirm.families('scarce2000')[name]
    assert family == dataclasses.replace(primary, grid={
        **primary.grid, 'learning_rate': rates})
  base = confirm.regime_base('scarce500')
  assert base == dataclasses.replace(confirm.regime_base('scarce2000'),
                                     train_size=500, epochs=24, eval_every=4)
  assert confirm.secondary_families('scarce500')['cross_entropy'].grid == {
      'learning_rate': rates}


def test_edge_rules():
  assert tuning.extension(0.012, [0.003, 0.006, 0.012], 0, limit=3) == 0.024
  assert tuning.extension(1.5, [1.5, 3, 6], 2, limit=3) == 0.75
  assert tuning.extension(1.5, [1.5, 3, 6], 3, limit=3) is None
  assert tuning.extension(0.006, [0.003, 0.006, 0.012], 0, limit=3) is None
  # A bounded hyperparameter's top takes its registered values in turn.
  top = (0.95, 0.975)
  assert tuning.extension(0.9, [0.1, 0.5, 0.9], 0, top, limit=3) == 0.95
  assert tuning.extension(0.95, [0.1, 0.9, 0.95], 1, top, limit=3) == 0.975
  assert tuning.extension(0.975, [0.1, 0.95, 0.975], 2, top, limit=3) is None
  assert tuning.extension(0.1, [0.1, 0.5, 0.9], 0, top, limit=3) == 0.05
  # One value tried has no edge.
  assert tuning.extension(0.1, [0.1], 0) is None
  assert confirm.EDGES.per_side == 3 and confirm.EDGES.double_budget


def test_tuning_extends_until_no_edge_then_labels_what_is_left(tmp_path):
  # The best learning rate is far above the grid: three doublings, then
  # still on the edge; epsilon's best is its bound, reached in two steps.
  def mde(config):
    return (abs(np.log2(config.learning_rate / 1.0))
            + abs(config.epsilon - 0.99))

  run, calls = _fake_run(mde)
  tuning = _tune(run, tmp_path, 'scarce2000', 'label_smoothing')
  assert tuning.choice.config.learning_rate == 0.192
  assert tuning.choice.config.epsilon == 0.975
  assert set(tuning.on_edge) == {('learning_rate', 'top'), ('epsilon', 'top')}
  assert [confirm.edge_label('label_smoothing', *edge)
          for edge in sorted(tuning.on_edge)] == [
              'ε at the cap', 'tuning incomplete (learning_rate at its top)']
  assert calls[0] == 'tune-label_smoothing.json'
  assert sorted(calls[1:]) == sorted([
      'tune-label_smoothing-epsilon0.95.json',
      'tune-label_smoothing-epsilon0.975.json',
      'tune-label_smoothing-learning_rate0.048.json',
      'tune-label_smoothing-learning_rate0.096.json',
      'tune-label_smoothing-learning_rate0.192.json'])


def test_a_choice_inside_the_grid_adds_nothing(tmp_path):
  def mde(config):
    return abs(config.learning_rate - 0.006) + abs(config.epsilon - 0.5)

  run, calls = _fake_run(mde)
  tuning = _tune(run, tmp_path, 'scarce2000', 'label_smoothing')
  assert calls == ['tune-label_smoothing.json'] and tuning.on_edge == ()
  assert (tuning.choice.config.learning_rate, tuning.choice.config.epsilon,
          tuning.choice.epoch) == (0.006, 0.5, 8)


@pytest.mark.parametrize('regime, budget', [('scarce2000', 12),
                                             ('scarce500', 24)])
def test_the_last_epoch_doubles_the_budget_once(tmp_path, regime, budget):
  def mde(config):  # a longer budget is better, slightly
    return (abs(config.learning_rate - 0.006) + abs(config.epsilon - 0.5)
            - config.epochs / 1000)

  run, calls = _fake_run(mde, last_epoch_of=lambda config: config.epochs)
  tuning = _tune(run, tmp_path, regime, 'label_smoothing')
  assert calls == ['tune-label_smoothing.json',
                   f'tune-label_smoothing-epochs{2 * budget}.json']
  assert tuning.choice.config.epochs == tuning.choice.epoch == 2 * budget
  assert tuning.on_edge == (('epochs', 'top'),)
  assert confirm.edge_label('ls', 'epochs', 'top') == (
      'tuning incomplete (the budget)')


def test_finals_run_in_four_registered_groups_and_the_twin_differs_in_order():
  choice = Choice(dataclasses.replace(confirm.regime_base('scarce2000'),
                                      loss='soft_label_cross_entropy',
                                      temperature=1.0, learning_rate=0.006),
                  10, 'bayes', 0.05)
  groups = confirm.CONFIRMATION.finals.configs(choice)
  assert [(c.seed, c.num_seeds) for c in groups] == [
      (1000 + 10 * g, 10) for g in range(8)]
  assert all(c.confirmation_size == 30_000 and c.score_test
             and c.stop_after == 10 and c.eval_every == 10 for c in groups)
  twin = confirm.permuted_twin(choice).config
  assert dataclasses.replace(twin, distance='linear',
                             decode_distance=None) == choice.config
  assert twin.decode_distance == 'linear'


@pytest.mark.skipif(not (ROOT / '.git').exists(), reason='not a git clone')
@pytest.mark.parametrize('registration, under', [
    ('# Confirmation protocol (issue 29)', ''),
    ('**scarce500 is registered as a secondary regime**', '/scarce500')])
def test_the_protocol_entered_git_before_any_confirmation_cell(registration,
                                                               under):
  registered_before_its_cells(registration,
                              f'results/confirmation/cells{under}',
                              f'results/confirmation/images{under}')


def test_the_labels_of_an_edge_left_after_the_rules():
  assert confirm.edge_label('smoothed_sord', 'epsilon', 'top') == (
      'ε = 1: plain SORD')
  assert confirm.edge_label('smoothed_sord', 'temperature', 'top') == (
      'temperature converges to label smoothing')
  assert confirm.edge_label('smoothed_sord', 'temperature', 'bottom') == (
      'tuning incomplete (temperature at its bottom)')
  assert confirm.edge_label('label_smoothing', 'epsilon', 'bottom') == (
      'tuning incomplete (epsilon at its bottom)')


@pytest.mark.slow
@needs_mnist
def test_the_split_is_the_registered_one():
  assert confirm.split_digest(data.load_mnist(MNIST_DIR)) == (
      confirm.SPLIT_SHA256)


def test_the_secondary_families_and_the_matched_mass():
  for regime in confirm.REGIMES:
    assert confirm.secondary_families(regime) == {
        'cross_entropy': confirm.Tuned(
            {'loss': 'cross_entropy'},
            {'learning_rate': confirm.families(regime)[
                'label_smoothing'].grid['learning_rate']},
            phase=confirm.SECONDARY)}
  sord = Config(loss='soft_label_cross_entropy', epsilon=0.5, temperature=3.0)
  targets_KxK = 0.5 * np.eye(10) + 0.5 * np.asarray(
      losses.soft_label_matrix('exponential', 10, tau=3.0))
  mass = 1 - np.diag(targets_KxK).mean()
  np.testing.assert_allclose(confirm.off_label_mass(sord), mass, rtol=1e-6)
  np.testing.assert_allclose(confirm.off_label_mass(sord), 0.3826, atol=1e-4)
  plain = dataclasses.replace(sord, epsilon=None)
  np.testing.assert_allclose(confirm.off_label_mass(plain), 2 * mass,
                             rtol=1e-6)
  smoothing = Choice(Config(loss='label_smoothing_cross_entropy',
                            epsilon=0.5, learning_rate=0.006), 8, 'argmax',
                     0.08)
  matched = confirm.matched_label_smoothing(smoothing, Choice(sord, 10,
                                                              'argmax', 0.08))
  assert matched.config.epsilon == 0.4251
  assert dataclasses.replace(matched, config=dataclasses.replace(
      matched.config, epsilon=0.5)) == smoothing
  np.testing.assert_allclose(confirm.off_label_mass(matched.config), mass,
                             atol=1e-4)
  with pytest.raises(ValueError, match='no off-label mass'):
    confirm.off_label_mass(dataclasses.replace(sord, distance='cyclic'))


def _run_confirmation(tmp_path, regimes, data_dir, log):
  confirm.run_confirmation(confirm.CONFIRMATION, confirm.CONFIRMATION.store(
      tmp_path, runs_dir=tmp_path / 'runs', data_dir=data_dir, log=log),
                           regimes)


def _fake_cell(path, config, *args):
  """A tuning cell whose every point scores alike at epoch 8 (inside every
  grid), or a final that diverged (no per-image file to write)."""
  if not config.sweep and config.num_seeds == 10:
    return {'config': dataclasses.asdict(config), 'seeds': [], 'num_train':
            2000, 'wall_s': 1.0, 'diverged': 'fake'}
  grid = resolve(config).points if config.sweep else [{}]
  best_rate = 0.0015 if config.label_noise else 0.006
  return {'config': dataclasses.asdict(config), 'seeds': [100, 101, 102],
          'num_train': 2000, 'wall_s': 1.0, 'points': [
              {'hyperparameters': hp, 'diverged': None, 'curve': [
                  {'epoch': e,
                   'argmax': {'mean_digit_distance': 0.1 + abs(e - 8) / 100
                              + sum(abs(np.log2(v / best_rate)) if k ==
                                    'learning_rate' else abs(v - 0.5)
                                    for k, v in hp.items()
                                    if k != 'temperature')
                              + abs(hp.get('temperature', 3.0) - 3.0)},
                   'bayes': {'mean_digit_distance': 1.0}}
                  for e in range(config.eval_every, config.epochs + 1,
                                 config.eval_every)]} for hp in grid]}


def test_the_secondaries_run_after_every_primary_regime(tmp_path,
                                                        monkeypatch):
  ran = []

  def fake_run_cell(path, config, *args):
    ran.append((f'{path.parent.name}/{path.stem}', config))
    return _fake_cell(path, config)

  monkeypatch.setattr(engine, 'run_cell', fake_run_cell)
  _run_confirmation(tmp_path, confirm.REGIMES, '../shared/mnist',
                    log=lambda message: None)
  # The primaries: the cells and configurations the registered engine ran
  # (recorded from confirm.py at d70ec6b, under the same fake cells).
  golden = json.loads((ROOT / 'tests' / 'data' /
                       'confirm_primary_plan.json').read_text())
  primary = ran[:len(golden)]
  assert [name for name, _ in primary] == [name for name, _ in golden]
  for (name, config), (_, recorded) in zip(primary, golden, strict=True):
    current = dataclasses.asdict(config)
    assert {k: current[k] for k in recorded} == recorded, name
    # Fields added since (the shifted sets' flags), at their defaults.
    assert {k: v for k, v in current.items() if k not in recorded} == {
        k: FIELDS[k].default for k in current if k not in recorded}, name
  assert ran[len(golden) - 1][0] == 'noisy40/final-smoothed_sord-s1070'
  assert [name for name, _ in ran[len(golden):]] == [
      f'{regime}/{stem}' for regime in confirm.REGIMES for stem in (
          'tune-cross_entropy',
          *(f'final-{family}-s{1000 + 10 * g}'
            for family in ('cross_entropy', 'label_smoothing_matched')
            for g in range(8)))]
  configs = dict(ran)
  for regime in confirm.REGIMES:
    smoothing = configs[f'{regime}/final-label_smoothing-s1000']
    matched = configs[f'{regime}/final-label_smoothing_matched-s1000']
    # The fake's choices: ε 0.5 and temperature 3 on both sides.
    assert dataclasses.replace(matched, epsilon=0.5) == smoothing
    assert matched.epsilon == 0.4251
    assert configs[f'{regime}/final-cross_entropy-s1070'].loss == (
        'cross_entropy')


def test_scarce500_runs_after_the_primaries_and_before_the_secondaries(
    tmp_path, monkeypatch):
  ran = []
  monkeypatch.setattr(engine, 'run_cell', lambda path, config, *args: (
      ran.append((f'{path.parent.name}/{path.stem}', config)),
      _fake_cell(path, config))[1])
  _run_confirmation(tmp_path, confirm.ALL_REGIMES,
                    '../shared/mnist', log=lambda message: None)
  names = [name for name, _ in ran]
  primaries = len(json.loads((ROOT / 'tests' / 'data' /
                              'confirm_primary_plan.json').read_text()))
  assert not [n for n in names[:primaries] if n.startswith('scarce500')]
  finals = [f'final-{family}-s{1000 + 10 * g}'
            for family in ('label_smoothing', 'smoothed_sord')
            for g in range(8)]
  assert names[primaries:primaries + 18] == [
      f'scarce500/{stem}' for stem in (
          'tune-label_smoothing', 'tune-smoothed_sord', *finals)]
  assert [n.split('/')[0] for n in names[primaries + 18:]] == [
      regime for regime in ('scarce2000', 'noisy40', 'scarce500')
      for _ in range(17)]
  configs = dict(ran)
  tuning = configs['scarce500/tune-smoothed_sord']
  assert (tuning.train_size, tuning.epochs, tuning.eval_every,
          tuning.seed, tuning.num_seeds, tuning.score_test) == (
              500, 24, 4, 100, 3, False)
  assert tuning.sweep['learning_rate'] == [0.0015, 0.003, 0.006, 0.012]
  final = configs['scarce500/final-label_smoothing_matched-s1070']
  assert (final.train_size, final.confirmation_size, final.seed,
          final.epsilon) == (500, 30_000, 1070, 0.4251)


def test_one_primary_regime_runs_no_secondary(tmp_path, monkeypatch):
  ran, messages = [], []
  monkeypatch.setattr(engine, 'run_cell', lambda path, config, *args: (
      ran.append(path.stem), _fake_cell(path, config))[1])
  _run_confirmation(tmp_path, ['scarce2000'], None, log=messages.append)
  assert ran[-1] == 'final-sord_permuted-s1070'
  assert not [name for name in ran if 'cross_entropy' in name
              or 'matched' in name]
  assert messages[-1].startswith('secondaries: not run')


def test_an_unknown_regime_exits_2_naming_the_known_ones(capsys):
  with pytest.raises(SystemExit) as exit_info:
    confirm.main(['--data_dir', '../shared/mnist', '--regimes',
                  'scarce500,scarce9'])
  assert exit_info.value.code == 2
  assert ('--regimes: no regime scarce9 (there are scarce2000, noisy40, '
          'scarce500).') in capsys.readouterr().err


def test_a_tie_in_scarce500s_label_smoothing_runs_its_tied_control_last(
    tmp_path, monkeypatch):
  """The registered tied control (the change log, 2026-12-07): label
  smoothing at the tied point the rule passed over, after every other
  cell, on the eight final groups."""
  ran = []

  def fake_run_cell(path, config, *args):
    ran.append((f'{path.parent.name}/{path.stem}', config))
    cell = _fake_cell(path, config)
    if f'{path.parent.name}/{path.stem}' == 'scarce500/tune-label_smoothing':
      (tied,) = [p for p in cell['points'] if p['hyperparameters'] == {
          'learning_rate': 0.003, 'epsilon': 0.9}]
      tied['curve'][-2]['argmax']['mean_digit_distance'] = 0.1  # epoch 20
    return cell

  monkeypatch.setattr(engine, 'run_cell', fake_run_cell)
  messages = []
  _run_confirmation(tmp_path, confirm.ALL_REGIMES, '../shared/mnist',
                    log=messages.append)
  assert [name for name, _ in ran[-8:]] == [
      f'scarce500/final-label_smoothing_tied-s{1000 + 10 * g}'
      for g in range(8)]
  assert not [name for name, _ in ran[:-8] if 'tied' in name]
  tied = ran[-1][1]
  smoothing = dict(ran)['scarce500/final-label_smoothing-s1070']
  assert (tied.learning_rate, tied.epsilon, tied.stop_after) == (0.003, 0.9,
                                                                 20)
  assert (smoothing.learning_rate, smoothing.epsilon, smoothing.stop_after
          ) == (0.006, 0.5, 8)
  assert dataclasses.replace(tied, learning_rate=0.006, epsilon=0.5,
                             stop_after=8, eval_every=8) == smoothing


def test_without_a_tie_no_tied_control_runs(tmp_path, monkeypatch):
  ran, messages = [], []
  monkeypatch.setattr(engine, 'run_cell', lambda path, config, *args: (
      ran.append(path.stem), _fake_cell(path, config))[1])
  _run_confirmation(tmp_path, confirm.ALL_REGIMES, None, log=messages.append)
  assert not [name for name in ran if 'tied' in name]
  assert messages[-1] == ('[scarce500] label smoothing\'s choice had no tie: '
                          'no tied control')


def test_a_finals_per_image_file_keeps_the_committed_format(tmp_path):
  # The committed confirmation files: seeds, then the confirmation split's
  # distances as bare 'argmax' and 'bayes' (int8), per seed and image.
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 10, 7)
  preds = {d: rng.integers(0, 10, (2, 7)).astype(np.int8)
           for d in ('argmax', 'bayes')}
  (tmp_path / 'run').mkdir()
  np.savez_compressed(tmp_path / 'run' / 'predictions.npz',
                      seeds=np.array([1000, 1001]), confirmation_labels=labels,
                      **{f'confirmation_{d}': p for d, p in preds.items()})
  cells.save_distances(tmp_path / 'run', tmp_path / 'kept.npz',
                       ['confirmation'], bare='confirmation', seeds=True)
  with np.load(tmp_path / 'kept.npz') as kept:
    assert kept.files == ['seeds', 'argmax', 'bayes']
    assert list(kept['seeds']) == [1000, 1001]
    for decoding, pred in preds.items():
      assert kept[decoding].dtype == np.int8
      np.testing.assert_array_equal(kept[decoding],
                                    np.abs(pred.astype(int) - labels))
