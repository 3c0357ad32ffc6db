"""Training speed as users feel it: train.py's own epoch against PyTorch's.

    python bench.py --data_dir ../shared/mnist --time_to_99

On MNIST, in one process, round-robin over ``--repeats`` rounds so that a noisy
machine affects every contestant alike (medians with ranges), it times:

- ``ours@B``: the programs ``train.py`` runs (``programs.build_programs``,
  compiled ahead, fed the epoch's batches by ``train.batches_on_devices``)
  at batch B with the default configuration: one full epoch, then the
  evaluation of the test split, timed apart;
- ``torch@B``: the same CNN in PyTorch eager fp32 with Adam (when torch is
  installed): a full epoch drawing each batch from a fresh permutation (a
  gather per step), then the test split's forward pass, timed apart.

Ratios compare our epoch *plus* evaluation with PyTorch's epoch alone, at the
same batch and at PyTorch's fastest batch. ``--time_to_99`` runs
``python train.py --epochs 1`` from a cold start (interpreter, data, compile,
epoch, evaluation). ``--profile N`` traces one epoch and one evaluation of the
first ``ours`` and lists the N kinds of XLA op that take the most time.
``--micro`` adds the 40-step micro-loop of ``bench_micro.py`` (synthetic
images, labelled as such). Prints tables and writes ``--json``.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import pathlib
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

import data
import programs
import train
from config import Config


@dataclasses.dataclass
class Contestant:
  """Parts timed one after the other in each round ('epoch', 'eval', ...)."""
  parts: dict[str, Callable[[], None]]
  warm_up: Callable[[], None]
  num_images: int = 0  # training images per 'epoch' (or per call)
  steps: int = 0
  compiled_text: dict[str, Callable[[], str]] = dataclasses.field(
      default_factory=dict)


# ----------------------------------------------------------------------------
# The real epoch: what `python train.py` runs, and PyTorch's full epoch.


def ours_epoch(dataset, batch_size: int, train_size=None) -> Contestant:
  """train.py's programs on MNIST at this batch size, default config."""
  config = Config(batch_size=batch_size, train_size=train_size)
  seeds = [config.seed]
  run_data = train.prepare_data(config, dataset, seeds)
  num_train = run_data.subset_SxM.shape[1]
  steps = num_train // batch_size
  run = programs.build_programs(config, seeds, steps)
  test = tuple(map(jnp.asarray, run_data.eval_sets['test']))
  batches = lambda epoch: train.batches_on_devices(run_data, seeds, epoch,
                                                   batch_size, mesh=None)
  state = {'params': run.params, 'opt': run.opt_state, 'epoch': 0}
  lowered = {'epoch': run.train_epoch.lower(state['params'], state['opt'],
                                            *batches(1)),
             'eval': run.evaluate.lower(state['params'], *test)}
  compiled = {}

  def warm_up():  # compiled ahead, as train.py does
    compiled.update({name: l.compile() for name, l in lowered.items()})

  def epoch():  # what train.py does each epoch, evaluation apart
    state['epoch'] += 1
    state['params'], state['opt'], loss_SxE = compiled['epoch'](
        state['params'], state['opt'], *batches(state['epoch']))
    np.asarray(loss_SxE)

  def evaluate():
    jax.device_get(compiled['eval'](state['params'], *test))

  return Contestant({'epoch': epoch, 'eval': evaluate}, warm_up, num_train,
                    steps, {name: (lambda n=name: compiled[n].as_text())
                            for name in lowered})


def torch_cnn():
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  torch.manual_seed(0)
  return nn.Sequential(
      nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
      nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
      nn.Flatten(), nn.Linear(7 * 7 * 64, 256), nn.ReLU(), nn.Linear(256, 10))


