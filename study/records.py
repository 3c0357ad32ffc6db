"""The study's records, typed: a tuning cell and its points, a final cell, a
family's tuning and finals, a regime's result.

A cell is stored as a small JSON file (``cells.run_cell``); ``from_json``
reads one as written, so the committed cells keep their format. The records
are frozen: a step of the study makes a new one instead of changing a
record another regime may be reusing.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from study.plan import Regime
from trainer.config import Config

_BOOKKEEPING = ('config', 'seeds', 'num_train', 'wall_s')


@dataclasses.dataclass(frozen=True)
class TuningPoint:
  """One point of a tuning sweep: its swept values and validation curve."""
  hyperparameters: dict[str, Any]
  # One entry per evaluated epoch: 'epoch', the seed-mean metrics of each
  # decoding ('argmax', 'bayes') and 'mean_digit_distance_per_seed'.
  curve: list[dict[str, Any]]
  diverged: str | None  # why the point stopped, or None


@dataclasses.dataclass(frozen=True)
class TuningCell:
  """A tuning run (a sweep on the tuning seeds, validation only)."""
  config: Config
  seeds: list[int]
  num_train: int | None  # None when every point diverged
  wall_s: float
  points: tuple[TuningPoint, ...]

  @classmethod
  def from_json(cls, cell: dict[str, Any]) -> TuningCell:
    return cls(Config(**cell['config']), cell['seeds'], cell['num_train'],
               cell['wall_s'],
               tuple(TuningPoint(**point) for point in cell['points']))


@dataclasses.dataclass(frozen=True)
class FinalCell:
  """A final run: the chosen configuration on fresh seeds, scored once."""
  config: Config
  seeds: list[int]
  num_train: int | None
  wall_s: float
  # split ('validation', 'test', 'test[<corruption>]') -> decoding -> metric
  # -> {'per_seed', 'mean', ...}; empty when the run diverged.
  scores: dict[str, dict[str, dict[str, dict[str, Any]]]]
  diverged: str | None = None

  @classmethod
  def from_json(cls, cell: dict[str, Any]) -> FinalCell:
    scores = {k: v for k, v in cell.items()
              if k not in (*_BOOKKEEPING, 'diverged')}
    return cls(Config(**cell['config']), cell['seeds'], cell['num_train'],
               cell['wall_s'], scores, cell.get('diverged'))


@dataclasses.dataclass(frozen=True)
class Choice:
  """The tuned configuration of a family, and where it was found."""
  config: Config           # the chosen point, no sweep
  epoch: int               # the evaluated epoch with the lowest MDE
  decoding: str            # 'argmax' or 'bayes'
  validation_mde: float    # its mean over the tuning seeds


@dataclasses.dataclass(frozen=True)
class FamilyResult:
  """A family in a regime: its tuning cells and choice, then its finals
  (the first on seeds 0-4; a second on 5-9 when it is close to the best
  control)."""
  role: str
  tuning: tuple[TuningCell, ...]
  choice: Choice
  rate_on_edge: bool  # the chosen rate still on an edge after the extensions
  finals: tuple[FinalCell, ...] = ()


@dataclasses.dataclass(frozen=True)
class RegimeResult:
  """What the report needs of a regime: the families whose finals were
  scored, the best control (chosen on validation), and the diverged finals
  by family with why."""
  regime: Regime
  families: dict[str, FamilyResult]
  best_control: str
  diverged_finals: dict[str, str]
