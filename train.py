"""Train the MNIST CNN with any registered loss; evaluate on the test split.

    python train.py --data_dir ../shared/mnist --epochs 3
    python train.py --loss expected_cost --distance cyclic --num_seeds 4

A thin CLI over :func:`train_and_evaluate`. Each epoch is one compiled program
(shuffling, every step and the optimizer inside one ``lax.scan``), vmapped over
``--num_seeds`` independent models. After every epoch the test split is scored
for argmax and for cost-aware (``bayes_decision``) predictions, a line goes to
``metrics.jsonl`` and an orbax checkpoint is written; ``--resume`` continues a
killed run and reaches the same final numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import pathlib
import sys
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import nnx
from jax import lax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

import corruptions
import data
import losses
import metrics
from model import CNN, CPU_CHUNK_SIZE

NUM_CLASSES = data.NUM_CLASSES
EVAL_CHUNK = 1000  # test images per forward pass; bounds activation memory
# Test images per corruption for --shifted_test: 12 corruptions x 2 000 images
# cost about as much to score as the clean test split does twice.
SHIFTED_TEST_SIZE = 2000


@dataclasses.dataclass(frozen=True)
class Config:
  """Everything that defines a run; plain data, saved as config.json."""
  loss: str = 'cross_entropy'
  ce_weight: float | None = None
  distance: str = 'linear'
  temperature: float | None = None
  alpha: float | None = None
  kappa: float | None = None
  link: str = 'logit'
  soft_labels: str | None = None
  optimizer: str = 'adam'
  learning_rate: float = 3e-3
  schedule: str = 'cosine'
  warmup_epochs: float = 0.2
  weight_decay: float = 0.0
  epochs: int = 3
  batch_size: int = 32
  seed: int = 0
  num_seeds: int = 1
  data_dir: str | None = None
  tfds_data_dir: str | None = None
  validation_size: int = 0
  train_size: int | None = None
  label_noise: float = 0.0
  eval_every: int = 1
  score_test: bool = True
  shifted_test: bool = False


class TrainingError(RuntimeError):
  """Training cannot go on (e.g. the loss became NaN)."""


# ----------------------------------------------------------------------------
# Building blocks: distance, optimizer, loss.


def load_distance(spec: str) -> jax.Array:
  """'linear', 'cyclic', or a path to a K x K .npy file."""
  if spec == 'linear':
    return losses.linear_distance(NUM_CLASSES)
  if spec == 'cyclic':
    return losses.cyclic_distance(NUM_CLASSES)
  path = pathlib.Path(spec)
  if path.suffix != '.npy' or not path.is_file():
    raise ValueError(f'--distance must be linear, cyclic or an existing .npy '
                     f'file, got {spec!r}.')
  try:
    matrix = np.load(path, allow_pickle=False)
  except (ValueError, OSError) as e:
    raise ValueError(f'--distance {spec}: not a readable .npy array ({e}).') from None
  return losses.validate_distance(matrix, num_classes=NUM_CLASSES,
                                  name=f'--distance {spec}')


def check_batch_size(batch_size: int, num_train: int) -> None:
  """Raises ValueError (naming --batch_size) if no full batch fits or the
  batch cannot be split evenly over the devices."""
  if batch_size > num_train:
    raise ValueError(f'--batch_size {batch_size} is larger than the '
                     f'{num_train} training images.')
  if batch_size % jax.device_count():
    raise ValueError(f'--batch_size {batch_size} must be a multiple of the '
                     f'{jax.device_count()} devices.')


def check_data_flags(config: Config, num_images: int) -> None:
  """Raises ValueError (naming the flag) if the training split cannot give
  the validation split, subset and batches the config asks for."""
  if config.validation_size >= num_images:
    raise ValueError(f'--validation_size {config.validation_size} leaves no '
                     f'training images (the training split has {num_images}).')
  pool = num_images - config.validation_size
  if config.train_size is not None and config.train_size > pool:
    raise ValueError(f'--train_size {config.train_size} is more than the '
                     f'{pool} training images left after --validation_size '
                     f'{config.validation_size}.')
  check_batch_size(config.batch_size, config.train_size or pool)


def make_optimizer(config: Config, steps_per_epoch: int):
  total = config.epochs * steps_per_epoch
  if config.schedule == 'constant':
    lr = config.learning_rate
  else:
    warmup = min(int(config.warmup_epochs * steps_per_epoch), total - 1)
    lr = optax.warmup_cosine_decay_schedule(
        0.0, config.learning_rate, max(warmup, 1), total)
  if config.optimizer == 'adam':
    return optax.adamw(lr, weight_decay=config.weight_decay)
  return optax.sgd(lr, momentum=0.9, nesterov=True)


# Which flag sets each soft-label family's parameter (the others have none).
SOFT_LABEL_FLAGS = {'exponential': ('tau', 'temperature'),
                    'von_mises': ('kappa', 'kappa'),
                    'geometric': ('alpha', 'alpha'),
                    'triangular': ('alpha2', 'alpha')}


def soft_label_targets(config: Config):
  """The --soft_labels family's [K, K] target matrix, or None."""
  if config.soft_labels is None:
    return None
  param, field = SOFT_LABEL_FLAGS.get(config.soft_labels, (None, None))
  value = getattr(config, field) if field else None
  params = {} if value is None else {param: value}
  return losses.soft_label_matrix(config.soft_labels, NUM_CLASSES, **params)


