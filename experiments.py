"""When does a distance-aware loss lower the far-off mistakes? The validated study.

    python experiments.py --data_dir ../shared/mnist         # ~90 min, 2 CPU cores
    python experiments.py --data_dir ../shared/mnist --grid tiny --results_dir /tmp/s

Protocol (README, results/study.md): 5 000 training images are held out for
validation (the same ones for every run); every choice is made there. Per
regime (clean, scarce, noisy; shifted reuses the clean models):

1. curve: cross-entropy for a few epoch budgets; the regime trains for the
   smallest budget whose validation accuracy is within one standard error
   of the best.
2. tune: every loss family gets the same four cells (four learning rates, or
   two learning rates x two values of its own hyperparameter), one seed,
   validation only. The cell and decoding (argmax or Bayes) with the lowest
   validation mean digit-distance error win.
3. final: the winners, five fresh seeds, scored once on the test split (and,
   for clean, on the corrupted test sets of ``corruptions.py``).

Each finished cell writes a small JSON file under ``<results_dir>/study/``;
a rerun skips those, so the study resumes across sessions. Then the tables
(``study.csv``, ``study.md``) and plots are written from the cell files.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import pathlib
import shlex
import shutil
import sys
import time

import numpy as np

import data
import losses
from config import Config, _Parser
from runfiles import write_text_atomic
import train

BASELINE = 'ce'
VALIDATION_SIZE = 5000
TUNE_SEED, FINAL_SEEDS = 100, 5  # tuning seed; finals use seeds 0..4
METRICS = ('accuracy', 'mean_digit_distance', 'far_error_rate',
           'cyclic_error', 'qwk')


@dataclasses.dataclass(frozen=True)
class Regime:
  """Training data of a regime and the epoch budgets its curve tries."""
  train_size: int | None
  label_noise: float
  epoch_budgets: tuple[int, ...]
  tune_train_size: int | None = None  # tune on a subset (clean only)


# Four tuning cells per family: (learning rate, Config overrides).
LEARNING_RATES = (7.5e-4, 1.5e-3, 3e-3, 6e-3)


def _cells(hyper: dict[str, tuple] | None = None):
  if not hyper:
    return [(lr, {}) for lr in LEARNING_RATES]
  (name, values), = hyper.items()
  return [(lr, {name: v}) for lr in LEARNING_RATES[1:3] for v in values]


def full_families() -> dict[str, tuple[dict, list]]:
  """Family name -> (Config overrides, tuning cells)."""
  return {
      BASELINE: ({}, _cells()),
      'sord[linear]': ({'loss': 'soft_label_cross_entropy'},
                       _cells({'temperature': (0.5, 1.0)})),
      'sord[cyclic]': ({'loss': 'soft_label_cross_entropy',
                        'distance': 'cyclic'},
                       _cells({'temperature': (0.5, 1.0)})),
      'ce+expected_cost': ({'loss': 'expected_cost'},
                           _cells({'ce_weight': (0.3, 1.0)})),
      'expected_value_mse': ({'loss': 'expected_value_mse'}, _cells()),
      'ce+expected_value_mse': ({'loss': 'expected_value_mse'},
                                _cells({'ce_weight': (0.1, 1.0)})),
      'clm[logit]': ({'loss': 'clm', 'link': 'logit'}, _cells()),
      'slace[linear]': ({'loss': 'slace'}, _cells()),
  }


FULL_REGIMES = {
    'scarce500': Regime(500, 0.0, (20, 40, 80)),
    'scarce2000': Regime(2000, 0.0, (10, 20, 40)),
    'noisy40': Regime(5000, 0.4, (4, 8, 16)),
    'clean': Regime(None, 0.0, (1, 2, 3, 4), tune_train_size=10000),
}


def tiny_families():
  return {BASELINE: ({}, [(3e-3, {}), (6e-3, {})]),
          'sord[linear]': ({'loss': 'soft_label_cross_entropy'},
                           [(3e-3, {'temperature': 1.0}),
                            (3e-3, {'temperature': 0.5})]),
          'clm[logit]': ({'loss': 'clm'}, [(3e-3, {}), (6e-3, {})])}


TINY_REGIMES = {'scarce': Regime(96, 0.0, (1, 2)),
                'clean': Regime(None, 0.0, (1, 2), tune_train_size=128)}
GRIDS = {'full': (full_families, FULL_REGIMES, VALIDATION_SIZE, FINAL_SEEDS),
         'tiny': (tiny_families, TINY_REGIMES, 64, 2)}


def every_loss() -> dict[str, dict]:
  """One configuration per registered loss and head variant (its defaults).

  Behind the README's loss table: ``python experiments.py --grid losses``
  trains each for one epoch with the default configuration, seed 0.
  """
  table = {name: {'loss': name} for name in losses.LOSSES}
  del table['soft_target_cross_entropy']
  for family in losses.SOFT_LABEL_FAMILIES:
    table[f'soft_target_cross_entropy[{family}]'] = {
        'loss': 'soft_target_cross_entropy', 'soft_labels': family}
  for link in losses.CLM_LINKS:
    table[f'clm[{link}]'] = {'loss': 'clm', 'link': link}
  del table['clm']
  for name in ('soft_label_cross_entropy', 'slace', 'expected_cost'):
    table[f'{name}[cyclic]'] = {'loss': name, 'distance': 'cyclic'}
  return table


# ----------------------------------------------------------------------------
# Cells: one train_and_evaluate run each, remembered as a small JSON file.


def run_cell(path: pathlib.Path, config: Config, runs_dir, dataset,
             log, memo: dict) -> dict:
  """Trains ``config`` unless ``path`` (or ``memo``) already holds its result.

  ``memo`` maps configurations to results, so that a tuning cell identical
  to a curve run (cross-entropy at the default learning rate) is not
  trained twice.
  """
  key = json.dumps(dataclasses.asdict(config), sort_keys=True)
  if not path.exists() and key in memo:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(memo[key]) + '\n')
  if path.exists():
    cell = json.loads(path.read_text())
    if cell['config'] != dataclasses.asdict(config):
      raise ValueError(f'{path} holds another configuration; remove it or '
                       'choose another --results_dir.')
    memo[key] = cell
    return cell
  workdir = pathlib.Path(runs_dir) / path.relative_to(path.parents[1]).with_suffix('')
  resume = (workdir / 'config.json').exists()
  if resume and json.loads((workdir / 'config.json').read_text()) != (
      dataclasses.asdict(config)):
    # An unfinished run of an earlier plan; the cell file is what counts.
    log(f'  {workdir}: unfinished run of another configuration, restarted')
    shutil.rmtree(workdir)
    resume = False
  t0 = time.perf_counter()
  summary = train.train_and_evaluate(config, workdir, resume=resume,
                                     dataset=dataset)
  cell = {'config': dataclasses.asdict(config), 'seeds': summary['seeds'],
          'num_train': summary['num_train'], 'wall_s': time.perf_counter() - t0,
          **{k: v for k, v in summary['final'].items() if k != 'train_loss'}}
  path.parent.mkdir(parents=True, exist_ok=True)
  write_text_atomic(path, json.dumps(cell) + '\n')
  log(f'  {path.parent.name}/{path.stem}: {cell["wall_s"]:.0f}s')
  memo[key] = cell
  return cell


def validation_mde(cell) -> tuple[float, str]:
  """The lower validation MDE over the two decodings, and which it was."""
  scores = cell['validation']
  return min((scores[d]['mean_digit_distance']['mean'], d)
             for d in ('argmax', 'bayes'))


def choose_epochs(curve: dict[int, dict], num_validation: int) -> int:
  """The smallest budget within one standard error of the best.

  The standard error is the binomial one of the best validation accuracy,
  ``sqrt(a (1 - a) / n)``: a gain smaller than that is not evidence that
  cross-entropy is still improving (0.12 pp at 99.3 % on 5 000 images,
  0.37 pp at 92.8 %).
  """
  acc = {e: c['validation']['argmax']['accuracy']['mean'] for e, c in curve.items()}
  best = max(acc.values())
  standard_error = math.sqrt(best * (1 - best) / num_validation)
  return min(e for e, a in acc.items() if a >= best - standard_error)


def run_study(grid: str, dataset, results_dir, runs_dir, *, base: Config,
              log=print) -> dict:
  """Runs every phase of every regime; returns everything the tables need."""
  families_fn, regimes, validation_size, final_seeds = GRIDS[grid]
  families = families_fn()
  cells_dir = pathlib.Path(results_dir) / 'study'
  base = dataclasses.replace(base, validation_size=validation_size,
                             score_test=False)
  out, memo = {}, {}
  for regime_name, regime in regimes.items():
    log(f'[{regime_name}] curve {regime.epoch_budgets}')
    regime_base = dataclasses.replace(
        base, train_size=regime.train_size, label_noise=regime.label_noise)
    curve = {}
    for epochs in regime.epoch_budgets:
      config = dataclasses.replace(regime_base, epochs=epochs,
                                   eval_every=epochs, seed=TUNE_SEED)
      curve[epochs] = run_cell(cells_dir / regime_name / f'curve-{epochs}.json',
                               config, runs_dir, dataset, log, memo)
    epochs = choose_epochs(curve, validation_size)
    log(f'[{regime_name}] {epochs} epochs; tuning {len(families)} families')
    finals = {}
    for family, (overrides, cells) in families.items():
      tuned = []
      for i, (lr, hyper) in enumerate(cells):
        config = dataclasses.replace(
            regime_base, **overrides, **hyper, learning_rate=lr,
            epochs=epochs, eval_every=epochs, seed=TUNE_SEED,
            train_size=regime.tune_train_size or regime.train_size)
        tuned.append(run_cell(
            cells_dir / regime_name / f'tune-{_slug(family)}-{i}.json',
            config, runs_dir, dataset, log, memo))
      best = min(tuned, key=validation_mde)
      final_config = dataclasses.replace(
          Config(**best['config']), seed=0, num_seeds=final_seeds,
          train_size=regime.train_size, score_test=True,
          shifted_test=regime_name == 'clean')
      final = run_cell(cells_dir / regime_name / f'final-{_slug(family)}.json',
                       final_config, runs_dir, dataset, log, memo)
      finals[family] = {'cell': final, 'decoding': validation_mde(best)[1],
                        'tuned': tuned}
    out[regime_name] = {'epochs': epochs, 'curve': curve, 'finals': finals}
  return out


def _slug(name: str) -> str:
  return ''.join(c if c.isalnum() or c in '.-_' else '_' for c in name)


# ----------------------------------------------------------------------------
# Statistics.


def t_quantile(df: int, q: float = 0.975) -> float:
  import scipy.stats  # pylint: disable=g-import-not-at-top
  return float(scipy.stats.t.ppf(q, df))


def mean_ci(values) -> tuple[float, float]:
  """Mean and half-width of the 95 % t confidence interval (0 for one value)."""
  values = np.asarray(values, np.float64)
  if values.size < 2:
    return float(values.mean()), 0.0
  half = t_quantile(values.size - 1) * values.std(ddof=1) / math.sqrt(values.size)
  return float(values.mean()), float(half)


def paired_test(values, baseline) -> tuple[float, float]:
  """Mean paired difference and two-sided p-value (paired t-test)."""
  import scipy.stats  # pylint: disable=g-import-not-at-top
  diff = np.asarray(values, np.float64) - np.asarray(baseline, np.float64)
  if diff.size < 2 or np.all(diff == diff[0]):
    return float(diff.mean()), 1.0 if np.all(diff == 0) else 0.0
  return float(diff.mean()), float(scipy.stats.ttest_rel(values, baseline).pvalue)


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
                   for a, e in zip(acc, err)])


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
    else:
      args += [f'--{name}', f'{value:g}' if isinstance(value, float) else str(value)]
  return shlex.join(args)


def _per_seed(scores, decoding, metric):
  return np.asarray(scores[decoding][metric]['per_seed'], np.float64)


def _shifted_scores(cell) -> dict:
  """Scores averaged over the corruptions, per seed, in the cell's layout."""
  names = [k for k in cell if k.startswith('test[')]
  return {d: {m: {'per_seed': np.mean([_per_seed(cell[n], d, m) for n in names],
                                       axis=0).tolist()}
              for m in METRICS} for d in ('argmax', 'bayes')}


