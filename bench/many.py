"""Many models: the evaluation of the test split by several seeds, and a
tuning cell trained as one ``--sweep`` run against one run per point.

A sweep's separate runs are ``train.train_and_evaluate`` in this process,
compile and files included; each launched from the shell would also pay its
interpreter start and data loading.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import statistics
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from bench.timing import Contestant, spread, time_interleaved
from data import Split
from trainer import loop
from trainer.config import Config
from trainer.programs import build_programs
from trainer.resolve import resolve
from trainer.run_data import check_data_sizes


def ours_evaluation(dataset: dict[str, Split], num_seeds: int) -> Contestant:
  """train.py's evaluation of the test split by ``num_seeds`` models."""
  config = Config(num_seeds=num_seeds)
  spec = resolve(config)
  programs = build_programs(spec, check_data_sizes(
      config, len(dataset['train'].labels)))
  test = tuple(map(jnp.asarray, dataset['test']))
  lowered = programs.evaluate.lower(programs.params, spec.inputs_P, *test)
  compiled: dict[str, jax.stages.Compiled] = {}

  def warm_up() -> None:
    compiled['eval'] = lowered.compile()

  def evaluate() -> None:
    jax.device_get(compiled['eval'](programs.params, spec.inputs_P, *test))

  return Contestant({'eval': evaluate}, warm_up)


def eval_seeds(dataset: dict[str, Split], seed_counts: Sequence[int],
               repeats: int) -> dict[str, Any]:
  """Seconds to evaluate the test split with each number of models,
  interleaved, and each median's ratio to the first count's."""
  times = time_interleaved({n: ours_evaluation(dataset, n)
                            for n in seed_counts}, repeats)
  first = statistics.median(times[seed_counts[0]]['eval'])
  return {'test_images': len(dataset['test'].labels),
          'rows': {str(n): {'eval_s': spread(parts['eval']),
                            'ratio_to_first': statistics.median(
                                parts['eval']) / first}
                   for n, parts in times.items()}}


# The tuning cell of --sweep_points: scarce data, validation only, 2 seeds;
# the points are learning rates x SORD temperatures.
SWEEP_CELL: dict[str, Any] = {
    'loss': 'soft_label_cross_entropy', 'validation_size': 5000,
    'num_seeds': 2, 'score_test': False}


def sweep_cell(num_points: int, epochs: int, train_size: int) -> Config:
  learning_rates = [7.5e-4 * 2**i for i in range(num_points // 2)]
  return Config(**SWEEP_CELL, epochs=epochs, train_size=train_size,
                sweep={'learning_rate': learning_rates,
                       'temperature': [0.5, 1.0]})


def sweep_vs_separate(dataset: dict[str, Split], config: Config,
                      repeats: int) -> dict[str, Any]:
  """One --sweep run against one run per point, interleaved, wall seconds."""
  separate = [dataclasses.replace(config, sweep={}, **point)
              for point in resolve(config).points]

  def train_all(configs: list[Config]) -> Callable[[], None]:
    # train.py's per-epoch lines would bury the bench's tables
    def run() -> None:
      for c in configs:
        with tempfile.TemporaryDirectory() as workdir, \
            contextlib.redirect_stdout(io.StringIO()):
          loop.train_and_evaluate(c, workdir, dataset=dataset)
    return run

  times = time_interleaved(
      {'one_sweep': Contestant({'cell': train_all([config])}, lambda: None),
       'separate_runs': Contestant({'cell': train_all(separate)},
                                   lambda: None)}, repeats)
  one, apart = times['one_sweep']['cell'], times['separate_runs']['cell']
  per_round = [a / o for a, o in zip(apart, one, strict=True)]
  return {'config': dataclasses.asdict(config), 'points': len(separate),
          'one_sweep_s': spread(one), 'separate_runs_s': spread(apart),
          'ratio_of_medians': statistics.median(apart) / statistics.median(one),
          'per_round_min': min(per_round), 'per_round_max': max(per_round)}


def print_eval_seeds(result: dict[str, Any], repeats: int) -> None:
  print(f"\nevaluation of the {result['test_images']} test images; median "
        f'[min-max] of {repeats} interleaved rounds')
  for n, r in result['rows'].items():
    s = r['eval_s']
    print(f"{n:>3} model(s): {s['median']:6.2f} s [{s['min']:.2f}-"
          f"{s['max']:.2f}]  {r['ratio_to_first']:.2f}x the first")


def print_sweep(result: dict[str, Any], repeats: int) -> None:
  config = result['config']
  print(f"\ntuning cell: {result['points']} points {config['sweep']} x "
        f"{config['num_seeds']} seeds, {config['train_size']} images, "
        f"{config['epochs']} epochs, validation {config['validation_size']}; "
        f'wall s including compile, median [min-max] of {repeats} rounds')
  for name in ('one_sweep', 'separate_runs'):
    s = result[f'{name}_s']
    print(f"{name:<14} {s['median']:7.1f} [{s['min']:.1f}-{s['max']:.1f}]")
  print(f"separate runs / one sweep: {result['ratio_of_medians']:.2f}x (per "
        f"round {result['per_round_min']:.2f}-{result['per_round_max']:.2f}x)")
