"""How many seeds and images a paired comparison of two losses needs.

    python -m study.power --pair runs/pilot/scarce2000-label_smoothing \\
        runs/pilot/scarce2000-smoothed_sord --name scarce2000

A difference in mean digit-distance error (MDE) between two families,
measured on S seeds and N images, varies with the seeds (initialisation,
training subset, batch order) and with the images (the split is a sample of
digits like these). Per seed s and image i, with ``delta[s, i]`` the first
family's distance minus the second's (the same seed trains both on the same
subset), the two-way random-effects model without replication

    delta[s, i] = mu + a[s] + b[i] + e[s, i]

has variance components ``var_seed``, ``var_image`` and ``var_residual``
(:func:`variance_components`, the ANOVA estimators), and the mean of
``delta`` over S seeds and N images has variance
``var_seed / S + var_image / N + var_residual / (S N)``
(:func:`variance_of_mean`).
:func:`detectable_effect` turns that into the smallest difference a
two-sided test at ``alpha`` detects with the given power (normal
approximation). The components come from runs that keep their test
predictions (``predictions.npz``); results/protocol.md says which.
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt


class Components(NamedTuple):
  """Variance components of a paired per-image difference; its mean."""
  mean: float
  var_seed: float
  var_image: float
  var_residual: float
  num_seeds: int
  num_images: int


def variance_components(delta_SxN: npt.ArrayLike) -> Components:
  """ANOVA estimates of the seed, image and residual variances of
  ``delta_SxN`` (negative estimates clipped to 0)."""
  delta = np.asarray(delta_SxN, np.float64)
  s, n = delta.shape
  if s < 2 or n < 2:
    raise ValueError(f'need at least 2 seeds and 2 images, got {s} x {n}.')
  grand = delta.mean()
  seed_means, image_means = delta.mean(axis=1), delta.mean(axis=0)
  ms_seed = n * np.sum((seed_means - grand) ** 2) / (s - 1)
  ms_image = s * np.sum((image_means - grand) ** 2) / (n - 1)
  residual = delta - seed_means[:, None] - image_means[None, :] + grand
  ms_residual = np.sum(residual ** 2) / ((s - 1) * (n - 1))
  return Components(float(grand), max(0.0, (ms_seed - ms_residual) / n),
                    max(0.0, (ms_image - ms_residual) / s),
                    float(ms_residual), s, n)


def variance_of_mean(c: Components, num_seeds: int, num_images: int) -> float:
  """The variance of the mean difference over new seeds and images."""
  return (c.var_seed / num_seeds + c.var_image / num_images
          + c.var_residual / (num_seeds * num_images))


def detectable_effect(variance: float, *, alpha: float,
                      power: float = 0.8) -> float:
  """The smallest true difference a two-sided level-``alpha`` test detects
  with probability ``power``: ``(z_{1 - alpha/2} + z_power) * sd``."""
  from scipy.stats import norm
  return float((norm.ppf(1 - alpha / 2) + norm.ppf(power))
               * math.sqrt(variance))


def distances_SxN(workdir: str | pathlib.Path,
                  decoding: str = 'argmax') -> np.ndarray:
  """|prediction - label| per seed and test image, from a run's
  predictions.npz (a plain run: arrays per seed)."""
  with np.load(pathlib.Path(workdir) / 'predictions.npz') as f:
    distances: np.ndarray = np.abs(f[decoding].astype(np.int16)
                                   - f['labels'][None, :])
  return distances


def power_table(c: Components, reference_mde: float, *, alpha: float,
                seeds: Sequence[int], images: Sequence[int]) -> list[dict]:
  """The detectable effect, absolute and as a share of ``reference_mde``,
  for every (seeds, images) design."""
  rows = []
  for s in seeds:
    for n in images:
      effect = detectable_effect(variance_of_mean(c, s, n), alpha=alpha)
      rows.append({'seeds': s, 'images': n, 'detectable': effect,
                   'detectable_share': effect / reference_mde})
  return rows


def build_parser() -> argparse.ArgumentParser:
  """The command line's flags (its own argument check)."""
  parser = argparse.ArgumentParser(
      prog='python -m study.power', description=__doc__.split('\n\n')[0],
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument('--pair', nargs=2, required=True,
                      metavar=('REFERENCE', 'CHALLENGER'),
                      help='the workdirs of two plain runs on the same seeds '
                      '(each with predictions.npz)')
  parser.add_argument('--name', required=True, help='the pair\'s name in '
                      'the output, e.g. the regime')
  parser.add_argument('--alpha', type=float, default=0.05 / 3,
                      help='the level of each primary test (0.05 over the '
                      'three primary hypotheses, Bonferroni)')
  parser.add_argument('--seeds', default='10,20,30,40',
                      help='numbers of seeds to tabulate')
  parser.add_argument('--images', default='10000,20000,25000',
                      help='numbers of images to tabulate')
  parser.add_argument('--out', default='results/confirmation/power.json',
                      help='JSON file the pair is added to (by --name)')
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  parser = build_parser()
  args = parser.parse_args(argv)
  try:
    seeds = [int(v) for v in args.seeds.split(',')]
    images = [int(v) for v in args.images.split(',')]
  except ValueError:
    parser.error('--seeds and --images take comma-separated integers.')
  reference_dir, challenger_dir = map(pathlib.Path, args.pair)
  for workdir in (reference_dir, challenger_dir):
    if not (workdir / 'predictions.npz').is_file():
      parser.error(f'--pair: {workdir} has no predictions.npz.')
  reference = distances_SxN(reference_dir)
  challenger = distances_SxN(challenger_dir)
  if reference.shape != challenger.shape:
    parser.error(f'--pair: {reference.shape} and {challenger.shape} '
                 'predictions differ in seeds or images.')
  c = variance_components(challenger - reference)
  reference_mde = float(reference.mean())
  out = pathlib.Path(args.out)
  result = json.loads(out.read_text()) if out.is_file() else {}
  result[args.name] = {
      'pair': [str(reference_dir), str(challenger_dir)],
      'reference_mde': reference_mde, 'components': c._asdict(),
      'alpha': args.alpha, 'power': 0.8,
      'table': power_table(c, reference_mde, alpha=args.alpha, seeds=seeds,
                           images=images)}
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(result, indent=2) + '\n')
  print(f'{args.name}: delta {c.mean:+.4f} (reference MDE '
        f'{reference_mde:.4f}); sd over seeds {math.sqrt(c.var_seed):.4f}, '
        f'over images {math.sqrt(c.var_image):.4f}, residual '
        f'{math.sqrt(c.var_residual):.4f}')
  for row in result[args.name]['table']:
    print(f"  {row['seeds']:3d} seeds x {row['images']:6d} images: detectable "
          f"{row['detectable']:.4f} ({100 * row['detectable_share']:.1f} % of "
          'the reference MDE)')
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
