"""A run's files: its metrics lines, summary and predictions, atomic writes
and checkpoints."""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from numpy.typing import ArrayLike

if TYPE_CHECKING:  # annotations only
  import data
  from trainer.programs import Evaluation
  from trainer.spec import RunSpec


def mean_std(values: ArrayLike) -> dict[str, float]:
  values = np.asarray(values, np.float64)
  std = float(values.std(ddof=1)) if values.size > 1 else 0.0
  return {'mean': float(values.mean()), 'std': std}


def summarize_scores(scores: Mapping[str, Mapping[str, ArrayLike]]
                     ) -> dict[str, Any]:
  """Per-seed lists plus mean/std across seeds, for every decoding/metric."""
  out: dict[str, Any] = {}
  for decoding, per_metric in scores.items():
    out[decoding] = {}
    for name, values in per_metric.items():
      values = np.asarray(values, np.float64).reshape(-1)
      out[decoding][name] = {'per_seed': values.tolist(), **mean_std(values)}
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
  lines = [line for line in path.read_text().splitlines() if line.strip()]
  return [line for line in lines if json.loads(line)['epoch'] <= last_epoch]


def write_text_atomic(path: pathlib.Path, text: str) -> None:
  tmp = path.with_suffix(path.suffix + '.tmp')
  with open(tmp, 'w') as f:
    f.write(text)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


def epoch_records(epoch: int, loss_PxSxE: np.ndarray,
                  evaluations: dict[str, Evaluation], times: dict,
                  diverged: dict[int, str],
                  test_sets_P: list[dict | None] | None = None) -> list[dict]:
  """One metrics line per point; a diverged point's line says so instead of
  scoring its NaN parameters. ``test_sets_P``: each point's prediction sets
  on the test split (``trainer.sets.run_set_scores``), where scored."""
  sets_P = test_sets_P or [None] * len(loss_PxSxE)
  records = []
  for p, loss_SxE in enumerate(loss_PxSxE):
    if p in diverged:
      records.append({'epoch': epoch, 'point': p, 'diverged': diverged[p],
                      **times})
      continue
    per_seed = loss_SxE.mean(axis=1)
    records.append({
        'epoch': epoch, 'point': p,
        'train_loss': {'per_seed': per_seed.tolist(), **mean_std(per_seed)},
        **{name: summarize_scores(jax.tree.map(lambda x, p=p: x[p],
                                               ev.scores))
           for name, ev in evaluations.items()},
        **({'test_sets': summarize_scores(point_sets)}
           if (point_sets := sets_P[p]) is not None else {}),
        **times})
  return records


def _summary_final(record: dict) -> dict | None:
  """A metrics line less its bookkeeping; None for a diverged point."""
  if 'diverged' in record:
    return None
  return {name: value for name, value in record.items()
          if name not in ('epoch', 'point', 'train_s', 'epoch_s')}


def write_predictions(path: pathlib.Path, spec: RunSpec,
                      evaluations: dict[str, Evaluation],
                      eval_sets: dict[str, data.Split]) -> None:
  """The test split's probabilities and predictions of every model; the
  predictions (int8) of every other scored split but validation: the
  confirmation split, and each shifted set '<split>[<corruption>]' as
  '<split>[<corruption>]_argmax' (and _bayes, _labels); the calibration
  and confirmation splits' probabilities too (``calibration_probs``,
  ``confirmation_probs``), to calibrate prediction sets on."""
  # A plain run keeps its arrays per seed; a sweep's have the point first.
  squeeze = (lambda x: x[0]) if not spec.config.sweep else np.asarray
  test = evaluations['test']
  others: dict[str, Any] = {}
  for name, scored in evaluations.items():
    if name in ('test', 'validation'):
      continue
    others.update({
        f'{name}_argmax': squeeze(scored.argmax_PxSxN).astype(np.int8),
        f'{name}_bayes': squeeze(scored.bayes_PxSxN).astype(np.int8),
        f'{name}_labels': eval_sets[name].labels})
  for name in ('calibration', 'confirmation'):  # to calibrate sets on
    if name in evaluations:
      others[f'{name}_probs'] = squeeze(evaluations[name].probs_PxSxNxK)
  np.savez_compressed(path, probs=squeeze(test.probs_PxSxNxK),
                      labels=eval_sets['test'].labels,
                      argmax=squeeze(test.argmax_PxSxN),
                      bayes=squeeze(test.bayes_PxSxN),
                      seeds=np.asarray(spec.seeds),
                      points=np.asarray(json.dumps(spec.points)),
                      **others)


def summary_points(spec: RunSpec, records: list[dict],
                   diverged: dict[int, str]) -> dict[str, Any]:
  """summary.json's ``points`` (and a plain run's ``final``)."""
  points = [{'hyperparameters': point, 'final': _summary_final(record),
             'distance_matrix': distance_KxK.tolist(),
             **({'diverged': diverged[p]} if p in diverged else {})}
            for p, (point, record, distance_KxK) in enumerate(zip(
                spec.points, records, spec.distance_PxKxK, strict=True))]
  if spec.config.sweep:
    return {'points': points}
  return {'final': points[0]['final'],
          'distance_matrix': points[0]['distance_matrix'], 'points': points}
