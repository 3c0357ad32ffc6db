"""What a run shows while it trains: a progress bar fed from inside the
compiled epoch, or one plain line per evaluated epoch."""

from __future__ import annotations

import sys
from typing import Any, SupportsFloat, SupportsInt, TextIO

import numpy as np
from tqdm import tqdm


class StepProgress:
  """A progress bar over the training images, fed from the compiled epoch.

  ``programs.build_train_epoch`` calls it (a host callback, about every 1 % of
  an epoch's steps, once per model): it shows images done, images/s, the time
  left and the running loss, without splitting the epoch's program.
  """

  def __init__(self, epochs: int, steps_per_epoch: int, images_per_step: int,
               file: TextIO | None = None) -> None:
    self.steps_per_epoch = steps_per_epoch
    self.bar = tqdm(total=epochs * steps_per_epoch * images_per_step,
                    unit='img', unit_scale=True, dynamic_ncols=True,
                    file=file or sys.stderr)
    self.images_per_step = images_per_step
    self.offset: int = 0
    self.last_step: int | None = None
    self.losses: list[float] = []
    self.epoch_text = ''

  def start_epoch(self, epoch: int) -> None:
    self.offset = (epoch - 1) * self.steps_per_epoch
    self.last_step = None
    self._move_to(self.offset)

  def __call__(self, step: SupportsInt, loss: SupportsFloat) -> None:
    step = int(step)
    if step != self.last_step:  # the first model to report this step
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


def epoch_line(records: list[dict[str, Any]]) -> str:
  """One evaluated epoch in a line; a sweep's points side by side."""
  parts = []
  for record in records:
    if 'diverged' in record:
      parts.append(f"[{record['point']}] diverged")
      continue
    text = f"loss {record['train_loss']['mean']:.4f}"
    for name in ('validation', 'test'):
      if name in record:
        argmax = record[name]['argmax']
        text += (f"  {name[:4]} acc {100 * argmax['accuracy']['mean']:.2f}% "
                 f"MDE {argmax['mean_digit_distance']['mean']:.4f}")
    parts.append(text if len(records) == 1 else f"[{record['point']}] {text}")
  return f"epoch {records[0]['epoch']}: " + ' | '.join(parts)


def report_epoch(progress: StepProgress | None,
                 records: list[dict[str, Any]]) -> None:
  """The epoch's line on the progress bar, or printed (quiet runs)."""
  text = epoch_line(records)
  if progress is None:
    print(f"{text}  ({records[0]['epoch_s']:.1f}s)", flush=True)
  else:
    progress.end_epoch(text)
