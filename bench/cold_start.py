"""Time to 99 %: ``python train.py --epochs 1`` from a cold start
(interpreter, data, compile, epoch, evaluation), wall clock."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any


def time_to_99(data_dir: str | None, train_args: Sequence[str] = (),
               target: float = 0.99) -> dict[str, Any]:
  """``python train.py --epochs 1`` from a cold start, wall clock."""
  with tempfile.TemporaryDirectory() as workdir:
    command = [sys.executable, 'train.py', '--epochs', '1', '--quiet',
               '--workdir', workdir, *train_args]
    if data_dir:
      command += ['--data_dir', str(pathlib.Path(data_dir).resolve())]
    t0 = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True,
                   cwd=pathlib.Path(__file__).resolve().parents[1])  # the root
    total = time.perf_counter() - t0
    summary = json.loads((pathlib.Path(workdir) / 'summary.json').read_text())
  accuracy = summary['final']['test']['argmax']['accuracy']['mean']
  shown = ['python', *command[1:]]
  shown[shown.index('--workdir') + 1] = 'WORKDIR'
  return {'command': ' '.join(shown), 'accuracy': accuracy,
          'reached_target': accuracy >= target, 'total_s': total,
          'compile_s': summary['wall_s']['compile'],
          'train_and_eval_s': sum(summary['wall_s']['epochs_this_session'])}