def study_rows(study: dict) -> list[dict]:
  """Test rows of every final, with CIs and Holm-corrected paired tests."""
  rows = []
  for regime_name, regime in study.items():
    splits = [(regime_name, 'test')]
    if any(k.startswith('test[') for k in regime['finals'][BASELINE]['cell']):
      splits.append(('shifted', None))
    for row_regime, split in splits:
      scores_of = lambda cell: cell[split] if split else _shifted_scores(cell)
      base = regime['finals'][BASELINE]
      base_scores = scores_of(base['cell'])
      regime_rows = []
      for family, final in regime['finals'].items():
        cell, config = final['cell'], final['cell']['config']
        for decoding in ('argmax', 'bayes'):
          scores = scores_of(cell)
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
        for r, p in zip(tested, holm([r[f'{metric}_p'] for r in tested])):
          r[f'{metric}_p_holm'] = p
      for r in regime_rows:
        if (r['config'], r['chosen']) == (BASELINE, True):
          r.update({f'{m}_p_holm': 1.0 for m in
                    ('accuracy', 'mean_digit_distance', 'far_error_rate')})
      rows += regime_rows
  return rows


def verdict(rows: list[dict], regime: str) -> str:
  """Which families lower MDE or far errors vs CE (Holm p < 0.05), at what cost."""
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
      kept = 'without costing accuracy' if cost >= -0.1 else 'but costs accuracy'
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