def torch_epoch(dataset, batch_size: int, num_train: int) -> Contestant:
  """The same CNN in PyTorch eager: a full shuffled epoch, then the test split."""
  import torch  # pylint: disable=g-import-not-at-top
  net = torch_cnn()
  opt = torch.optim.Adam(net.parameters(), lr=1e-3)
  loss_fn = torch.nn.CrossEntropyLoss()
  to_nchw = lambda split: (
      torch.from_numpy(split.images.transpose(0, 3, 1, 2).copy()),
      torch.from_numpy(split.labels.astype(np.int64)))
  x_all, y_all = to_nchw(dataset['train'])
  x_test, _ = to_nchw(dataset['test'])
  generator = torch.Generator().manual_seed(0)
  steps = num_train // batch_size

  def train_steps(n):
    order = torch.randperm(num_train, generator=generator)
    for i in range(n):
      idx = order[i * batch_size:(i + 1) * batch_size]
      x, y = x_all[idx].float().div_(255.0), y_all[idx]
      opt.zero_grad(set_to_none=True)
      loss_fn(net(x), y).backward()
      opt.step()

  def evaluate():
    with torch.no_grad():
      for i in range(0, len(x_test), 1000):
        net(x_test[i:i + 1000].float().div_(255.0)).argmax(dim=1)

  return Contestant({'epoch': lambda: train_steps(steps), 'eval': evaluate},
                    lambda: (train_steps(min(steps, 10)), evaluate()),
                    num_train, steps)


# ----------------------------------------------------------------------------


def time_interleaved(contestants: dict[str, Contestant], repeats: int,
                     pause_s: float = 0.5) -> dict[str, dict[str, list[float]]]:
  """Seconds of each part of each contestant, round-robin, after a warm-up.

  The pause lets the previous contestant's worker threads go idle (OpenMP
  pools spin-wait after a parallel region) so they do not steal the cores.
  """
  for contestant in contestants.values():
    contestant.warm_up()
  times = {name: {part: [] for part in c.parts} for name, c in contestants.items()}
  for _ in range(repeats):
    for name, contestant in contestants.items():
      for part, run in contestant.parts.items():
        time.sleep(pause_s)
        t0 = time.perf_counter()
        run()
        times[name][part].append(time.perf_counter() - t0)
  return times


def _hlo_ops(compiled_text: str) -> dict[str, str]:
  """HLO instruction name -> 'shape opcode' from compiled HLO text."""
  ops = {}
  for m in re.finditer(r'^\s*(?:ROOT )?%?([\w.\-]+) = (\S+) ([\w\-]+)\(',
                       compiled_text, re.MULTILINE):
    ops[m.group(1)] = f'{m.group(2)} {m.group(3)}'
  return ops


def profile_ops(run, compiled_text: str, per: int, top: int) -> dict:
  """Time per kind of XLA op in one call of ``run``, from a profiler trace.

  Sums the trace events of XLA's threads by HLO op, groups ops of the same
  shape and opcode (the conv layers run once per chunk, so each of their ops
  appears once per chunk) and divides by ``per`` (the steps of an epoch, or
  1). A ``fusion`` whose name starts with ``ynn_fusion`` is a matmul through
  YNNPACK. Ops run on several threads at once, so the sum can exceed the
  wall time.
  """
  with tempfile.TemporaryDirectory() as trace_dir:
    jax.profiler.start_trace(trace_dir)
    t0 = time.perf_counter()
    run()
    wall = time.perf_counter() - t0
    jax.profiler.stop_trace()
    trace_files = list(pathlib.Path(trace_dir).rglob('*.xplane.pb'))
    if not trace_files:
      raise RuntimeError(f'jax.profiler wrote no trace under {trace_dir}.')
    profile = jax.profiler.ProfileData.from_file(str(trace_files[0]))
  hlo = _hlo_ops(compiled_text)
  groups_ns, groups_ops = collections.Counter(), collections.defaultdict(set)
  for plane in profile.planes:
    for line in plane.lines:
      for event in line.events:
        if event.name in hlo:
          key = f"{hlo[event.name]} {event.name.rstrip('.0123456789')}"
          groups_ns[key] += event.duration_ns
          groups_ops[key].add(event.name)
  total_ms = sum(groups_ns.values()) / 1e6 / per
  rows = [{'ops': key, 'count': len(groups_ops[key]),
           'ms': ns / 1e6 / per, 'fraction_of_ops': ns / 1e6 / per / total_ms}
          for key, ns in groups_ns.most_common(top)]
  return {'wall_ms': wall * 1e3 / per, 'ops_ms': total_ms, 'top_ops': rows}


