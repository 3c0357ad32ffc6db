"""The micro-loop: a few training steps on synthetic images, side by side.

    python -m bench --micro --steps 40

Not an epoch (no shuffling, no evaluation, batches precomputed for every
contestant): a quick look at the step alone, labelled as such wherever it is
reported. Contestants, interleaved (``timing.time_interleaved``): ``ours`` (the
compiled epoch of ``programs.build_train_epoch``), ``ours_whole`` (without
conv chunks, where train.py chunks), ``ours_progress`` (the progress callback
at every step), ``jit_step`` (a per-step ``jax.jit`` loop over the stock
``nnx.Conv``, the Flax example's style), ``torch`` (PyTorch eager, when
installed) and ``matmul`` (jax fp32 matmul FLOP/s, the machine's practical
limit); then vmapped seeds.
"""

from __future__ import annotations

import io
import statistics
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax import lax

from bench.timing import Contestant, time_interleaved, torch_cnn
from model import CNN
from trainer import point, programs
from trainer.config import Config
from trainer.progress import StepProgress
from trainer.resolve import resolve


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


def make_batches(steps: int, batch_size: int,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, (steps * batch_size, 28, 28, 1), np.uint8)
  labels = rng.integers(0, 10, steps * batch_size).astype(np.int32)
  return images, labels


def ours(images: np.ndarray | jax.Array, labels: np.ndarray | jax.Array,
         batch_size: int, num_seeds: int = 1, chunk_size: int | None = None,
         progress: bool = False) -> Contestant:
  """train.py's compiled epoch over these batches (default config)."""
  steps = len(labels) // batch_size
  spec = resolve(Config(batch_size=batch_size, num_seeds=num_seeds))
  graphdef, params = programs.init_params(spec, chunk_size)
  opt_state = jax.vmap(point.optimizer(spec, steps, {}).init)(params)
  # The progress bar train.py shows, drawn to memory. A 40-step call
  # reports every step: 18x the cadence of a real epoch (every 1 %).
  bar = StepProgress(1, steps, batch_size * num_seeds,
                     file=io.StringIO()) if progress else None
  epoch = jax.jit(jax.vmap(
      programs.build_train_epoch(graphdef, spec, steps, on_step=bar),
      in_axes=(0, 0, None, None, None)))
  images = jnp.asarray(images).reshape(steps, batch_size, 28, 28, 1)
  labels = jnp.asarray(labels).reshape(steps, batch_size)
  state = {'params': params, 'opt': opt_state}

  def call() -> None:
    if bar is not None:
      bar.start_epoch(1)
    state['params'], state['opt'], loss = epoch(state['params'], state['opt'],
                                                {}, images, labels)
    jax.block_until_ready(loss)

  return Contestant({'call': call}, call, steps * batch_size, steps, {
      'call': lambda: epoch.lower(state['params'], state['opt'], {}, images,
                                  labels).compile().as_text()})


def jit_step(images: np.ndarray, labels: np.ndarray,
             batch_size: int) -> Callable[[], None]:
  model = CNN(10, conv=lax.conv_general_dilated, rngs=nnx.Rngs(0))
  graphdef, params = nnx.split(model)
  tx = optax.adam(1e-3)
  opt_state = tx.init(params)

  @jax.jit
  def step(params: Any, opt_state: Any, x: jax.Array,
           y: jax.Array) -> tuple[Any, Any, jax.Array]:
    def mean_loss(params: Any) -> jax.Array:
      logits = nnx.merge(graphdef, params)(x)
      # optax is untyped here (Any); its mean is a scalar jax.Array.
      loss: jax.Array = optax.softmax_cross_entropy_with_integer_labels(
          logits, y).mean()
      return loss

    loss, grads = jax.value_and_grad(mean_loss)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  batches = [(jnp.asarray(images[i:i + batch_size]),
              jnp.asarray(labels[i:i + batch_size]))
             for i in range(0, len(labels), batch_size)]
  state = {'params': params, 'opt': opt_state}

  def run() -> None:
    loss = None
    for x, y in batches:
      state['params'], state['opt'], loss = step(state['params'], state['opt'],
                                                 x, y)
    jax.block_until_ready(loss)

  return run


def torch_eager(images: np.ndarray, labels: np.ndarray,
                batch_size: int) -> Callable[[], None]:
  import torch
  net = torch_cnn()
  opt = torch.optim.Adam(net.parameters(), lr=1e-3)
  x_all = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
  y_all = torch.from_numpy(labels).long()
  batches = [(x_all[i:i + batch_size].contiguous(), y_all[i:i + batch_size])
             for i in range(0, len(labels), batch_size)]
  loss_fn = torch.nn.CrossEntropyLoss()

  def run() -> None:
    for x, y in batches:
      opt.zero_grad(set_to_none=True)
      loss = loss_fn(net(x), y)
      loss.backward()
      opt.step()

  return run


def matmul_flops(size: int = 2048,
                 reps: int = 10) -> tuple[Callable[[], None], float]:
  a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)
  b = jax.random.normal(jax.random.key(1), (size, size), jnp.float32)
  f = jax.jit(lambda a, b: a @ b)

  def run() -> None:
    c = None
    for _ in range(reps):
      c = f(a, b)
    jax.block_until_ready(c)

  return run, 2.0 * size**3 * reps


def run_micro(steps: int, repeats: int, seed_counts: Sequence[int],
              torch_version: str | None) -> dict[str, Any]:
  """The micro-loop: ``steps`` steps of synthetic images per call."""
  images, labels = make_batches(steps, MICRO_BATCH)

  def plain(run: Callable[[], object]) -> Contestant:
    return Contestant({'call': run}, run)

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
  rows: dict[str, dict[str, Any]] = {}
  for name, secs in times.items():
    ips = len(labels) / statistics.median(secs)
    rows[name] = {'images_per_s': ips,
                  'images_per_s_all_rounds': [len(labels) / s for s in secs],
                  'gflops': ips * flops_per_image / 1e9,
                  'fraction_of_matmul':
                      ips * flops_per_image / 1e9 / matmul_gflops}
  for name in rows:
    for ref in ('torch', 'jit_step'):
      if ref in rows and name != ref:
        rows[name][f'vs_{ref}'] = (rows[name]['images_per_s'] /
                                   rows[ref]['images_per_s'])
  seeds: dict[int, dict[str, float]] = {}
  for n in seed_counts:
    run = ours(images, labels, MICRO_BATCH, num_seeds=n)
    secs = time_interleaved({'run': run}, max(2, repeats // 2))['run']['call']
    seeds[n] = {'images_per_s': n * len(labels) / statistics.median(secs)}
  return {'label': f'micro-loop: {steps} steps of synthetic images per call, '
                   f'batch {MICRO_BATCH}', 'repeats': repeats,
          'train_step_mflops_per_image': flops_per_image / 1e6,
          'matmul_gflops': matmul_gflops, 'throughput': rows,
          'vmapped_seeds': seeds}


def print_micro(micro: dict[str, Any]) -> None:
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
