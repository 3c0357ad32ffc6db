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

BASELINE = 'ce'
VALIDATION_SIZE = 5000
TUNE_SEED, FINAL_SEEDS = 100, 5  # tuning seed; finals use seeds 0..4
METRICS = ('accuracy', 'mean_digit_distance', 'far_error_rate',
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


def _per_seed(scores, decoding, metric):
  return np.asarray(scores[decoding][metric]['per_seed'], np.float64)


def _shifted_scores(cell) -> dict:
  """Scores averaged over the corruptions, per seed, in the cell's layout."""
  names = [k for k in cell if k.startswith('test[')]
  return {d: {m: {'per_seed': np.mean([_per_seed(cell[n], d, m) for n in names],
                                       axis=0).tolist()}
              for m in METRICS} for d in ('argmax', 'bayes')}


def _scores_of(cell, split):
  """A final's scores on ``split``, or averaged over the corruptions."""
  return cell[split] if split else _shifted_scores(cell)


def study_rows(study: dict) -> list[dict]:
  """Test rows of every final, with CIs and Holm-corrected paired tests."""
  rows = []
  for regime_name, regime in study.items():
    splits = [(regime_name, 'test')]
    if any(k.startswith('test[') for k in regime['finals'][BASELINE]['cell']):
      splits.append(('shifted', None))
    for row_regime, split in splits:
      base = regime['finals'][BASELINE]
      base_scores = _scores_of(base['cell'], split)
      regime_rows = []
      for family, final in regime['finals'].items():
        cell, config = final['cell'], final['cell']['config']
        for decoding in ('argmax', 'bayes'):
          scores = _scores_of(cell, split)
          row = {'regime': row_regime, 'config': family,
                 'loss': config['loss'], 'decoding': decoding,
                 'chosen': decoding == final['decoding'],
                 'distance': config['distance'],
                 'ce_weight': config['ce_weight'],
                 'temperature': config['temperature'],
                 'train_size': cell['num_train'],
                 'label_noise': config['label_noise'],
                 'epochs': config['epochs'],
                 'batch_size': config['batch_size'],
                 'learning_rate': config['learning_rate'],
                 'seeds': ';'.join(map(str, cell['seeds'])),
                 'n_seeds': len(cell['seeds'])}
          for metric in METRICS:
            values = _per_seed(scores, decoding, metric)
            row[metric], row[f'{metric}_ci95'] = mean_ci(values)
          errors = 1 - _per_seed(scores, decoding, 'accuracy')
          row['mean_error_distance'] = float(np.mean(
              _per_seed(scores, decoding, 'mean_digit_distance') /
              np.maximum(errors, 1e-12)))
          row['validation_mean_digit_distance'] = cell['validation'][decoding][
              'mean_digit_distance']['mean']
          for metric in ('accuracy', 'mean_digit_distance', 'far_error_rate'):
            ref = _per_seed(base_scores, base['decoding'], metric)
            row[f'{metric}_diff'], row[f'{metric}_p'] = paired_test(
                _per_seed(scores, decoding, metric), ref)
          row['command'] = command_for(config)
          regime_rows.append(row)
      tested = [r for r in regime_rows
                if (r['config'], r['chosen']) != (BASELINE, True)]
      for metric in ('accuracy', 'mean_digit_distance', 'far_error_rate'):
        for r, p in zip(tested, holm([r[f'{metric}_p'] for r in tested]),
                        strict=True):
          r[f'{metric}_p_holm'] = p
      for r in regime_rows:
        if (r['config'], r['chosen']) == (BASELINE, True):
          r.update({f'{m}_p_holm': 1.0 for m in
                    ('accuracy', 'mean_digit_distance', 'far_error_rate')})
      rows += regime_rows
  return rows


def verdict(rows: list[dict], regime: str) -> str:
  """Families that lower MDE or far errors vs CE (Holm p < 0.05), and cost."""
  chosen = [r for r in rows if r['regime'] == regime and r['chosen']
            and r['config'] != BASELINE]
  lines = []
  for r in chosen:
    better = [name for metric, name in (('mean_digit_distance', 'MDE'),
                                        ('far_error_rate', 'far-error rate'))
              if r[f'{metric}_diff'] < 0 and r[f'{metric}_p_holm'] < 0.05]
    worse = [name for metric, name in (('mean_digit_distance', 'MDE'),
                                       ('far_error_rate', 'far-error rate'))
             if r[f'{metric}_diff'] > 0 and r[f'{metric}_p_holm'] < 0.05]
    cost = 100 * r['accuracy_diff']
    acc = (f'accuracy {cost:+.2f} pp' +
           (' (significant)' if r['accuracy_p_holm'] < 0.05 else ''))
    if better:
      kept = ('without costing accuracy' if cost >= -0.1
              else 'but costs accuracy')
      lines.append(f"- **{r['config']}** lowers the {' and the '.join(better)} "
                   f"{kept}: MDE {r['mean_digit_distance_diff']:+.4f}, far "
                   f"errors {100 * r['far_error_rate_diff']:+.2f} pp, {acc}.")
    elif worse:
      lines.append(f"- {r['config']}: worse {' and '.join(worse)} "
                   f"(MDE {r['mean_digit_distance_diff']:+.4f}, far errors "
                   f"{100 * r['far_error_rate_diff']:+.2f} pp), {acc}.")
    else:
      lines.append(f"- {r['config']}: no significant change in MDE or far "
                   f"errors (MDE {r['mean_digit_distance_diff']:+.4f}, far "
                   f"errors {100 * r['far_error_rate_diff']:+.2f} pp), {acc}.")
  return '\n'.join(lines)


# ----------------------------------------------------------------------------
# Outputs.


def _star(row, metric) -> str:
  """'*' where the Holm-corrected paired test is significant at 5 %."""
  return '*' if row[f'{metric}_p_holm'] < 0.05 else ''


def write_tables(study: dict, rows: list[dict], results_dir) -> None:
  results_dir = pathlib.Path(results_dir)
  with open(results_dir / 'study.csv', 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
  lines = [
      '# The validated loss study', '',
      f'Protocol: {VALIDATION_SIZE} training images held out for validation '
      '(the same for every run; in the noisy regime their labels are noisy '
      'too). Per regime, cross-entropy is trained for several epoch budgets '
      'and the smallest within one binomial standard error of the best '
      'validation accuracy is used for every family. Each family gets the '
      'same four '
      'tuning cells (learning rates, or two learning rates x two values of '
      f'its hyperparameter) with seed {TUNE_SEED}; the cell and decoding '
      '(argmax or Bayes) with the lowest validation mean digit-distance error '
      'win and are retrained with seeds 0-4, scored once on the test split. '
      '± is the 95 % t-interval over seeds; Δ is the mean paired difference '
      'against cross-entropy (its chosen decoding) on the same seeds; p is a '
      'paired t-test, Holm-corrected within the regime (* p < 0.05). '
      'Far errors: share of test images off by 3 or more digits. Shifted: '
      'the clean models on the first 2 000 test images under each of 12 '
      'corruptions (corruptions.py), averaged. Every row\'s `command` in '
      'study.csv reproduces it with train.py.', '']
  for regime in dict.fromkeys(r['regime'] for r in rows):
    source = study.get(regime) or study['clean']
    first = rows_of(rows, regime)[0]
    lines += [f'## {regime} (train {first["train_size"]} '
              f'images, label noise {first["label_noise"]:g}, '
              f'{source["epochs"]} epochs)', '',
              '| config | decoding | lr | accuracy % | MDE | far errors % | '
              'mean error distance | cyclic error | Δ acc (pp) | Δ MDE | '
              'Δ far (pp) |', '|---|---|---|---|---|---|---|---|---|---|---|']
    for r in sorted(rows_of(rows, regime),
                    key=lambda r: r['mean_digit_distance']):
      lines.append(
          f"| {'**' + r['config'] + '**' if r['chosen'] else r['config']} | "
          f"{r['decoding']} | {r['learning_rate']:g} | "
          f"{100 * r['accuracy']:.2f} ± {100 * r['accuracy_ci95']:.2f} | "
          f"{r['mean_digit_distance']:.4f} ± "
          f"{r['mean_digit_distance_ci95']:.4f} | "
          f"{100 * r['far_error_rate']:.2f} ± "
          f"{100 * r['far_error_rate_ci95']:.2f} | "
          f"{r['mean_error_distance']:.2f} | {r['cyclic_error']:.4f} | "
          f"{100 * r['accuracy_diff']:+.2f}{_star(r, 'accuracy')} | "
          f"{r['mean_digit_distance_diff']:+.4f}"
          f"{_star(r, 'mean_digit_distance')} | "
          f"{100 * r['far_error_rate_diff']:+.2f}"
          f"{_star(r, 'far_error_rate')} |")
    lines += ['', 'Bold: the decoding chosen on validation. Verdict:', '',
              verdict(rows, regime), '']
  (results_dir / 'study.md').write_text('\n'.join(lines))


def rows_of(rows, regime):
  return [r for r in rows if r['regime'] == regime]


def write_plots(study: dict, rows: list[dict], results_dir) -> None:
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  results_dir = pathlib.Path(results_dir)
  # Cross-entropy's validation accuracy against the epoch budget.
  fig, axes = plt.subplots(1, len(study), figsize=(3.2 * len(study), 3))
  for ax, (name, regime) in zip(np.atleast_1d(axes), study.items(),
                                strict=True):
    budgets = sorted(regime['curve'])
    acc = [100 * regime['curve'][e]['validation']['argmax']['accuracy']['mean']
           for e in budgets]
    ax.plot(budgets, acc, 'o-')
    ax.axvline(regime['epochs'], color='C3', ls='--', lw=1)
    ax.set_title(name)
    ax.set_xlabel('epochs')
    ax.set_xscale('log')
  np.atleast_1d(axes)[0].set_ylabel('CE validation accuracy (%)')
  fig.suptitle('Epoch budget per regime (dashed: chosen)')
  fig.tight_layout()
  fig.savefig(results_dir / 'study_curves.png', dpi=110)
  plt.close(fig)

  regimes = list(dict.fromkeys(r['regime'] for r in rows))
  fig, axes = plt.subplots(1, len(regimes), figsize=(4.2 * len(regimes), 4))
  for ax, regime in zip(np.atleast_1d(axes), regimes, strict=True):
    chosen = [r for r in rows_of(rows, regime) if r['chosen']]
    points = np.array([[100 * r['accuracy'], r['mean_digit_distance']]
                       for r in chosen])
    front = pareto_front(points)
    for r, (a, e), on_front in zip(chosen, points, front, strict=True):
      ax.errorbar(a, e, xerr=100 * r['accuracy_ci95'],
                  yerr=r['mean_digit_distance_ci95'], fmt='o',
                  color='C3' if on_front else 'C0', ms=4, lw=0.8)
      ax.annotate(r['config'], (a, e), fontsize=6, xytext=(3, 3),
                  textcoords='offset points')
    ax.set_title(regime)
    ax.set_xlabel('test accuracy (%)')
  np.atleast_1d(axes)[0].set_ylabel('mean digit-distance error')
  fig.suptitle('Accuracy vs mean digit-distance error (red: Pareto front; '
               'bars: 95 % CI over 5 seeds)')
  fig.tight_layout()
  fig.savefig(results_dir / 'study_pareto.png', dpi=110)
  plt.close(fig)

  fig, ax = plt.subplots(figsize=(10, 4))
  families = list(dict.fromkeys(r['config'] for r in rows))
  width = 0.8 / len(families)
  for i, family in enumerate(families):
    chosen = [next(r for r in rows_of(rows, g) if r['config'] == family and
                   r['chosen']) for g in regimes]
    ax.bar(np.arange(len(regimes)) + i * width,
           [100 * r['far_error_rate'] for r in chosen],
           width, yerr=[100 * r['far_error_rate_ci95'] for r in chosen],
           label=family, capsize=2)
  ax.set_xticks(np.arange(len(regimes)) + 0.4 - width / 2)
  ax.set_xticklabels(regimes)
  ax.set_yscale('log')
  ax.set_ylabel('test images off by >= 3 digits (%)')
  ax.legend(fontsize=7, ncol=4)
  ax.set_title('Far-off mistakes per regime (95 % CI over 5 seeds)')
  fig.tight_layout()
  fig.savefig(results_dir / 'study_far_errors.png', dpi=110)
  plt.close(fig)
