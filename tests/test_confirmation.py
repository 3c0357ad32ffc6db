"""The confirmation split (issue 29): set aside from the training images
with ``--confirmation_size``, never trained, tuned or validated on, scored
only where the test split is; without the flag every subset is today's."""

import dataclasses
import hashlib

import numpy as np
import pytest

import data
import train
from conftest import MNIST_DIR, learnable_dataset, needs_mnist
from study import plan as study_plan
from trainer.config import Config, ConfigError
from trainer.run_data import check_data_sizes, prepare_data

CONFIRMATION_SIZE = 20_000


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


def test_it_is_scored_only_with_the_test_split(tmp_path):
  dataset = learnable_dataset(num_train=320, num_test=32)
  common = dict(confirmation_size=64, validation_size=32, train_size=128,
                epochs=1, num_seeds=2)
  final = train.train_and_evaluate(Config(**common), tmp_path / 'final',
                                   dataset=dataset)['final']
  assert set(final) == {'train_loss', 'validation', 'test', 'confirmation'}
  tuning = train.train_and_evaluate(Config(**common, score_test=False),
                                    tmp_path / 'tune', dataset=dataset)
  assert set(tuning['final']) == {'train_loss', 'validation'}


def _regime_configs(confirmation_size: int) -> list[tuple[str, Config]]:
  """Every regime's tuning and final data settings, on seeds 0-39 (finals)
  and 100-103 (tuning)."""
  grid = study_plan.GRIDS['full']
  configs = []
  for name, regime in grid.regimes.items():
    base = Config(confirmation_size=confirmation_size,
                  validation_size=grid.validation_size,
                  train_size=regime.train_size, label_noise=regime.label_noise,
                  clean_validation=regime.clean_validation)
    configs += [(f'{name} finals', dataclasses.replace(base, seed=0,
                                                       num_seeds=40)),
                (f'{name} tuning', dataclasses.replace(
                    base, seed=study_plan.TUNE_SEED, num_seeds=4,
                    score_test=False))]
  return configs


@needs_mnist
def test_no_training_subset_or_validation_image_is_a_confirmation_image():
  dataset = data.load_mnist(MNIST_DIR)
  confirmation = data.hold_out_confirmation(dataset['train'],
                                            CONFIRMATION_SIZE)[1]
  held = _hashes(confirmation.images)
  assert len(held) == CONFIRMATION_SIZE
  for name, config in _regime_configs(CONFIRMATION_SIZE):
    prepared = prepare_data(config, dataset, list(range(
        config.seed, config.seed + config.num_seeds)))
    assert not held & _hashes(prepared.images_NxHxWxC), name
    assert not held & _hashes(prepared.eval_sets['validation'].images), name
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
