"""Train the MNIST CNN with any registered loss; evaluate on validation and test.

    python train.py --data_dir ../shared/mnist --epochs 3
    python train.py --loss expected_cost --distance cyclic --num_seeds 4

A thin CLI over :func:`train_and_evaluate`. Each epoch is one compiled program
(shuffling, every step and the optimizer inside one ``lax.scan``), vmapped over
``--num_seeds`` independent models. After every evaluated epoch the
validation and test splits are scored for argmax and for cost-aware
(``bayes_decision``) predictions, a line goes to ``metrics.jsonl`` and an
orbax checkpoint is written; ``--resume`` continues a killed run and reaches
the same final numbers. The configuration and its flags live in ``config.py``,
the compiled programs in ``programs.py``, the run's files in ``runfiles.py``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import sys
import time
from typing import Any, NamedTuple

import jax
import numpy as np
import orbax.checkpoint as ocp

import corruptions
import data
from config import (SHIFTED_TEST_SIZE, Config, build_parser, check_data_flags,
                    config_from_args, load_distance)
import parallel
from programs import build_programs
from runfiles import (checkpoint_manager, mean_std, read_metrics_lines,
                      summarize_scores, write_text_atomic)


class TrainingError(RuntimeError):
  """Training cannot go on (e.g. the loss became NaN)."""


def check_finite(loss_SxE, epoch: int, seeds) -> None:
  """Raises TrainingError naming the first step whose loss is NaN or Inf."""
  finite = np.isfinite(loss_SxE)
  if finite.all():
    return
  seed_idx, step = map(int, np.argwhere(~finite)[0])
  value = loss_SxE[seed_idx, step]
  raise TrainingError(
      f'loss became {value} at epoch {epoch}, step {step + 1} of that epoch '
      f'(seed {seeds[seed_idx]}); try a lower --learning_rate. The last '
      'checkpoint is from the last evaluated epoch before it.')


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


def epoch_batches(run_data: RunData, seeds, epoch: int, batch_size: int,
                  rows: slice = slice(None)):
  """Each seed's shuffled batches of an epoch, made on the host.

  Returns images ``[S, E, B', 28, 28, 1]`` (uint8) and labels ``[S, E, B']``
  where ``B'`` is ``rows`` of every batch of ``B``: a process of a
  multi-process run makes only its own share. The order depends only on the
  seed and the epoch (``jax.random``, the same on every process and backend).
  """
  num_train = run_data.subset_SxM.shape[1]
  steps = num_train // batch_size
  images, labels = [], []
  for s, seed in enumerate(seeds):
    key = jax.random.fold_in(jax.random.key(seed), epoch)
    order_M = run_data.subset_SxM[s][np.asarray(
        jax.random.permutation(key, num_train))]
    idx_ExB = order_M[:steps * batch_size].reshape(steps, batch_size)[:, rows]
    images.append(run_data.images[idx_ExB])
    labels.append(run_data.labels_SxN[s][idx_ExB])
  return np.stack(images), np.stack(labels)


def batches_on_devices(run_data: RunData, seeds, epoch: int, batch_size: int,
                       mesh):
  """The epoch's batches on the devices; each process makes only its rows."""
  steps = run_data.subset_SxM.shape[1] // batch_size
  return parallel.shard_batches(
      lambda rows: epoch_batches(run_data, seeds, epoch, batch_size, rows),
      (len(seeds), steps, batch_size), mesh)


