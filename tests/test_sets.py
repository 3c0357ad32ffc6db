"""Prediction sets in a run (trainer/sets.py): the calibration split, each
method's scores on the test split, and the command that writes a finished
run's sets (slow: a tiny run trained with a calibration split)."""

import csv

import numpy as np
import pytest

import conformal
import data
import losses
import train
from conftest import learnable_dataset
from study import prediction_sets
from trainer import sets
from trainer.config import Config, ConfigError, parse_alphas
from trainer.resolve import resolve
from trainer.run_data import prepare_data

LINEAR = np.asarray(losses.linear_distance(10))
CYCLIC = np.asarray(losses.cyclic_distance(10))


def _read_csv(path):
  with open(path) as f:
    return list(csv.DictReader(f))


def _peaked_probs(labels, rng, width=1.5):
  """Probabilities peaked near the label (noisy): an ordinal model."""
  centres = labels + rng.normal(0, 1.0, labels.shape)
  logits = -np.abs(np.arange(10)[None, :] - centres[:, None]) / width
  probs = np.exp(logits)
  return (probs / probs.sum(-1, keepdims=True)).astype(np.float32)


def test_alphas_parse_and_bad_levels_are_refused():
  assert parse_alphas('0.1,0.05') == (0.1, 0.05)
  for text in ('0.1,0.1', '0', '1.5', 'a,0.1', ''):
    with pytest.raises(ValueError):
      parse_alphas(text)
  with pytest.raises(ConfigError, match='--set_alphas must be comma-sep'):
    resolve(Config(set_alphas='0.1,2'))


def test_calibration_needs_the_test_split_and_room():
  with pytest.raises(ConfigError, match=r'--calibration_size .* --no_test'):
    resolve(Config(calibration_size=10, score_test=False))
  dataset = learnable_dataset(num_train=100, num_test=8)
  with pytest.raises(ConfigError, match='--calibration_size 60 leave no'):
    prepare_data(Config(validation_size=40, calibration_size=60), dataset, [0])


def test_the_calibration_split_is_held_out_of_every_training_image():
  dataset = learnable_dataset(num_train=400, num_test=8)
  config = Config(validation_size=50, confirmation_size=60,
                  calibration_size=70, train_size=100)
  prepared = prepare_data(config, dataset, [0, 1])
  calibration = prepared.eval_sets['calibration']
  assert len(calibration.labels) == 70
  pool, _ = data.hold_out_validation(dataset['train'], 50)
  pool, confirmation = data.hold_out_confirmation(pool, 60)
  rest, held = data.hold_out_calibration(pool, 70)
  np.testing.assert_array_equal(calibration.images, held.images)
  np.testing.assert_array_equal(prepared.images_NxHxWxC, rest.images)
  np.testing.assert_array_equal(prepared.eval_sets['confirmation'].images,
                                confirmation.images)
  # Without the flag the pool and its draws are those of before.
  before = prepare_data(Config(validation_size=50, confirmation_size=60,
                               train_size=100), dataset, [0, 1])
  assert 'calibration' not in before.eval_sets
  np.testing.assert_array_equal(before.images_NxHxWxC, pool.images)


def test_set_shape_follows_the_decoding_distance():
  assert sets.set_shape(LINEAR) == 'interval'
  assert sets.set_shape(CYCLIC) == 'arc'
  assert sets.set_shape(LINEAR ** 2) == 'interval'


@pytest.mark.slow
def test_each_method_covers_and_risk_control_bounds_the_distance():
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 10, 2000)
  probs = _peaked_probs(labels, rng)
  cal, test = slice(0, 1000), slice(1000, None)
  for method in ('lac', 'aps', 'rps'):
    masks = sets.method_sets(method, probs[cal], labels[cal], probs[test],
                             alpha=0.1, distance_KxK=LINEAR)
    scores = sets.set_scores(masks, labels[test], LINEAR)
    assert 0.88 <= scores['coverage'] <= 0.93, (method, scores)
    assert masks.any(axis=1).all()
    np.testing.assert_array_equal(conformal.hull(masks), masks)
  risky = sets.method_sets('risk', probs[cal], labels[cal], probs[test],
                           alpha=0.02, distance_KxK=LINEAR)
  scores = sets.set_scores(risky, labels[test], LINEAR)
  assert scores['distance'] / 9 <= 0.022
  with pytest.raises(ValueError, match='method must be one of'):
    sets.method_sets('naive', probs[cal], labels[cal], probs[test],
                     alpha=0.1, distance_KxK=LINEAR)


def test_sets_are_arcs_under_the_cyclic_distance():
  rng = np.random.default_rng(1)
  labels = rng.integers(0, 10, 1600)
  centres = (labels + rng.normal(0, 1.2, labels.shape)) % 10
  gap = np.abs(np.arange(10)[None, :] - centres[:, None])
  probs = np.exp(-np.minimum(gap, 10 - gap))
  probs = (probs / probs.sum(-1, keepdims=True)).astype(np.float32)
  masks = sets.method_sets('aps', probs[:800], labels[:800], probs[800:],
                           alpha=0.05, distance_KxK=CYCLIC)
  np.testing.assert_array_equal(conformal.hull(masks, shape='arc'), masks)
  wraps = masks[:, 0] & masks[:, 9] & ~masks.all(axis=1)
  assert wraps.any()  # some arcs hold 9 and 0 together


