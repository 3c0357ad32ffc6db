"""A run's files: metrics lines, summaries, atomic writes and checkpoints."""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import orbax.checkpoint as ocp
from numpy.typing import ArrayLike


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
