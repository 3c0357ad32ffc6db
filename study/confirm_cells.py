"""The committed confirmation, read back (nothing trains): each family's tuning
replayed from its cell files through the engine's read-only store, each final
group's per-image digit distances (int8) on the confirmation split, the groups
that diverged, and the finals' per-seed scores on the test split.
``study.confirm_rows`` turns them into estimates.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

from study import confirm, engine
from study.cells import diverged, per_image_arrays
from study.engine import Finals, Protocol, Store
from study.records import Choice, FinalCell
from study.tuning import Tuning


def tuned(cells_dir: pathlib.Path, regime: str,
          protocol: Protocol = confirm.CONFIRMATION) -> dict[str, Tuning]:
  """Each family's tuning, replayed from its committed cells (a secondary
  not run yet is left out), and the families derived from the choices."""
  store = Store(cells_dir, read_only=True, log=lambda message: None)
  families = protocol.families[regime]
  primary = {name: engine.tune(store, protocol, regime, name, family)
             for name, family in families.items()
             if family.phase == confirm.PRIMARY}
  out = dict(primary)
  # In the run's order: each phase's tuned families, then those it derives.
  for phase in confirm.PHASES:
    for name, family in families.items():
      if family.phase == phase != confirm.PRIMARY:
        try:
          out[name] = engine.tune(store, protocol, regime, name, family)
        except FileNotFoundError:
          continue  # not run yet
    for derived in protocol.derived:
      if derived.phase == phase and (
          tuning := derived.tuning(regime, primary)) is not None:
        out[derived.name] = tuning
  return out


def group_distances(images_dir: pathlib.Path, cells_dir: pathlib.Path,
                    regime: str, family: str, choice: Choice, decoding: str,
                    ) -> dict[int, np.ndarray | None]:
  """First seed of each group -> its distances ``[10, N]`` (None: the
  group diverged), each group's cell read back against ``choice``'s final
  configuration (:func:`final_cells`); FileNotFoundError naming a group
  not run yet; ValueError if a cell holds another configuration or a file
  other seeds."""
  finals = confirm.CONFIRMATION.finals
  out: dict[int, np.ndarray | None] = {}
  for g, (seed, cell) in enumerate(final_cells(
      cells_dir, regime, family, choice, finals).items()):
    if cell.diverged is not None:
      out[seed] = None
      continue
    stem = finals.stem(family, g)
    f = per_image_arrays(images_dir / regime / f'{stem}.npz')
    if list(f['seeds']) != cell.seeds:
      raise ValueError(f'{stem}.npz holds seeds {list(f["seeds"])}.')
    out[seed] = f[decoding].astype(np.int16)
  return out


def diverged_groups(cells_dir: pathlib.Path, regime: str) -> set[int]:
  """The first seeds of the groups that diverged in any final of the
  regime (the secondary rows drop them from every family, so that a family
  scores the same seeds in each of its rows)."""
  return {int(path.stem.rsplit('-s', 1)[1])
          for path in (cells_dir / regime).glob('final-*-s*.json')
          if diverged(path)}


def kept_groups(groups: dict[str, dict[int, Any]]) -> list[int]:
  """The groups that trained in every family (a diverged one is dropped
  from all)."""
  first = next(iter(groups.values()))
  return [s for s in first
          if all(g[s] is not None for g in groups.values())]


def replayed_tunings(cells_dir: pathlib.Path, regimes: Sequence[str]
             ) -> dict[str, dict[str, Tuning]]:
  """Each regime's tunings; a regime whose primary cells are missing is
  left out."""
  out = {}
  for regime in dict.fromkeys(regimes):
    try:
      out[regime] = tuned(cells_dir, regime)
    except FileNotFoundError:
      continue
  return out


def final_cells(cells_dir: pathlib.Path, regime: str | None, family: str,
                choice: Choice, finals: Finals = confirm.CONFIRMATION.finals
                ) -> dict[int, FinalCell]:
  """First seed -> each final group's cell, read back through the
  engine's read-only store: checked to hold ``choice``'s final
  configuration (FileNotFoundError for a group not run yet). ``regime``:
  the cells' folder under ``cells_dir`` (None: ``cells_dir`` itself)."""
  store = Store(cells_dir, read_only=True, log=lambda message: None)
  return {cell.config.seed: cell for cell in engine.run_finals(
      store, finals, regime, family, choice)}


def test_values(cells: dict[int, FinalCell], decoding: str, metric: str,
                kept: Sequence[int]) -> np.ndarray:
  """Per seed, a metric on the test split from the final cells of the
  kept groups."""
  return np.asarray([value for seed in kept for value in
                     cells[seed].scores['test'][decoding][metric][
                         'per_seed']], np.float64)


def wall_seconds(cells_dir: pathlib.Path, regime: str,
                 families: Collection[str]) -> float:
  """The summed ``wall_s`` of a regime's committed cells (tuning and
  finals) of ``families``: what they cost on the machine that ran them."""
  return sum(float(json.loads(path.read_text())['wall_s'])
             for path in (cells_dir / regime).glob('*.json')
             if path.stem.split('-')[1] in families)
