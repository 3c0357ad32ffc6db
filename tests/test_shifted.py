"""Corrupted evaluation sets (issue 37's groundwork): the test split's and
the confirmation split's images under each corruption of corruptions.py,
scored after the last epoch, every image's predictions kept."""

import hashlib

import numpy as np
import pytest

import corruptions
import data
import train
from conftest import MNIST_DIR, learnable_dataset, needs_mnist
from trainer.config import Config, ConfigError
from trainer.resolve import resolve
from trainer.run_data import prepare_data


def _confirmation(dataset, validation_size, confirmation_size):
  pool = data.hold_out_validation(dataset['train'], validation_size)[0]
  return data.hold_out_confirmation(pool, confirmation_size)[1]


def test_the_shifted_confirmation_is_the_confirmation_split_corrupted():
  dataset = learnable_dataset(num_train=320, num_test=32)
  config = Config(confirmation_size=64, validation_size=32, train_size=128,
                  shifted_confirmation=True, shifted_size=40)
  sets = prepare_data(config, dataset, [0]).eval_sets
  confirmation = _confirmation(dataset, 32, 64)
  for name in corruptions.CORRUPTIONS:
    shifted = sets[f'confirmation[{name}]']
    np.testing.assert_array_equal(shifted.labels, confirmation.labels[:40])
    np.testing.assert_array_equal(shifted.images, corruptions.corrupt(
        confirmation.images[:40], name, seed=data.CONFIRMATION_SHIFT_SEED))
  # Not the test split's draws: another seed.
  assert not np.array_equal(
      sets['confirmation[shot_noise]'].images,
      corruptions.corrupt(confirmation.images[:40], 'shot_noise'))
  assert not [name for name in sets if name.startswith('test[')]


def test_a_smaller_shifted_size_is_the_start_of_a_larger_one():
  dataset = learnable_dataset(num_train=320, num_test=32)
  common = dict(confirmation_size=64, validation_size=32, train_size=128,
                shifted_confirmation=True, shifted_test=True)
  small, large = (prepare_data(Config(**common, shifted_size=size), dataset,
                               [0]).eval_sets for size in (10, 30))
  for name in small:
    if '[' in name:
      np.testing.assert_array_equal(small[name].images,
                                    large[name].images[:10])


def test_the_shifted_flags_are_checked_against_their_splits():
  with pytest.raises(ConfigError, match='--shifted_confirmation corrupts the '
                     'confirmation split: it needs --confirmation_size'):
    resolve(Config(shifted_confirmation=True))
  with pytest.raises(ConfigError, match='not --no_test'):
    resolve(Config(shifted_confirmation=True, confirmation_size=100,
                   score_test=False))
  with pytest.raises(ConfigError, match='--shifted_size 200 is more than the '
                     '100 confirmation images'):
    resolve(Config(shifted_confirmation=True, confirmation_size=100,
                   shifted_size=200))
  with pytest.raises(ConfigError, match='--shifted_size must be >= 1'):
    resolve(Config(shifted_size=0))
  # The test split has fewer: all of it.
  dataset = learnable_dataset(num_train=320, num_test=32)
  sets = prepare_data(Config(shifted_test=True, shifted_size=40), dataset,
                      [0]).eval_sets
  assert len(sets['test[rotate]'].labels) == 32


@pytest.mark.slow
def test_every_shifted_image_keeps_its_predictions(tmp_path):
  dataset = learnable_dataset(num_train=320, num_test=32)
  config = Config(confirmation_size=64, validation_size=32, train_size=128,
                  epochs=2, eval_every=1, num_seeds=2, shifted_test=True,
                  shifted_confirmation=True, shifted_size=24)
  summary = train.train_and_evaluate(config, tmp_path, dataset=dataset)
  final = summary['final']
  confirmation = _confirmation(dataset, 32, 64)
  with np.load(tmp_path / 'predictions.npz') as f:
    for split in ('test', 'confirmation'):
      for name in corruptions.CORRUPTIONS:
        key = f'{split}[{name}]'
        predicted = f[f'{key}_argmax']
        assert predicted.shape == (2, 24) and predicted.dtype == np.int8
        assert f[f'{key}_bayes'].shape == (2, 24)
        labels = f[f'{key}_labels']
        np.testing.assert_array_equal(labels, (
            dataset['test'] if split == 'test' else confirmation).labels[:24])
        np.testing.assert_allclose(
            (predicted == labels).mean(axis=1),
            final[key]['argmax']['accuracy']['per_seed'], rtol=1e-6)
  # Scored at the last epoch only.
  lines = (tmp_path / 'metrics.jsonl').read_text().splitlines()
  assert 'confirmation[rotate]' not in lines[0]
  assert 'confirmation[rotate]' in lines[-1]


# The first 32 confirmation images of the registered split (validation
# 5 000, confirmation 30 000) under each corruption, as made here on
# 2026-12-07: SHA-256 of their bytes, first 16 hex digits.
FIRST_BATCH_SHA256 = '96a0701a23f58d53'


@needs_mnist
def test_the_registered_splits_first_batch_corrupts_reproducibly():
  dataset = data.load_mnist(MNIST_DIR)
  confirmation = _confirmation(dataset, 5000, 30_000)
  digest = hashlib.sha256()
  for name in corruptions.CORRUPTIONS:
    digest.update(corruptions.corrupt(
        confirmation.images[:32], name,
        seed=data.CONFIRMATION_SHIFT_SEED).tobytes())
  assert digest.hexdigest()[:16] == FIRST_BATCH_SHA256