def loss_hyperparams(config: Config, distance_KxK) -> dict[str, Any]:
  """Every hyperparameter a registered loss or head may take."""
  return {'distance': distance_KxK, 'temperature': config.temperature,
          'alpha': config.alpha, 'kappa': config.kappa, 'link': config.link,
          'num_classes': NUM_CLASSES, 'targets': soft_label_targets(config)}


def make_loss_fn(config: Config, distance_KxK):
  return losses.make_loss(config.loss, ce_weight=config.ce_weight,
                          **loss_hyperparams(config, distance_KxK))


def make_probs_fn(config: Config, distance_KxK):
  return losses.make_probs(config.loss,
                           **loss_hyperparams(config, distance_KxK))


# ----------------------------------------------------------------------------
# The compiled programs.


def conv_chunk_size() -> int:
  """Chunk the conv layers on a lone CPU device only (see ``model.CNN``).

  Accelerators want the whole batch at once, and with several devices each
  one already holds a slice of it.
  """
  if jax.default_backend() == 'cpu' and jax.device_count() == 1:
    return CPU_CHUNK_SIZE
  return 0


def init_params(config: Config, seeds, chunk_size: int | None = None):
  """Graph definition and the params of each seed, stacked on axis 0.

  ``chunk_size`` overrides :func:`conv_chunk_size` (``bench.py`` uses it).
  """
  spec = losses.get_loss(config.loss)
  if chunk_size is None:
    chunk_size = conv_chunk_size()
  states = []
  for seed in seeds:
    model = CNN(NUM_CLASSES, head=spec.head, chunk_size=chunk_size,
                rngs=nnx.Rngs(seed))
    graphdef, state = nnx.split(model)
    states.append(state)
  return graphdef, jax.tree.map(lambda *xs: jnp.stack(xs), *states)


def data_mesh() -> Mesh | None:
  """A 1-D mesh over every device, or None on a single device."""
  if jax.device_count() == 1:
    return None
  return Mesh(np.asarray(jax.devices()), ('data',))


def build_train_epoch(graphdef, tx, loss_fn, steps_per_epoch, batch_size,
                      mesh=None):
  """One seed's epoch: shuffle its training subset, then every step in one
  lax.scan. ``labels`` are the seed's (possibly noisy) labels of the whole
  pool and ``subset`` the pool indices it trains on.

  With a ``mesh``, each batch is split across its devices (data parallelism);
  parameters and optimizer state stay replicated, and XLA inserts the gradient
  all-reduce.
  """

  def shard_batch(x):
    if mesh is None:
      return x
    return lax.with_sharding_constraint(x, NamedSharding(mesh, P('data')))

  def train_epoch(params, opt_state, images, labels, subset, key):
    order = subset[jax.random.permutation(key, subset.shape[0])]
    batches_SxB = order[:steps_per_epoch * batch_size].reshape(
        steps_per_epoch, batch_size)

    def step(carry, idx_B):
      params, opt_state = carry
      images_B, labels_B = shard_batch(images[idx_B]), shard_batch(labels[idx_B])

      def mean_loss(params):
        logits = nnx.merge(graphdef, params)(images_B)
        return jnp.mean(loss_fn(logits, labels_B))

      loss, grads = jax.value_and_grad(mean_loss)(params)
      updates, opt_state = tx.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), loss

    (params, opt_state), loss_S = lax.scan(step, (params, opt_state),
                                           batches_SxB)
    return params, opt_state, loss_S

  return train_epoch


