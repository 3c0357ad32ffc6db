"""The training loop behind ``train.py``: :func:`train_and_evaluate` trains
every point x seed of a run and writes its workdir; the :class:`Trainer`
holds the compiled programs and the models' state from the first epoch or the
last checkpoint; a NaN or Inf loss stops a plain run naming the step
(:func:`check_finite`); ``runfiles`` writes what the run leaves.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import sys
import time
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.sharding import Mesh

import data
from trainer import devices, parallel, sets
from trainer import progress as progress_lib
from trainer.config import Config, ConfigError, config_json
from trainer.programs import Evaluation, build_programs
from trainer.resolve import resolve
from trainer.run_data import RunData, batches_on_devices, prepare_data
from trainer.runfiles import (
  checkpoint_manager,
  epoch_records,
  read_metrics_lines,
  summary_points,
  write_predictions,
  write_text_atomic,
)
from trainer.spec import RunSpec


class TrainingError(RuntimeError):
  """Training cannot go on (e.g. the loss became NaN)."""


def divergence(loss_SxE: np.ndarray, epoch: int,
               seeds: Sequence[int]) -> str | None:
  """Names the first step whose loss is NaN or Inf, or None."""
  finite = np.isfinite(loss_SxE)
  if finite.all():
    return None
  seed_idx, step = map(int, np.argwhere(~finite)[0])
  return (f'loss became {loss_SxE[seed_idx, step]} at epoch {epoch}, step '
          f'{step + 1} of that epoch (seed {seeds[seed_idx]})')


def check_finite(loss_PxSxE: np.ndarray, epoch: int, spec: RunSpec,
                 diverged: dict[int, str]) -> None:
  """Records the points whose loss diverged; raises once none is left.

  A plain run stops at its first NaN. A sweep keeps training its other
  points (a diverging learning rate is a result of a tuning grid) and
  reports the diverged ones in ``summary.json``.
  """
  for p, loss_SxE in enumerate(loss_PxSxE):
    if p not in diverged and (message := divergence(loss_SxE, epoch,
                                                    spec.seeds)):
      diverged[p] = message
      if spec.num_points > 1:
        print(f'point {p} {spec.points[p]}: {message}; the other points go on',
              file=sys.stderr, flush=True)
  if len(diverged) == spec.num_points:
    first = diverged[min(diverged)]
    raise TrainingError(
        f'{first}; try a lower --learning_rate. The last checkpoint is from '
        'the last evaluated epoch before it.' if spec.num_points == 1 else
        f'every point of the sweep diverged (the first: {first}).')


def last_epoch(config: Config) -> int:
  """The last epoch trained: ``--stop_after`` or else ``--epochs``."""
  return config.stop_after or config.epochs


def scored_at_end_only(name: str) -> bool:
  """The shifted sets ('<split>[<corruption>]') and the calibration split
  are scored after the last epoch only."""
  return '[' in name or name == 'calibration'


def is_eval_epoch(config: Config, epoch: int) -> bool:
  return epoch % config.eval_every == 0 or epoch == last_epoch(config)


def train_and_evaluate(config: Config,
                       workdir: str | os.PathLike[str], *,
                       resume: bool = False, quiet: bool = True,
                       dataset: dict[str, data.Split] | None = None,
                       ) -> dict[str, Any]:
  """Trains every point x seed of ``config`` and writes it all to ``workdir``.

  Args:
    config: the run's configuration (checked by ``resolve.resolve``).
    workdir: output folder: config.json, metrics.jsonl, summary.json,
      predictions.npz and checkpoints/.
    resume: continue from the latest checkpoint in ``workdir``.
    quiet: print one plain line per evaluated epoch instead of a progress
      bar over the training steps.
    dataset: ``{'train': Split, 'test': Split}``; loaded from the config's
      data source when None.

  Returns:
    The summary that is also written to summary.json: ``final`` (a run
    without ``sweep``) and ``points``, one ``{"hyperparameters", "final",
    "distance_matrix"}`` per point of the grid, in grid order; a point whose
    loss diverged has ``final`` None and says where in ``diverged``.

  Raises:
    ConfigError: a bad configuration, naming the flag (before the data are
      loaded, and before anything is written).
    TrainingError: if the loss becomes NaN or Inf (naming the step): at once
      for a plain run, once every point has diverged for a sweep.
  """
  t_start = time.perf_counter()
  spec = resolve(config)
  workdir = pathlib.Path(workdir)
  dataset = dataset or data.load_mnist(config.data_dir,
                                       tfds_data_dir=config.tfds_data_dir)
  run_data = prepare_data(config, dataset, spec.seeds)
  metrics_path = workdir / 'metrics.jsonl'
  check_resumable(config, metrics_path, resume)

  # In a multi-process run every process computes everything; process 0
  # alone writes files (orbax coordinates the checkpoints across processes).
  writer = parallel.is_primary()
  workdir.mkdir(parents=True, exist_ok=True)
  if writer:
    write_text_atomic(workdir / 'config.json', config_json(config))
  progress = None if quiet else progress_lib.StepProgress(
      last_epoch(config), run_data.steps_per_epoch,
      config.batch_size * config.num_seeds * spec.num_points)
  trainer = Trainer.start(spec, run_data, workdir, resume, progress)
  if writer:
    write_text_atomic(metrics_path, ''.join(
        line + '\n' for line in trainer.kept_lines))
  epoch_times, records, evaluations = trainer.train(metrics_path, writer)
  if progress is not None:
    progress.close()
  if writer and 'test' in evaluations:
    write_predictions(workdir / 'predictions.npz', spec, evaluations,
                      run_data.eval_sets)
  summary = {
      'config': dataclasses.asdict(config),
      'seeds': spec.seeds,
      'num_train': run_data.num_train,
      'epochs_completed': last_epoch(config),
      **summary_points(spec, records, trainer.diverged),
      'wall_s': {'total': time.perf_counter() - t_start,
                 'compile': trainer.compile_s,
                 'epochs_this_session': epoch_times},
      'devices': [str(d) for d in jax.devices()],
      'resumed_from_epoch': trainer.start_epoch if resume else None,
  }
  if writer:
    write_text_atomic(workdir / 'summary.json',
                      json.dumps(summary, indent=2) + '\n')
  return summary


def compile_evaluations(evaluate: jax.stages.Wrapped, params_PxS: Any,
                        hp_P: dict[str, jax.Array], eval_sets: dict[str, Any],
                        ) -> dict[str, jax.stages.Compiled]:
  """The evaluation compiled for each set; the shifted sets, of the test
  split's shape, share the test split's program."""
  by_shape: dict[tuple, jax.stages.Compiled] = {}
  compiled = {}
  for name, split in eval_sets.items():
    shape = tuple((x.shape, x.dtype) for x in split)
    if shape not in by_shape:
      by_shape[shape] = evaluate.lower(params_PxS, hp_P, *split).compile()
    compiled[name] = by_shape[shape]
  return compiled


def check_resumable(config: Config, metrics_path: pathlib.Path,
                    resume: bool) -> None:
  """ConfigError if a resumed run would end before the epochs it completed."""
  done = read_metrics_lines(metrics_path, 10**9) if resume else []
  if done and last_epoch(config) < json.loads(done[-1])['epoch']:
    raise ConfigError(f'--epochs/--stop_after {last_epoch(config)} is fewer '
                      'than the epochs already completed in --workdir.')


@dataclasses.dataclass
class Trainer:
  """The compiled programs and the models' state on the devices, from the
  first epoch or the workdir's last checkpoint; :meth:`train` runs the
  epochs left."""
  spec: RunSpec
  run_data: RunData
  mesh: Mesh | None
  params: Any
  opt_state: Any
  compiled_epoch: jax.stages.Compiled
  # Each evaluation set's program (sets of one shape share one).
  compiled_evaluate: dict[str, jax.stages.Compiled]
  eval_sets: dict[str, Any]
  hp_P: dict[str, jax.Array]
  manager: ocp.CheckpointManager
  start_epoch: int
  kept_lines: list[str]   # metrics lines of the epochs already done
  first_batches: tuple[jax.Array, jax.Array]
  compile_s: float  # the epoch's and every evaluation's
  diverged: dict[int, str]
  progress: progress_lib.StepProgress | None

  @classmethod
  def start(cls, spec: RunSpec, run_data: RunData, workdir: pathlib.Path,
            resume: bool, progress: progress_lib.StepProgress | None,
            ) -> Trainer:
    mesh = devices.data_mesh()
    params, opt_state, train_epoch, evaluate = build_programs(
        spec, run_data.steps_per_epoch, mesh, on_step=progress)
    # Evaluation sets, hyperparameters and the first state on every device;
    # the training images travel as each epoch's batches.
    eval_sets = {name: devices.replicate(tuple(split), mesh)
                 for name, split in run_data.eval_sets.items()}
    hp_P = devices.replicate(spec.inputs_P, mesh)
    params, opt_state = devices.replicate((params, opt_state), mesh)
    manager = checkpoint_manager(workdir)
    start_epoch = 0
    if resume and manager.latest_step() is not None:
      start_epoch = manager.latest_step()
      restored = manager.restore(start_epoch, args=ocp.args.StandardRestore(
          {'params': params, 'opt_state': opt_state}))
      params, opt_state = restored['params'], restored['opt_state']
    kept_lines = read_metrics_lines(workdir / 'metrics.jsonl', start_epoch)
    first_batches = batches_on_devices(run_data, spec.seeds, start_epoch + 1,
                                       spec.config.batch_size, mesh)
    t0 = time.perf_counter()
    compiled_epoch = train_epoch.lower(params, opt_state, hp_P,
                                       *first_batches).compile()
    compiled_evaluate = compile_evaluations(evaluate, params, hp_P, eval_sets)
    compile_s = time.perf_counter() - t0
    records = [json.loads(line) for line in kept_lines[-spec.num_points:]]
    diverged = {r['point']: r['diverged'] for r in records if 'diverged' in r}
    return cls(spec, run_data, mesh, params, opt_state, compiled_epoch,
               compiled_evaluate, eval_sets, hp_P, manager, start_epoch,
               kept_lines, first_batches, compile_s, diverged, progress)

  def batches(self, epoch: int) -> tuple[jax.Array, jax.Array]:
    if epoch == self.start_epoch + 1:
      return self.first_batches
    return batches_on_devices(self.run_data, self.spec.seeds, epoch,
                              self.spec.config.batch_size, self.mesh)

  def evaluate_all(self, epoch: int) -> dict[str, Evaluation]:
    """Every evaluation set; the shifted ones and the calibration split
    at the end only (:func:`scored_at_end_only`)."""
    return {name: jax.device_get(self.compiled_evaluate[name](
                self.params, self.hp_P, *split))
            for name, split in self.eval_sets.items()
            if not scored_at_end_only(name)
            or epoch == last_epoch(self.spec.config)}

  def train(self, metrics_path: pathlib.Path, writer: bool,
            ) -> tuple[list[float], list[dict], dict[str, Evaluation]]:
    """Trains and scores the epochs left; (their times, the last metrics
    lines, the last evaluations)."""
    config = self.spec.config
    records = [json.loads(line)
               for line in self.kept_lines[-self.spec.num_points:]]
    epoch_times = []
    evaluations = None
    for epoch in range(self.start_epoch + 1, last_epoch(config) + 1):
      t0 = time.perf_counter()
      if self.progress is not None:
        self.progress.start_epoch(epoch)
      self.params, self.opt_state, loss_PxSxE = self.compiled_epoch(
          self.params, self.opt_state, self.hp_P, *self.batches(epoch))
      loss_PxSxE = np.asarray(loss_PxSxE)
      train_s = time.perf_counter() - t0
      check_finite(loss_PxSxE, epoch, self.spec, self.diverged)
      if not is_eval_epoch(config, epoch):
        epoch_times.append(time.perf_counter() - t0)
        continue
      evaluations = self.evaluate_all(epoch)
      epoch_times.append(time.perf_counter() - t0)
      records = epoch_records(
          epoch, loss_PxSxE, evaluations,
          {'train_s': train_s, 'epoch_s': epoch_times[-1]}, self.diverged,
          sets.run_set_scores(self.spec, evaluations, self.run_data.eval_sets,
                              self.diverged))
      if writer:
        with open(metrics_path, 'a') as f:
          f.write(''.join(json.dumps(r) + '\n' for r in records))
          f.flush()
          os.fsync(f.fileno())
      self.manager.save(epoch, args=ocp.args.StandardSave(
          {'params': self.params, 'opt_state': self.opt_state}))
      if writer:
        progress_lib.report_epoch(self.progress, records)
    self.manager.wait_until_finished()
    if evaluations is None:  # Resumed a finished run: nothing left to train.
      evaluations = self.evaluate_all(last_epoch(config))
    return epoch_times, records, evaluations
