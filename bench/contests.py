"""Training speed as users feel it: train.py's own programs, side by side.

    python -m bench --data_dir ../shared/mnist --time_to_99

On MNIST, in one process, round-robin over ``--repeats`` rounds so that a noisy
machine affects every contestant alike (medians with ranges), it times:

- ``ours@B``: the programs ``train.py`` runs (``programs.build_programs``,
  compiled ahead, fed the epoch's batches by ``run_data.batches_on_devices``)
  at batch B with the default configuration: one full epoch, then the
  evaluation of the test split, timed apart;
- ``torch@B``: the same CNN in PyTorch eager fp32 with Adam (when torch is
  installed): a full epoch drawing each batch from a fresh permutation (a
  gather per step), then the test split's forward pass, timed apart;
- ``--eval_seeds 1,5``: the evaluation of the test split by 1 and by 5
  models (it should cost about 5x, not more);
- ``--sweep_points 8``: a tuning cell of 8 points x 2 seeds trained as one
  ``--sweep`` run against 8 separate runs (``train.train_and_evaluate``
  in this process, compile and files included; each separate run launched
  from the shell would also pay its interpreter start and data loading).

Ratios compare our epoch *plus* evaluation with PyTorch's epoch alone, at the
same batch and at PyTorch's fastest batch. ``--time_to_99`` runs
``python train.py --epochs 1`` from a cold start (interpreter, data, compile,
epoch, evaluation). ``--profile N`` traces one epoch and one evaluation of the
first ``ours`` and lists the N kinds of XLA op that take the most time.
``--micro`` adds the 40-step micro-loop of ``micro.py`` (synthetic
images, labelled as such). Prints tables and writes ``--json``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import train
from bench import micro
from bench.timing import (
  Contestant,
  print_profile,
  profile_ops,
  spread,
  time_interleaved,
  torch_cnn,
)
from data import Split
from trainer import cli
from trainer.config import Config
from trainer.programs import build_programs
from trainer.resolve import resolve
from trainer.run_data import (
  batches_on_devices,
  check_data_sizes,
  prepare_data,
)

# ----------------------------------------------------------------------------
# The real epoch: what `python train.py` runs, and PyTorch's full epoch.


def ours_epoch(dataset: dict[str, Split], batch_size: int,
               train_size: int | None = None,
               num_seeds: int = 1) -> Contestant:
  """train.py's programs on MNIST at this batch size, default config."""
  config = Config(batch_size=batch_size, train_size=train_size,
                  num_seeds=num_seeds)
  spec = resolve(config)
  run_data = prepare_data(config, dataset, spec.seeds)
  programs = build_programs(spec, run_data.steps_per_epoch)
  test = tuple(map(jnp.asarray, run_data.eval_sets['test']))

  def batches(epoch: int) -> tuple[jax.Array, jax.Array]:
    return batches_on_devices(run_data, spec.seeds, epoch, batch_size,
                              mesh=None)

  state = {'params': programs.params, 'opt': programs.opt_state, 'epoch': 0}
  lowered = {'epoch': programs.train_epoch.lower(
                 state['params'], state['opt'], spec.inputs_P, *batches(1)),
             'eval': programs.evaluate.lower(state['params'], spec.inputs_P,
                                             *test)}
  compiled: dict[str, jax.stages.Compiled] = {}

  def warm_up() -> None:  # compiled ahead, as train.py does
    compiled.update({name: low.compile() for name, low in lowered.items()})

  def epoch() -> None:  # what train.py does each epoch, evaluation apart
    state['epoch'] += 1
    state['params'], state['opt'], loss_PxSxE = compiled['epoch'](
        state['params'], state['opt'], spec.inputs_P, *batches(state['epoch']))
    np.asarray(loss_PxSxE)

  def evaluate() -> None:
    jax.device_get(compiled['eval'](state['params'], spec.inputs_P, *test))

  return Contestant({'epoch': epoch, 'eval': evaluate}, warm_up,
                    run_data.num_train, run_data.steps_per_epoch,
                    {name: (lambda n=name: compiled[n].as_text())
                     for name in lowered})


