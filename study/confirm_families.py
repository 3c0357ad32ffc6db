"""The confirmation's families one by one (results/protocol.md,
"Confirmation protocol"), from the committed cells and per-image files:
each family's choice and its scores on the confirmation split (seeds and
images) and the test split (:func:`family_rows`), and, post hoc, how the
validation MDE moves one value tried away from each chosen hyperparameter
(:func:`sensitivity_rows`). ``study.confirm_report`` writes them out as
families.csv and sensitivity.csv.
"""

from __future__ import annotations

import math
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from study import confirm, confirm_cells, stats
from study import rows as study_rows
from study.confirm_rows import (
  BOOTSTRAP_SEED,
  POST_HOC,
  SECONDARY_REPLICATES,
  num_den,
)
from study.records import Choice
from study.tuning import Tuning, point_config

# Each side of H1 and H2: the tuning sensitivity (post hoc).
SENSITIVITY_FAMILIES = ('label_smoothing', 'smoothed_sord')


def _neighbours(values: Sequence[float], chosen: float) -> list[float]:
  i = sorted(values).index(chosen)
  return sorted(values)[max(i - 1, 0):i] + sorted(values)[i + 1:i + 2]


def tuning_moves(tuning: Tuning, grid: Sequence[str]
                 ) -> list[dict[str, Any]]:
  """For each value tried next to the choice, the others held at it (the
  epoch among the evaluated ones; at the chosen decoding and budget): the
  hyperparameter, chosen value, neighbour, the validation MDE there, its
  difference from the choice's and that difference's standard error over
  the tuning seeds (paired: the same seeds train both). NaN where no cell
  tried that value with the others at the choice (an edge extension varies
  one hyperparameter)."""
  choice = tuning.choice
  # Point -> epoch -> validation MDE per tuning seed.
  curves: dict[tuple[float, ...], dict[float, np.ndarray]] = {}
  for cell in tuning.cells:
    for point in cell.points:
      config = point_config(cell, point.hyperparameters)
      if point.diverged or config.epochs != choice.config.epochs:
        continue
      curves[tuple(getattr(config, h) for h in grid)] = {
          e['epoch']: np.asarray(
              e['mean_digit_distance_per_seed'][choice.decoding])
          for e in point.curve}
  chosen = tuple(getattr(choice.config, h) for h in grid)
  at_choice = curves[chosen][choice.epoch]
  not_tried = np.full_like(at_choice, np.nan)

  def move(hyper: str, value: float, neighbour: float,
           per_seed: np.ndarray) -> dict[str, Any]:
    diff = per_seed - at_choice
    return {'hyperparameter': hyper, 'chosen': value, 'neighbour': neighbour,
            'validation_mde': float(per_seed.mean()),
            'delta': float(diff.mean()),
            'delta_se': float(diff.std(ddof=1) / math.sqrt(diff.size))}

  moves = [move('epoch', choice.epoch, e, curves[chosen][e])
           for e in _neighbours(list(curves[chosen]), choice.epoch)]
  for i, hyper in enumerate(grid):
    for value in _neighbours(list({key[i] for key in curves}), chosen[i]):
      curve = curves.get(chosen[:i] + (value,) + chosen[i + 1:], {})
      moves.append(move(hyper, chosen[i], value,
                        curve.get(choice.epoch, not_tried)))
  return moves


def sensitivity_rows(results_dir: pathlib.Path) -> list[dict[str, Any]]:
  """Post hoc: for each side of H1 and H2, the validation MDE (tuning
  seeds, the chosen decoding) one value tried away from each chosen
  hyperparameter (:func:`tuning_moves`), from the committed tuning
  cells."""
  root = results_dir / 'confirmation'
  rows = []
  tunings = confirm_cells.replayed_tunings(root / 'cells', confirm.REGIMES)
  for regime, tuning in tunings.items():
    for family in SENSITIVITY_FAMILIES:
      choice = tuning[family].choice
      for moved in tuning_moves(tuning[family],
                                list(confirm.families(regime)[family].grid)):
        rows.append({'regime': regime, 'family': family, **moved,
                     'epoch': choice.epoch, 'decoding': choice.decoding,
                     'chosen_validation_mde': choice.validation_mde,
                     'delta_share': moved['delta'] / choice.validation_mde,
                     'delta_se_share': moved['delta_se']
                     / choice.validation_mde,
                     'label': POST_HOC,
                     'command': 'python -m study.confirm_report'})
  return rows