def build_evaluate(graphdef, probs_fn, distance_KxK):
  """One seed's test predictions and metrics, argmax and Bayes-decoded."""
  linear = losses.linear_distance(NUM_CLASSES)
  cyclic = losses.cyclic_distance(NUM_CLASSES)

  def score(preds, labels):
    return {
        'accuracy': metrics.accuracy(preds, labels),
        'mean_digit_distance': metrics.mean_distance(preds, labels,
                                                     distance=linear),
        'far_error_rate': metrics.far_error_rate(preds, labels),
        'cyclic_error': metrics.mean_distance(preds, labels, distance=cyclic),
        'off_by_one_accuracy': metrics.off_by_one_accuracy(preds, labels),
        'qwk': metrics.quadratic_weighted_kappa(preds, labels,
                                                num_classes=NUM_CLASSES),
    }

  def evaluate(params, images, labels):
    model = nnx.merge(graphdef, params)
    logits = lax.map(model, images.reshape(-1, 1, 28, 28, 1),
                     batch_size=EVAL_CHUNK)
    probs_NxK = probs_fn(logits.reshape(labels.shape[0], -1))
    argmax_N = jnp.argmax(probs_NxK, axis=-1)
    bayes_N = metrics.bayes_decision(probs_NxK, distance=distance_KxK)
    scores = {'argmax': score(argmax_N, labels),
              'bayes': score(bayes_N, labels)}
    return scores, probs_NxK, argmax_N, bayes_N

  return evaluate


# ----------------------------------------------------------------------------
# Run bookkeeping: workdir, checkpoints, metrics.


def _mean_std(values) -> dict[str, float]:
  values = np.asarray(values, np.float64)
  std = float(values.std(ddof=1)) if values.size > 1 else 0.0
  return {'mean': float(values.mean()), 'std': std}


def summarize_scores(scores) -> dict[str, Any]:
  """Per-seed lists plus mean/std across seeds, for every decoding/metric."""
  out = {}
  for decoding, per_metric in scores.items():
    out[decoding] = {}
    for name, values in per_metric.items():
      values = np.asarray(values, np.float64).reshape(-1)
      out[decoding][name] = {'per_seed': values.tolist(), **_mean_std(values)}
  return out


def checkpoint_manager(workdir: pathlib.Path) -> ocp.CheckpointManager:
  # Synchronous saves: a checkpoint is complete (atomically renamed into
  # place) before the epoch's line in metrics.jsonl is considered final.
  options = ocp.CheckpointManagerOptions(max_to_keep=2, create=True,
                                         enable_async_checkpointing=False)
  return ocp.CheckpointManager((workdir / 'checkpoints').absolute(),
                               options=options)


def read_metrics_lines(path: pathlib.Path, last_epoch: int) -> list[str]:
  """The metrics lines of epochs <= last_epoch (later ones were not saved)."""
  if not path.exists():
    return []
  lines = [l for l in path.read_text().splitlines() if l.strip()]
  return [l for l in lines if json.loads(l)['epoch'] <= last_epoch]


def write_text_atomic(path: pathlib.Path, text: str) -> None:
  tmp = path.with_suffix(path.suffix + '.tmp')
  with open(tmp, 'w') as f:
    f.write(text)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


