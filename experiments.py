"""Does a distance-aware loss lower the mean digit-distance error without costing accuracy?

    python experiments.py --grid full --data_dir ../shared/mnist

Runs a named grid of configurations (every registered loss, CE + lambda mixes,
soft-label temperatures, linear and cyclic distances), each with several seeds
trained as one vmapped program by :func:`train.train_and_evaluate`. Finished runs
are skipped and interrupted ones resumed, so re-running continues the grid.
Then it writes, to ``--results_dir``:

- ``results.csv`` / ``results.md``: per configuration and decoding (argmax,
  Bayes), mean and 95 % confidence interval over seeds of every test metric,
  and a paired t-test against cross-entropy on the same seeds;
- ``pareto.png``, ``lambda_sweep.png``, ``confusion.png``,
  ``error_distances.png``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import pathlib
import sys
import time

import numpy as np

import data
import train

BASELINE = 'cross_entropy'
METRICS = ('accuracy', 'mean_digit_distance', 'cyclic_error',
           'off_by_one_accuracy', 'qwk')
HIGHER_IS_BETTER = {'accuracy': True, 'mean_digit_distance': False,
                    'cyclic_error': False, 'off_by_one_accuracy': True,
                    'qwk': True}
LAMBDAS = (0.1, 0.3, 1.0, 3.0)


def full_grid() -> dict[str, dict]:
  """Configuration name -> Config overrides."""
  grid = {BASELINE: {}}
  for loss in ('expected_value_mse', 'circular_mse', 'squared_emd',
               'circular_emd', 'coral', 'corn'):
    grid[loss] = {'loss': loss}
  for distance in ('linear', 'cyclic'):
    grid[f'expected_cost[{distance}]'] = {'loss': 'expected_cost',
                                          'distance': distance}
    grid[f'cdw_ce[{distance}]'] = {'loss': 'class_distance_weighted_ce',
                                   'distance': distance}
    grid[f'weighted_kappa[{distance}]'] = {'loss': 'weighted_kappa',
                                           'distance': distance}
  for temperature in (0.5, 1.0, 2.0):
    grid[f'sord[linear,T={temperature:g}]'] = {
        'loss': 'soft_label_cross_entropy', 'temperature': temperature}
  grid['sord[cyclic,T=1]'] = {'loss': 'soft_label_cross_entropy',
                              'distance': 'cyclic', 'temperature': 1.0}
  for loss in ('expected_value_mse', 'expected_cost'):
    for lam in LAMBDAS:
      grid[f'ce+{lam:g}*{loss}'] = {'loss': loss, 'ce_weight': lam}
  return grid


def smoke_grid() -> dict[str, dict]:
  """A few configurations that exercise every output; for tests and demos."""
  return {
      BASELINE: {},
      'expected_cost[linear]': {'loss': 'expected_cost'},
      'ce+1*expected_cost': {'loss': 'expected_cost', 'ce_weight': 1.0},
      'coral': {'loss': 'coral'},
  }


GRIDS = {'full': full_grid, 'smoke': smoke_grid}


# ----------------------------------------------------------------------------
# Running the grid.


def run_grid(grid: dict[str, dict], base: train.Config, runs_dir, *,
             dataset=None, log=print) -> dict[str, pathlib.Path]:
  """Trains every configuration not yet finished; returns name -> workdir."""
  runs_dir = pathlib.Path(runs_dir)
  workdirs = {}
  for i, (name, overrides) in enumerate(grid.items(), 1):
    workdir = runs_dir / _slug(name)
    workdirs[name] = workdir
    config = dataclasses.replace(base, **overrides)
    resume = (workdir / 'config.json').exists()
    if resume and train.Config(**json.loads(
        (workdir / 'config.json').read_text())) != config:
      raise ValueError(f'{workdir} holds a run with another configuration; '
                       'remove it or choose another --runs_dir.')
    if (workdir / 'summary.json').exists():
      log(f'[{i}/{len(grid)}] {name}: done, skipped')
      continue
    log(f'[{i}/{len(grid)}] {name}: {"resuming" if resume else "training"} '
        f'{config.num_seeds} seeds x {config.epochs} epochs')
    t0 = time.perf_counter()
    train.train_and_evaluate(config, workdir, resume=resume, dataset=dataset)
    log(f'[{i}/{len(grid)}] {name}: {time.perf_counter() - t0:.0f}s')
  return workdirs


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


def collect(workdirs: dict[str, pathlib.Path]) -> list[dict]:
  """One row per (configuration, decoding) with means, CIs and paired tests."""
  summaries = {name: json.loads((w / 'summary.json').read_text())
               for name, w in workdirs.items()}
  base = summaries[BASELINE]['final']['test']
  rows = []
  for name, summary in summaries.items():
    for decoding in ('argmax', 'bayes'):
      scores = summary['final']['test'][decoding]
      row = {'config': name, 'decoding': decoding,
             'loss': summary['config']['loss'],
             'distance': summary['config']['distance'],
             'ce_weight': summary['config']['ce_weight'],
             'seeds': len(summary['seeds']),
             'epochs': summary['config']['epochs'],
             'batch_size': summary['config']['batch_size'],
             'learning_rate': summary['config']['learning_rate']}
      for metric in METRICS:
        values = scores[metric]['per_seed']
        row[metric], row[f'{metric}_ci95'] = mean_ci(values)
        # Paired with the CE baseline's argmax predictions on the same seeds.
        ref = base['argmax'][metric]['per_seed']
        row[f'{metric}_diff'], row[f'{metric}_p'] = paired_test(values, ref)
      rows.append(row)
  return rows


def verdict(rows: list[dict]) -> str:
  """Names the lowest-error configuration within 0.1 pp of CE's accuracy."""
  base = next(r for r in rows if r['config'] == BASELINE and
              r['decoding'] == 'argmax')
  eligible = [r for r in rows if r['accuracy'] >= base['accuracy'] - 0.001 and
              (r['config'], r['decoding']) != (BASELINE, 'argmax')]
  better = [r for r in eligible
            if r['mean_digit_distance'] < base['mean_digit_distance']]
  if not better:
    return ('No configuration has a lower mean digit-distance error than '
            'cross-entropy with argmax while staying within 0.1 percentage '
            'point of its accuracy.')
  best = min(better, key=lambda r: r['mean_digit_distance'])
  significant = best['mean_digit_distance_p'] < 0.05
  return (f"Lowest mean digit-distance error within 0.1 pp of CE's accuracy: "
          f"{best['config']} with {best['decoding']} decoding, "
          f"{best['mean_digit_distance']:.4f} ± {best['mean_digit_distance_ci95']:.4f} "
          f"vs CE {base['mean_digit_distance']:.4f} ± "
          f"{base['mean_digit_distance_ci95']:.4f} (paired difference "
          f"{best['mean_digit_distance_diff']:+.4f}, p = "
          f"{best['mean_digit_distance_p']:.3g}: "
          f"{'significant' if significant else 'not significant'} at 5 %); "
          f"accuracy {100 * best['accuracy']:.2f} % vs "
          f"{100 * base['accuracy']:.2f} %.")


