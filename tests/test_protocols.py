"""Every protocol through the one engine, trained for real on a tiny
synthetic dataset: the confirmation, the shift and the prediction sets on
tiny terms (the
screening study's tiny grid is ``test_experiments.tiny_study``), then the
report's path: the same cells replayed by a read-only store."""

import dataclasses

import numpy as np
import pytest

import corruptions
from conftest import learnable_dataset
from study import confirm, engine, prediction_sets, shift
from study.confirm_cells import final_cells, tuned
from study.engine import Tuned
from study.tuning import EdgeRule
from trainer import sets as run_sets
from trainer.config import Config

RATES = (3e-3, 6e-3)
GROUP = 2           # seeds per final group
CONFIRMATION = 100  # confirmation images


def _tiny_confirmation() -> engine.Protocol:
  """The confirmation's protocol on tiny terms: one primary regime, two
  values per grid, one tuning seed, one extension per side, one final
  group of two seeds."""
  base = Config(confirmation_size=CONFIRMATION, validation_size=64,
                train_size=96, epochs=2, eval_every=1, batch_size=32)
  sord = {'loss': 'soft_label_cross_entropy'}
  return dataclasses.replace(
      confirm.CONFIRMATION, regimes={'scarce': base}, families={'scarce': {
          'label_smoothing': Tuned(
              {'loss': 'label_smoothing_cross_entropy'},
              {'learning_rate': RATES, 'epsilon': (0.1, 0.5)},
              {'epsilon': (0.95,)}, confirm.PRIMARY),
          'smoothed_sord': Tuned(
              sord, {'learning_rate': RATES, 'epsilon': (0.1, 0.5),
                     'temperature': (3.0,)}, {'epsilon': (1.0,)},
              confirm.PRIMARY),
          'sord_linear': Tuned(sord, {'learning_rate': RATES,
                                      'temperature': (1.0,)},
                               phase=confirm.PRIMARY),
          'cross_entropy': Tuned({'loss': 'cross_entropy'},
                                 {'learning_rate': RATES},
                                 phase=confirm.SECONDARY)}},
      tune_seeds=1, edges=EdgeRule(per_side=1, double_budget=True),
      primary_regimes=('scarce',),
      finals=dataclasses.replace(
          confirm.CONFIRMATION.finals, groups=1, group_size=GROUP,
          fields={'confirmation_size': CONFIRMATION}))


@pytest.fixture(scope='module')
def tiny_protocols(tmp_path_factory):
  root = tmp_path_factory.mktemp('protocols')
  dataset = learnable_dataset(num_train=400, num_test=64)
  protocol = _tiny_confirmation()
  log = []
  choices = confirm.run_confirmation(protocol, protocol.store(
      root / 'results', runs_dir=root / 'runs', dataset=dataset,
      log=log.append), ['scarce'])['scarce']
  finals = shift.SHIFT.finals
  tiny_shift = dataclasses.replace(shift.SHIFT, finals=dataclasses.replace(
      finals, groups=1, group_size=GROUP,
      fields={**finals.fields, 'confirmation_size': CONFIRMATION,
              'shifted_size': 40}))
  shift.run_shift(tiny_shift, tiny_shift.store(
      root / 'results', runs_dir=root / 'runs', dataset=dataset,
      log=log.append), choices)
  finals = prediction_sets.SETS.finals
  tiny_sets = dataclasses.replace(
      prediction_sets.SETS, finals=dataclasses.replace(
          finals, groups=1, group_size=GROUP,
          fields={**finals.fields, 'confirmation_size': CONFIRMATION}))
  prediction_sets.run_sets_protocol(tiny_sets, tiny_sets.store(
      root / 'results', runs_dir=root / 'runs', dataset=dataset,
      log=log.append), choices)
  return root, protocol, tiny_shift, choices, log


@pytest.mark.slow
def test_the_tiny_confirmation_runs_every_family_and_keeps_its_files(
    tiny_protocols):
  root, _, _, choices, _ = tiny_protocols
  cells = root / 'results' / 'confirmation' / 'cells' / 'scarce'
  families = ('label_smoothing', 'smoothed_sord', 'sord_linear',
              'sord_permuted', 'cross_entropy', 'label_smoothing_matched')
  assert sorted(p.stem for p in cells.glob('final-*.json')) == sorted(
      f'final-{family}-s1000' for family in families)
  assert set(choices) == set(families)
  for family in families:
    with np.load(root / 'results' / 'confirmation' / 'images' / 'scarce' /
                 f'final-{family}-s1000.npz') as f:
      assert list(f['seeds']) == [1000, 1001]
      assert f['argmax'].shape == f['bayes'].shape == (GROUP, CONFIRMATION)
      assert f['argmax'].dtype == np.int8
  # Tuned on validation only, the finals scored once on the test split.
  for path in cells.glob('tune-*.json'):
    assert '"score_test": false' in path.read_text()
  assert choices['sord_permuted'].config.distance == (
      confirm.permuted_twin(choices['sord_linear']).config.distance)