def write_tables(study: dict, rows: list[dict], results_dir) -> None:
  import csv  # pylint: disable=g-import-not-at-top
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
      'validation accuracy is used for every family. Each family gets the same four '
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
    lines += [f'## {regime} (train {rows_of(rows, regime)[0]["train_size"]} '
              f'images, label noise {rows_of(rows, regime)[0]["label_noise"]:g}, '
              f'{source["epochs"]} epochs)', '',
              '| config | decoding | lr | accuracy % | MDE | far errors % | '
              'mean error distance | cyclic error | Δ acc (pp) | Δ MDE | '
              'Δ far (pp) |', '|---|---|---|---|---|---|---|---|---|---|---|']
    for r in sorted(rows_of(rows, regime), key=lambda r: r['mean_digit_distance']):
      star = lambda m: '*' if r[f'{m}_p_holm'] < 0.05 else ''
      lines.append(
          f"| {'**' + r['config'] + '**' if r['chosen'] else r['config']} | "
          f"{r['decoding']} | {r['learning_rate']:g} | "
          f"{100 * r['accuracy']:.2f} ± {100 * r['accuracy_ci95']:.2f} | "
          f"{r['mean_digit_distance']:.4f} ± {r['mean_digit_distance_ci95']:.4f} | "
          f"{100 * r['far_error_rate']:.2f} ± {100 * r['far_error_rate_ci95']:.2f} | "
          f"{r['mean_error_distance']:.2f} | {r['cyclic_error']:.4f} | "
          f"{100 * r['accuracy_diff']:+.2f}{star('accuracy')} | "
          f"{r['mean_digit_distance_diff']:+.4f}{star('mean_digit_distance')} | "
          f"{100 * r['far_error_rate_diff']:+.2f}{star('far_error_rate')} |")
    lines += ['', 'Bold: the decoding chosen on validation. Verdict:', '',
              verdict(rows, regime), '']
  (results_dir / 'study.md').write_text('\n'.join(lines))