def print_profile(profile: dict, what: str) -> None:
  print(f"\nprofile of {what}: {profile['wall_ms']:.1f} ms wall, "
        f"{profile['ops_ms']:.1f} ms in XLA ops (summed over threads)")
  print(f"{'ms':>7} {'share':>6} {'ops':>4}  shape opcode name")
  for r in profile['top_ops']:
    print(f"{r['ms']:7.2f} {100 * r['fraction_of_ops']:5.1f}% "
          f"{r['count']:>4}  {r['ops']}")



def parse_ints(parser, flag: str, text: str) -> list[int]:
  try:
    values = [int(v) for v in text.split(',')]
  except ValueError:
    parser.error(f'{flag} must be comma-separated integers, got {text!r}.')
  if min(values) < 1:
    parser.error(f'{flag} must be >= 1, got {text!r}.')
  return values


def spread(values) -> dict:
  return {'median': statistics.median(values), 'min': min(values),
          'max': max(values), 'all_rounds': list(values)}


def run_epochs(args, dataset, torch_version) -> dict:
  """The real-epoch contestants, interleaved; seconds per epoch and evaluation."""
  contestants = {f'ours@{b}': ours_epoch(dataset, b, args.train_size)
                 for b in args.batch_sizes}
  num_train = next(iter(contestants.values())).num_images
  if torch_version:
    contestants.update({f'torch@{b}': torch_epoch(dataset, b, num_train)
                        for b in args.torch_batch_sizes})
  times = time_interleaved(contestants, args.repeats)
  rows = {}
  for name, parts in times.items():
    total = [sum(round_) for round_ in zip(*parts.values())]
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
                                           ours_s['all_rounds'])]
        row[f'vs_{ref}'] = {'ratio_of_medians': ref_s['median'] / ours_s['median'],
                            'per_round_min': min(per_round),
                            'per_round_max': max(per_round)}
  return {'num_train': num_train, 'rows': rows,
          'torch_fastest_batch': best if torch_rows else None}


def print_epochs(result: dict, repeats: int) -> None:
  rows = result['rows']
  print(f"\nreal epochs ({result['num_train']} training images, fp32, "
        f"{jax.devices()[0].platform}); median [min-max] of {repeats} "
        'interleaved rounds')
  print(f"{'contestant':<11} {'epoch s':>20} {'eval s':>17} "
        f"{'epoch+eval s':>20} {'images/s':>9}")
  fmt = lambda s: f"{s['median']:6.2f} [{s['min']:.2f}-{s['max']:.2f}]"
  for name, r in rows.items():
    print(f"{name:<11} {fmt(r['epoch_s']):>20} {fmt(r['eval_s']):>17} "
          f"{fmt(r['epoch_and_eval_s']):>20} {r['images_per_s']:>9.0f}")
  for name, r in rows.items():
    for ref, v in ((k[3:], v) for k, v in r.items() if k.startswith('vs_')):
      print(f"{name} (epoch + eval) vs {ref} (epoch): {v['ratio_of_medians']:.2f}x "
            f"(per round {v['per_round_min']:.2f}-{v['per_round_max']:.2f}x)")


