"""The study's report: statistics, rows of study.csv, study.md and the plots.

``experiments.py`` runs the cells; this module turns finished cells into
numbers a reviewer can check (results/protocol.md): 95 % t-intervals over
seeds; paired t-tests on the same seeds against the regime's best control
(chosen on validation) and against cross-entropy, Holm-corrected within the
regime and across the regimes; the split of each MDE difference into fewer
and closer mistakes; and the ``train.py`` command that reproduces each row.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import pathlib
import shlex

import numpy as np

import corruptions
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
  if diff.size < 2:
    return float(diff.mean()), float('nan')
  if np.all(diff == 0):
    return 0.0, 1.0
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
# Commands, and a family's final values by seed.


def command_for(config: dict) -> str:
  """The train.py command that reproduces a final cell."""
  defaults = dataclasses.asdict(Config())
  args = ['python', 'train.py', '--data_dir', '../shared/mnist']
  for name, value in config.items():
    if name in ('data_dir', 'tfds_data_dir') or value == defaults[name]:
      continue
    if name == 'score_test':
      args.append('--no_test')
    elif value is True:
      args.append(f'--{name}')
    elif name == 'sweep':
      args += [f'--sweep={n}=' + ','.join(map(str, values))
               for n, values in value.items()]
    else:
      args += [f'--{name}',
               f'{value:g}' if isinstance(value, float) else str(value)]
  return shlex.join(args)


def _values(family: dict, split: str, metric: str) -> dict[int, float]:
  """Seed -> value on ``split`` at the family's chosen decoding, over its
  finals (a final that diverged has none)."""
  decoding = family['choice'].decoding
  return {seed: float(value) for cell in family['finals']
          if 'diverged' not in cell
          for seed, value in zip(cell['seeds'], cell[split][decoding][metric][
              'per_seed'], strict=True)}


def values(family: dict, splits: list[str], metric: str) -> dict[int, float]:
  """Seed -> the value averaged over ``splits`` (one split, or corruptions)."""
  per_split = [_values(family, split, metric) for split in splits]
  return {seed: float(np.mean([v[seed] for v in per_split]))
          for seed in per_split[0]}


def paired(a: dict[int, float], b: dict[int, float]):
  """The values of ``a`` and ``b`` on the seeds both have, in seed order."""
  seeds = sorted(set(a) & set(b))
  return np.array([a[s] for s in seeds]), np.array([b[s] for s in seeds])


def attribution(family: dict, reference: dict, splits: list[str]
                ) -> tuple[float, float]:
  """Mean parts of MDE_f - MDE_r from fewer and from closer mistakes.

  Per seed and split, with e the error rate and d the mean distance among
  errors, ``e_f d_f - e_r d_r = (e_f - e_r)(d_f + d_r)/2 +
  (d_f - d_r)(e_f + e_r)/2`` exactly: the first term is fewer mistakes, the
  second closer ones.
  """
  fewer, closer = [], []
  for split in splits:
    e_f, e_r = paired(_values(family, split, 'error_rate'),
                      _values(reference, split, 'error_rate'))
    d_f, d_r = paired(_values(family, split, 'mean_error_distance'),
                      _values(reference, split, 'mean_error_distance'))
    fewer.append(np.mean((e_f - e_r) * (d_f + d_r) / 2))
    closer.append(np.mean((d_f - d_r) * (e_f + e_r) / 2))
  return float(np.mean(fewer)), float(np.mean(closer))


# ----------------------------------------------------------------------------
# Rows: one per (group, family), at the family's chosen decoding.

# Compared with the best control; MDE and accuracy also with cross-entropy.
VS_CONTROL = ('mean_digit_distance', 'error_rate', 'mean_error_distance',
              'far_share_of_errors', 'accuracy')
VS_CE = ('mean_digit_distance', 'accuracy')
SHIFTED = 'shifted'


def groups(name: str, regime) -> dict[str, list[str]]:
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
          if g == SHIFTED or not g.startswith(SHIFTED)]


def _compare(row: dict, prefix: str, family: dict, reference: dict,
             splits: list[str], metrics) -> None:
  for metric in metrics:
    ours, theirs = paired(values(family, splits, metric),
                          values(reference, splits, metric))
    row[f'{metric}_{prefix}'], row[f'{metric}_{prefix}_p'] = paired_test(
        ours, theirs)


def _row(group: str, splits, family_name: str, family: dict,
         result: dict) -> dict:
  config = family['choice'].config
  own = ';'.join(f'{k}={v:g}' for k, v in sorted(
      family['finals'][0]['config'].items()) if k in (
          'weight_decay', 'epsilon', 'temperature', 'alpha', 'kappa',
          'ce_weight') and v)
  seeds = sorted(values(family, splits, 'accuracy'))
  row = {'regime': group, 'family': family_name, 'role': family['role'],
         'best_control': result['best_control'], 'loss': config.loss,
         'distance': config.distance, 'hyperparameters': own,
         'learning_rate': config.learning_rate,
         'rate_on_edge': family['rate_on_edge'],
         'epoch': family['choice'].epoch, 'epochs': config.epochs,
         'decoding': family['choice'].decoding,
         'train_size': family['finals'][0]['num_train'],
         'label_noise': config.label_noise,
         'seeds': ';'.join(map(str, seeds)), 'n_seeds': len(seeds),
         'validation_mean_digit_distance': family['choice'].validation_mde}
  for metric in METRICS:
    row[metric], row[f'{metric}_ci95'] = mean_ci(
        list(values(family, splits, metric).values()))
  control = result['families'][result['best_control']]
  _compare(row, 'vs_control', family, control, splits, VS_CONTROL)
  row['fewer_part'], row['closer_part'] = attribution(family, control, splits)
  _compare(row, 'vs_ce', family, result['families']['ce'], splits, VS_CE)
  # Seeds 0..n-1 in one run: the first final and its extra seeds at once.
  row['command'] = command_for(dict(family['finals'][0]['config'],
                                    num_seeds=len(seeds)))
  return row


def _correct(rows: list[dict], tests, suffix: str) -> None:
  """Holm over ``rows`` for each test; a reference row's own test is not
  one (its column stays 1)."""
  for test, reference in tests:
    # A test that could not run (one seed: NaN) stays NaN, uncounted.
    tested = [r for r in rows if r['family'] != reference(r)
              and not math.isnan(r[f'{test}_p'])]
    for r, p in zip(tested, holm([r[f'{test}_p'] for r in tested]),
                    strict=True):
      r[f'{test}_p_{suffix}'] = p
    for r in rows:
      r.setdefault(f'{test}_p_{suffix}',
                   1.0 if r['family'] == reference(r) else float('nan'))


def _tests():
  return ([(f'{m}_vs_control', lambda r: r['best_control'])
           for m in VS_CONTROL] + [(f'{m}_vs_ce', lambda r: 'ce')
                                   for m in VS_CE])


def study_rows(study: dict) -> list[dict]:
  """Test rows of every family's finals, tested and corrected."""
  rows = []
  if sum(result['regime'].shifted for result in study.values()) > 1:
    raise ValueError('one regime at most may score the shifted test sets: '
                     'their rows are named shifted, not by regime.')
  for name, result in study.items():
    for group, splits in groups(name, result['regime']).items():
      group_rows = [_row(group, splits, family_name, family, result)
                    for family_name, family in result['families'].items()]
      _correct(group_rows, _tests(), 'holm')
      rows += group_rows
  across = [r for r in rows if r['regime'] in main_groups(rows)]
  _correct(across, _tests(), 'holm_all')
  for r in rows:
    for test, _ in _tests():
      r.setdefault(f'{test}_p_holm_all', float('nan'))
  return rows