def train_and_evaluate(config: Config, workdir, *, resume: bool = False,
                       quiet: bool = True, dataset=None) -> dict[str, Any]:
  """Trains ``config.num_seeds`` models and writes everything to ``workdir``.

  Args:
    config: the run's configuration.
    workdir: output folder: config.json, metrics.jsonl, summary.json,
      predictions.npz and checkpoints/.
    resume: continue from the latest checkpoint in ``workdir``.
    quiet: print one plain line per evaluated epoch instead of a progress
      bar over the training steps.
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

  # In a multi-process run every process computes everything; process 0
  # alone writes files (orbax coordinates the checkpoints across processes).
  writer = parallel.is_primary()
  workdir.mkdir(parents=True, exist_ok=True)
  if writer:
    write_text_atomic(workdir / 'config.json',
                      json.dumps(dataclasses.asdict(config), indent=2) + '\n')

  mesh = parallel.data_mesh()
  progress = None if quiet else StepProgress(
      config.epochs, steps_per_epoch, config.batch_size * len(seeds))
  params, opt_state, train_epoch, evaluate = build_programs(
      config, seeds, steps_per_epoch, mesh, on_step=progress)

  # Evaluation sets and the first state on every device; the training
  # images travel as each epoch's batches (batches_on_devices).
  eval_sets = {name: parallel.replicate(tuple(split), mesh)
               for name, split in run_data.eval_sets.items()}
  params, opt_state = parallel.replicate((params, opt_state), mesh)

  manager = checkpoint_manager(workdir)
  start_epoch = 0
  metrics_path = workdir / 'metrics.jsonl'
  if resume and manager.latest_step() is not None:
    start_epoch = manager.latest_step()
    restored = manager.restore(start_epoch, args=ocp.args.StandardRestore(
        {'params': params, 'opt_state': opt_state}))
    params, opt_state = restored['params'], restored['opt_state']
  kept_lines = read_metrics_lines(metrics_path, start_epoch)
  if writer:
    write_text_atomic(metrics_path, ''.join(l + '\n' for l in kept_lines))

  batches = lambda epoch: batches_on_devices(run_data, seeds, epoch,
                                             config.batch_size, mesh)
  first_batches = batches(start_epoch + 1)
  t0 = time.perf_counter()
  train_epoch = train_epoch.lower(params, opt_state, *first_batches).compile()
  compile_s = time.perf_counter() - t0

  def evaluate_all(params, epoch):
    """Scores of every evaluation set; shifted test sets at the end only."""
    return {name: jax.device_get(evaluate(params, *split))
            for name, split in eval_sets.items()
            if not name.startswith('test[') or epoch == config.epochs}

  epoch_times = []
  record = json.loads(kept_lines[-1]) if kept_lines else None
  outputs = None
  for epoch in range(start_epoch + 1, config.epochs + 1):
    t0 = time.perf_counter()
    if progress is not None:
      progress.start_epoch(epoch)
    epoch_data = first_batches if epoch == start_epoch + 1 else batches(epoch)
    params, opt_state, loss_SxE = train_epoch(params, opt_state, *epoch_data)
    loss_SxE = np.asarray(loss_SxE)
    train_s = time.perf_counter() - t0
    check_finite(loss_SxE, epoch, seeds)
    if not is_eval_epoch(config, epoch):
      epoch_times.append(time.perf_counter() - t0)
      continue
    outputs = evaluate_all(params, epoch)
    epoch_times.append(time.perf_counter() - t0)
    record = {
        'epoch': epoch,
        'train_loss': {'per_seed': loss_SxE.mean(axis=1).tolist(),
                       **mean_std(loss_SxE.mean(axis=1))},
        **{name: summarize_scores(out[0]) for name, out in outputs.items()},
        'train_s': train_s,
        'epoch_s': epoch_times[-1],
    }
    if writer:
      with open(metrics_path, 'a') as f:
        f.write(json.dumps(record) + '\n')
        f.flush()
        os.fsync(f.fileno())
    manager.save(epoch, args=ocp.args.StandardSave(
        {'params': params, 'opt_state': opt_state}))
    if writer:
      _report(progress, record)
  manager.wait_until_finished()
  if progress is not None:
    progress.close()

  if outputs is None:  # Resumed a finished run: nothing left to train.
    outputs = evaluate_all(params, config.epochs)
  if writer and 'test' in outputs:
    _, probs_SxNxK, argmax_SxN, bayes_SxN = outputs['test']
    np.savez_compressed(workdir / 'predictions.npz', probs=probs_SxNxK,
                        labels=run_data.eval_sets['test'].labels,
                        argmax=argmax_SxN, bayes=bayes_SxN,
                        seeds=np.asarray(seeds))
  summary = {
      'config': dataclasses.asdict(config),
      'seeds': seeds,
      'num_train': num_train,
      'distance_matrix': np.asarray(load_distance(config.distance)).tolist(),
      'epochs_completed': config.epochs,
      'final': {name: value for name, value in record.items()
                if name not in ('epoch', 'train_s', 'epoch_s')},
      'wall_s': {'total': time.perf_counter() - t_start, 'compile': compile_s,
                 'epochs_this_session': epoch_times},
      'devices': [str(d) for d in jax.devices()],
      'resumed_from_epoch': start_epoch if resume else None,
  }
  if writer:
    write_text_atomic(workdir / 'summary.json',
                      json.dumps(summary, indent=2) + '\n')
  return summary


class StepProgress:
  """A progress bar over the training images, fed from the compiled epoch.

  ``build_train_epoch`` calls it (a host callback, about every 1 % of an
  epoch's steps, once per seed): it shows images done, images/s, the time
  left and the running loss, without splitting the epoch's program.
  """

  def __init__(self, epochs: int, steps_per_epoch: int, images_per_step: int,
               file=None):
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top
    self.steps_per_epoch = steps_per_epoch
    self.bar = tqdm(total=epochs * steps_per_epoch * images_per_step,
                    unit='img', unit_scale=True, dynamic_ncols=True,
                    file=file or sys.stderr)
    self.images_per_step = images_per_step
    self.offset, self.last_step, self.losses = 0, None, []
    self.epoch_text = ''

  def start_epoch(self, epoch: int) -> None:
    self.offset = (epoch - 1) * self.steps_per_epoch
    self.last_step = None
    self._move_to(self.offset)

  def __call__(self, step, loss) -> None:
    step = int(step)
    if step != self.last_step:  # the first seed to report this step
      self.last_step, self.losses = step, []
      self._move_to(self.offset + step + 1)
    self.losses.append(float(loss))
    self.bar.set_postfix_str(
        f'loss {np.mean(self.losses):.4f}{self.epoch_text}', refresh=False)

  def end_epoch(self, text: str) -> None:
    self.epoch_text = f'  | {text}'
    self._move_to(self.offset + self.steps_per_epoch)
    self.bar.set_postfix_str(text)

  def _move_to(self, steps: int) -> None:
    self.bar.update(steps * self.images_per_step - self.bar.n)

  def close(self) -> None:
    self.bar.close()


def _report(progress, record) -> None:
  text = f"epoch {record['epoch']}: loss {record['train_loss']['mean']:.4f}"
  for name in ('validation', 'test'):
    if name in record:
      argmax = record[name]['argmax']
      text += (f"  {name[:4]} acc {100 * argmax['accuracy']['mean']:.2f}% "
               f"MDE {argmax['mean_digit_distance']['mean']:.4f}")
  if progress is None:
    print(f"{text}  ({record['epoch_s']:.1f}s)", flush=True)
  else:
    progress.end_epoch(text)


def main(argv=None) -> int:
  parser = build_parser()
  argv = sys.argv[1:] if argv is None else argv
  args = parser.parse_args(argv)
  if error := parallel.check_flags(args):
    parser.error(error)
  if parallel.wanted(args):  # before anything touches a JAX device
    try:
      parallel.initialize(args)
    except parallel.DistributedError as e:
      print(f'{parser.prog}: error: {e}', file=sys.stderr)
      return 1
    if jax.process_count() > 1 and args.workdir is None:
      parser.error('a multi-process run needs --workdir (the same folder for '
                   'every process).')
  config, workdir = config_from_args(args, parser, argv)
  try:
    dataset = data.load_mnist(config.data_dir,
                              tfds_data_dir=config.tfds_data_dir,
                              download=False if args.no_download else None)
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
  if jax.process_count() > 1:
    try:  # also the barrier before process 0 writes to the workdir
      parallel.check_agreement(config, workdir, args.resume, dataset)
    except parallel.DistributedError as e:
      parser.error(str(e))
  # A progress bar on a terminal; plain lines in logs, pipes and from every
  # process of a multi-process run (process 0 alone prints them).
  quiet = args.quiet or not sys.stderr.isatty() or jax.process_count() > 1
  if not quiet:
    print(f'workdir: {workdir}  (compiling the epoch program...)',
          file=sys.stderr, flush=True)
  try:
    summary = train_and_evaluate(config, workdir, resume=args.resume,
                                 quiet=quiet, dataset=dataset)
  except TrainingError as e:
    print(f'{parser.prog}: error: {e}', file=sys.stderr)
    return 1
  except Exception:  # pylint: disable=broad-except
    if jax.process_count() == 1:
      raise
    parallel.exit_after_failure(parser.prog)
  if not parallel.is_primary():
    return 0
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