def time_to_99(data_dir, train_args=(), target: float = 0.99) -> dict:
  """``python train.py --epochs 1`` from a cold start, wall clock."""
  with tempfile.TemporaryDirectory() as workdir:
    command = [sys.executable, 'train.py', '--epochs', '1', '--quiet',
               '--workdir', workdir, *train_args]
    if data_dir:
      command += ['--data_dir', str(pathlib.Path(data_dir).resolve())]
    t0 = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True,
                   cwd=pathlib.Path(__file__).parent)
    total = time.perf_counter() - t0
    summary = json.loads((pathlib.Path(workdir) / 'summary.json').read_text())
  accuracy = summary['final']['test']['argmax']['accuracy']['mean']
  shown = ['python', *command[1:]]
  shown[shown.index('--workdir') + 1] = 'WORKDIR'
  return {'command': ' '.join(shown), 'accuracy': accuracy,
          'reached_target': accuracy >= target, 'total_s': total,
          'compile_s': summary['wall_s']['compile'],
          'train_and_eval_s': sum(summary['wall_s']['epochs_this_session'])}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
      prog='bench.py', description=__doc__.split('\n\n')[0],
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument('--data_dir', default=None,
                      help='MNIST IDX folder (default: the lookup train.py '
                           'uses: $MNIST_DIR, tfds, the cache, a download)')
  parser.add_argument('--batch_sizes', default='128,32',
                      help="ours' batch sizes (train.py's default is 32)")
  parser.add_argument('--torch_batch_sizes', default='32,128,256',
                      help="PyTorch's batch sizes; its fastest is the reference")
  parser.add_argument('--repeats', type=int, default=3,
                      help='interleaved rounds; medians and ranges are reported')
  parser.add_argument('--train_size', type=int, default=None,
                      help='train on this many images, not all 60 000 (a check)')
  parser.add_argument('--no_torch', action='store_true',
                      help='skip PyTorch even if it is installed')
  parser.add_argument('--time_to_99', action='store_true',
                      help='also time `python train.py --epochs 1` from a cold '
                           'start and report its test accuracy')
  parser.add_argument('--profile', type=int, default=0, metavar='N',
                      help='trace one epoch and one evaluation of the first '
                           'ours@B and print the N kinds of XLA op (HLO shape '
                           'and opcode) that take the most time (0: off)')
  parser.add_argument('--micro', action='store_true',
                      help='also run the micro-loop (bench_micro.py)')
  parser.add_argument('--steps', type=int, default=40,
                      help='micro-loop: training steps per timed call')
  parser.add_argument('--seeds', default='1,4,8',
                      help='micro-loop: numbers of vmapped seeds to time')
  parser.add_argument('--json', default='bench.json',
                      help='where to write the results')
  args = parser.parse_args(argv)
  args.batch_sizes = parse_ints(parser, '--batch_sizes', args.batch_sizes)
  args.torch_batch_sizes = parse_ints(parser, '--torch_batch_sizes',
                                      args.torch_batch_sizes)
  seed_counts = parse_ints(parser, '--seeds', args.seeds)
  if min(args.steps, args.repeats) < 1 or args.profile < 0:
    parser.error('--steps and --repeats must be >= 1, --profile >= 0.')
  if args.train_size is not None and args.train_size < max(
      args.batch_sizes + args.torch_batch_sizes):
    parser.error(f'--train_size {args.train_size} is smaller than a batch.')
  try:
    dataset = data.load_mnist(args.data_dir)
  except data.DataError as e:
    parser.error(f'--data_dir: {e}')

  torch_version = None
  if not args.no_torch:
    try:
      import torch  # pylint: disable=g-import-not-at-top
      torch_version = torch.__version__
    except ImportError:
      print('torch not installed: skipping PyTorch (pip install torch==2.13.0)',
            file=sys.stderr)
  command = sys.argv[1:] if argv is None else argv
  result = {
      'machine': {'platform': platform.platform(), 'cpu_count': os.cpu_count(),
                  'devices': [str(d) for d in jax.devices()],
                  'jax': jax.__version__, 'torch': torch_version},
      'command': ' '.join(['python', 'bench.py', *command]),
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
  if args.micro:
    import bench_micro  # pylint: disable=g-import-not-at-top
    result['micro'] = bench_micro.run_micro(args.steps, args.repeats,
                                            seed_counts, torch_version)
    bench_micro.print_micro(result['micro'])
  if args.time_to_99:
    t = result['time_to_99'] = time_to_99(args.data_dir)
    print(f"\ntime to 99 %: `{t['command']}` reached {100 * t['accuracy']:.2f} % "
          f"test accuracy in {t['total_s']:.1f} s wall clock (compile "
          f"{t['compile_s']:.1f} s, epoch + evaluation {t['train_and_eval_s']:.1f} s)")
  with open(args.json, 'w') as f:
    json.dump(result, f, indent=2)
  print(f'wrote {args.json}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