def rows_of(rows, regime):
  return [r for r in rows if r['regime'] == regime]


def write_plots(study: dict, rows: list[dict], results_dir) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  results_dir = pathlib.Path(results_dir)
  # Cross-entropy's validation accuracy against the epoch budget.
  fig, axes = plt.subplots(1, len(study), figsize=(3.2 * len(study), 3))
  for ax, (name, regime) in zip(np.atleast_1d(axes), study.items()):
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
  for ax, regime in zip(np.atleast_1d(axes), regimes):
    chosen = [r for r in rows_of(rows, regime) if r['chosen']]
    points = np.array([[100 * r['accuracy'], r['mean_digit_distance']]
                       for r in chosen])
    front = pareto_front(points)
    for r, (a, e), on_front in zip(chosen, points, front):
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
    ax.bar(np.arange(len(regimes)) + i * width, [100 * r['far_error_rate'] for r in chosen],
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


def run_loss_table(dataset, results_dir, runs_dir, *, base: Config,
                   log=print) -> list[dict]:
  """One epoch of every loss (seed 0, test split); writes losses.md."""
  memo, rows = {}, []
  for name, overrides in every_loss().items():
    config = dataclasses.replace(base, epochs=1, **overrides)
    cell = run_cell(pathlib.Path(results_dir) / 'losses' / f'{_slug(name)}.json',
                    config, runs_dir, dataset, log, memo)
    scores = cell['test']['argmax']
    rows.append({'name': name, 'accuracy': scores['accuracy']['mean'],
                 'mean_digit_distance': scores['mean_digit_distance']['mean'],
                 'far_error_rate': scores['far_error_rate']['mean'],
                 'command': command_for(cell['config'])})
  lines = ['One epoch, default configuration (batch 32, peak learning rate '
           '3e-3, AdamW, cosine), seed 0, argmax decoding, MNIST test split. '
           '`python experiments.py --grid losses` makes this table.', '',
           '| loss | test accuracy % | mean digit-distance error | '
           'far errors % | command |', '|---|---|---|---|---|']
  lines += [f"| {r['name']} | {100 * r['accuracy']:.2f} | "
            f"{r['mean_digit_distance']:.4f} | {100 * r['far_error_rate']:.2f} "
            f"| `{r['command']}` |" for r in rows]
  (pathlib.Path(results_dir) / 'losses.md').write_text('\n'.join(lines) + '\n')
  return rows


# ----------------------------------------------------------------------------
# Command line.


def main(argv=None) -> int:
  parser = _Parser(  # pylint: disable=protected-access
      prog='experiments.py', description=__doc__.split('\n\n')[0],
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument('--grid', default='full',
                      choices=sorted(GRIDS) + ['losses'],
                      help='full: the study; tiny: the same code on a few '
                      'small cells (seconds; used by the tests); losses: one '
                      'epoch of every registered loss (the README table)')
  parser.add_argument('--data_dir', default=None,
                      help='folder with the MNIST IDX files (default $MNIST_DIR)')
  parser.add_argument('--results_dir', default='results',
                      help='where cell files (study/), tables and plots go')
  parser.add_argument('--runs_dir', default=None,
                      help='where runs (checkpoints, predictions) go; '
                      'default runs/study-<grid>')
  args = parser.parse_args(argv)
  try:
    dataset = data.load_mnist(args.data_dir)
  except data.DataError as e:
    parser.error(f'--data_dir: {e}')
  t0 = time.perf_counter()
  results_dir = pathlib.Path(args.results_dir)
  results_dir.mkdir(parents=True, exist_ok=True)
  base = Config(data_dir=args.data_dir)
  runs_dir = args.runs_dir or f'runs/study-{args.grid}'
  if args.grid == 'losses':
    run_loss_table(dataset, results_dir, runs_dir, base=base)
    print(f'loss table: {time.perf_counter() - t0:.0f}s; '
          f'{results_dir / "losses.md"}')
    return 0
  study = run_study(args.grid, dataset, results_dir, runs_dir, base=base)
  rows = study_rows(study)
  write_tables(study, rows, results_dir)
  write_plots(study, rows, results_dir)
  print(f'study {args.grid}: {time.perf_counter() - t0:.0f}s; tables and '
        f'plots in {results_dir}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