def check_finite(loss_SxT, epoch: int, seeds) -> None:
  """Raises TrainingError naming the first step whose loss is NaN or Inf."""
  finite = np.isfinite(loss_SxT)
  if finite.all():
    return
  seed_idx, step = map(int, np.argwhere(~finite)[0])
  value = loss_SxT[seed_idx, step]
  raise TrainingError(
      f'loss became {value} at epoch {epoch}, step {step + 1} of that epoch '
      f'(seed {seeds[seed_idx]}); try a lower --learning_rate. The last '
      'checkpoint is from the epoch before.')


# ----------------------------------------------------------------------------
# The run.


class RunData(NamedTuple):
  """A run's data after the config's validation split, subsets and noise."""
  images: np.ndarray       # uint8 [N, 28, 28, 1], the training pool
  labels_SxN: np.ndarray   # int32, per seed (label noise differs by seed)
  subset_SxM: np.ndarray   # int32 indices into the pool, per seed
  eval_sets: dict[str, data.Split]  # 'validation', 'test', 'test[<corruption>]'


def prepare_data(config: Config, dataset, seeds) -> RunData:
  """Holds out validation, draws each seed's subset and label noise.

  The validation images are the same for every configuration and seed; the
  subset and the noise draw depend on the seed. Validation labels get the
  same symmetric noise as the training labels (one fixed draw): tuning sees
  what a practitioner with noisy labels would see. Test labels stay clean.
  """
  pool, validation = data.hold_out_validation(dataset['train'],
                                              config.validation_size)
  labels_SxN = np.stack([data.symmetric_label_noise(pool.labels,
                                                    config.label_noise, seed)
                         for seed in seeds])
  subset_SxM = np.stack([data.subset_indices(len(pool.labels),
                                             config.train_size, seed)
                         for seed in seeds])
  eval_sets = {}
  if config.validation_size:
    eval_sets['validation'] = data.Split(
        validation.images, data.symmetric_label_noise(
            validation.labels, config.label_noise, data.VALIDATION_SEED))
  if config.score_test:
    eval_sets['test'] = dataset['test']
  if config.shifted_test:
    shifted = data.Split(dataset['test'].images[:SHIFTED_TEST_SIZE],
                         dataset['test'].labels[:SHIFTED_TEST_SIZE])
    for name in corruptions.CORRUPTIONS:
      eval_sets[f'test[{name}]'] = data.Split(
          corruptions.corrupt(shifted.images, name), shifted.labels)
  return RunData(pool.images, labels_SxN, subset_SxM, eval_sets)


def is_eval_epoch(config: Config, epoch: int) -> bool:
  return epoch % config.eval_every == 0 or epoch == config.epochs