def rows_of(rows, regime):
  return [r for r in rows if r['regime'] == regime]


# ----------------------------------------------------------------------------
# Verdicts.

SIGNIFICANT = 0.05


def _p(row: dict, test: str) -> str:
  across = row[f'{test}_p_holm_all']
  return (f"Holm p = {row[f'{test}_p_holm']:.2g}" +
          ('' if math.isnan(across) else f', across regimes {across:.2g}'))


def _attributed(row: dict) -> str:
  """Fewer or closer mistakes, with the tests of each."""
  return (f"fewer mistakes {row['fewer_part']:+.4f} (error rate "
          f"{100 * row['error_rate_vs_control']:+.2f} pp, "
          f"{_p(row, 'error_rate_vs_control')}), closer mistakes "
          f"{row['closer_part']:+.4f} (mean error distance "
          f"{row['mean_error_distance_vs_control']:+.2f}, "
          f"{_p(row, 'mean_error_distance_vs_control')})")


def verdict(rows: list[dict], regime: str) -> str:
  """The answer for one group: the best family on MDE, the best control,
  and whether a distance-aware family beats that control significantly."""
  group = rows_of(rows, regime)
  best = min(group, key=lambda r: r['mean_digit_distance'])
  control = next(r for r in group if r['family'] == r['best_control'])
  ce = next(r for r in group if r['family'] == 'ce')
  aware = [r for r in group if r['role'] == 'distance-aware']
  better = [r for r in aware if r['mean_digit_distance_vs_control'] < 0 and
            r['mean_digit_distance_vs_control_p_holm'] < SIGNIFICANT]
  worse = [r for r in aware if r['mean_digit_distance_vs_control'] > 0 and
           r['mean_digit_distance_vs_control_p_holm'] < SIGNIFICANT]
  lines = [f"- Lowest test MDE: **{best['family']}** "
           f"({best['mean_digit_distance']:.4f}). Best control (chosen on "
           f"validation): **{control['family']}** "
           f"({control['mean_digit_distance']:.4f}; cross-entropy "
           f"{ce['mean_digit_distance']:.4f})."]
  if better:
    lines.append('- **Knowing the distance helps beyond the best control**: '
                 f'{len(better)} of {len(aware)} distance-aware families '
                 'lower the MDE significantly:')
    lines += [f"  - {r['family']}: MDE "
              f"{r['mean_digit_distance_vs_control']:+.4f} "
              f"({_p(r, 'mean_digit_distance_vs_control')}); "
              f"{_attributed(r)}; accuracy "
              f"{100 * r['accuracy_vs_control']:+.2f} pp." for r in better]
  else:
    closest = min(aware, key=lambda r: r['mean_digit_distance_vs_control'])
    lines.append(f'- **No distance-aware family lowers the MDE significantly '
                 f"below {control['family']}** (closest: {closest['family']}, "
                 f"MDE {closest['mean_digit_distance_vs_control']:+.4f}, "
                 f"{_p(closest, 'mean_digit_distance_vs_control')}; "
                 f'{_attributed(closest)}).')
  lines.append(f'- {len(worse)} of {len(aware)} distance-aware families have '
               'a significantly higher MDE than the best control' +
               (f" ({', '.join(r['family'] for r in worse)})." if worse
                else '.'))
  return '\n'.join(lines)