def torch_epoch(dataset: dict[str, Split], batch_size: int,
                num_train: int) -> Contestant:
  """The same CNN in PyTorch eager: a shuffled epoch, then the test split."""
  import torch
  net = torch_cnn()
  opt = torch.optim.Adam(net.parameters(), lr=1e-3)
  loss_fn = torch.nn.CrossEntropyLoss()

  def to_nchw(split: Split) -> tuple[Any, Any]:  # torch tensors
    return (torch.from_numpy(split.images.transpose(0, 3, 1, 2).copy()),
            torch.from_numpy(split.labels.astype(np.int64)))

  x_all, y_all = to_nchw(dataset['train'])
  x_test, _ = to_nchw(dataset['test'])
  generator = torch.Generator().manual_seed(0)
  steps = num_train // batch_size

  def train_steps(n: int) -> None:
    order = torch.randperm(num_train, generator=generator)
    for i in range(n):
      idx = order[i * batch_size:(i + 1) * batch_size]
      x, y = x_all[idx].float().div_(255.0), y_all[idx]
      opt.zero_grad(set_to_none=True)
      loss_fn(net(x), y).backward()
      opt.step()

  def evaluate() -> None:
    with torch.no_grad():
      for i in range(0, len(x_test), 1000):
        net(x_test[i:i + 1000].float().div_(255.0)).argmax(dim=1)

  return Contestant({'epoch': lambda: train_steps(steps), 'eval': evaluate},
                    lambda: (train_steps(min(steps, 10)), evaluate()),  # type: ignore[func-returns-value]  # a tuple runs both calls
                    num_train, steps)


# ----------------------------------------------------------------------------
# Many models: the evaluation of several seeds, a sweep against separate runs.


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
          train.train_and_evaluate(c, workdir, dataset=dataset)
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


# ----------------------------------------------------------------------------


def parse_ints(parser: argparse.ArgumentParser, flag: str,
               text: str) -> list[int]:
  try:
    values = [int(v) for v in text.split(',')]
  except ValueError:
    parser.error(f'{flag} must be comma-separated integers, got {text!r}.')
  if min(values) < 1:
    parser.error(f'{flag} must be >= 1, got {text!r}.')
  return values


def run_epochs(args: argparse.Namespace, dataset: dict[str, Split],
               torch_version: str | None) -> dict[str, Any]:
  """The real-epoch contestants, interleaved: seconds per epoch and eval."""
  contestants = {f'ours@{b}': ours_epoch(dataset, b, args.train_size)
                 for b in args.batch_sizes}
  num_train = next(iter(contestants.values())).num_images
  if torch_version:
    contestants.update({f'torch@{b}': torch_epoch(dataset, b, num_train)
                        for b in args.torch_batch_sizes})
  times = time_interleaved(contestants, args.repeats)
  rows: dict[str, dict[str, Any]] = {}
  for name, parts in times.items():
    total = [sum(round_) for round_ in zip(*parts.values(), strict=True)]
    rows[name] = {**{f'{part}_s': spread(secs) for part, secs in parts.items()},
                  'epoch_and_eval_s': spread(total),
                  'images_per_s': num_train / statistics.median(parts['epoch'])}
  torch_rows = {n: r for n, r in rows.items() if n.startswith('torch@')}
  if torch_rows:
    best = min(torch_rows, key=lambda n: torch_rows[n]['epoch_s']['median'])
    for name, row in rows.items():
      if not name.startswith('ours@'):
        continue
      ours_s = row['epoch_and_eval_s']
      for ref in {name.replace('ours', 'torch'), best} & set(torch_rows):
        ref_s = torch_rows[ref]['epoch_s']
        per_round = [t / o for t, o in zip(ref_s['all_rounds'],
                                           ours_s['all_rounds'], strict=True)]
        row[f'vs_{ref}'] = {'ratio_of_medians':
                                ref_s['median'] / ours_s['median'],
                            'per_round_min': min(per_round),
                            'per_round_max': max(per_round)}
  return {'num_train': num_train, 'rows': rows,
          'torch_fastest_batch': best if torch_rows else None}


