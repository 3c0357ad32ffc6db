"""The prediction sets as a picture (``results/sets.png``), from finished runs
trained with a calibration split (``train.py --calibration_size``): test
digits with their LAC sets from the first run, and each run's coverage
against its mean set size as the level falls.

    python -m study sets_figure --data_dir ../shared/mnist \\
        --runs runs/sets/cross_entropy runs/sets/soft_label_cross_entropy

Descriptive: one model per run, the test split; what the registered
question asks of the sets is answered by its own protocol.
"""

from __future__ import annotations

import argparse
import json
import pathlib
from collections.abc import Sequence

import matplotlib

matplotlib.use('Agg')  # files only: no display here or in CI
import matplotlib.pyplot as plt
import numpy as np

import conformal
import data
from trainer import cli
from trainer import sets as run_sets

# The levels drawn, from loose to strict.
ALPHAS = (0.1, 0.05, 0.02, 0.01, 0.005, 0.002)
EXAMPLE_ALPHA = 0.002
EXAMPLES = 12


def run_label(workdir: pathlib.Path) -> str:
  """A run's loss, with its set hyperparameters."""
  config = json.loads((workdir / 'config.json').read_text())
  shown = [f'{name} {config[name]:g}' for name in ('epsilon', 'temperature')
           if config.get(name) is not None]
  loss: str = config['loss']
  return loss + (f" ({', '.join(shown)})" if shown else '')


def curve(workdir: pathlib.Path, predictions: dict[str, np.ndarray],
          method: str = 'lac') -> list[tuple[float, float]]:
  """(mean size, coverage) on the test split at each of :data:`ALPHAS`,
  for the run's first seed (``predictions``: its predictions.npz)."""
  distance_KxK = run_sets.decoding_distance(workdir)
  out = []
  for alpha in ALPHAS:
    masks = run_sets.method_sets(
        method, predictions['calibration_probs'][0],
        predictions['calibration_labels'], predictions['probs'][0],
        alpha=alpha, distance_KxK=distance_KxK)
    scores = run_sets.set_scores(masks, predictions['labels'], distance_KxK)
    out.append((scores['size'], scores['coverage']))
  return out


def example_images(masks_BxK: np.ndarray, count: int) -> np.ndarray:
  """Test images whose sets hold more than one digit, every size in turn
  (the first image of each size from 2 up, then the second, ...): sets of
  every width."""
  sizes = np.asarray(conformal.set_size(masks_BxK))
  by_size = [np.flatnonzero(sizes == size)
             for size in range(2, masks_BxK.shape[-1] + 1)]
  rounds = max((len(images) for images in by_size), default=0)
  order = [images[r] for r in range(rounds) for images in by_size
           if r < len(images)]
  return np.asarray(order[:count], dtype=int)


def draw(runs: dict[pathlib.Path, dict[str, np.ndarray]], test: data.Split,
         out: pathlib.Path) -> None:
  """The figure of ``runs`` (workdir -> its predictions.npz; the first
  gives the example digits)."""
  first_run, first = next(iter(runs.items()))
  masks = run_sets.method_sets(
      'lac', first['calibration_probs'][0], first['calibration_labels'],
      first['probs'][0], alpha=EXAMPLE_ALPHA,
      distance_KxK=run_sets.decoding_distance(first_run))
  shown = example_images(masks, EXAMPLES)
  rows = run_sets.set_rows(masks[None, shown], [0], test.labels[shown])
  fig = plt.figure(figsize=(11, 4.2))
  grid = fig.add_gridspec(2, 10, width_ratios=[1] * 6 + [0.7, 1.4, 1.4, 1.4])
  for i, (index, row) in enumerate(zip(shown, rows, strict=True)):
    ax = fig.add_subplot(grid[i // 6, i % 6])
    ax.imshow(test.images[index, :, :, 0], cmap='gray_r')
    ax.set_title(f"digit {row['label']}\nset {row['low']} to {row['high']}",
                 fontsize=8, color='black' if row['covered'] else 'C3')
    ax.set_xticks([])
    ax.set_yticks([])
  ax = fig.add_subplot(grid[:, 7:])
  for workdir, predictions in runs.items():
    points = curve(workdir, predictions)
    ax.plot(*zip(*points, strict=True), marker='o', label=run_label(workdir))
  for alpha in ALPHAS:
    ax.axhline(1 - alpha, color='0.85', lw=0.6, zorder=0)
  ax.set_xlabel('mean digits per set (test split)')
  ax.set_ylabel('coverage (test split)')
  ax.set_title(f'LAC sets at levels {ALPHAS[0]:g} to {ALPHAS[-1]:g}',
               fontsize=9)
  ax.legend(fontsize=7)
  fig.suptitle(f'Test digits whose LAC sets at level '
               f'{EXAMPLE_ALPHA:g} hold more than one digit, each size in '
               f'turn ({run_label(first_run)}; red: the set misses the digit)',
               fontsize=9)
  out.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(out, dpi=110, bbox_inches='tight')
  plt.close(fig)


def build_parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(
      prog='python -m study sets_figure',
      description='Draw test digits with their prediction sets and each '
      "run's coverage against set size, from finished runs trained with "
      '--calibration_size.',
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  p.add_argument('--runs', nargs='+', required=True,
                 help="finished plain runs' workdirs; the first gives the "
                 'example digits')
  p.add_argument('--data_dir', default=None,
                 help='the MNIST folder the runs read (for the digits)')
  p.add_argument('--out', default='results/sets.png', help='the PNG to write')
  return p


def main(argv: Sequence[str] | None = None) -> int:
  parser = build_parser()
  args = parser.parse_args(argv)
  try:
    runs = {pathlib.Path(run): run_sets.load_predictions(pathlib.Path(run))
            for run in args.runs}
  except ValueError as e:
    parser.error(str(e))
  test = cli.load_mnist(parser, args.data_dir)['test']
  draw(runs, test, pathlib.Path(args.out))
  print(f'wrote {args.out}')
  return 0
