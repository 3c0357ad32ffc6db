"""Training speed as users feel it: train.py's own epoch against PyTorch's.

    python bench.py --data_dir ../shared/mnist --time_to_99

On MNIST, in one process, round-robin over ``--repeats`` rounds so that a noisy
machine affects every contestant alike (medians with ranges), it times:

- ``ours@B``: the programs ``train.py`` runs (``programs.build_programs``:
  the jitted, seed-vmapped epoch with its shuffling, compiled ahead as
  train.py does) at batch B with the default configuration: one full epoch,
  then the evaluation of the test split, timed apart;
- ``torch@B``: the same CNN in PyTorch eager fp32 with Adam (when torch is
  installed): a full epoch drawing each batch from a fresh permutation (a
  gather per step), then the test split's forward pass, timed apart.

Ratios compare our epoch *plus* evaluation with PyTorch's epoch alone, at the
same batch and at PyTorch's fastest batch. ``--time_to_99`` runs
``python train.py --epochs 1`` from a cold start (interpreter, data, compile,
epoch, evaluation). ``--profile N`` traces one epoch and one evaluation of the
first ``ours`` and lists the N kinds of XLA op that take the most time.
``--micro`` adds the 40-step micro-loop (synthetic images, labelled as such):
ours with and without conv chunks and with the progress callback, a per-step
``jax.jit`` loop, PyTorch, the fp32 matmul limit and vmapped seeds. Prints
tables and writes ``--json``.
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
import optax
from flax import nnx
from jax import lax

import data
import losses
import programs
import train
from config import Config, make_loss_fn
from model import CNN


def cnn_flops_per_image(num_outputs: int = 10) -> dict[str, float]:
  """Useful matmul FLOPs of one training step per image (multiply-add = 2).

  Forward: every conv/dense layer, counting only kernel taps that land inside
  the image (as XLA's cost analysis does; a 3x3 'SAME' conv over H x W has
  (3H - 2)(3W - 2) such position-tap pairs). Backward: weight gradients of
  every layer, and input gradients of every layer but the first (images need
  none). Multiplications by padding zeros are not counted, so the fraction of
  the matmul limit reported is a lower bound.
  """
  layers = [  # (position-tap pairs, in channels, out channels)
      ((3 * 28 - 2)**2, 1, 32),
      ((3 * 14 - 2)**2, 32, 64),
      (7 * 7 * 64, 1, 256),
      (256, 1, num_outputs),
  ]
  forward = [2 * n * cin * cout for n, cin, cout in layers]
  total = 2 * sum(forward) + sum(forward[1:])
  return {'forward': float(sum(forward)), 'train_step': float(total)}


MICRO_BATCH = 128


def make_batches(steps: int, batch_size: int, seed: int = 0):
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, (steps * batch_size, 28, 28, 1), np.uint8)
  labels = rng.integers(0, 10, steps * batch_size).astype(np.int32)
  return images, labels


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
  batches = lambda epoch: jax.device_put(
      train.epoch_batches(run_data, seeds, epoch, batch_size))
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
# The micro-loop: `steps` training steps on synthetic images per call.


def ours(images, labels, batch_size, num_seeds=1, chunk_size=None,
         progress=False):
  config = Config(batch_size=batch_size)
  steps = len(labels) // batch_size
  graphdef, params = programs.init_params(config, range(num_seeds), chunk_size)
  tx = optax.adam(1e-3)
  opt_state = jax.vmap(tx.init)(params)
  loss_fn = make_loss_fn(config, losses.linear_distance(10))
  # The progress bar train.py shows, drawn to /dev/null. A 40-step call
  # reports every step: 18x the cadence of a real epoch (every 1 %).
  bar = train.StepProgress(1, steps, batch_size * num_seeds,
                           file=open(os.devnull, 'w')) if progress else None
  epoch = jax.jit(jax.vmap(
      programs.build_train_epoch(graphdef, tx, loss_fn, on_step=bar),
      in_axes=(0, 0, None, None)))
  images = jnp.asarray(images).reshape(steps, batch_size, 28, 28, 1)
  labels = jnp.asarray(labels).reshape(steps, batch_size)
  state = {'params': params, 'opt': opt_state}

  def run():
    if bar is not None:
      bar.start_epoch(1)
    state['params'], state['opt'], loss = epoch(state['params'], state['opt'],
                                                images, labels)
    jax.block_until_ready(loss)

  return Contestant({'call': run}, run, steps * batch_size, steps, {
      'call': lambda: epoch.lower(state['params'], state['opt'], images,
                                  labels).compile().as_text()})


def jit_step(images, labels, batch_size):
  model = CNN(10, conv=lax.conv_general_dilated, rngs=nnx.Rngs(0))
  graphdef, params = nnx.split(model)
  tx = optax.adam(1e-3)
  opt_state = tx.init(params)

  @jax.jit
  def step(params, opt_state, x, y):
    def mean_loss(params):
      logits = nnx.merge(graphdef, params)(x)
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    loss, grads = jax.value_and_grad(mean_loss)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  batches = [(jnp.asarray(images[i:i + batch_size]),
              jnp.asarray(labels[i:i + batch_size]))
             for i in range(0, len(labels), batch_size)]
  state = {'params': params, 'opt': opt_state}

  def run():
    loss = None
    for x, y in batches:
      state['params'], state['opt'], loss = step(state['params'], state['opt'],
                                                 x, y)
    jax.block_until_ready(loss)

  return run


def torch_eager(images, labels, batch_size):
  import torch  # pylint: disable=g-import-not-at-top
  net = torch_cnn()
  opt = torch.optim.Adam(net.parameters(), lr=1e-3)
  x_all = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
  y_all = torch.from_numpy(labels).long()
  batches = [(x_all[i:i + batch_size].contiguous(), y_all[i:i + batch_size])
             for i in range(0, len(labels), batch_size)]
  loss_fn = torch.nn.CrossEntropyLoss()

  def run():
    for x, y in batches:
      opt.zero_grad(set_to_none=True)
      loss = loss_fn(net(x), y)
      loss.backward()
      opt.step()

  return run


def matmul_flops(size: int = 2048, reps: int = 10):
  a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)
  b = jax.random.normal(jax.random.key(1), (size, size), jnp.float32)
  f = jax.jit(lambda a, b: a @ b)

  def run():
    c = None
    for _ in range(reps):
      c = f(a, b)
    jax.block_until_ready(c)

  return run, 2.0 * size**3 * reps


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


def run_micro(steps: int, repeats: int, seed_counts, torch_version) -> dict:
  """The micro-loop: ``steps`` steps of synthetic images per call."""
  images, labels = make_batches(steps, MICRO_BATCH)
  plain = lambda run: Contestant({'call': run}, run)
  contestants = {'ours': ours(images, labels, MICRO_BATCH)}
  if programs.conv_settings()[1]:
    # The same compiled epoch without chunking: what the chunks are worth.
    contestants['ours_whole'] = ours(images, labels, MICRO_BATCH, chunk_size=0)
  contestants['ours_progress'] = ours(images, labels, MICRO_BATCH,
                                      progress=True)
  contestants['jit_step'] = plain(jit_step(images, labels, MICRO_BATCH))
  if torch_version:
    contestants['torch'] = plain(torch_eager(images, labels, MICRO_BATCH))
  mm_run, mm_flops = matmul_flops()
  contestants['matmul'] = plain(mm_run)
  times = {name: parts['call']
           for name, parts in time_interleaved(contestants, repeats).items()}
  flops_per_image = cnn_flops_per_image()['train_step']
  matmul_gflops = mm_flops / statistics.median(times.pop('matmul')) / 1e9
  rows = {}
  for name, secs in times.items():
    ips = len(labels) / statistics.median(secs)
    rows[name] = {'images_per_s': ips,
                  'images_per_s_all_rounds': [len(labels) / s for s in secs],
                  'gflops': ips * flops_per_image / 1e9,
                  'fraction_of_matmul': ips * flops_per_image / 1e9 / matmul_gflops}
  for name in rows:
    for ref in ('torch', 'jit_step'):
      if ref in rows and name != ref:
        rows[name][f'vs_{ref}'] = rows[name]['images_per_s'] / rows[ref]['images_per_s']
  seeds = {}
  for n in seed_counts:
    run = ours(images, labels, MICRO_BATCH, num_seeds=n)
    secs = time_interleaved({'run': run}, max(2, repeats // 2))['run']['call']
    seeds[n] = {'images_per_s': n * len(labels) / statistics.median(secs)}
  return {'label': f'micro-loop: {steps} steps of synthetic images per call, '
                   f'batch {MICRO_BATCH}', 'repeats': repeats,
          'train_step_mflops_per_image': flops_per_image / 1e6,
          'matmul_gflops': matmul_gflops, 'throughput': rows,
          'vmapped_seeds': seeds}


def print_micro(micro: dict) -> None:
  print(f"\n{micro['label']} (fp32; median of {micro['repeats']} interleaved "
        'rounds; not an epoch: no shuffling, no evaluation)')
  print(f"{'contestant':<13} {'images/s':>10} {'GFLOP/s':>9} {'% matmul':>9} "
        f"{'vs torch':>9} {'vs jit_step':>11}")
  for name, r in micro['throughput'].items():
    vs_t = f"{r['vs_torch']:.2f}x" if 'vs_torch' in r else '-'
    vs_j = f"{r['vs_jit_step']:.2f}x" if 'vs_jit_step' in r else '-'
    print(f"{name:<13} {r['images_per_s']:>10.0f} {r['gflops']:>9.1f} "
          f"{100 * r['fraction_of_matmul']:>8.1f}% {vs_t:>9} {vs_j:>11}")
  print(f"matmul limit: {micro['matmul_gflops']:.1f} GFLOP/s (2048x2048 fp32); "
        f"the CNN's train step is {micro['train_step_mflops_per_image']:.1f} "
        'MFLOP/image')
  for n, r in micro['vmapped_seeds'].items():
    print(f"vmapped seeds N={n}: {r['images_per_s']:.0f} images/s")


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
    rows['torch_fastest_batch'] = best
  return {'num_train': num_train, 'rows': rows}


def print_epochs(result: dict, repeats: int) -> None:
  rows = result['rows']
  print(f"\nreal epochs ({result['num_train']} training images, fp32, "
        f"{jax.devices()[0].platform}); median [min-max] of {repeats} "
        'interleaved rounds')
  print(f"{'contestant':<11} {'epoch s':>20} {'eval s':>17} "
        f"{'epoch+eval s':>20} {'images/s':>9}")
  fmt = lambda s: f"{s['median']:6.2f} [{s['min']:.2f}-{s['max']:.2f}]"
  for name, r in rows.items():
    if name == 'torch_fastest_batch':
      continue
    print(f"{name:<11} {fmt(r['epoch_s']):>20} {fmt(r['eval_s']):>17} "
          f"{fmt(r['epoch_and_eval_s']):>20} {r['images_per_s']:>9.0f}")
  for name, r in rows.items():
    for key, v in r.items() if isinstance(r, dict) else ():
      if key.startswith('vs_'):
        print(f"{name} (epoch + eval) vs {key[3:]} (epoch): "
              f"{v['ratio_of_medians']:.2f}x (per round "
              f"{v['per_round_min']:.2f}-{v['per_round_max']:.2f}x)")


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
                      help='comma-separated batch sizes for ours (train.py\'s '
                           'default is 32)')
  parser.add_argument('--torch_batch_sizes', default='32,128,256',
                      help='comma-separated batch sizes for PyTorch; its '
                           'fastest is the reference')
  parser.add_argument('--repeats', type=int, default=3,
                      help='interleaved rounds; medians and ranges are reported')
  parser.add_argument('--train_size', type=int, default=None,
                      help='train on this many images instead of all 60 000 '
                           '(a quick check; the README numbers use all)')
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
                      help='also run the micro-loop: --steps steps of '
                           'synthetic images per call')
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
  if min(args.steps, args.repeats) < 1:
    parser.error('--steps and --repeats must be >= 1.')
  if args.profile < 0:
    parser.error(f'--profile must be >= 0, got {args.profile}.')
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
  result = {
      'machine': {'platform': platform.platform(),
                  'processor': platform.processor(),
                  'cpu_count': os.cpu_count(),
                  'devices': [str(d) for d in jax.devices()],
                  'jax': jax.__version__, 'torch': torch_version},
      'command': ' '.join(['python', 'bench.py', *(sys.argv[1:] if argv is None
                                                    else argv)]),
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
    print_profile(result['profile']['epoch'], f'one epoch of ours@'
                  f'{args.batch_sizes[0]}, per step')
    print_profile(result['profile']['eval'], 'one evaluation (test split)')
  if args.micro:
    result['micro'] = run_micro(args.steps, args.repeats, seed_counts,
                                torch_version)
    print_micro(result['micro'])
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
