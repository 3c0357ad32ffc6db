"""The study's regimes: validation split, subsets, label noise, corruptions."""

import dataclasses
import json

import numpy as np
import pytest

import corruptions
import data
import train
from conftest import learnable_dataset, read_jsonl, run_config
from trainer import loop, run_data


def test_validation_is_the_same_held_out_set_every_time():
  split = learnable_dataset(num_train=200, num_test=8)['train']
  pool_a, val_a = data.hold_out_validation(split, 50)
  _, val_b = data.hold_out_validation(split, 50)
  np.testing.assert_array_equal(val_a.images, val_b.images)
  assert len(pool_a.labels) == 150 and len(val_a.labels) == 50
  # Disjoint and together the whole split.

  def flat(s):
    return {img.tobytes() for img in s.images}

  assert not flat(pool_a) & flat(val_a)
  assert flat(pool_a) | flat(val_a) == flat(split)
  with pytest.raises(ValueError, match='validation_size'):
    data.hold_out_validation(split, 200)


def test_subsets_and_noise_are_seeded_and_vary_by_seed():
  a, b = data.subset_indices(1000, 100, 0), data.subset_indices(1000, 100, 1)
  np.testing.assert_array_equal(a, data.subset_indices(1000, 100, 0))
  assert len(set(a)) == 100 and set(a) != set(b)
  np.testing.assert_array_equal(data.subset_indices(5, None, 0), np.arange(5))
  labels = np.random.default_rng(0).integers(0, 10, 20000).astype(np.int32)
  noisy = data.symmetric_label_noise(labels, 0.3, seed=4)
  assert abs(np.mean(noisy != labels) - 0.3) < 0.01
  # Symmetric: the wrong labels are spread evenly over the other classes.
  offsets = (noisy - labels)[noisy != labels] % 10
  counts = np.bincount(offsets, minlength=10)[1:]
  assert counts.min() > 0.85 * counts.mean()
  np.testing.assert_array_equal(noisy,
                                data.symmetric_label_noise(labels, 0.3, 4))
  assert np.any(noisy != data.symmetric_label_noise(labels, 0.3, 5))
  np.testing.assert_array_equal(data.symmetric_label_noise(labels, 0.0, 4),
                                labels)


def test_prepare_data_draws_per_seed_and_keeps_eval_labels_clean(tiny):
  config = run_config(validation_size=64, train_size=96, label_noise=0.4,
                      num_seeds=2, shifted_test=True)
  run = run_data.prepare_data(config, tiny, [0, 1])
  assert run.images_NxHxWxC.shape[0] == 256 and run.subset_SxM.shape == (2, 96)
  assert set(run.subset_SxM[0]) != set(run.subset_SxM[1])
  assert np.any(run.labels_SxN[0] != run.labels_SxN[1])
  np.testing.assert_array_equal(run.eval_sets['test'].labels,
                                tiny['test'].labels)
  names = {f'test[{n}]' for n in corruptions.CORRUPTIONS}
  assert names | {'validation', 'test'} == set(run.eval_sets)
  # Validation labels are noisy too, with the one fixed draw.
  _, val = data.hold_out_validation(tiny['train'], 64)
  assert np.any(run.eval_sets['validation'].labels != val.labels)
  # ...unless --clean_validation; the training labels stay noisy.
  clean = run_data.prepare_data(
      dataclasses.replace(config, clean_validation=True), tiny, [0, 1])
  np.testing.assert_array_equal(clean.eval_sets['validation'].labels,
                                val.labels)
  np.testing.assert_array_equal(clean.labels_SxN, run.labels_SxN)


@pytest.mark.slow
def test_validation_run_without_test_scores_only_validation(tiny, tmp_path):
  config = run_config(validation_size=64, train_size=128, score_test=False,
                      epochs=3, eval_every=2, num_seeds=2)
  summary = train.train_and_evaluate(config, tmp_path, dataset=tiny)
  assert summary['num_train'] == 128
  assert 'validation' in summary['final'] and 'test' not in summary['final']
  assert [r['epoch'] for r in read_jsonl(tmp_path / 'metrics.jsonl')] == [2, 3]
  assert not (tmp_path / 'predictions.npz').exists()
  accuracy = summary['final']['validation']['argmax']['accuracy']['per_seed']
  assert len(accuracy) == 2 and all(0 <= a <= 1 for a in accuracy)