# Finals of another family's choice with one thing changed: the validation
# MDE of their choice is not theirs.
UNTUNED = ('sord_permuted', 'label_smoothing_matched')


def _choice_fields(family: str, choice: Choice) -> dict[str, Any]:
  config = choice.config
  return {'loss': config.loss, 'learning_rate': config.learning_rate,
          'epsilon': config.epsilon, 'temperature': config.temperature,
          'distance': config.distance, 'budget': config.epochs,
          'epoch': choice.epoch, 'decoding': choice.decoding,
          'validation_mde': (float('nan') if family in UNTUNED
                             else choice.validation_mde)}


def family_rows(results_dir: pathlib.Path,
                replicates: int = SECONDARY_REPLICATES
                ) -> list[dict[str, Any]]:
  """Each family with all its finals: its choice, and its MDE, error rate
  and mean error distance (at its decoding) on the confirmation split
  (seeds and images), and its MDE on the test split (seeds only), on the
  groups that trained in every final of the regime."""
  root = results_dir / 'confirmation'
  rows = []
  cells_dir = root / 'cells'
  tunings = confirm_cells.replayed_tunings(cells_dir, confirm.ALL_REGIMES)
  for regime, tuning in tunings.items():
    drop = confirm_cells.diverged_groups(cells_dir, regime)
    for family, t in tuning.items():
      decoding = t.choice.decoding
      try:
        groups = confirm_cells.group_distances(
            root / 'images', cells_dir, regime, family, t.choice, decoding)
      except (KeyError, FileNotFoundError):
        continue
      kept = [s for s in confirm_cells.kept_groups({family: groups})
              if s not in drop]
      row: dict[str, Any] = {'regime': regime, 'family': family,
                             **_choice_fields(family, t.choice),
                             'tuning': '; '.join(
                                 confirm.edge_label(family, hyper, side)
                                 for hyper, side in t.on_edge) or 'complete',
                             'groups_dropped': confirm.FINAL_GROUPS
                             - len(kept)}
      # The first group's command; the others differ only in --seed.
      row['command'] = study_rows.command_for(
          confirm.CONFIRMATION.finals.configs(t.choice)[0])
      if kept:
        d_SxN = np.concatenate([groups[s] for s in kept])
        row.update(_levels(d_SxN, replicates))
        finals = confirm_cells.final_cells(cells_dir, regime, family,
                                           t.choice)
        test = confirm_cells.test_values(finals, decoding,
                                         'mean_digit_distance', kept)
        row['test_mde'], half = stats.mean_ci(test)
        row['test_mde_ci95_half'] = half
      rows.append(row)
  return rows


def _levels(d_SxN: np.ndarray, replicates: int) -> dict[str, Any]:
  """MDE with its two-way interval (a difference from zero), error rate
  and mean error distance."""
  zeros = np.zeros_like(d_SxN)
  ones = np.ones_like(d_SxN)
  samples = stats.two_way_bootstrap((d_SxN, ones), (zeros, ones),
                                        replicates=replicates,
                                        seed=BOOTSTRAP_SEED)
  low, high = stats.percentile_interval(samples, 0.95)
  return {'n_seeds': int(d_SxN.shape[0]), 'n_images': int(d_SxN.shape[1]),
          'mde': float(d_SxN.mean()), 'mde_ci95_low': low,
          'mde_ci95_high': high,
          'error_rate': float(np.mean(d_SxN > 0)),
          'mean_error_distance': float(stats.per_seed(
              *num_den(d_SxN, 'mean_error_distance')).mean())}
