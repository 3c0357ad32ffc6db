"""A run's data: the validation split, each seed's subset and label noise, and
the shuffled batches of every epoch, made on the host from ``data.py``'s
splits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import jax
import numpy as np
from jax.sharding import Mesh

import corruptions
import data
from trainer import devices
from trainer.config import Config, ConfigError


class RunData(NamedTuple):
  """A run's data after the config's validation split, subsets and noise."""
  images_NxHxWxC: np.ndarray  # uint8, the training pool
  labels_SxN: np.ndarray      # int32, per seed (label noise differs by seed)
  subset_SxM: np.ndarray      # int32 indices into the pool, per seed
  # 'validation', 'test', 'confirmation', 'calibration',
  # 'test[<corruption>]', 'confirmation[<corruption>]'
  eval_sets: dict[str, data.Split]
  steps_per_epoch: int

  @property
  def num_train(self) -> int:
    """Images a seed trains on."""
    return int(self.subset_SxM.shape[1])


def check_data_sizes(config: Config, num_train_images: int) -> int:
  """Steps per epoch on a training split of ``num_train_images``;
  ConfigError naming the flag that does not fit it."""
  held_out = (config.confirmation_size + config.validation_size
              + config.calibration_size)
  if held_out >= num_train_images:
    calibration = (f' and --calibration_size {config.calibration_size}'
                   if config.calibration_size else '')
    raise ConfigError(
        f'--confirmation_size {config.confirmation_size}'
        f'{"," if calibration else " and"} --validation_size '
        f'{config.validation_size}{calibration} leave no training images (the '
        f'training split has {num_train_images}).')
  pool = num_train_images - held_out
  if config.train_size is not None and config.train_size > pool:
    raise ConfigError(f'--train_size {config.train_size} is more than the '
                      f'{pool} training images left after --validation_size '
                      f'{config.validation_size}'
                      + (f' and --confirmation_size {config.confirmation_size}'
                         if config.confirmation_size else '')
                      + (f' and --calibration_size {config.calibration_size}'
                         if config.calibration_size else '') + '.')
  num_train = config.train_size or pool
  if config.batch_size > num_train:
    raise ConfigError(f'--batch_size {config.batch_size} is larger than the '
                      f'{num_train} training images.')
  if config.batch_size % jax.device_count():
    raise ConfigError(f'--batch_size {config.batch_size} must be a multiple of '
                      f'the {jax.device_count()} devices.')
  return num_train // config.batch_size


def prepare_data(config: Config, dataset: Mapping[str, data.Split],
                 seeds: Sequence[int]) -> RunData:
  """Holds out validation, draws each seed's subset and label noise.

  The validation images are the same for every configuration and seed; the
  subset and the noise draw depend on the seed. Validation labels get the
  same symmetric noise as the training labels (one fixed draw), so that
  tuning sees what a practitioner with noisy labels would see, unless
  ``clean_validation``. Test and confirmation labels stay clean. The
  confirmation split (``confirmation_size``) is set aside from what
  validation leaves, before every subset and noise draw, so that no model
  trains on it and no tuning run scores it (tuning runs score no test); it is
  scored only where the test split is. The validation images are the same
  with or without it. The calibration split (``calibration_size``) is set
  aside from what the confirmation leaves, in the same way, and scored with
  the test split; without it the pool and every draw from it are as
  before.

  Raises:
    ConfigError: naming ``--validation_size``, ``--train_size`` or
      ``--batch_size`` if the training split does not fit them.
  """
  steps_per_epoch = check_data_sizes(config, len(dataset['train'].labels))
  pool, validation = data.hold_out_validation(dataset['train'],
                                              config.validation_size)
  pool, confirmation = data.hold_out_confirmation(pool,
                                                  config.confirmation_size)
  pool, calibration = data.hold_out_calibration(pool, config.calibration_size)
  labels_SxN = np.stack([data.symmetric_label_noise(pool.labels,
                                                    config.label_noise, seed)
                         for seed in seeds])
  subset_SxM = np.stack([data.subset_indices(len(pool.labels),
                                             config.train_size, seed)
                         for seed in seeds])
  eval_sets: dict[str, data.Split] = {}
  if config.validation_size:
    noise = 0.0 if config.clean_validation else config.label_noise
    eval_sets['validation'] = data.Split(
        validation.images, data.symmetric_label_noise(
            validation.labels, noise, data.VALIDATION_SEED))
  if config.score_test:
    eval_sets['test'] = dataset['test']
    if config.confirmation_size:
      eval_sets['confirmation'] = confirmation
    if config.calibration_size:
      eval_sets['calibration'] = calibration
  shifted = {'test': (config.shifted_test, dataset['test'], 0),
             'confirmation': (config.shifted_confirmation, confirmation,
                              data.CONFIRMATION_SHIFT_SEED)}
  for split_name, (wanted, split, seed) in shifted.items():
    if not wanted:
      continue
    images, labels = (split.images[:config.shifted_size],
                      split.labels[:config.shifted_size])
    for name in corruptions.CORRUPTIONS:
      eval_sets[f'{split_name}[{name}]'] = data.Split(
          corruptions.corrupt(images, name, seed=seed), labels)
  return RunData(pool.images, labels_SxN, subset_SxM, eval_sets,
                 steps_per_epoch)


def epoch_batches(run_data: RunData, seeds: Sequence[int], epoch: int,
                  batch_size: int, rows: slice = slice(None)
                  ) -> tuple[np.ndarray, np.ndarray]:
  """Each seed's shuffled batches of an epoch, made on the host.

  Returns images ``[S, E, B', H, W, C]`` (uint8) and labels ``[S, E, B']``
  where ``B'`` is ``rows`` of every batch of ``B``: a process of a
  multi-process run makes only its own share. The order depends only on the
  seed and the epoch (``jax.random``, the same on every process and backend).
  """
  num_train = run_data.subset_SxM.shape[1]
  steps = num_train // batch_size
  images: list[np.ndarray] = []
  labels: list[np.ndarray] = []
  for s, seed in enumerate(seeds):
    key = jax.random.fold_in(jax.random.key(seed), epoch)
    order_M = run_data.subset_SxM[s][np.asarray(
        jax.random.permutation(key, num_train))]
    idx_ExB = order_M[:steps * batch_size].reshape(steps, batch_size)[:, rows]
    images.append(run_data.images_NxHxWxC[idx_ExB])
    labels.append(run_data.labels_SxN[s][idx_ExB])
  return np.stack(images), np.stack(labels)


def batches_on_devices(run_data: RunData, seeds: Sequence[int], epoch: int,
                       batch_size: int, mesh: Mesh | None
                       ) -> tuple[jax.Array, jax.Array]:
  """The epoch's batches on the devices; each process makes only its rows."""
  steps = run_data.subset_SxM.shape[1] // batch_size

  def rows_of_every_batch(rows: slice) -> tuple[np.ndarray, np.ndarray]:
    return epoch_batches(run_data, seeds, epoch, batch_size, rows)

  return devices.shard_batches(rows_of_every_batch,
                               (len(seeds), steps, batch_size), mesh)
