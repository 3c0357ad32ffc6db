"""Training speed as users feel it: train.py's own programs, side by side.

    python -m bench --data_dir ../shared/mnist --time_to_99

On MNIST, in one process, round-robin over ``--repeats`` rounds so that a noisy
machine affects every contestant alike (medians with ranges), it times
``ours@B`` against ``torch@B`` (a full epoch, then the test split's
evaluation; ``epochs.py``), the evaluation by several models
(``--eval_seeds``) and a tuning cell as one ``--sweep`` run against separate
runs (``--sweep_points``; both ``many.py``). ``--time_to_99`` runs ``python
train.py --epochs 1`` from a cold start (``cold_start.py``). ``--profile N``
traces one epoch and one evaluation of the first ``ours`` and lists the N
kinds of XLA op that take the most time. ``--micro`` adds the 40-step
micro-loop of ``micro.py`` (synthetic images, labelled as such). Prints
tables and writes ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from typing import Any

import jax

from bench import micro
from bench.cold_start import time_to_99
from bench.epochs import ours_epoch, print_epochs, run_epochs
from bench.many import (
  eval_seeds,
  print_eval_seeds,
  print_sweep,
  sweep_cell,
  sweep_vs_separate,
)
from bench.timing import print_profile, profile_ops
from trainer import cli


def parse_ints(parser: argparse.ArgumentParser, flag: str,
               text: str) -> list[int]:
  try:
    values = [int(v) for v in text.split(',')]
  except ValueError:
    parser.error(f'{flag} must be comma-separated integers, got {text!r}.')
  if min(values) < 1:
    parser.error(f'{flag} must be >= 1, got {text!r}.')
  return values


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
          f"wall clock (compile of the epoch and the evaluation "
          f"{t['compile_s']:.1f} s, epoch + evaluation "
          f"{t['train_and_eval_s']:.1f} s)")
  with open(args.json, 'w') as f:
    json.dump(result, f, indent=2)
  print(f'wrote {args.json}')
  return 0


