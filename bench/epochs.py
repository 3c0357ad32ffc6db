"""The real epoch: what ``python train.py`` runs against PyTorch's full epoch.

``ours_epoch`` is train.py's programs (``programs.build_programs``, compiled
ahead, fed the epoch's batches by ``run_data.batches_on_devices``) at a batch
size with the default configuration: one full epoch, then the evaluation of
the test split, timed apart. ``torch_epoch`` is the same CNN in PyTorch eager
fp32 with Adam: a full epoch drawing each batch from a fresh permutation (a
gather per step), then the test split's forward pass. ``run_epochs`` times
them interleaved and compares our epoch *plus* evaluation with PyTorch's epoch
alone, at the same batch and at PyTorch's fastest batch.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bench.timing import Contestant, spread, time_interleaved, torch_cnn
from data import Split
from trainer.config import Config
from trainer.programs import build_programs
from trainer.resolve import resolve
from trainer.run_data import batches_on_devices, prepare_data


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
