"""The study's report: statistics, rows of study.csv, study.md and the plots.

``experiments.py`` runs the cells; this module turns finished cells into
numbers a reviewer can check: 95 % t-intervals over seeds, paired t-tests
against cross-entropy on the same seeds with a Holm correction within each
regime, and the ``train.py`` command that reproduces each row.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import pathlib
import shlex

import numpy as np

from config import Config

METRICS = ('accuracy', 'mean_digit_distance', 'error_rate',
           'mean_error_distance', 'far_share_of_errors', 'far_error_rate',
           'cyclic_error', 'qwk')


# ----------------------------------------------------------------------------
# Statistics.


def t_quantile(df: int, q: float = 0.975) -> float:
  import scipy.stats
  return float(scipy.stats.t.ppf(q, df))


def mean_ci(values) -> tuple[float, float]:
  """Mean and half-width of the 95 % t confidence interval (0 for one value)."""
  values = np.asarray(values, np.float64)
  if values.size < 2:
    return float(values.mean()), 0.0
  half = (t_quantile(values.size - 1) * values.std(ddof=1)
          / math.sqrt(values.size))
  return float(values.mean()), float(half)


def paired_test(values, baseline) -> tuple[float, float]:
  """Mean paired difference and two-sided p-value (paired t-test)."""
  import scipy.stats
  diff = np.asarray(values, np.float64) - np.asarray(baseline, np.float64)
  if diff.size < 2 or np.all(diff == diff[0]):
    return float(diff.mean()), 1.0 if np.all(diff == 0) else 0.0
  p_value = scipy.stats.ttest_rel(values, baseline).pvalue
  return float(diff.mean()), float(p_value)


def holm(p_values: list[float]) -> list[float]:
  """Holm-Bonferroni adjusted p-values (same order as given)."""
  order = np.argsort(p_values)
  adjusted = np.empty(len(p_values))
  running = 0.0
  for rank, i in enumerate(order):
    running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
    adjusted[i] = running
  return adjusted.tolist()


def pareto_front(points: np.ndarray) -> np.ndarray:
  """Mask of points (accuracy, error) not beaten on both by another point."""
  acc, err = points[:, 0], points[:, 1]
  return np.array([not np.any((acc >= a) & (err <= e) & ((acc > a) | (err < e)))
                   for a, e in zip(acc, err, strict=True)])


# ----------------------------------------------------------------------------
# Rows: one per (regime, configuration, decoding), test values.


def command_for(config: dict) -> str:
  """The train.py command that reproduces a final cell."""
  defaults = dataclasses.asdict(Config())
  args = ['python', 'train.py', '--data_dir', '../shared/mnist']
  for name, value in config.items():
    if name in ('data_dir', 'tfds_data_dir') or value == defaults[name]:
      continue
    if name == 'score_test':
      args.append('--no_test')
    elif name == 'shifted_test':
      args.append('--shifted_test')
    elif name == 'sweep':
      args += [f'--sweep={n}=' + ','.join(map(str, values))
               for n, values in value.items()]
    else:
      args += [f'--{name}',
               f'{value:g}' if isinstance(value, float) else str(value)]
  return shlex.join(args)


def per_seed(family: dict, split: str, metric: str) -> np.ndarray:
  """A family's test values over its final seeds (every final cell), at its
  chosen decoding; ``split`` is 'test' or 'test[<corruption>]'."""
  decoding = family['choice'].decoding
  return np.concatenate([
      np.asarray(cell[split][decoding][metric]['per_seed'], np.float64)
      for cell in family['finals']])


def final_mde_per_seed(family: dict) -> np.ndarray:
  return per_seed(family, 'test', 'mean_digit_distance')
