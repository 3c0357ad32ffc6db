"""Training throughput, side by side and interleaved, with the machine's limit.

    python bench.py --data_dir ../shared/mnist

In one process, round-robin over ``--repeats`` rounds so that a noisy machine
affects every contestant alike, it times (fp32, same CNN, batch size and Adam):

- ``ours``: the compiled epoch of train.py (one ``lax.scan``, shifted conv,
  conv layers in chunks of ``model.CPU_CHUNK_SIZE`` examples on one CPU);
- ``ours_whole``: the same without chunks (only where train.py chunks);
- ``ours_progress``: the same with train.py's progress bar fed from inside
  the epoch (a host callback at every step here, 18x a real epoch's cadence);
- ``jit_step``: a straightforward per-step ``jax.jit`` loop over the stock
  ``nnx.Conv`` (``lax.conv_general_dilated``), in the style of the Flax example;
- ``torch``: the same CNN in PyTorch eager, when torch is installed;
- ``matmul``: jax fp32 matmul FLOP/s, the machine's practical limit.

It reports images/s, the ratios, and the CNN's achieved FLOP/s as a fraction of
the matmul limit; then vmapped-seeds throughput, and (with ``--data_dir``) the
time to >= 99.0 % test accuracy from a cold start with the default config.
With ``--profile N`` it also traces one call of ``ours`` and lists the N kinds
of XLA op that take the most time, to show where the step's time goes. Prints a
table and writes ``--json``.
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
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax import lax

import losses
import programs
from config import Config, make_loss_fn
import train
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


def make_batches(steps: int, batch_size: int, seed: int = 0):
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, (steps * batch_size, 28, 28, 1), np.uint8)
  labels = rng.integers(0, 10, steps * batch_size).astype(np.int32)
  return images, labels


# ----------------------------------------------------------------------------
# Contestants: each returns a callable that runs `steps` training steps.


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
      programs.build_train_epoch(graphdef, tx, loss_fn, steps, batch_size,
                                 on_step=bar),
      in_axes=(0, 0, None, None, None, 0)))
  images, labels = jnp.asarray(images), jnp.asarray(labels)
  subset = jnp.arange(len(labels), dtype=jnp.int32)
  keys = jax.vmap(jax.random.key)(jnp.arange(num_seeds))
  state = {'params': params, 'opt': opt_state}

  def run():
    if bar is not None:
      bar.start_epoch(1)
    state['params'], state['opt'], loss = epoch(state['params'], state['opt'],
                                                images, labels, subset, keys)
    jax.block_until_ready(loss)

  run.compiled_text = lambda: epoch.lower(
      state['params'], state['opt'], images, labels, subset,
      keys).compile().as_text()
  return run


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
  from torch import nn  # pylint: disable=g-import-not-at-top
  torch.manual_seed(0)
  net = nn.Sequential(
      nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
      nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
      nn.Flatten(), nn.Linear(7 * 7 * 64, 256), nn.ReLU(), nn.Linear(256, 10))
  opt = torch.optim.Adam(net.parameters(), lr=1e-3)
  x_all = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
  y_all = torch.from_numpy(labels).long()
  batches = [(x_all[i:i + batch_size].contiguous(), y_all[i:i + batch_size])
             for i in range(0, len(labels), batch_size)]
  loss_fn = nn.CrossEntropyLoss()

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


def time_interleaved(contestants: dict, repeats: int,
                     pause_s: float = 0.5) -> dict[str, list[float]]:
  """Seconds per call for each contestant, round-robin, after one warm-up.

  The pause lets the previous contestant's worker threads go idle (OpenMP
  pools spin-wait after a parallel region) so they do not steal the cores.
  """
  for run in contestants.values():
    run()  # compile / warm up
  times = {name: [] for name in contestants}
  for _ in range(repeats):
    for name, run in contestants.items():
      time.sleep(pause_s)
      t0 = time.perf_counter()
      run()
      times[name].append(time.perf_counter() - t0)
  return times


def _hlo_ops(compiled_text: str) -> dict[str, str]:
  """HLO instruction name -> 'shape opcode' from compiled HLO text."""
  ops = {}
  for m in re.finditer(r'^\s*(?:ROOT )?%?([\w.\-]+) = (\S+) ([\w\-]+)\(',
                       compiled_text, re.MULTILINE):
    ops[m.group(1)] = f'{m.group(2)} {m.group(3)}'
  return ops


def profile_ops(run, steps: int, top: int) -> dict:
  """Time per kind of XLA op in one call of ``run``, from a profiler trace.

  Sums the trace events of XLA's threads by HLO op, groups ops of the same
  shape and opcode (the conv layers run once per chunk, so each of their ops
  appears once per chunk) and divides by ``steps``. A ``fusion`` whose name
  starts with ``ynn_fusion`` is a matmul through YNNPACK. Ops run on several
  threads at once, so the sum can exceed the wall time.
  """
  run()
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
  hlo = _hlo_ops(run.compiled_text())
  groups_ns, groups_ops = collections.Counter(), collections.defaultdict(set)
  for plane in profile.planes:
    for line in plane.lines:
      for event in line.events:
        if event.name in hlo:
          key = f"{hlo[event.name]} {event.name.rstrip('.0123456789')}"
          groups_ns[key] += event.duration_ns
          groups_ops[key].add(event.name)
  total_ms = sum(groups_ns.values()) / 1e6 / steps
  rows = [{'ops': key, 'count': len(groups_ops[key]),
           'ms_per_step': ns / 1e6 / steps,
           'fraction_of_ops': ns / 1e6 / steps / total_ms}
          for key, ns in groups_ns.most_common(top)]
  return {'wall_ms_per_step': wall * 1e3 / steps, 'ops_ms_per_step': total_ms,
          'top_ops': rows}


def time_to_accuracy(data_dir: str, target: float = 0.99) -> dict:
  """Default config, 1 epoch, from a cold start (compile reported apart)."""
  t0 = time.perf_counter()
  config = Config(epochs=1, data_dir=data_dir)
  with tempfile.TemporaryDirectory() as workdir:
    summary = train.train_and_evaluate(config, workdir)
  total = time.perf_counter() - t0
  accuracy = summary['final']['test']['argmax']['accuracy']['mean']
  return {'config': dataclasses.asdict(config), 'accuracy': accuracy,
          'reached_target': accuracy >= target, 'total_s': total,
          'compile_s': summary['wall_s']['compile'],
          'train_and_eval_s': sum(summary['wall_s']['epochs_this_session'])}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
      prog='bench.py', description=__doc__.split('\n\n')[0],
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument('--batch_size', type=int, default=128,
                      help='batch size for every contestant')
  parser.add_argument('--steps', type=int, default=40,
                      help='training steps per timed call')
  parser.add_argument('--repeats', type=int, default=5,
                      help='interleaved rounds; the median is reported')
  parser.add_argument('--seeds', default='1,4,8',
                      help='comma-separated numbers of vmapped seeds to time')
  parser.add_argument('--no_torch', action='store_true',
                      help='skip PyTorch even if it is installed')
  parser.add_argument('--data_dir', default=None,
                      help='MNIST IDX folder; enables the time-to-99 %% run')
  parser.add_argument('--profile', type=int, default=0, metavar='N',
                      help='also trace one call of ours with jax.profiler and '
                           'print the N kinds of XLA op (HLO shape and '
                           'opcode) that take the most time (0: off)')
  parser.add_argument('--json', default='bench.json',
                      help='where to write the results')
  args = parser.parse_args(argv)
  if min(args.batch_size, args.steps, args.repeats) < 1:
    parser.error('--batch_size, --steps and --repeats must be >= 1.')
  if args.profile < 0:
    parser.error(f'--profile must be >= 0, got {args.profile}.')
  try:
    seed_counts = [int(s) for s in args.seeds.split(',')]
  except ValueError:
    parser.error(f'--seeds must be comma-separated integers, got {args.seeds!r}.')

  images, labels = make_batches(args.steps, args.batch_size)
  n_images = len(labels)
  contestants = {'ours': ours(images, labels, args.batch_size)}
  if programs.conv_settings()[1]:
    # The same compiled epoch without chunking: what the chunks are worth.
    contestants['ours_whole'] = ours(images, labels, args.batch_size,
                                     chunk_size=0)
  contestants['ours_progress'] = ours(images, labels, args.batch_size,
                                     progress=True)
  contestants['jit_step'] = jit_step(images, labels, args.batch_size)
  torch_version = None
  if not args.no_torch:
    try:
      import torch  # pylint: disable=g-import-not-at-top
      torch_version = torch.__version__
      contestants['torch'] = torch_eager(images, labels, args.batch_size)
    except ImportError:
      print('torch not installed: skipping the PyTorch contestant '
            '(pip install torch==2.13.0)', file=sys.stderr)
  mm_run, mm_flops = matmul_flops()
  contestants['matmul'] = mm_run
  times = time_interleaved(contestants, args.repeats)

  flops_per_image = cnn_flops_per_image()['train_step']
  matmul_gflops = mm_flops / statistics.median(times.pop('matmul')) / 1e9
  rows = {}
  for name, secs in times.items():
    ips = n_images / statistics.median(secs)
    rows[name] = {'images_per_s': ips,
                  'images_per_s_all_rounds': [n_images / s for s in secs],
                  'gflops': ips * flops_per_image / 1e9,
                  'fraction_of_matmul': ips * flops_per_image / 1e9 / matmul_gflops}
  for name in rows:
    for ref in ('torch', 'jit_step'):
      if ref in rows and name != ref:
        rows[name][f'vs_{ref}'] = rows[name]['images_per_s'] / rows[ref]['images_per_s']

  seeds = {}
  for n in seed_counts:
    run = ours(images, labels, args.batch_size, num_seeds=n)
    secs = time_interleaved({'run': run}, max(2, args.repeats // 2))['run']
    seeds[n] = {'images_per_s': n * n_images / statistics.median(secs),
                'seed_epochs_per_s': n * n_images / 60000 / statistics.median(secs)}

  result = {
      'machine': {'platform': platform.platform(), 'processor': platform.processor(),
                  'devices': [str(d) for d in jax.devices()],
                  'jax': jax.__version__, 'torch': torch_version},
      'batch_size': args.batch_size, 'steps_per_call': args.steps,
      'repeats': args.repeats, 'train_step_mflops_per_image': flops_per_image / 1e6,
      'matmul_gflops': matmul_gflops, 'throughput': rows, 'vmapped_seeds': seeds,
  }
  if args.profile:
    result['profile'] = profile_ops(contestants['ours'], args.steps, args.profile)
  if args.data_dir:
    result['time_to_99'] = time_to_accuracy(args.data_dir)

  print(f"\nbatch {args.batch_size}, fp32, {jax.devices()[0].platform}; "
        f"median of {args.repeats} interleaved rounds of {args.steps} steps")
  print(f"{'contestant':<13} {'images/s':>10} {'GFLOP/s':>9} {'% matmul':>9} "
        f"{'vs torch':>9} {'vs jit_step':>11}")
  for name, r in rows.items():
    vs_t = f"{r['vs_torch']:.2f}x" if 'vs_torch' in r else '-'
    vs_j = f"{r['vs_jit_step']:.2f}x" if 'vs_jit_step' in r else '-'
    print(f"{name:<13} {r['images_per_s']:>10.0f} {r['gflops']:>9.1f} "
          f"{100 * r['fraction_of_matmul']:>8.1f}% {vs_t:>9} {vs_j:>11}")
  print(f"matmul limit: {matmul_gflops:.1f} GFLOP/s (2048x2048 fp32); the CNN's "
        f"train step is {flops_per_image / 1e6:.1f} MFLOP/image")
  for n, r in seeds.items():
    print(f"vmapped seeds N={n}: {r['images_per_s']:.0f} images/s "
          f"({r['seed_epochs_per_s']:.3f} seed-epochs/s)")
  if 'profile' in result:
    p = result['profile']
    print(f"\nprofile of ours: {p['wall_ms_per_step']:.1f} ms/step wall, "
          f"{p['ops_ms_per_step']:.1f} ms/step in XLA ops (both threads)")
    print(f"{'ms/step':>7} {'share':>6} {'ops':>4}  shape opcode name")
    for r in p['top_ops']:
      print(f"{r['ms_per_step']:7.2f} {100 * r['fraction_of_ops']:5.1f}% "
            f"{r['count']:>4}  {r['ops']}")
  if 'time_to_99' in result:
    t = result['time_to_99']
    print(f"time to 99 % (default config, 1 epoch): accuracy "
          f"{100 * t['accuracy']:.2f} %, {t['total_s']:.1f}s total "
          f"(compile {t['compile_s']:.1f}s, train+eval {t['train_and_eval_s']:.1f}s)")
  with open(args.json, 'w') as f:
    json.dump(result, f, indent=2)
  print(f'wrote {args.json}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