def kind_flips(rows: list[dict]) -> list[str]:
  """Families whose MDE difference to the control changes sign between the
  kinds of shift, with a significant difference in at least one kind."""
  kinds = [g for g in dict.fromkeys(r['regime'] for r in rows)
           if g.startswith(f'{SHIFTED}[')]
  flips = []
  for family in dict.fromkeys(r['family'] for r in rows_of(rows, SHIFTED)):
    by_kind = {k: next(r for r in rows_of(rows, k) if r['family'] == family)
               for k in kinds}
    signs = {np.sign(r['mean_digit_distance_vs_control'])
             for r in by_kind.values()} - {0.0}
    if len(signs) == 2 and any(
        r['mean_digit_distance_vs_control_p_holm'] < SIGNIFICANT
        for r in by_kind.values()):
      flips.append(f'- {family}: ' + ', '.join(
          f"{k.removeprefix(SHIFTED)} "
          f"{r['mean_digit_distance_vs_control']:+.4f}"
          f"{_star(r, 'mean_digit_distance_vs_control')}"
          for k, r in by_kind.items()))
  return flips


# ----------------------------------------------------------------------------
# Outputs.


def _star(row, test) -> str:
  """'*' where the Holm-corrected (within the group) test is significant."""
  return '*' if row[f'{test}_p_holm'] < SIGNIFICANT else ''