@pytest.mark.slow
@pytest.mark.parametrize('sweep', [{}, {'learning_rate': [0.003, 0.006]}])
def test_resume_with_eval_every_matches_uninterrupted(sweep, tiny, tmp_path,
                                                     monkeypatch):
  config = run_config(validation_size=64, epochs=4, eval_every=2,
                      label_noise=0.2, train_size=128, num_seeds=2,
                      sweep=sweep)
  whole = train.train_and_evaluate(config, tmp_path / 'whole', dataset=tiny)
  real_check = loop.check_finite

  def crash_in_epoch_3(loss, epoch, *args):
    if epoch == 3:
      raise loop.TrainingError('simulated crash')
    real_check(loss, epoch, *args)

  monkeypatch.setattr(loop, 'check_finite', crash_in_epoch_3)
  with pytest.raises(loop.TrainingError):
    train.train_and_evaluate(config, tmp_path / 'cut', dataset=tiny)
  monkeypatch.setattr(loop, 'check_finite', real_check)
  assert [r['epoch'] for r in read_jsonl(tmp_path / 'cut' / 'metrics.jsonl')
          ] == [2] * len(whole['points'])
  resumed = train.train_and_evaluate(config, tmp_path / 'cut', resume=True,
                                     dataset=tiny)
  assert resumed['resumed_from_epoch'] == 2
  # Validation, test and train loss of every point, as uninterrupted.
  assert resumed['points'] == whole['points']


@pytest.mark.slow
def test_shifted_test_scores_every_corruption_at_the_end(tiny, tmp_path):
  summary = train.train_and_evaluate(
      run_config(shifted_test=True, epochs=2), tmp_path, dataset=tiny)
  lines = read_jsonl(tmp_path / 'metrics.jsonl')
  assert not any(k.startswith('test[') for k in lines[0])
  clean = summary['final']['test']['argmax']
  shifted = [summary['final'][f'test[{name}]']['argmax']
             for name in corruptions.CORRUPTIONS]
  # Each corruption is its own set of images: the models see each
  # differently, and most of them worse than the clean images.
  assert len({(s['accuracy']['mean'], s['mean_digit_distance']['mean'])
              for s in shifted}) >= len(shifted) // 2
  worse = sum(s['accuracy']['mean'] < clean['accuracy']['mean']
              for s in shifted)
  assert worse >= len(shifted) // 2, (worse, clean, shifted)


@pytest.mark.slow
def test_label_noise_hurts_and_default_data_path_is_unchanged(tiny, tmp_path):
  clean = train.train_and_evaluate(run_config(epochs=4), tmp_path / 'c',
                                   dataset=tiny)
  noisy = train.train_and_evaluate(run_config(epochs=4, label_noise=0.8),
                                   tmp_path / 'n', dataset=tiny)

  def acc(s):
    return s['final']['test']['argmax']['accuracy']['mean']

  assert acc(noisy) < acc(clean)
  assert json.loads((tmp_path / 'c' / 'config.json').read_text())[
      'validation_size'] == 0


@pytest.mark.parametrize('name', sorted(corruptions.CORRUPTIONS))
def test_corruptions_are_deterministic_and_change_the_images(name):
  images = learnable_dataset(num_train=8, num_test=8)['test'].images
  a = corruptions.corrupt(images, name, seed=3)
  b = corruptions.corrupt(images, name, seed=3)
  assert a.dtype == np.uint8 and a.shape == images.shape
  np.testing.assert_array_equal(a, b)
  assert np.mean(a != images) > 0.01


def test_unknown_corruption_is_an_error():
  with pytest.raises(ValueError, match="unknown corruption 'blur'"):
    corruptions.corrupt(np.zeros((1, 28, 28, 1), np.uint8), 'blur')


def test_every_corruption_is_of_exactly_one_kind():
  kinds = [name for names in corruptions.KINDS.values() for name in names]
  assert sorted(kinds) == sorted(corruptions.CORRUPTIONS)