# ----------------------------------------------------------------------------
# Outputs.


def write_tables(rows: list[dict], results_dir: pathlib.Path) -> None:
  with open(results_dir / 'results.csv', 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
  lines = [
      '| config | decoding | accuracy % | mean digit-distance | cyclic error | '
      'off-by-one % | QWK | Δ accuracy vs CE (pp) | Δ MDE vs CE |',
      '|---|---|---|---|---|---|---|---|---|',
  ]

  def diff(row, metric, scale):
    mark = '*' if row[f'{metric}_p'] < 0.05 else ''
    return f"{scale * row[f'{metric}_diff']:+.3f}{mark}"

  for r in sorted(rows, key=lambda r: r['mean_digit_distance']):
    lines.append(
        f"| {r['config']} | {r['decoding']} | "
        f"{100 * r['accuracy']:.2f} ± {100 * r['accuracy_ci95']:.2f} | "
        f"{r['mean_digit_distance']:.4f} ± {r['mean_digit_distance_ci95']:.4f} | "
        f"{r['cyclic_error']:.4f} ± {r['cyclic_error_ci95']:.4f} | "
        f"{100 * r['off_by_one_accuracy']:.2f} ± {100 * r['off_by_one_accuracy_ci95']:.2f} | "
        f"{r['qwk']:.4f} ± {r['qwk_ci95']:.4f} | "
        f"{diff(r, 'accuracy', 100)} | {diff(r, 'mean_digit_distance', 1)} |")
  first = rows[0]
  header = (f"Test split, {first['seeds']} seeds per configuration, "
            f"{first['epochs']} epoch(s) each at batch size "
            f"{first['batch_size']} and peak learning rate "
            f"{first['learning_rate']:g}; mean ± 95 % t-interval over seeds. "
            'Δ columns: mean paired difference against cross-entropy with '
            'argmax decoding on the same seeds; * marks p < 0.05 (paired '
            't-test). Sorted by mean digit-distance error.\n\n')
  (results_dir / 'results.md').write_text(
      header + '\n'.join(lines) + '\n\n' + verdict(rows) + '\n')


def pareto_front(points: np.ndarray) -> np.ndarray:
  """Mask of points (accuracy, error) not beaten on both by another point."""
  acc, err = points[:, 0], points[:, 1]
  return np.array([not np.any((acc >= a) & (err <= e) & ((acc > a) | (err < e)))
                   for a, e in zip(acc, err)])


def write_plots(rows: list[dict], workdirs, results_dir: pathlib.Path) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  # Accuracy vs mean digit-distance error, Pareto front marked. Configurations
  # far below the baseline would squash the interesting corner: they are
  # listed under the axes instead.
  base = next(r for r in rows if r['config'] == BASELINE and
              r['decoding'] == 'argmax')
  shown = [r for r in rows if r['accuracy'] >= base['accuracy'] - 0.02]
  hidden = sorted({r['config'] for r in rows} - {r['config'] for r in shown})
  fig, ax = plt.subplots(figsize=(9, 7))
  points = np.array([[100 * r['accuracy'], r['mean_digit_distance']]
                     for r in shown])
  front = pareto_front(points)
  for r, (a, e), on_front in zip(shown, points, front):
    marker = 'o' if r['decoding'] == 'argmax' else 's'
    ax.errorbar(a, e, xerr=100 * r['accuracy_ci95'],
                yerr=r['mean_digit_distance_ci95'], fmt=marker,
                color='C3' if on_front else 'C0', alpha=0.7, ms=5, lw=0.8)
    if on_front or r['config'] == BASELINE:
      ax.annotate(f"{r['config']} ({r['decoding']})", (a, e), fontsize=7,
                  xytext=(4, 4), textcoords='offset points')
  order = np.argsort(points[front, 0])
  ax.plot(points[front, 0][order], points[front, 1][order], 'C3--', lw=1,
          label='Pareto front')
  ax.set_xlabel('test accuracy (%)')
  ax.set_ylabel('mean digit-distance error')
  ax.set_title('Accuracy vs mean digit-distance error\n'
               '(o argmax, □ Bayes decoding; bars: 95 % CI over seeds)')
  if hidden:
    fig.text(0.01, 0.01, 'more than 2 pp below CE, not shown: ' +
             ', '.join(hidden), fontsize=7, wrap=True)
  ax.legend()
  fig.tight_layout(rect=(0, 0.04, 1, 1))
  fig.savefig(results_dir / 'pareto.png', dpi=120)
  plt.close(fig)

  # The lambda sweep: CE + lambda * loss.
  fig, axes = plt.subplots(1, 2, figsize=(10, 4))
  sweeps = sorted({r['loss'] for r in rows if r['ce_weight'] is not None})
  for loss in sweeps:
    sweep = sorted([r for r in rows if r['loss'] == loss and
                    r['ce_weight'] is not None and r['decoding'] == 'argmax'],
                   key=lambda r: r['ce_weight'])
    lams = [0.0] + [r['ce_weight'] for r in sweep]
    for ax, metric, scale in ((axes[0], 'accuracy', 100),
                              (axes[1], 'mean_digit_distance', 1)):
      means = [scale * base[metric]] + [scale * r[metric] for r in sweep]
      cis = [scale * base[f'{metric}_ci95']] + [scale * r[f'{metric}_ci95']
                                                for r in sweep]
      ax.errorbar(lams, means, yerr=cis, marker='o', capsize=3,
                  label=f'CE + λ·{loss}')
  for ax, label in zip(axes, ('test accuracy (%)', 'mean digit-distance error')):
    ax.set_xscale('symlog', linthresh=0.1)
    ax.set_xlabel('λ (0 = cross-entropy)')
    ax.set_ylabel(label)
    ax.legend(fontsize=8)
  fig.suptitle('Mixing cross-entropy with a distance-aware loss (argmax, 95 % CI)')
  fig.tight_layout()
  fig.savefig(results_dir / 'lambda_sweep.png', dpi=120)
  plt.close(fig)

  # Confusion matrices and error-distance histograms: CE vs the best config.
  best = min((r for r in rows if r['config'] != BASELINE),
             key=lambda r: r['mean_digit_distance'])
  chosen = [(BASELINE, 'argmax'), (best['config'], best['decoding'])]
  errors = []
  for name, decoding in chosen:
    with np.load(workdirs[name] / 'predictions.npz') as pred:
      labels, preds = pred['labels'], pred[decoding]  # preds: [seeds, N]
    confusion = np.zeros((10, 10))
    for p in preds:
      np.add.at(confusion, (labels, p), 1)
    np.fill_diagonal(confusion, np.nan)  # errors only
    errors.append((confusion / len(preds), np.abs(preds - labels[None, :])))
  vmax = max(np.nanmax(c) for c, _ in errors)
  fig, axes = plt.subplots(1, 2, figsize=(12, 5.5))
  hist_fig, hist_ax = plt.subplots(figsize=(7, 4))
  width = 0.4
  for i, (ax, (name, decoding), (confusion, dist)) in enumerate(
      zip(axes, chosen, errors)):
    im = ax.imshow(confusion, cmap='viridis', vmin=0, vmax=vmax)
    for (t, p), count in np.ndenumerate(confusion):
      if count >= 0.5:
        ax.text(p, t, f'{count:.0f}', ha='center', va='center', fontsize=6,
                color='white' if count < vmax / 2 else 'black')
    ax.set_title(f'{name} ({decoding}): {np.nansum(confusion):.0f} errors')
    ax.set_xlabel('predicted digit')
    ax.set_ylabel('true digit')
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    fig.colorbar(im, ax=ax, fraction=0.046)
    counts = np.array([(dist == d).sum(axis=1) for d in range(1, 10)]).mean(1)
    hist_ax.bar(np.arange(1, 10) + (i - 0.5) * width, counts, width,
                label=f'{name} ({decoding})')
  fig.suptitle('Test errors per (true, predicted) digit, mean over seeds')
  fig.tight_layout(rect=(0, 0, 1, 0.95))
  fig.savefig(results_dir / 'confusion.png', dpi=120)
  plt.close(fig)
  hist_ax.set_xlabel('|predicted − true| digit distance of an error')
  hist_ax.set_ylabel('test errors (mean over seeds)')
  hist_ax.set_xticks(range(1, 10))
  hist_ax.legend()
  hist_ax.set_title('How far off are the mistakes?')
  hist_fig.tight_layout()
  hist_fig.savefig(results_dir / 'error_distances.png', dpi=120)
  plt.close(hist_fig)


def write_results(workdirs, results_dir) -> list[dict]:
  results_dir = pathlib.Path(results_dir)
  results_dir.mkdir(parents=True, exist_ok=True)
  rows = collect(workdirs)
  write_tables(rows, results_dir)
  write_plots(rows, workdirs, results_dir)
  return rows


# ----------------------------------------------------------------------------
# Command line.


def main(argv=None) -> int:
  parser = train._Parser(  # pylint: disable=protected-access
      prog='experiments.py', description=__doc__.split('\n\n')[0],
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument('--grid', default='full', choices=sorted(GRIDS),
                      help='which named grid of configurations to run')
  parser.add_argument('--num_seeds', type=int, default=5,
                      help='seeds per configuration (vmapped together)')
  parser.add_argument('--epochs', type=int, default=1,
                      help='epochs per run')
  parser.add_argument('--batch_size', type=int, default=train.Config.batch_size,
                      help='training batch size')
  parser.add_argument('--learning_rate', type=float,
                      default=train.Config.learning_rate,
                      help='peak learning rate of every run')
  parser.add_argument('--data_dir', default=None,
                      help='folder with the MNIST IDX files (default $MNIST_DIR)')
  parser.add_argument('--runs_dir', default=None,
                      help='where runs (checkpoints, predictions) go; '
                      'default runs/grid-<grid>')
  parser.add_argument('--results_dir', default='results',
                      help='where the tables and plots go')
  args = parser.parse_args(argv)
  if args.num_seeds < 2:
    parser.error('--num_seeds must be >= 2 for confidence intervals.')
  if args.epochs < 1 or args.batch_size < 1:
    parser.error('--epochs and --batch_size must be >= 1.')
  if not 0 < args.learning_rate < math.inf:
    parser.error(f'--learning_rate must be finite and > 0, got '
                 f'{args.learning_rate}.')
  try:
    dataset = data.load_mnist(args.data_dir)
  except data.DataError as e:
    parser.error(f'--data_dir: {e}')
  base = train.Config(epochs=args.epochs, batch_size=args.batch_size,
                      learning_rate=args.learning_rate,
                      num_seeds=args.num_seeds, data_dir=args.data_dir)
  runs_dir = pathlib.Path(args.runs_dir or f'runs/grid-{args.grid}')
  t0 = time.perf_counter()
  workdirs = run_grid(GRIDS[args.grid](), base, runs_dir, dataset=dataset)
  rows = write_results(workdirs, args.results_dir)
  print(f'grid {args.grid}: {len(workdirs)} configurations in '
        f'{time.perf_counter() - t0:.0f}s; results in {args.results_dir}')
  print(verdict(rows))
  return 0


if __name__ == '__main__':
  sys.exit(main())