PROTOCOL_LINE = (
    'Protocol: results/protocol.md (committed before the finals). 5 000 '
    'training images held out for validation; every family tuned there '
    '(one learning-rate grid with edge extensions, two values of its own '
    'hyperparameter, seeds 100-101, the epoch and the decoding with the '
    'lowest validation MDE; Bayes decoding minimises the linear cost for '
    'every family), then trained on fresh seeds 0-4 (0-9 where the '
    'validation MDE of those finals was within two standard errors of the '
    'best control\'s) and scored once on the test split. ± is the 95 % '
    't-interval over '
    'seeds. Δ is the mean paired difference to the best control (the '
    'control with the lowest validation MDE) on the same seeds; * marks a '
    'paired t-test significant after Holm within the regime; study.csv '
    'also has the p-values corrected across regimes and against '
    'cross-entropy. fewer/closer: the parts of Δ MDE from a lower error '
    'rate and from a lower mean distance among errors (they add up to '
    'Δ MDE). Every row of study.csv has the train.py command that '
    'reproduces it; `python experiments.py --data_dir ../shared/mnist` '
    'makes everything.')


def _table(group_rows: list[dict]) -> list[str]:
  lines = ['| family | role | lr | own | epoch | dec. | accuracy % | MDE | '
           'error rate % | mean error distance | far share | Δ MDE | '
           'fewer | closer | Δ error rate pp | Δ error distance |',
           '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|']
  for r in sorted(group_rows, key=lambda r: r['mean_digit_distance']):
    name = (f"**{r['family']}**" if r['family'] == r['best_control']
            else r['family'])
    lines.append(
        f"| {name} | {r['role']} | {r['learning_rate']:g} | "
        f"{r['hyperparameters']} | {r['epoch']}/{r['epochs']} | "
        f"{r['decoding']} | {100 * r['accuracy']:.2f} ± "
        f"{100 * r['accuracy_ci95']:.2f} | {r['mean_digit_distance']:.4f} ± "
        f"{r['mean_digit_distance_ci95']:.4f} | {100 * r['error_rate']:.2f} | "
        f"{r['mean_error_distance']:.2f} | {r['far_share_of_errors']:.3f} | "
        f"{r['mean_digit_distance_vs_control']:+.4f}"
        f"{_star(r, 'mean_digit_distance_vs_control')} | "
        f"{r['fewer_part']:+.4f} | {r['closer_part']:+.4f} | "
        f"{100 * r['error_rate_vs_control']:+.2f}"
        f"{_star(r, 'error_rate_vs_control')} | "
        f"{r['mean_error_distance_vs_control']:+.2f}"
        f"{_star(r, 'mean_error_distance_vs_control')} |")
  return lines


def _corruption_matrix(rows: list[dict]) -> list[str]:
  """Rows: corruptions; columns: families; cells: MDE (Δ to the control)."""
  names = [g for g in dict.fromkeys(r['regime'] for r in rows)
           if g.startswith(f'{SHIFTED}:')]
  families = list(dict.fromkeys(r['family'] for r in rows_of(rows, SHIFTED)))
  lines = ['| corruption | kind | ' + ' | '.join(families) + ' |',
           '|---|---|' + '---|' * len(families)]
  kind_of = {c: k for k, cs in corruptions.KINDS.items() for c in cs}
  for group in names:
    by_family = {r['family']: r for r in rows_of(rows, group)}
    corruption = group.removeprefix(f'{SHIFTED}:')
    lines.append(f'| {corruption} | {kind_of[corruption]} | ' + ' | '.join(
        f"{by_family[f]['mean_digit_distance']:.3f} "
        f"({by_family[f]['mean_digit_distance_vs_control']:+.3f}"
        f"{_star(by_family[f], 'mean_digit_distance_vs_control')})"
        for f in families) + ' |')
  return lines