def print_epochs(result: dict[str, Any], repeats: int) -> None:
  rows = result['rows']
  print(f"\nreal epochs ({result['num_train']} training images, fp32, "
        f"{jax.devices()[0].platform}); median [min-max] of {repeats} "
        'interleaved rounds')
  print(f"{'contestant':<11} {'epoch s':>20} {'eval s':>17} "
        f"{'epoch+eval s':>20} {'images/s':>9}")

  def fmt(s: dict[str, Any]) -> str:
    return f"{s['median']:6.2f} [{s['min']:.2f}-{s['max']:.2f}]"

  for name, r in rows.items():
    print(f"{name:<11} {fmt(r['epoch_s']):>20} {fmt(r['eval_s']):>17} "
          f"{fmt(r['epoch_and_eval_s']):>20} {r['images_per_s']:>9.0f}")
  for name, r in rows.items():
    for ref, v in ((k[3:], v) for k, v in r.items() if k.startswith('vs_')):
      print(f"{name} (epoch + eval) vs {ref} (epoch): "
            f"{v['ratio_of_medians']:.2f}x "
            f"(per round {v['per_round_min']:.2f}-{v['per_round_max']:.2f}x)")


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


def time_to_99(data_dir: str | None, train_args: Sequence[str] = (),
               target: float = 0.99) -> dict[str, Any]:
  """``python train.py --epochs 1`` from a cold start, wall clock."""
  with tempfile.TemporaryDirectory() as workdir:
    command = [sys.executable, 'train.py', '--epochs', '1', '--quiet',
               '--workdir', workdir, *train_args]
    if data_dir:
      command += ['--data_dir', str(pathlib.Path(data_dir).resolve())]
    t0 = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True,
                   cwd=pathlib.Path(__file__).resolve().parents[1])  # the root
    total = time.perf_counter() - t0
    summary = json.loads((pathlib.Path(workdir) / 'summary.json').read_text())
  accuracy = summary['final']['test']['argmax']['accuracy']['mean']
  shown = ['python', *command[1:]]
  shown[shown.index('--workdir') + 1] = 'WORKDIR'
  return {'command': ' '.join(shown), 'accuracy': accuracy,
          'reached_target': accuracy >= target, 'total_s': total,
          'compile_s': summary['wall_s']['compile'],
          'train_and_eval_s': sum(summary['wall_s']['epochs_this_session'])}


