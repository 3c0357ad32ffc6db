"""The study's numbers: statistics and the rows of study.csv.

``experiments.py`` runs the cells; this module turns finished cells into
numbers a reviewer can check (results/protocol.md): 95 % t-intervals over
seeds; paired t-tests on the same seeds against the regime's best control
(chosen on validation) and against cross-entropy, Holm-corrected within the
regime and across the regimes; the split of each MDE difference into fewer
and closer mistakes; and the ``train.py`` command that reproduces each row.
``report.py`` writes them out.
"""

from __future__ import annotations

import dataclasses
import math
import shlex
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import numpy as np

import corruptions
from study import stats
from study.plan import Regime
from study.records import FamilyResult, RegimeResult
from trainer.cli import flag_of
from trainer.config import Config
from trainer.resolve import LOSS_FIELDS

METRICS = ('accuracy', 'mean_digit_distance', 'error_rate',
           'mean_error_distance', 'far_share_of_errors', 'far_error_rate',
           'cyclic_error', 'qwk')


# ----------------------------------------------------------------------------
# The Pareto front.


def pareto_front(points: np.ndarray) -> np.ndarray:
  """Mask of points (accuracy, error) not beaten on both by another point."""
  acc, err = points[:, 0], points[:, 1]
  return np.array([not np.any((acc >= a) & (err <= e) & ((acc > a) | (err < e)))
                   for a, e in zip(acc, err, strict=True)])


# ----------------------------------------------------------------------------
# Commands, and a family's final values by seed.


def command_for(config: Config, data_dir: str = '../shared/mnist') -> str:
  """The train.py command that trains ``config`` on the MNIST files in
  ``data_dir``: every field that differs from its default, as its flag."""
  defaults = Config()
  args = ['python', 'train.py', '--data_dir', data_dir]
  for name, value in dataclasses.asdict(config).items():
    if name in ('data_dir', 'tfds_data_dir') or value == getattr(defaults,
                                                                 name):
      continue
    if isinstance(value, bool):  # an on/off flag: given when not the default
      args.append(flag_of(name))
    elif name == 'sweep':
      args += [f'--sweep={n}=' + ','.join(map(str, values))
               for n, values in value.items()]
    else:
      args += [flag_of(name),
               f'{value:g}' if isinstance(value, float) else str(value)]
  return shlex.join(args)


def _values(family: FamilyResult, split: str,
            metric: str) -> dict[int, float]:
  """Seed -> value on ``split`` at the family's chosen decoding, over its
  finals (a final that diverged has none)."""
  decoding = family.choice.decoding
  return {seed: float(value) for cell in family.finals
          if cell.diverged is None
          for seed, value in zip(cell.seeds, cell.scores[split][decoding][
              metric]['per_seed'], strict=True)}


def values(family: FamilyResult, splits: list[str],
           metric: str) -> dict[int, float]:
  """Seed -> the value averaged over ``splits`` (one split, or corruptions)."""
  per_split = [_values(family, split, metric) for split in splits]
  return {seed: float(np.mean([v[seed] for v in per_split]))
          for seed in per_split[0]}


def paired(a: dict[int, float], b: dict[int, float]
           ) -> tuple[np.ndarray, np.ndarray]:
  """The values of ``a`` and ``b`` on the seeds both have, in seed order."""
  seeds = sorted(set(a) & set(b))
  return np.array([a[s] for s in seeds]), np.array([b[s] for s in seeds])


def attribution(family: FamilyResult, reference: FamilyResult,
                splits: list[str]
                ) -> tuple[float, float]:
  """Mean parts of MDE_f - MDE_r from fewer and from closer mistakes
  (:func:`study.stats.fewer_closer`), per split, averaged over the splits."""
  fewer, closer = [], []
  for split in splits:
    e_f, e_r = paired(_values(family, split, 'error_rate'),
                      _values(reference, split, 'error_rate'))
    d_f, d_r = paired(_values(family, split, 'mean_error_distance'),
                      _values(reference, split, 'mean_error_distance'))
    parts = stats.fewer_closer(e_f, e_r, d_f, d_r)
    fewer.append(parts[0])
    closer.append(parts[1])
  return float(np.mean(fewer)), float(np.mean(closer))


# ----------------------------------------------------------------------------
# Rows: one per (group, family), at the family's chosen decoding.

# Compared with the best control; MDE and accuracy also with cross-entropy.
VS_CONTROL = ('mean_digit_distance', 'error_rate', 'mean_error_distance',
              'far_share_of_errors', 'accuracy')
VS_CE = ('mean_digit_distance', 'accuracy')
SHIFTED = 'shifted'


class Group(NamedTuple):
  """A row group (the ``regime`` column), parsed: ``kind`` is ``'test'``
  (a regime's test split, ``name`` the regime), ``'shifted'`` (the mean over
  every corruption), ``'kind'`` (``shifted[<name>]``: the mean over a kind of
  corruption) or ``'corruption'`` (``shifted:<name>``)."""
  kind: str
  name: str


def parse_group(group: str) -> Group:
  """The one reading of a group's name (:func:`groups` writes them)."""
  if group == SHIFTED:
    return Group('shifted', '')
  if group.startswith(f'{SHIFTED}[') and group.endswith(']'):
    return Group('kind', group[len(SHIFTED) + 1:-1])
  if group.startswith(f'{SHIFTED}:'):
    return Group('corruption', group[len(SHIFTED) + 1:])
  return Group('test', group)