def train_and_evaluate(config: Config, workdir, *, resume: bool = False,
                       quiet: bool = True, dataset=None) -> dict[str, Any]:
  """Trains ``config.num_seeds`` models and writes everything to ``workdir``.

  Args:
    config: the run's configuration.
    workdir: output folder: config.json, metrics.jsonl, summary.json,
      predictions.npz and checkpoints/.
    resume: continue from the latest checkpoint in ``workdir``.
    quiet: print one plain line per epoch instead of a progress bar.
    dataset: ``{'train': Split, 'test': Split}``; loaded from the config's
      data source when None.

  Returns:
    The summary that is also written to summary.json.

  Raises:
    TrainingError: if the loss becomes NaN or Inf (naming the step).
  """
  t_start = time.perf_counter()
  workdir = pathlib.Path(workdir)
  dataset = dataset or data.load_mnist(config.data_dir,
                                       tfds_data_dir=config.tfds_data_dir)
  seeds = [config.seed + i for i in range(config.num_seeds)]
  check_data_flags(config, len(dataset['train'].labels))
  run_data = prepare_data(config, dataset, seeds)
  num_train = run_data.subset_SxM.shape[1]
  steps_per_epoch = num_train // config.batch_size
  distance_KxK = load_distance(config.distance)
  loss_fn = make_loss_fn(config, distance_KxK)

  workdir.mkdir(parents=True, exist_ok=True)
  write_text_atomic(workdir / 'config.json',
                    json.dumps(dataclasses.asdict(config), indent=2) + '\n')

  mesh = data_mesh()
  graphdef, params = init_params(config, seeds)
  tx = make_optimizer(config, steps_per_epoch)
  opt_state = jax.vmap(tx.init)(params)
  train_epoch = jax.jit(
      jax.vmap(build_train_epoch(graphdef, tx, loss_fn, steps_per_epoch,
                                 config.batch_size, mesh),
               in_axes=(0, 0, None, 0, 0, 0)),
      donate_argnums=(0, 1))
  evaluate = jax.jit(jax.vmap(build_evaluate(graphdef,
                                             make_probs_fn(config, distance_KxK),
                                             distance_KxK),
                              in_axes=(0, None, None)))
  seed_keys = jax.vmap(jax.random.key)(jnp.asarray(seeds))

  # The whole dataset lives on the device(s); replicated on a mesh.
  replicated = None if mesh is None else NamedSharding(mesh, P())
  put = lambda tree: jax.device_put(tree, replicated)
  train_images, train_labels, train_subset = map(put, (
      run_data.images, run_data.labels_SxN, run_data.subset_SxM))
  eval_sets = {name: put(tuple(split))
               for name, split in run_data.eval_sets.items()}
  params, opt_state = put(params), put(opt_state)

  manager = checkpoint_manager(workdir)
  start_epoch = 0
  metrics_path = workdir / 'metrics.jsonl'
  if resume and manager.latest_step() is not None:
    start_epoch = manager.latest_step()
    restored = manager.restore(start_epoch, args=ocp.args.StandardRestore(
        {'params': params, 'opt_state': opt_state}))
    params, opt_state = restored['params'], restored['opt_state']
  kept_lines = read_metrics_lines(metrics_path, start_epoch)
  write_text_atomic(metrics_path, ''.join(l + '\n' for l in kept_lines))

  def epoch_keys(epoch):
    return jax.vmap(lambda k: jax.random.fold_in(k, epoch))(seed_keys)

  t0 = time.perf_counter()
  train_epoch = train_epoch.lower(params, opt_state, train_images,
                                  train_labels, train_subset,
                                  epoch_keys(0)).compile()
  compile_s = time.perf_counter() - t0

  def evaluate_all(params, epoch):
    """Scores of every evaluation set; shifted test sets at the end only."""
    return {name: jax.device_get(evaluate(params, *split))
            for name, split in eval_sets.items()
            if not name.startswith('test[') or epoch == config.epochs}

  progress = None if quiet else _progress_bar(config.epochs, start_epoch)
  epoch_times = []
  record = json.loads(kept_lines[-1]) if kept_lines else None
  outputs = None
  for epoch in range(start_epoch + 1, config.epochs + 1):
    t0 = time.perf_counter()
    params, opt_state, loss_SxT = train_epoch(params, opt_state, train_images,
                                              train_labels, train_subset,
                                              epoch_keys(epoch))
    loss_SxT = np.asarray(loss_SxT)
    train_s = time.perf_counter() - t0
    check_finite(loss_SxT, epoch, seeds)
    if not is_eval_epoch(config, epoch):
      epoch_times.append(time.perf_counter() - t0)
      continue
    outputs = evaluate_all(params, epoch)
    epoch_times.append(time.perf_counter() - t0)
    record = {
        'epoch': epoch,
        'train_loss': {'per_seed': loss_SxT.mean(axis=1).tolist(),
                       **_mean_std(loss_SxT.mean(axis=1))},
        **{name: summarize_scores(out[0]) for name, out in outputs.items()},
        'train_s': train_s,
        'epoch_s': epoch_times[-1],
    }
    with open(metrics_path, 'a') as f:
      f.write(json.dumps(record) + '\n')
      f.flush()
      os.fsync(f.fileno())
    manager.save(epoch, args=ocp.args.StandardSave(
        {'params': params, 'opt_state': opt_state}))
    _report(progress, record, quiet, epochs_done=epoch - start_epoch)
  manager.wait_until_finished()
  if progress is not None:
    progress.close()

  if outputs is None:  # Resumed a finished run: nothing left to train.
    outputs = evaluate_all(params, config.epochs)
  if 'test' in outputs:
    _, probs_SxNxK, argmax_SxN, bayes_SxN = outputs['test']
    np.savez_compressed(workdir / 'predictions.npz', probs=probs_SxNxK,
                        labels=run_data.eval_sets['test'].labels,
                        argmax=argmax_SxN, bayes=bayes_SxN,
                        seeds=np.asarray(seeds))
  summary = {
      'config': dataclasses.asdict(config),
      'seeds': seeds,
      'num_train': num_train,
      'distance_matrix': np.asarray(distance_KxK).tolist(),
      'epochs_completed': config.epochs,
      'final': {name: value for name, value in record.items()
                if name not in ('epoch', 'train_s', 'epoch_s')},
      'wall_s': {'total': time.perf_counter() - t_start, 'compile': compile_s,
                 'epochs_this_session': epoch_times},
      'devices': [str(d) for d in jax.devices()],
      'resumed_from_epoch': start_epoch if resume else None,
  }
  write_text_atomic(workdir / 'summary.json', json.dumps(summary, indent=2) + '\n')
  return summary