def test_rows_give_each_set_by_its_ends():
  masks = np.zeros((1, 4, 10), bool)
  masks[0, 0, 3:6] = True                  # 3-5
  masks[0, 1, [8, 9, 0]] = True            # the arc 8-0
  masks[0, 2, :] = True                    # every digit
  masks[0, 3, 7] = True                    # 7 alone
  rows = sets.set_rows(masks, [5], np.array([4, 1, 2, 7]))
  assert [(r['low'], r['high'], r['size'], r['covered']) for r in rows] == [
      (3, 5, 3, 1), (8, 0, 3, 0), (0, 9, 10, 1), (7, 7, 1, 1)]
  assert {r['seed'] for r in rows} == {5}
  assert 'label' not in sets.set_rows(masks, [5], None)[0]


@pytest.fixture(scope='module')
def calibrated_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('sets') / 'run'
  dataset = learnable_dataset(num_train=480, num_test=96)
  summary = train.train_and_evaluate(
      Config(calibration_size=160, train_size=256, epochs=2, num_seeds=2,
             set_alphas='0.2,0.1'), workdir, dataset=dataset)
  return workdir, dataset, summary


@pytest.mark.slow
def test_a_run_reports_every_method_at_every_level(calibrated_run):
  workdir, dataset, summary = calibrated_run
  final = summary['final']
  assert set(final['test_sets']) == {f'{m}@{a}' for m in sets.METHODS
                                     for a in ('0.2', '0.1')}
  with np.load(workdir / 'predictions.npz') as f:
    calibration_probs, probs = f['calibration_probs'], f['probs']
    calibration_labels = f['calibration_labels']
  assert calibration_probs.shape == (2, 160, 10)
  held = data.hold_out_calibration(dataset['train'], 160)[1]
  np.testing.assert_array_equal(calibration_labels, held.labels)
  # Each seed's reported scores are its sets' on the test split.
  for s in range(2):
    masks = sets.method_sets('aps', calibration_probs[s], calibration_labels,
                             probs[s], alpha=0.1, distance_KxK=LINEAR)
    expected = sets.set_scores(masks, dataset['test'].labels, LINEAR)
    for metric, value in expected.items():
      assert final['test_sets']['aps@0.1'][metric]['per_seed'][s] == (
          pytest.approx(value, abs=1e-9))
  assert final['calibration']['argmax']['accuracy']['mean'] > 0.5


@pytest.mark.slow
def test_the_command_writes_the_test_sets_and_those_of_any_images(
    calibrated_run, tmp_path, capsys):
  workdir, dataset, summary = calibrated_run
  out = tmp_path / 'test_sets.csv'
  assert sets.main(['--workdir', str(workdir), '--method', 'lac',
                    '--alpha', '0.1', '--out', str(out)]) == 0
  rows = _read_csv(out)
  assert len(rows) == 2 * 96
  coverage = np.mean([int(r['covered']) for r in rows])
  assert coverage == pytest.approx(
      summary['final']['test_sets']['lac@0.1']['coverage']['mean'])
  assert 'coverage' in capsys.readouterr().out
  # The test images again, scored from the checkpoint: the same sets.
  images = tmp_path / 'images.npy'
  np.save(images, dataset['test'].images[:, :, :, 0])
  again = tmp_path / 'again.csv'
  assert sets.main(['--workdir', str(workdir), '--method', 'lac',
                    '--images', str(images), '--out', str(again)]) == 0
  rows_again = _read_csv(again)
  assert [(r['low'], r['high']) for r in rows_again] == [
      (r['low'], r['high']) for r in rows]
  assert 'covered' not in rows_again[0]


@pytest.mark.slow
def test_the_command_refuses_what_it_cannot_use(calibrated_run, tmp_path,
                                                capsys):
  workdir, _, _ = calibrated_run
  out = str(tmp_path / 'x.csv')
  plain = tmp_path / 'plain'
  train.train_and_evaluate(Config(train_size=64, epochs=1), plain,
                           dataset=learnable_dataset(num_train=128,
                                                     num_test=16))
  cases = [(['--workdir', str(plain)], 'held out no calibration split'),
           (['--workdir', str(tmp_path)], 'has no predictions.npz'),
           (['--workdir', str(workdir), '--alpha', '1'], '--alpha must lie'),
           (['--workdir', str(workdir), '--images', str(tmp_path / 'no.npy')],
            'No such file')]
  bad = tmp_path / 'bad.npy'
  np.save(bad, np.zeros((3, 28, 28), np.float32))
  cases.append((['--workdir', str(workdir), '--images', str(bad)],
                'images must be uint8'))
  for argv, message in cases:
    with pytest.raises(SystemExit) as e:
      sets.main([*argv, '--out', out])
    assert e.value.code == 2
    assert message in capsys.readouterr().err, argv


def test_the_registered_halves_folds_and_set_ends():
  even, odd = prediction_sets.halves(7)
  assert even.tolist() == [0, 2, 4, 6]
  assert odd.tolist() == [1, 3, 5]
  (calibration, evaluation), (back, forth) = prediction_sets.folds(7)
  assert calibration.tolist() == forth.tolist() == [0, 2, 4, 6]
  assert evaluation.tolist() == back.tolist() == [1, 3, 5]
  masks = np.zeros((3, 10), bool)
  masks[0, 2:5] = True
  masks[1, 9] = True
  masks[2, :] = True
  low, high = prediction_sets.set_ends(masks)
  assert low.tolist() == [2, 9, 0] and high.tolist() == [4, 9, 9]
  assert low.dtype == high.dtype == np.int8
  assert prediction_sets.measure('risk@0.002') == ('risk', 0.002)
  assert prediction_sets.WINDOWED == ('lac@0.02', 'lac@0.01', 'lac@0.005',
                                      'risk@0.002', 'risk@0.001')
  assert not set(prediction_sets.SECONDARY_MEASURES) & set(
      prediction_sets.WINDOWED)