@pytest.mark.slow
def test_the_tiny_shift_replays_the_choices_on_corrupted_images(
    tiny_protocols):
  root, _, tiny_shift, choices, _ = tiny_protocols
  images = root / 'results' / 'shift' / 'images'
  assert sorted(p.stem for p in images.glob('*.npz')) == sorted(
      f'final-{family}-s2000' for family in (*shift.PRIMARY_FAMILIES,
                                             *shift.SECONDARY_FAMILIES))
  with np.load(images / 'final-smoothed_sord-s2000.npz') as f:
    for name in corruptions.CORRUPTIONS:
      assert f[f'confirmation[{name}]_bayes'].shape == (GROUP, 40)
    assert f['confirmation_argmax'].shape == (GROUP, CONFIRMATION)
  (config,) = tiny_shift.finals.configs(choices['smoothed_sord'])
  cell = engine.Store(root / 'results' / 'shift' / 'cells',
                      read_only=True).final_cell(
      root / 'results' / 'shift' / 'cells' / 'final-smoothed_sord-s2000.json',
      config, tiny_shift.finals)
  assert cell.seeds == [2000, 2001] and cell.diverged is None


@pytest.mark.slow
def test_the_read_only_store_replays_what_the_run_chose(tiny_protocols):
  """The report's path and the run's are one: replaying the cells chooses
  what the run chose (the derived families too), every final reads back
  against its choice, and a cell not there is an error, not a run."""
  root, protocol, _, choices, log = tiny_protocols
  cells = root / 'results' / 'confirmation' / 'cells'
  replayed = {name: t.choice for name, t in tuned(cells, 'scarce',
                                                   protocol).items()}
  assert replayed == choices
  for name, choice in choices.items():
    (cell,) = final_cells(cells, 'scarce', name, choice,
                          protocol.finals).values()
    assert cell.seeds == [1000, 1001] and cell.diverged is None
  assert not [m for m in log if 'diverged' in m]
  store = protocol.store(root / 'results', read_only=True)
  family = protocol.families['scarce']['label_smoothing']
  with pytest.raises(FileNotFoundError):
    engine.tune(engine.Store(root / 'nothing', read_only=True), protocol,
                'scarce', 'label_smoothing', family)
  with pytest.raises(ValueError, match='holds another configuration'):
    engine.tune(store, dataclasses.replace(protocol, tune_seeds=2), 'scarce',
                'label_smoothing', family)


@pytest.mark.slow
def test_the_tiny_sets_keep_every_measure_s_set_ends(tiny_protocols):
  root = tiny_protocols[0]
  images = root / 'results' / 'sets' / 'images'
  families = (*prediction_sets.PRIMARY_FAMILIES,
              *prediction_sets.SECONDARY_FAMILIES)
  assert sorted(p.stem for p in images.glob('*.npz')) == sorted(
      f'final-{family}-s3000' for family in families)
  workdir = root / 'runs' / 'cells' / 'final-smoothed_sord-s3000'
  with np.load(workdir / 'predictions.npz') as f:
    probs, labels = f['confirmation_probs'], f['confirmation_labels']
    test_probs = f['probs']
  digits = np.arange(10)[None, :]
  with np.load(images / 'final-smoothed_sord-s3000.npz') as kept:
    assert list(kept['seeds']) == [3000, 3001]
    np.testing.assert_array_equal(kept['evaluation_labels'], labels)
    for name in prediction_sets.WINDOWED:
      method, alpha = prediction_sets.measure(name)
      for s in range(GROUP):
        for fold, (calibration, evaluation) in enumerate(
            prediction_sets.folds(CONFIRMATION)):
          masks = run_sets.method_sets(
              method, probs[s][calibration], labels[calibration],
              probs[s][evaluation], alpha=alpha,
              distance_KxK=prediction_sets.LINEAR)
          low = kept[f'evaluation_{name}_low'][s][evaluation]
          high = kept[f'evaluation_{name}_high'][s][evaluation]
          assert low.dtype == np.int8
          np.testing.assert_array_equal(
              masks, (digits >= low[:, None]) & (digits <= high[:, None]))
          if fold == 0:
            test_masks = run_sets.method_sets(
                method, probs[s][calibration], labels[calibration],
                test_probs[s], alpha=alpha,
                distance_KxK=prediction_sets.LINEAR)
            assert kept[f'test_{name}_size'][s] == pytest.approx(
                test_masks.sum(-1).mean())
          prefix = f'window_{name}_s{s}_f{fold}'
          assert kept[f'{prefix}_size_curve'][int(
              kept[f'{prefix}_center'])] == pytest.approx(
                  (kept[f'evaluation_{name}_high'][s][evaluation].astype(int)
                   - kept[f'evaluation_{name}_low'][s][evaluation] + 1
                   ).mean())


def test_the_tiny_confirmation_shrinks_the_registered_one():
  # The tiny protocol trains the registered families, losses and phases, on
  # values from their registered grids (less of them), so its runs test the
  # registered protocol's paths.
  registered = confirm.CONFIRMATION.families['scarce2000']
  tiny = _tiny_confirmation().families['scarce']
  assert set(tiny) == set(registered)
  for name, family in tiny.items():
    assert family.overrides == registered[name].overrides, name
    assert family.phase == registered[name].phase, name
    assert set(family.grid) == set(registered[name].grid), name
    for key, values in family.grid.items():
      assert set(values) <= set(registered[name].grid[key]), (name, key)