def _progress_bar(total: int, done: int):
  from tqdm import tqdm  # pylint: disable=g-import-not-at-top
  return tqdm(total=total, initial=done, unit='epoch', dynamic_ncols=True)


def _report(progress, record, quiet: bool, epochs_done: int) -> None:
  text = f"loss {record['train_loss']['mean']:.4f}"
  for name in ('validation', 'test'):
    if name in record:
      argmax = record[name]['argmax']
      text += (f"  {name[:4]} acc {100 * argmax['accuracy']['mean']:.2f}% "
               f"MDE {argmax['mean_digit_distance']['mean']:.4f}")
  text += f"  ({record['epoch_s']:.1f}s)"
  if quiet:
    print(f"epoch {record['epoch']}: {text}", flush=True)
  else:
    progress.set_postfix_str(text)
    progress.update(epochs_done - progress.n + progress.initial)


# ----------------------------------------------------------------------------
# Command line.


class _Parser(argparse.ArgumentParser):

  def error(self, message):
    """One line, exit code 2, as for every other bad flag."""
    self.exit(2, f'{self.prog}: error: {message}\n')


def build_parser() -> argparse.ArgumentParser:
  defaults = Config()
  p = _Parser(
      prog='train.py',
      description='Train an MNIST CNN with a distance-aware loss and report '
      'test accuracy and the mean digit-distance error.',
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  p.add_argument('--loss', default=defaults.loss, choices=sorted(losses.LOSSES),
                 help='training loss from the losses.LOSSES registry')
  p.add_argument('--ce_weight', type=float, default=None, metavar='LAMBDA',
                 help='train on CE + LAMBDA * loss (0 gives pure CE); unset: '
                 'the loss alone')
  p.add_argument('--distance', default=defaults.distance,
                 help="'linear', 'cyclic', or a path to a 10x10 .npy cost "
                 'matrix; used by distance-aware losses and for Bayes decoding')
  p.add_argument('--temperature', type=float, default=None,
                 help='soft_label_cross_entropy temperature (default 1.0)')
  p.add_argument('--alpha', type=float, default=None,
                 help='exponent of class_distance_weighted_ce and '
                 'ordinal_log_loss, sharpness of slace (each default 1.0); '
                 "with --soft_labels: geometric's alpha (0.1) or triangular's "
                 'alpha2 (0.01)')
  p.add_argument('--kappa', type=float, default=None,
                 help='von Mises concentration: of the von_mises head '
                 '(default 1.0) or of --soft_labels von_mises (default 5.0)')
  p.add_argument('--link', default=defaults.link,
                 choices=sorted(losses.CLM_LINKS),
                 help='link function of the clm head (cumulative link model)')
  p.add_argument('--soft_labels', default=None,
                 choices=losses.SOFT_LABEL_FAMILIES,
                 help='target family of --loss soft_target_cross_entropy; '
                 "exponential's tau is --temperature (default 1.0)")
  p.add_argument('--optimizer', default=defaults.optimizer,
                 choices=['adam', 'sgd'],
                 help='adam (AdamW) or sgd (Nesterov momentum 0.9)')
  p.add_argument('--learning_rate', type=float, default=defaults.learning_rate,
                 help='peak learning rate')
  p.add_argument('--schedule', default=defaults.schedule,
                 choices=['cosine', 'constant'],
                 help='cosine: linear warm-up then cosine decay to 0')
  p.add_argument('--warmup_epochs', type=float, default=defaults.warmup_epochs,
                 help='warm-up length for the cosine schedule, in epochs')
  p.add_argument('--weight_decay', type=float, default=defaults.weight_decay,
                 help='AdamW decoupled weight decay')
  p.add_argument('--epochs', type=int, default=defaults.epochs,
                 help='number of passes over the training set')
  p.add_argument('--batch_size', type=int, default=defaults.batch_size,
                 help='training batch size')
  p.add_argument('--seed', type=int, default=defaults.seed,
                 help='seed of the first model (init and shuffling)')
  p.add_argument('--num_seeds', type=int, default=defaults.num_seeds,
                 help='train N independent models (seeds seed..seed+N-1) in '
                 'one vmapped program')
  p.add_argument('--data_dir', default=None,
                 help='folder with the four MNIST IDX files (.gz or raw); '
                 'default: $MNIST_DIR, else tfds')
  p.add_argument('--tfds_data_dir', default=None,
                 help="tensorflow-datasets data_dir with a prepared 'mnist' "
                 '(used only when no IDX folder is given)')
  p.add_argument('--validation_size', type=int,
                 default=defaults.validation_size,
                 help='hold out this many training images (the same ones for '
                 'every run) and score them after each evaluated epoch')
  p.add_argument('--train_size', type=int, default=None,
                 help='train on a random subset of this many images (drawn '
                 'per seed); default: every training image')
  p.add_argument('--label_noise', type=float, default=defaults.label_noise,
                 help='replace this share of the training (and validation) '
                 'labels by another class, uniformly (symmetric noise, drawn '
                 'per seed); test labels stay clean')
  p.add_argument('--eval_every', type=int, default=defaults.eval_every,
                 help='evaluate and checkpoint every N epochs (and after the '
                 'last)')
  p.add_argument('--no_test', dest='score_test', action='store_false',
                 help='do not score the test split (model selection runs: '
                 'only validation is looked at)')
  p.add_argument('--shifted_test', action='store_true',
                 help='after the last epoch also score the first '
                 f'{SHIFTED_TEST_SIZE} test images under each of the '
                 f'{len(corruptions.CORRUPTIONS)} corruptions of '
                 'corruptions.py (MNIST-C style)')
  p.add_argument('--workdir', default=None,
                 help='output folder (default: a new folder under runs/)')
  p.add_argument('--resume', action='store_true',
                 help='continue the run in --workdir from its last checkpoint, '
                 'with its saved configuration; only --epochs may change (the '
                 'learning-rate schedule then follows the new length)')
  p.add_argument('--quiet', action='store_true',
                 help='one plain line per epoch instead of a progress bar')
  return p


def config_from_args(args, parser) -> tuple[Config, pathlib.Path]:
  """Validates the flags; returns the config and the workdir to use."""
  fail = parser.error
  if args.resume:
    if args.workdir is None:
      fail('--resume needs --workdir of the run to continue.')
    workdir = pathlib.Path(args.workdir)
    saved = workdir / 'config.json'
    if not saved.is_file():
      fail(f'--workdir {workdir} has no config.json to resume from.')
    config = Config(**json.loads(saved.read_text()))
    if args.epochs != Config.epochs:
      config = dataclasses.replace(config, epochs=args.epochs)
  else:
    fields = {f.name for f in dataclasses.fields(Config)}
    config = Config(**{k: v for k, v in vars(args).items() if k in fields})
    stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S')
    workdir = pathlib.Path(args.workdir or f'runs/{stamp}-{config.loss}')
    if workdir.exists() and any(workdir.iterdir()):
      fail(f'--workdir {workdir} is not empty; pass --resume to continue it '
           'or choose another folder.')
  for flag, value, ok in [
      ('--ce_weight', config.ce_weight, config.ce_weight is None or config.ce_weight >= 0),
      ('--temperature', config.temperature, config.temperature is None or config.temperature > 0),
      ('--alpha', config.alpha, config.alpha is None or config.alpha > 0),
      ('--kappa', config.kappa, config.kappa is None or config.kappa > 0),
      ('--learning_rate', config.learning_rate, config.learning_rate > 0),
      ('--warmup_epochs', config.warmup_epochs, config.warmup_epochs >= 0),
      ('--weight_decay', config.weight_decay, config.weight_decay >= 0),
      ('--epochs', config.epochs, config.epochs >= 1),
      ('--batch_size', config.batch_size, config.batch_size >= 1),
      ('--num_seeds', config.num_seeds, config.num_seeds >= 1),
      ('--validation_size', config.validation_size, config.validation_size >= 0),
      ('--train_size', config.train_size,
       config.train_size is None or config.train_size >= 1),
      ('--label_noise', config.label_noise, 0 <= config.label_noise < 1),
      ('--eval_every', config.eval_every, config.eval_every >= 1),
  ]:
    if not ok or (isinstance(value, float) and not math.isfinite(value)):
      fail(f'{flag} {value} is out of range.')
  try:
    distance_KxK = load_distance(config.distance)
  except ValueError as e:
    fail(str(e))
  if ('targets' in losses.get_loss(config.loss).hyperparams
      and config.soft_labels is None):
    fail(f'--loss {config.loss} needs --soft_labels FAMILY (one of '
         f'{", ".join(losses.SOFT_LABEL_FAMILIES)}).')
  try:
    make_loss_fn(config, distance_KxK)
  except ValueError as e:
    mixed = '' if config.ce_weight is None else f' --ce_weight {config.ce_weight}'
    fail(f'--loss {config.loss}{mixed}: {e}')
  existing = workdir
  while not existing.exists():
    existing = existing.parent
  if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
    fail(f'--workdir {workdir}: {existing} is not a writable folder.')
  return config, workdir


def main(argv=None) -> int:
  parser = build_parser()
  args = parser.parse_args(argv)
  config, workdir = config_from_args(args, parser)
  try:
    dataset = data.load_mnist(config.data_dir,
                              tfds_data_dir=config.tfds_data_dir)
  except data.DataError as e:
    parser.error(f'--data_dir: {e}')
  try:
    check_data_flags(config, len(dataset['train'].labels))
  except ValueError as e:
    parser.error(str(e))
  done = read_metrics_lines(workdir / 'metrics.jsonl', 10**9)
  if args.resume and done and config.epochs < json.loads(done[-1])['epoch']:
    parser.error(f'--epochs {config.epochs} is fewer than the epochs already '
                 'completed in --workdir.')
  if not args.quiet:
    print(f'workdir: {workdir}  (compiling the epoch program...)',
          file=sys.stderr, flush=True)
  try:
    summary = train_and_evaluate(config, workdir, resume=args.resume,
                                 quiet=args.quiet, dataset=dataset)
  except TrainingError as e:
    print(f'{parser.prog}: error: {e}', file=sys.stderr)
    return 1
  for split in ('validation', 'test'):
    if split not in summary['final']:
      continue
    for decoding in ('argmax', 'bayes'):
      scores = summary['final'][split][decoding]
      print(f"{split} {decoding:>6}: accuracy {100 * scores['accuracy']['mean']:.2f}% "
            f"± {100 * scores['accuracy']['std']:.2f}  mean digit-distance "
            f"error {scores['mean_digit_distance']['mean']:.4f}  far errors "
            f"{100 * scores['far_error_rate']['mean']:.2f}%  "
            f"cyclic {scores['cyclic_error']['mean']:.4f}  "
            f"QWK {scores['qwk']['mean']:.4f}")
  print(f"wall time {summary['wall_s']['total']:.1f}s "
        f"(compile {summary['wall_s']['compile']:.1f}s); outputs in {workdir}")
  return 0


if __name__ == '__main__':
  sys.exit(main())
