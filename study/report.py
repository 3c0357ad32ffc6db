"""The study's report: verdicts, study.csv, study.md and the plots, from the
rows of ``rows.py``."""

from __future__ import annotations

import csv
import math
import pathlib
from typing import NamedTuple

import numpy as np

import corruptions
from study.plan import BASELINE, CONTROL, DISTANCE
from study.records import RegimeResult
from study.rows import (
  SHIFTED,
  main_groups,
  pareto_front,
  parse_group,
  rows_of,
  study_rows,
)

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


class GroupAnswer(NamedTuple):
  """A group's rows that its answer reads: the best control and
  cross-entropy, the distance-aware families, the one closest to the control
  on MDE, and those significantly better or worse than it (Holm)."""
  control: dict
  ce: dict
  aware: list[dict]
  closest: dict
  better: list[dict]
  worse: list[dict]


def group_answer(group_rows: list[dict]) -> GroupAnswer:
  control = next(r for r in group_rows if r['family'] == r['best_control'])
  ce = next(r for r in group_rows if r['family'] == 'ce')
  aware = [r for r in group_rows if r['role'] == DISTANCE]
  significant = [r for r in aware
                 if r['mean_digit_distance_vs_control_p_holm'] < SIGNIFICANT]
  return GroupAnswer(
      control, ce, aware,
      min(aware, key=lambda r: r['mean_digit_distance_vs_control']),
      [r for r in significant if r['mean_digit_distance_vs_control'] < 0],
      [r for r in significant if r['mean_digit_distance_vs_control'] > 0])


def verdict(rows: list[dict], regime: str) -> str:
  """The answer for one group: the best family on MDE, the best control,
  and whether a distance-aware family beats that control significantly."""
  group = rows_of(rows, regime)
  answer = group_answer(group)
  control, aware = answer.control, answer.aware
  best = min(group, key=lambda r: r['mean_digit_distance'])
  lines = [f"- Lowest test MDE: **{best['family']}** "
           f"({best['mean_digit_distance']:.4f}). Best control (chosen on "
           f"validation): **{control['family']}** "
           f"({control['mean_digit_distance']:.4f}; cross-entropy "
           f"{answer.ce['mean_digit_distance']:.4f})."]
  if answer.better:
    lines.append('- **Knowing the distance helps beyond the best control**: '
                 f'{len(answer.better)} of {len(aware)} distance-aware '
                 'families lower the MDE significantly:')
    lines += [f"  - {r['family']}: MDE "
              f"{r['mean_digit_distance_vs_control']:+.4f} "
              f"({_p(r, 'mean_digit_distance_vs_control')}); "
              f"{_attributed(r)}; accuracy "
              f"{100 * r['accuracy_vs_control']:+.2f} pp."
              for r in answer.better]
  else:
    closest = answer.closest
    lines.append(f'- **No distance-aware family lowers the MDE significantly '
                 f"below {control['family']}** (closest on test: "
                 f"{closest['family']}, "
                 f"MDE {closest['mean_digit_distance_vs_control']:+.4f}, "
                 f"{_p(closest, 'mean_digit_distance_vs_control')}; "
                 f'{_attributed(closest)}).')
  worse = answer.worse
  lines.append(f'- {len(worse)} of {len(aware)} distance-aware families have '
               'a significantly higher MDE than the best control' +
               (f" ({', '.join(r['family'] for r in worse)})." if worse
                else '.'))
  return '\n'.join(lines)


def answer_table(rows: list[dict]) -> list[str]:
  """One line per regime (and kind of shift): the best control, the
  distance-aware family closest to it, and whether and how it differs."""
  lines = ['| regime | best control: MDE | cross-entropy | closest '
           'distance-aware family on test: MDE | Δ MDE (Holm p; across '
           'regimes) | fewer | closer | Δ error rate pp (Holm p) | Δ error '
           'distance (Holm p) | distance-aware significantly worse |',
           '|---|---|---|---|---|---|---|---|---|---|']
  for group in report_groups(rows):
    answer = group_answer(rows_of(rows, group))
    control, best = answer.control, answer.closest
    across = best['mean_digit_distance_vs_control_p_holm_all']
    lines.append(
        f"| {group} | {control['family']}: "
        f"{control['mean_digit_distance']:.4f} | "
        f"{answer.ce['mean_digit_distance']:.4f} | {best['family']}: "
        f"{best['mean_digit_distance']:.4f} | "
        f"{best['mean_digit_distance_vs_control']:+.4f} "
        f"({best['mean_digit_distance_vs_control_p_holm']:.2g}"
        + ('' if math.isnan(across) else f'; {across:.2g}') + ') | '
        f"{best['fewer_part']:+.4f} | {best['closer_part']:+.4f} | "
        f"{_vs_control(best, 'error_rate', 'p')} | "
        f"{_vs_control(best, 'mean_error_distance', 'p')} | "
        f'{len(answer.worse)} of {len(answer.aware)} |')
  return lines