def write_tables(rows: list[dict], results_dir,
                 diverged: dict[str, str]) -> None:
  """study.csv and study.md; ``diverged``: '<regime> <family>' -> why, for
  finals that diverged (no row; study.md lists them)."""
  results_dir = pathlib.Path(results_dir)
  with open(results_dir / 'study.csv', 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
  lines = ['# The loss study: does knowing the digit distance help beyond '
           'the best control?', '', PROTOCOL_LINE, '']
  lines += [f'Diverged in the finals, so not in the tables: {name} ({why}).'
            for name, why in diverged.items()]
  for group in dict.fromkeys(r['regime'] for r in rows):
    if group.startswith(f'{SHIFTED}:'):
      continue
    first = rows_of(rows, group)[0]
    lines += [f"## {group} (train {first['train_size']} images, label noise "
              f"{first['label_noise']:g}, budget {first['epochs']} epochs)",
              '',
              verdict(rows, group), '', *_table(rows_of(rows, group)), '']
    if group == SHIFTED:
      flips = kind_flips(rows)
      lines += ['Verdicts that flip sign between kinds of shift '
                '(Δ MDE to the best control per kind):', '',
                *(flips or ['- none']), '',
                'Per corruption: MDE (Δ to the best control, * Holm within '
                'the corruption):', '', *_corruption_matrix(rows), '']
  (results_dir / 'study.md').write_text('\n'.join(lines))


def write_plots(rows: list[dict], results_dir) -> None:
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  results_dir = pathlib.Path(results_dir)
  regimes = main_groups(rows)
  colors = {'baseline': 'k', 'control': 'C0', 'distance-aware': 'C3'}
  fig, axes = plt.subplots(1, len(regimes), figsize=(5 + 4.4 * (len(regimes)
                                                                - 1), 4.6),
                           squeeze=False)
  for ax, regime in zip(axes[0], regimes, strict=True):
    group = rows_of(rows, regime)
    control = next(r for r in group if r['family'] == r['best_control'])
    for r in group:
      ax.plot(100 * r['error_rate'], r['mean_error_distance'], 'o',
              color=colors[r['role']], ms=4)
      ax.annotate(r['family'], (100 * r['error_rate'],
                                r['mean_error_distance']),
                  fontsize=5.5, xytext=(2, 2), textcoords='offset points')
    if control['error_rate'] > 0:
      # Points on this curve have the best control's MDE (= e x d).
      e = np.geomspace(0.3, 20, 80) * 100 * control['error_rate']
      ax.plot(e, 100 * control['mean_digit_distance'] / e, '--', color='C0',
              lw=0.8)
    if any(r['error_rate'] > 0 for r in group):  # none on a toy grid
      ax.set_xscale('log')
      ax.set_ylim(0, 1.25 * max(r['mean_error_distance'] for r in group))
    ax.set_title(regime)
    ax.set_xlabel('test error rate (%, log scale)')
  axes[0][0].set_ylabel('mean digit distance among errors')
  fig.suptitle('Fewer or closer mistakes?\nblack: CE, blue: controls, red: '
               'distance-aware; dashed: the best control\'s MDE',
               fontsize=9)
  fig.tight_layout()
  fig.savefig(results_dir / 'study_attribution.png', dpi=110)
  plt.close(fig)

  fig, axes = plt.subplots(1, len(regimes), figsize=(5 + 4.4 * (len(regimes)
                                                                - 1), 4.6),
                           squeeze=False)
  for ax, regime in zip(axes[0], regimes, strict=True):
    group = rows_of(rows, regime)
    points = np.array([[100 * r['accuracy'], r['mean_digit_distance']]
                       for r in group])
    front = pareto_front(points)
    for r, (a, e), on_front in zip(group, points, front, strict=True):
      ax.errorbar(a, e, xerr=100 * r['accuracy_ci95'],
                  yerr=r['mean_digit_distance_ci95'], fmt='o',
                  color=colors[r['role']], mec='k' if on_front else 'none',
                  ms=4, lw=0.8)
      ax.annotate(r['family'], (a, e), fontsize=5.5, xytext=(2, 2),
                  textcoords='offset points')
    ax.set_title(regime)
    ax.set_xlabel('test accuracy (%)')
  axes[0][0].set_ylabel('mean digit-distance error')
  fig.suptitle('Accuracy vs MDE\nblack edge: Pareto front; bars: 95 % CI '
               'over seeds', fontsize=9)
  fig.tight_layout()
  fig.savefig(results_dir / 'study_pareto.png', dpi=110)
  plt.close(fig)


def write_report(study: dict, results_dir) -> list[dict]:
  """study.csv, study.md and the plots from a finished study."""
  rows = study_rows(study)
  diverged = {f'{name} {family}': message for name, result in study.items()
              for family, message in result['diverged_finals'].items()}
  write_tables(rows, results_dir, diverged)
  write_plots(rows, results_dir)
  return rows
