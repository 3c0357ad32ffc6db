"""A finished run's models back from its workdir: its configuration and last
checkpoint, scoring new images."""

from __future__ import annotations

import json
import pathlib

import jax
import numpy as np
import orbax.checkpoint as ocp

from trainer.config import Config, migrate
from trainer.programs import build_evaluate, build_programs, eval_graphdef
from trainer.resolve import resolve
from trainer.runfiles import checkpoint_manager


def predict_probs(workdir: pathlib.Path, images_NxHxWxC: np.ndarray
                  ) -> np.ndarray:
  """Every seed's class probabilities ``[S, N, K]`` of uint8 images, from
  the last checkpoint of a plain run (not a sweep) in ``workdir``.

  Raises:
    ValueError: no config.json or checkpoint there, or a sweep.
  """
  config_path = workdir / 'config.json'
  if not config_path.is_file():
    raise ValueError(f'{workdir} has no config.json: not a run\'s workdir.')
  spec = resolve(Config(**migrate(json.loads(config_path.read_text()))))
  if spec.config.sweep:
    raise ValueError(f'{workdir} is a sweep: rerun the chosen point alone.')
  manager = checkpoint_manager(workdir)
  step = manager.latest_step()
  if step is None:
    raise ValueError(f'{workdir} has no checkpoint.')
  # The optimizer's state only gives the checkpoint's structure: its
  # schedule's length does not change it.
  programs = build_programs(spec, steps_per_epoch=1)
  restored = manager.restore(step, args=ocp.args.StandardRestore(
      {'params': programs.params, 'opt_state': programs.opt_state}))
  evaluate = jax.jit(build_evaluate(eval_graphdef(spec), spec))
  labels_N = np.zeros(len(images_NxHxWxC), np.int32)
  evaluation = evaluate(restored['params'], jax.device_put(spec.inputs_P),
                        images_NxHxWxC, labels_N)
  return np.asarray(evaluation.probs_PxSxNxK[0])