def _groups_of_kind(rows: list[dict], *kinds: str) -> list[str]:
  """The groups of ``rows`` (in order) whose parsed kind is one of
  ``kinds``."""
  return [g for g in dict.fromkeys(r['regime'] for r in rows)
          if parse_group(g).kind in kinds]


def report_groups(rows: list[dict]) -> list[str]:
  """The groups with a section of their own (each corruption has a row of
  the shifted section's matrix instead)."""
  return _groups_of_kind(rows, 'test', 'shifted', 'kind')


def kind_flips(rows: list[dict]) -> list[str]:
  """Families whose MDE difference to the control changes sign between the
  kinds of shift, with a significant difference in at least one kind."""
  kinds = _groups_of_kind(rows, 'kind')
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
          f"[{parse_group(k).name}] "
          f"{r['mean_digit_distance_vs_control']:+.4f}"
          f"{_star(r, 'mean_digit_distance_vs_control')}"
          for k, r in by_kind.items()))
  return flips


# ----------------------------------------------------------------------------
# Outputs.


def _star(row: dict, test: str) -> str:
  """'*' where the Holm-corrected (within the group) test is significant."""
  return '*' if row[f'{test}_p_holm'] < SIGNIFICANT else ''


def _vs_control(row: dict, metric: str, mark: str) -> str:
  """The difference to the best control (error rate in pp), marked with
  its Holm p-value ('p') or a star where significant ('star')."""
  test = f'{metric}_vs_control'
  scale = 100 if metric == 'error_rate' else 1
  text = f'{scale * row[test]:+.2f}'
  if mark == 'p':
    return f"{text} ({row[f'{test}_p_holm']:.2g})"
  return text + _star(row, test)


# The study scored the test split, seen before its protocol; the answer is
# the confirmation's, on images nobody had scored.
CONFIRMATION_LINE = (
    '**A second look, not the answer.** These finals are scored on the test '
    'split, which was seen before this protocol. The powered, pre-registered '
    'answer is the confirmation, on 30 000 training images nobody had '
    'scored: [confirmation/confirmation.md](confirmation/confirmation.md) '
    '(protocol: protocol.md, "Confirmation protocol (issue 29)").')
PROTOCOL_LINE = (
    'Protocol: results/protocol.md (committed before the finals). 5 000 '
    'training images held out for validation; every family tuned there '
    '(one learning-rate grid with edge extensions, two values of its own '
    'hyperparameter (clean: fixed at its scarce2000 choice), seeds 100-101, '
    'the epoch and the decoding with the '
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
    'reproduces it; `python -m study --data_dir ../shared/mnist` '
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
        f"{_vs_control(r, 'error_rate', 'star')} | "
        f"{_vs_control(r, 'mean_error_distance', 'star')} |")
  return lines


def _corruption_matrix(rows: list[dict]) -> list[str]:
  """Rows: corruptions; columns: families; cells: MDE (Δ to the control)."""
  names = _groups_of_kind(rows, 'corruption')
  families = list(dict.fromkeys(r['family'] for r in rows_of(rows, SHIFTED)))
  lines = ['| corruption | kind | ' + ' | '.join(families) + ' |',
           '|---|---|' + '---|' * len(families)]
  kind_of = {c: k for k, cs in corruptions.KINDS.items() for c in cs}
  for group in names:
    by_family = {r['family']: r for r in rows_of(rows, group)}
    corruption = parse_group(group).name
    lines.append(f'| {corruption} | {kind_of[corruption]} | ' + ' | '.join(
        f"{by_family[f]['mean_digit_distance']:.3f} "
        f"({by_family[f]['mean_digit_distance_vs_control']:+.3f}"
        f"{_star(by_family[f], 'mean_digit_distance_vs_control')})"
        for f in families) + ' |')
  return lines


def decoding_under_shift(result: RegimeResult) -> list[str]:
  """Per family of the regime (clean: its models also score the corrupted
  images), accuracy and MDE with each decoding, on the test split and on
  the mean over the corruptions, over the seeds of its first final."""
  lines = ['| family | decoding | test accuracy | test MDE | corrupted: '
           'accuracy | corrupted: MDE |', '|---|---|---|---|---|---|']
  for name, family in result.families.items():
    if not family.finals:
      continue
    scores = family.finals[0].scores
    shifted = [split for split in scores if split.startswith('test[')]
    for decoding in ('argmax', 'bayes'):
      chosen = ' (chosen)' if family.choice.decoding == decoding else ''
      lines.append(
          f'| {name} | {decoding}{chosen} | '
          f"{100 * _mean_of(scores, ['test'], decoding, 'accuracy'):.2f} % | "
          f"{_mean_of(scores, ['test'], decoding, 'mean_digit_distance'):.4f}"
          f" | {100 * _mean_of(scores, shifted, decoding, 'accuracy'):.2f} %"
          f" | {_mean_of(scores, shifted, decoding, 'mean_digit_distance'):.4f}"
          ' |')
  return lines