def groups(name: str, regime: Regime) -> dict[str, list[str]]:
  """Row groups of a regime: its test split; with shifted finals, the mean
  over every corruption, per kind, and each corruption."""
  out = {name: ['test']}
  if regime.shifted:
    out[SHIFTED] = [f'test[{c}]' for c in corruptions.CORRUPTIONS]
    for kind, names in corruptions.KINDS.items():
      out[f'{SHIFTED}[{kind}]'] = [f'test[{c}]' for c in names]
    for c in corruptions.CORRUPTIONS:
      out[f'{SHIFTED}:{c}'] = [f'test[{c}]']
  return out


def main_groups(rows: list[dict]) -> list[str]:
  """The regimes of the across-regime correction: each test split and the
  shifted mean (not its kinds or corruptions)."""
  return [g for g in dict.fromkeys(r['regime'] for r in rows)
          if parse_group(g).kind in ('test', 'shifted')]


def _compare(row: dict, prefix: str, family: FamilyResult,
             reference: FamilyResult,
             splits: list[str], metrics: Iterable[str]) -> None:
  for metric in metrics:
    ours, theirs = paired(values(family, splits, metric),
                          values(reference, splits, metric))
    row[f'{metric}_{prefix}'], row[f'{metric}_{prefix}_p'] = stats.paired_test(
        ours, theirs)


def _row(group: str, splits: list[str], family_name: str,
         family: FamilyResult, result: RegimeResult) -> dict:
  config = family.choice.config
  final = family.finals[0].config
  own = ';'.join(f'{k}={v:g}' for k, v in sorted(
      dataclasses.asdict(final).items()) if k in (
          'weight_decay', *LOSS_FIELDS)
      and v)
  seeds = sorted(values(family, splits, 'accuracy'))
  row = {'regime': group, 'family': family_name, 'role': family.role,
         'best_control': result.best_control, 'loss': config.loss,
         'distance': config.distance, 'hyperparameters': own,
         'learning_rate': config.learning_rate,
         'rate_on_edge': family.rate_on_edge,
         'epoch': family.choice.epoch, 'epochs': config.epochs,
         'decoding': family.choice.decoding,
         'train_size': family.finals[0].num_train,
         'label_noise': config.label_noise,
         'clean_validation': config.clean_validation,
         'seeds': ';'.join(map(str, seeds)), 'n_seeds': len(seeds),
         'validation_mean_digit_distance': family.choice.validation_mde}
  for metric in METRICS:
    row[metric], row[f'{metric}_ci95'] = stats.mean_ci(
        list(values(family, splits, metric).values()))
  control = result.families[result.best_control]
  _compare(row, 'vs_control', family, control, splits, VS_CONTROL)
  row['fewer_part'], row['closer_part'] = attribution(family, control, splits)
  _compare(row, 'vs_ce', family, result.families['ce'], splits, VS_CE)
  # Seeds 0..n-1 in one run: the first final and its extra seeds at once.
  row['command'] = command_for(dataclasses.replace(final,
                                                   num_seeds=len(seeds)))
  return row


# (test, the family a row's test is against): a column of the rows.
_Tests = list[tuple[str, Callable[[dict[str, Any]], str]]]


def _correct(rows: list[dict], tests: _Tests, suffix: str) -> None:
  """Holm over ``rows`` for each test; a reference row's own test is not
  one (its column stays 1)."""
  for test, reference in tests:
    # A test that could not run (one seed: NaN) stays NaN, uncounted.
    tested = [r for r in rows if r['family'] != reference(r)
              and not math.isnan(r[f'{test}_p'])]
    for r, p in zip(tested, stats.holm([r[f'{test}_p'] for r in tested]),
                    strict=True):
      r[f'{test}_p_{suffix}'] = p
    for r in rows:
      r.setdefault(f'{test}_p_{suffix}',
                   1.0 if r['family'] == reference(r) else float('nan'))


def _tests() -> _Tests:
  return ([(f'{m}_vs_control', lambda r: r['best_control'])
           for m in VS_CONTROL] + [(f'{m}_vs_ce', lambda r: 'ce')
                                   for m in VS_CE])


def study_rows(study: dict[str, RegimeResult]) -> list[dict]:
  """Test rows of every family's finals, tested and corrected."""
  rows = []
  if sum(result.regime.shifted for result in study.values()) > 1:
    raise ValueError('one regime at most may score the shifted test sets: '
                     'their rows are named shifted, not by regime.')
  for name, result in study.items():
    for group, splits in groups(name, result.regime).items():
      group_rows = [_row(group, splits, family_name, family, result)
                    for family_name, family in result.families.items()]
      _correct(group_rows, _tests(), 'holm')
      rows += group_rows
  across = [r for r in rows if r['regime'] in main_groups(rows)]
  _correct(across, _tests(), 'holm_all')
  for r in rows:
    for test, _ in _tests():
      r.setdefault(f'{test}_p_holm_all', float('nan'))
  return rows


def rows_of(rows: list[dict], regime: str) -> list[dict]:
  return [r for r in rows if r['regime'] == regime]
