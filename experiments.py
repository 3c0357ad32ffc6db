"""When does a distance-aware loss lower far-off mistakes? The validated study.

    python experiments.py --data_dir ../shared/mnist   # ~100 min, 2 CPU cores
    python experiments.py --data_dir ../shared/mnist --grid tiny \\
        --results_dir /tmp/s

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
a rerun skips those, so the study resumes across sessions. Then
``study_report.py`` writes the tables (``study.csv``, ``study.md``) and plots
from the cell files.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import pathlib
import shutil
import sys
import time

import cli
import losses
import train
from config import Config
from runfiles import write_text_atomic
from study_report import (
  BASELINE,
  FINAL_SEEDS,
  TUNE_SEED,
  VALIDATION_SIZE,
  command_for,
  study_rows,
  write_plots,
  write_tables,
)


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
    # Config(**saved) fills fields added since the cell was written with
    # their defaults, which is what the cell ran with.
    if Config(**cell['config']) != config:
      raise ValueError(f'{path} holds another configuration; remove it or '
                       'choose another --results_dir.')
    memo[key] = cell
    return cell
  workdir = pathlib.Path(runs_dir) / path.relative_to(
      path.parents[1]).with_suffix('')
  resume = (workdir / 'config.json').exists()
  if resume and Config(**json.loads(
      (workdir / 'config.json').read_text())) != config:
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
  acc = {e: c['validation']['argmax']['accuracy']['mean']
         for e, c in curve.items()}
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


def run_loss_table(dataset, results_dir, runs_dir, *, base: Config,
                   log=print) -> list[dict]:
  """One epoch of every loss (seed 0, test split); writes losses.md."""
  memo, rows = {}, []
  for name, overrides in every_loss().items():
    config = dataclasses.replace(base, epochs=1, **overrides)
    path = pathlib.Path(results_dir) / 'losses' / f'{_slug(name)}.json'
    cell = run_cell(path, config, runs_dir, dataset, log, memo)
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
  parser = cli.Parser(
      prog='experiments.py', description=__doc__.split('\n\n')[0],
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument('--grid', default='full',
                      choices=sorted(GRIDS) + ['losses'],
                      help='full: the study; tiny: the same code on a few '
                      'small cells (seconds; used by the tests); losses: one '
                      'epoch of every registered loss (the README table)')
  parser.add_argument('--data_dir', default=None,
                      help='folder with the MNIST IDX files (default '
                      '$MNIST_DIR)')
  parser.add_argument('--results_dir', default='results',
                      help='where cell files (study/), tables and plots go')
  parser.add_argument('--runs_dir', default=None,
                      help='where runs (checkpoints, predictions) go; '
                      'default runs/study-<grid>')
  args = parser.parse_args(argv)
  dataset = cli.load_mnist(parser, args.data_dir)
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