def _mean_of(scores: dict, splits: list[str], decoding: str,
             metric: str) -> float:
  """The mean over ``splits`` of a metric's mean over seeds."""
  return float(np.mean([scores[split][decoding][metric]['mean']
                        for split in splits]))


def write_tables(rows: list[dict], results_dir: str | pathlib.Path,
                 diverged: dict[str, str],
                 under_shift: list[str] | None = None) -> None:
  """study.csv and study.md; ``diverged``: '<regime> <family>' -> why, for
  finals that diverged (no row; study.md lists them)."""
  results_dir = pathlib.Path(results_dir)
  with open(results_dir / 'study.csv', 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
  lines = ['# The loss study: does knowing the digit distance help beyond '
           'the best control?', '', CONFIRMATION_LINE, '', PROTOCOL_LINE, '',
           '## The answer per regime', '', *answer_table(rows), '']
  lines += [f'Diverged in the finals, so not in the tables: {name} ({why}).'
            for name, why in diverged.items()]
  for group in report_groups(rows):
    first = rows_of(rows, group)[0]
    clean = (', validation labels clean' if first['label_noise'] and
             first['clean_validation'] else '')
    lines += [f"## {group} (train {first['train_size']} images, label noise "
              f"{first['label_noise']:g}{clean}, budget {first['epochs']} "
              'epochs)',
              '',
              verdict(rows, group), '', *_table(rows_of(rows, group)), '']
    if group == SHIFTED:
      flips = kind_flips(rows)
      lines += ['Verdicts that flip sign between kinds of shift '
                '(Δ MDE to the best control per kind):', '',
                *(flips or ['- none']), '',
                'Per corruption: MDE (Δ to the best control, * Holm within '
                'the corruption):', '', *_corruption_matrix(rows), '']
  if under_shift:
    lines += ['## Decoding away from the training distribution', '',
              "clean's models (seeds of each family's first final, 0-4) "
              'with argmax and with Bayes decoding (linear cost), on the '
              'test split and on the mean over the 12 corruptions of its '
              'first 2 000 images (a second look at the test split):', '',
              *under_shift, '']
  (results_dir / 'study.md').write_text('\n'.join(lines))


def write_plots(rows: list[dict],
                results_dir: str | pathlib.Path) -> None:
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  results_dir = pathlib.Path(results_dir)
  regimes = main_groups(rows)
  colors = {BASELINE: 'k', CONTROL: 'C0', DISTANCE: 'C3'}
  # Fewer or closer: each family's Δ MDE against the regime's best control,
  # split in two stacked bars, one labelled row per family (legible at any
  # number of families: no labels placed over points).
  columns = 2
  panel_rows = math.ceil(len(regimes) / columns)
  most = max(len(rows_of(rows, regime)) for regime in regimes)
  fig, axes = plt.subplots(panel_rows, columns,
                           figsize=(10, panel_rows * (0.6 + 0.17 * most)),
                           squeeze=False)
  for ax, regime in zip(axes.flat, regimes, strict=False):  # spare panels
    group = sorted((r for r in rows_of(rows, regime)
                    if r['family'] != r['best_control']),
                   key=lambda r: r['fewer_part'] + r['closer_part'])
    ys = np.arange(len(group))
    fewer = np.array([r['fewer_part'] for r in group])
    closer = np.array([r['closer_part'] for r in group])
    # Parts of opposite sign stack away from zero on their own sides.
    ax.barh(ys, fewer, color='0.6', label='fewer mistakes')
    ax.barh(ys, closer, left=np.where(np.sign(closer) == np.sign(fewer),
                                      fewer, 0), color='C3',
            label='closer mistakes')
    ax.plot(fewer + closer, ys, 'k|', ms=7, label='Δ MDE')
    ax.axvline(0, color='k', lw=0.6)
    ax.set_yticks(ys, [r['family'] for r in group], fontsize=6.5)
    for label, r in zip(ax.get_yticklabels(), group, strict=True):
      label.set_color(colors[r['role']])
    ax.tick_params(axis='x', labelsize=7)
    control = group[0]['best_control'] if group else ''
    ax.set_title(f'{regime}: against {control}', fontsize=8.5)
    ax.set_xlabel('Δ MDE against the best control (test split)', fontsize=7)
  for ax in list(axes.flat)[len(regimes):]:
    ax.axis('off')
  axes.flat[0].legend(fontsize=6.5, loc='lower right', frameon=False)
  fig.suptitle('Fewer or closer mistakes? Δ MDE = fewer + closer '
               '(labels: black CE, blue controls, red distance-aware)',
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


def write_report(study: dict[str, RegimeResult],
                 results_dir: str | pathlib.Path) -> list[dict]:
  """study.csv, study.md and the plots from a finished study."""
  rows = study_rows(study)
  diverged = {f'{name} {family}': message for name, result in study.items()
              for family, message in result.diverged_finals.items()}
  write_tables(rows, results_dir, diverged,
               decoding_under_shift(study['clean']) if 'clean' in study
               else None)
  write_plots(rows, results_dir)
  return rows