def build_parser() -> cli.Parser:
  """The command line's flags (its own argument check)."""
  parser = cli.Parser(
      prog='python -m bench', description=__doc__.split('\n\n')[0],
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument('--data_dir', default=None,
                      help='MNIST IDX folder (default: the lookup train.py '
                           'uses: $MNIST_DIR, tfds, the cache, a download)')
  parser.add_argument('--batch_sizes', default='128,32',
                      help="ours' batch sizes (train.py's default is 32)")
  parser.add_argument('--torch_batch_sizes', default='32,128,256',
                      help="PyTorch's batch sizes; its fastest is the "
                      'reference')
  parser.add_argument('--repeats', type=int, default=3,
                      help='interleaved rounds; medians and ranges are '
                      'reported')
  parser.add_argument('--train_size', type=int, default=None,
                      help='train on this many images, not all 60 000 (a '
                      'check)')
  parser.add_argument('--no_torch', action='store_true',
                      help='skip PyTorch even if it is installed')
  parser.add_argument('--time_to_99', action='store_true',
                      help='also time `python train.py --epochs 1` from a cold '
                           'start and report its test accuracy')
  parser.add_argument('--profile', type=int, default=0, metavar='N',
                      help='trace one epoch and one evaluation of the first '
                           'ours@B and print the N kinds of XLA op (HLO shape '
                           'and opcode) that take the most time (0: off)')
  parser.add_argument('--eval_seeds', default='1,5',
                      help='time the test split\'s evaluation by these numbers '
                      'of models, interleaved (empty: skip)')
  parser.add_argument('--sweep_points', type=int, default=0, metavar='P',
                      help='time a tuning cell of P points (learning rates x '
                      'SORD temperatures 0.5, 1; 2 seeds; P even) as one '
                      '--sweep run against P separate runs (0: skip)')
  parser.add_argument('--sweep_epochs', type=int, default=2,
                      help='epochs of the --sweep_points cell')
  parser.add_argument('--sweep_train_size', type=int, default=2000,
                      help='training images of the --sweep_points cell')
  parser.add_argument('--micro', action='store_true',
                      help='also run the micro-loop (bench/micro.py)')
  parser.add_argument('--steps', type=int, default=40,
                      help='micro-loop: training steps per timed call')
  parser.add_argument('--seeds', default='1,4,8',
                      help='micro-loop: numbers of vmapped seeds to time')
  parser.add_argument('--json', default='bench.json',
                      help='where to write the results')
  return parser


def main(argv: list[str] | None = None) -> int:
  parser = build_parser()
  args = parser.parse_args(argv)
  args.batch_sizes = parse_ints(parser, '--batch_sizes', args.batch_sizes)
  args.torch_batch_sizes = parse_ints(parser, '--torch_batch_sizes',
                                      args.torch_batch_sizes)
  seed_counts = parse_ints(parser, '--seeds', args.seeds)
  eval_counts = (parse_ints(parser, '--eval_seeds', args.eval_seeds)
                 if args.eval_seeds else [])
  if min(args.steps, args.repeats) < 1 or args.profile < 0:
    parser.error('--steps and --repeats must be >= 1, --profile >= 0.')
  if args.sweep_points < 0 or args.sweep_points % 2:
    parser.error(f'--sweep_points must be an even number >= 0, got '
                 f'{args.sweep_points}.')
  if min(args.sweep_epochs, args.sweep_train_size) < 1:
    parser.error('--sweep_epochs and --sweep_train_size must be >= 1.')
  if args.train_size is not None and args.train_size < max(
      args.batch_sizes + args.torch_batch_sizes):
    parser.error(f'--train_size {args.train_size} is smaller than a batch.')
  dataset = cli.load_mnist(parser, args.data_dir)

  torch_version: str | None = None
  if not args.no_torch:
    try:
      import torch
      torch_version = torch.__version__
    except ImportError:
      print('torch not installed: skipping PyTorch (pip install torch==2.13.0)',
            file=sys.stderr)
  command = sys.argv[1:] if argv is None else argv
  result: dict[str, Any] = {
      'machine': {'platform': platform.platform(), 'cpu_count': os.cpu_count(),
                  'devices': [str(d) for d in jax.devices()],
                  'jax': jax.__version__, 'torch': torch_version},
      'command': ' '.join(['python', '-m', 'bench', *command]),
      'repeats': args.repeats,
      'epochs': run_epochs(args, dataset, torch_version),
  }
  print_epochs(result['epochs'], args.repeats)
  if args.profile:
    first = ours_epoch(dataset, args.batch_sizes[0], args.train_size)
    first.warm_up()
    result['profile'] = {
        part: profile_ops(first.parts[part], first.compiled_text[part](),
                          first.steps if part == 'epoch' else 1, args.profile)
        for part in ('epoch', 'eval')}
    print_profile(result['profile']['epoch'],
                  f'one epoch of ours@{args.batch_sizes[0]}, per step')
    print_profile(result['profile']['eval'], 'one evaluation (test split)')
  if eval_counts:
    result['eval_seeds'] = eval_seeds(dataset, eval_counts, args.repeats)
    print_eval_seeds(result['eval_seeds'], args.repeats)
  if args.sweep_points:
    cell = sweep_cell(args.sweep_points, args.sweep_epochs,
                      args.sweep_train_size)
    result['sweep'] = sweep_vs_separate(dataset, cell, args.repeats)
    print_sweep(result['sweep'], args.repeats)
  if args.micro:
    result['micro'] = micro.run_micro(args.steps, args.repeats,
                                            seed_counts, torch_version)
    micro.print_micro(result['micro'])
  if args.time_to_99:
    t = result['time_to_99'] = time_to_99(args.data_dir)
    print(f"\ntime to 99 %: `{t['command']}` reached "
          f"{100 * t['accuracy']:.2f} % test accuracy in {t['total_s']:.1f} s "
          f"wall clock (compile {t['compile_s']:.1f} s, epoch + evaluation "
          f"{t['train_and_eval_s']:.1f} s)")
  with open(args.json, 'w') as f:
    json.dump(result, f, indent=2)
  print(f'wrote {args.json}')
  return 0


