"""Does knowing which digits are near each other help beyond the best
distance-blind regulariser? The study.

    python -m study --data_dir ../shared/mnist            # every regime
    python -m study --data_dir ../shared/mnist --regimes scarce2000

The protocol is ``results/protocol.md`` (committed before the first final
cell). In short, per regime and family:

1. tune: one ``--sweep`` run over the learning-rate grid x the family's own
   hyperparameter (two values), two tuning seeds, validation only, a generous
   epoch budget evaluated every few epochs. The (point, epoch, decoding) with
   the lowest mean validation mean digit-distance error (MDE) wins; a chosen
   learning rate on the edge of the rates tried adds a cell one factor of two
   further out.
2. final: the winner retrained on fresh seeds up to its chosen epoch (the
   schedule still spans the budget: ``--stop_after``), scored once on the
   test split. Where the validation MDE of a family's finals is within two
   standard errors of the best control's (chosen on validation), both get
   five more seeds.

Each finished cell is a small JSON file under ``<results_dir>/study/``; a rerun
skips those, so the study resumes across sessions. ``report.py`` turns
the cells into ``study.csv``, ``study.md`` and the plots.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import pathlib
import time
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from data import Split
from study import engine, tuning
from study import report as study_report
from study import rows as study_rows
from study.engine import Finals, Protocol, Store, Tuned
from study.loss_table import run_loss_table
from study.plan import (
  CONTROL,
  DISTANCE,
  FAMILIES,
  GRIDS,
  TUNE_SEED,
  TUNE_SEEDS,
  Family,
  Grid,
)
from study.records import FamilyResult, RegimeResult
from trainer import cli
from trainer.config import Config

# ----------------------------------------------------------------------------
# Tuning (``study.tuning``, on validation only) and the finals.


def edge_rule(grid: Grid) -> tuning.EdgeRule:
  """The study's edge rule: a chosen learning rate on an edge of the rates
  tried adds a slab (every value of the family's own hyperparameter) one
  factor of two out, at most ``grid.max_extensions`` in all; the float
  means compared as they are (no tie rule was registered)."""
  return tuning.EdgeRule(hyperparameters=('learning_rate',), slab=True,
                         in_all=grid.max_extensions, exact_ties=False,
                         cell_names={'learning_rate': 'lr'})


def tuned_grid(family: Family, rates: Sequence[float]) -> Tuned:
  """A family's grid: the learning rates x its own two values."""
  own = dict([family.own]) if family.own else {}
  return Tuned(family.overrides, {'learning_rate': tuple(rates), **own})


def fixed_own(family: Tuned, chosen: Config) -> Tuned:
  """The family with its own hyperparameter (every one but the learning
  rate) fixed at ``chosen``'s value: only the rates are tuned."""
  own = {name: getattr(chosen, name) for name in family.grid
         if name != 'learning_rate'}
  return Tuned({**family.overrides, **own},
               {'learning_rate': family.grid['learning_rate']})


def protocol(grid: Grid, base: Config) -> Protocol:
  """The screening study on ``grid`` as a protocol: each regime's data and
  budget on ``base``; every family's grid in every regime (a regime tunes
  its own list and, where it takes one, the best-of family; one whose own
  values come from another regime fixes them through :func:`fixed_own`);
  seeds 100-101, the edge rule, and finals on seeds 0-4, then 5-9 where
  close (shifted where the regime says)."""
  if len(grid.learning_rates) < 2:
    raise ValueError('a grid tries two or more learning rates; got '
                     f'{grid.learning_rates}.')
  return Protocol(
      cells='study', regimes={name: dataclasses.replace(
          base, validation_size=grid.validation_size,
          train_size=regime.train_size, label_noise=regime.label_noise,
          clean_validation=regime.clean_validation, epochs=regime.epochs,
          eval_every=regime.eval_every)
                              for name, regime in grid.regimes.items()},
      families={name: {f: tuned_grid(family, grid.learning_rates)
                       for f, family in FAMILIES.items()}
                for name in grid.regimes},
      tune_seed=TUNE_SEED, tune_seeds=TUNE_SEEDS, edges=edge_rule(grid),
      finals=Finals(0, 2, grid.final_seeds, suffixes=('', '-more')))


def needs_more_seeds(values: npt.ArrayLike, reference: npt.ArrayLike
                     ) -> bool:
  """Whether the paired difference is within two standard errors of 0."""
  diff = np.asarray(values, np.float64) - np.asarray(reference, np.float64)
  se = diff.std(ddof=1) / math.sqrt(diff.size)
  return bool(abs(diff.mean()) < 2 * se)


def close_to_control(families: dict[str, FamilyResult],
                     control: str) -> list[str]:
  """The families whose finals' validation MDE is within two standard
  errors of the control's: decided on validation, like every other choice."""
  def validation_mde(family: FamilyResult) -> dict[int, float]:
    return study_rows.values(family, ['validation'], 'mean_digit_distance')

  return [f for f, family in families.items() if f != control and
          needs_more_seeds(*study_rows.paired(
              validation_mde(family), validation_mde(families[control])))]


# ----------------------------------------------------------------------------
# The study.


@dataclasses.dataclass
class StudyRun:
  """One run of the study: its protocol, its cell store, and each regime's
  tuning once done (keyed by regime and families: other regimes reuse
  it)."""
  grid: Grid
  protocol: Protocol
  store: Store
  tuned: dict[tuple[str, tuple[str, ...]], dict[str, FamilyResult]] = (
      dataclasses.field(default_factory=dict))


def tune_regime(name: str, study_run: StudyRun,
                families: list[str]) -> dict[str, FamilyResult]:
  """Every family's tuning cells and choice in regime ``name``, once per
  study run: other regimes reuse them (plus_best_of, own_from)."""
  key = (name, tuple(families))
  if key in study_run.tuned:
    return study_run.tuned[key]
  grid, log = study_run.grid, study_run.store.log
  regime = grid.regimes[name]
  chosen_in_own_from = {} if regime.own_from is None else tune_regime(
      regime.own_from, study_run,
      list(grid.regimes[regime.own_from].families))
  tuned = {}
  for i, family_name in enumerate(families):
    log(f'[{name}] tune {family_name} ({i + 1}/{len(families)})')
    family = study_run.protocol.families[name][family_name]
    if regime.own_from is not None:
      family = fixed_own(family,
                         chosen_in_own_from[family_name].choice.config)
    tuned_family = engine.tune(study_run.store, study_run.protocol, name,
                               family_name, family)
    if tuned_family.on_edge:
      log(f'[{name}] {family_name}: the chosen rate is still on an '
          f'edge after {grid.max_extensions} extensions')
    tuned[family_name] = FamilyResult(
        FAMILIES[family_name].role, tuned_family.cells, tuned_family.choice,
        bool(tuned_family.on_edge))
  study_run.tuned[key] = tuned
  return tuned


def best_distance_aware(tuned_regimes: list[dict[str, FamilyResult]]) -> str:
  """The distance-aware family with the best mean rank of validation MDE
  over the regimes (ties: by name)."""
  ranks: dict[str, list[int]] = {}
  for tuned in tuned_regimes:
    scores = {f: t.choice.validation_mde for f, t in tuned.items()
              if t.role == DISTANCE}
    aware = sorted(scores, key=scores.__getitem__)
    for rank, family in enumerate(aware):
      ranks.setdefault(family, []).append(rank)
  everywhere = [f for f, r in ranks.items() if len(r) == len(tuned_regimes)]
  return min(everywhere, key=lambda f: (np.mean(ranks[f]), f))


def run_regime(name: str, study_run: StudyRun) -> RegimeResult:
  """Tunes every family of the regime, then runs the finals."""
  grid, store = study_run.grid, study_run.store
  regime, log = grid.regimes[name], store.log
  finals = dataclasses.replace(study_run.protocol.finals,
                               shifted=regime.shifted)
  names = list(regime.families)
  if regime.plus_best_of:
    best = best_distance_aware([
        tune_regime(other, study_run, list(grid.regimes[other].families))
        for other in regime.plus_best_of])
    log(f'[{name}] best distance-aware family of '
        f'{", ".join(regime.plus_best_of)} on validation: {best}')
    names += [best] * (best not in names)
  tuned = tune_regime(name, study_run, names)
  families = {family_name: dataclasses.replace(family, finals=tuple(
      engine.run_finals(store, finals, name, family_name, family.choice,
                        groups=[0])))
              for family_name, family in tuned.items()}
  diverged = {f: family.finals[0].diverged for f, family in families.items()
              if family.finals[0].diverged is not None}
  if diverged:
    log(f'[{name}] diverged in the finals (reported, not scored): '
        f'{", ".join(diverged)}')
  scored = {f: family for f, family in families.items() if f not in diverged}
  # The best control among those scored: one that diverged in its finals
  # has no seeds to pair with.
  controls = [f for f in scored if scored[f].role == CONTROL]
  best_control = min(controls, key=lambda f: scored[f].choice.validation_mde)
  log(f'[{name}] finals; best control on validation: {best_control}')
  close = close_to_control(scored, best_control)
  if close:
    log(f'[{name}] validation MDE within two standard errors of '
        f'{best_control}: {", ".join(close)}; five more seeds each')
  for family_name in close + [best_control] * bool(close):
    family = scored[family_name]
    scored[family_name] = dataclasses.replace(family, finals=(
        *family.finals, *engine.run_finals(store, finals, name, family_name,
                                           family.choice, groups=[1])))
  return RegimeResult(regime, scored, best_control, diverged)


def run_study(grid_name: str, dataset: dict[str, Split] | None,
              results_dir: str | pathlib.Path, runs_dir: str | pathlib.Path,
              *, base: Config, regimes: list[str] | None = None,
              log: Callable[[str], object] = print,
              ) -> dict[str, RegimeResult]:
  """Runs the regimes of a grid; returns everything the report needs."""
  grid = GRIDS[grid_name]
  study_protocol = protocol(grid, base)
  study_run = StudyRun(grid, study_protocol, study_protocol.store(
      results_dir, runs_dir=pathlib.Path(runs_dir), dataset=dataset,
      log=log))
  return {name: run_regime(name, study_run)
          for name in regimes or list(grid.regimes)}


# ----------------------------------------------------------------------------
# Command line.


def build_parser() -> cli.Parser:
  """The command line's flags (its own argument check)."""
  parser = cli.Parser(
      prog='python -m study', description=__doc__.split('\n\n')[0],
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument('--grid', default='full',
                      choices=sorted(GRIDS) + ['losses'],
                      help='full: the study; tiny: the same code on a few '
                      'small cells (used by the tests, on synthetic data); '
                      'losses: one epoch of every registered loss (the '
                      'README table)')
  parser.add_argument('--regimes', default=None,
                      help='comma-separated regimes of the grid to run, in '
                      'that order (default: all; full: ' +
                      ','.join(GRIDS['full'].regimes) + '); noisy40 and '
                      'clean first tune both scarce regimes (their best '
                      'distance-aware family joins them), unless done')
  parser.add_argument('--data_dir', default=None,
                      help='folder with the MNIST IDX files (default '
                      '$MNIST_DIR)')
  parser.add_argument('--results_dir', default='results',
                      help='where cell files (study/), tables and plots go')
  parser.add_argument('--runs_dir', default=None,
                      help='where runs (checkpoints, predictions) go; '
                      'default runs/study-<grid>')
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  parser = build_parser()
  args = parser.parse_args(argv)
  regimes = None
  if args.regimes and args.grid == 'losses':
    parser.error('--regimes applies to the study grids, not --grid losses.')
  if args.regimes:
    regimes = args.regimes.split(',')
    unknown = set(regimes) - set(GRIDS[args.grid].regimes)
    if unknown:
      parser.error(f'--regimes: no regime {", ".join(sorted(unknown))} in '
                   f'--grid {args.grid} (it has '
                   f'{", ".join(GRIDS[args.grid].regimes)}).')
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
  study = run_study(args.grid, dataset, results_dir, runs_dir, base=base,
                    regimes=regimes)
  study_report.write_report(study, results_dir)
  print(f'study {args.grid}: {time.perf_counter() - t0:.0f}s; tables and '
        f'plots in {results_dir}')
  return 0


