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
(:func:`variance_of_mean`); the two-way bootstrap of ``stats.py``, which
resamples seeds and images independently, spreads as if the residual term
were three times as large (``residual_factor=3``), and so sizes the test it
makes. :func:`detectable_effect` turns a variance into the smallest
difference a two-sided test at ``alpha`` detects with the given power
(normal approximation). The components come from runs that keep their test
predictions (``predictions.npz``), or from their per-image distances kept as
int8 files (``--keep``); results/protocol.md says which.
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
from collections.abc import Sequence

import numpy as np

import conformal
import corruptions
import losses
from study import stats
from study.cells import prediction_key, save_distances
from trainer import sets as run_sets


def variance_of_mean(c: stats.Components, num_seeds: int, num_images: int, *,
                     residual_factor: float = 1.0,
                     seed_factor: float = 1.0) -> float:
  """The variance of the mean difference over new seeds and images; with
  ``residual_factor=3``, the two-way bootstrap's; ``seed_factor`` scales
  ``var_seed`` (e.g. to an upper confidence bound)."""
  return (seed_factor * c.var_seed / num_seeds + c.var_image / num_images
          + residual_factor * c.var_residual / (num_seeds * num_images))


BOOTSTRAP_RESIDUAL_FACTOR = 3.0


def seed_upper_factor(num_seeds: int, level: float = 0.8) -> float:
  """``var_seed`` times this is its one-sided ``level`` upper confidence
  bound from ``num_seeds`` seeds (chi-square with S - 1 degrees)."""
  from scipy.stats import chi2
  return float((num_seeds - 1) / chi2.ppf(1 - level, num_seeds - 1))


def detectable_effect(variance: float, *, alpha: float,
                      power: float = 0.8) -> float:
  """The smallest true difference a two-sided level-``alpha`` test detects
  with probability ``power``: ``(z_{1 - alpha/2} + z_power) * sd``."""
  from scipy.stats import norm
  return float((norm.ppf(1 - alpha / 2) + norm.ppf(power))
               * math.sqrt(variance))


def _shifted(kind: str) -> list[str]:
  """The test split's shifted sets of a kind of corruption."""
  if kind not in corruptions.KINDS:
    raise ValueError(f'no kind {kind!r}; one of '
                     f'{", ".join(corruptions.KINDS)}.')
  return [f'test[{name}]' for name in corruptions.KINDS[kind]]


def distances_SxN(source: str | pathlib.Path, decoding: str = 'argmax',
                  kind: str | None = None) -> np.ndarray:
  """|prediction - label| per seed and image on the test split: from a
  run's workdir (its predictions, a plain run's arrays per seed) or from a
  file of int8 distances (:func:`save_distances`). With ``kind`` (of
  ``corruptions.KINDS``), each image's mean distance over that kind's
  corruptions of it (the run scored them with ``--shifted_test``)."""
  source = pathlib.Path(source)
  sets = ['test'] if kind is None else _shifted(kind)
  kept: list[np.ndarray]
  if source.suffix == '.npz':
    with np.load(source) as f:
      kept = [f[prediction_key(s, decoding)].astype(np.int16) for s in sets]
  else:
    with np.load(source / 'predictions.npz') as f:
      kept = [np.abs(f[prediction_key(s, decoding)].astype(np.int16)
                     - f[prediction_key(s, 'labels')][None, :]) for s in sets]
  if kind is None:
    return kept[0]
  mean: np.ndarray = np.mean(kept, axis=0)
  return mean


def set_sizes_SxN(source: str | pathlib.Path, method: str,
                  alpha: float) -> np.ndarray:
  """Each seed's prediction-set size on the odd-numbered test images, its
  sets calibrated on the even-numbered ones (``trainer.sets``: ``method`` at
  ``alpha``, intervals of digits), from a run's workdir."""
  with np.load(pathlib.Path(source) / 'predictions.npz') as f:
    probs_SxNxK, labels_N = f['probs'], f['labels']
  linear = np.asarray(losses.linear_distance(10))
  return np.stack([np.asarray(conformal.set_size(run_sets.method_sets(
      method, probs_NxK[0::2], labels_N[0::2], probs_NxK[1::2], alpha=alpha,
      distance_KxK=linear))) for probs_NxK in probs_SxNxK])


def power_table(c: stats.Components, reference_mde: float, *, alpha: float,
                seeds: Sequence[int], images: Sequence[int]) -> list[dict]:
  """For every (seeds, images) design, the effect the two-way bootstrap
  test detects, as a share of ``reference_mde``: with the seed variance as
  estimated and at its 80 % upper bound; and the exact model's."""
  upper = seed_upper_factor(c.num_seeds)
  rows = []
  for s in seeds:
    for n in images:
      def share(**factors: float) -> float:
        return detectable_effect(variance_of_mean(c, s, n, **factors),  # noqa: B023
                                 alpha=alpha) / reference_mde
      rows.append({
          'seeds': s, 'images': n,
          'bootstrap': share(residual_factor=BOOTSTRAP_RESIDUAL_FACTOR),
          'bootstrap_seed_upper': share(
              residual_factor=BOOTSTRAP_RESIDUAL_FACTOR, seed_factor=upper),
          'exact': share()})
  return rows


def _method_level(text: str) -> tuple[str, float]:
  """'lac@0.01' -> ('lac', 0.01); ValueError naming what is wrong."""
  method, sep, level = text.partition('@')
  if not sep or method not in run_sets.METHODS:
    raise ValueError(f'write METHOD@ALPHA, METHOD one of '
                     f'{", ".join(run_sets.METHODS)}.')
  alpha = float(level)
  if not 0 < alpha < 1:
    raise ValueError('ALPHA must lie in (0, 1).')
  return method, alpha


def build_parser() -> argparse.ArgumentParser:
  """The command line's flags (its own argument check)."""
  parser = argparse.ArgumentParser(
      prog='python -m study.power', description=__doc__.split('\n\n')[0],
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument('--pair', nargs=2, required=True,
                      metavar=('REFERENCE', 'CHALLENGER'),
                      help='two plain runs on the same seeds: their workdirs '
                      '(with predictions.npz) or files of their distances')
  parser.add_argument('--name', required=True, help='the pair\'s name in '
                      'the output, e.g. the regime')
  parser.add_argument('--alpha', type=float, default=0.05 / 3,
                      help='the level of each primary test (0.05 over the '
                      'three primary hypotheses, Bonferroni)')
  parser.add_argument('--seeds', default='10,20,30,40',
                      help='numbers of seeds to tabulate')
  parser.add_argument('--images', default='10000,20000,25000',
                      help='numbers of images to tabulate')
  parser.add_argument('--kind', default=None,
                      choices=list(corruptions.KINDS),
                      help='compare on the test split\'s images under this '
                      'kind of corruption (each image\'s mean distance over '
                      'the kind\'s corruptions; the runs used --shifted_test)'
                      '; default: the clean test split')
  parser.add_argument('--sets', default=None, metavar='METHOD@ALPHA',
                      help='compare the sizes of prediction sets instead '
                      '(trainer.sets METHOD at level ALPHA, e.g. lac@0.01), '
                      'each seed\'s calibrated on the even-numbered test '
                      'images and scored on the odd-numbered ones; the pair '
                      'must be workdirs')
  parser.add_argument('--out', default='results/confirmation/power.json',
                      help='JSON file the pair is added to (by --name, and '
                      '--kind as NAME:KIND)')
  parser.add_argument('--keep', default=None,
                      help='folder where the distances read from workdirs '
                      'are kept as int8 files <name>-reference.npz and '
                      '<name>-challenger.npz (to recompute from them)')
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
  for source in (reference_dir, challenger_dir):
    if not ((source.suffix == '.npz' and source.is_file())
            or (source / 'predictions.npz').is_file()):
      parser.error(f'--pair: {source} is neither a distances file nor a '
                   'workdir with predictions.npz.')
  try:
    if args.sets is not None:
      method, alpha = _method_level(args.sets)
      reference, challenger = (set_sizes_SxN(source, method, alpha)
                               for source in (reference_dir, challenger_dir))
    else:
      reference, challenger = (distances_SxN(source, kind=args.kind)
                               for source in (reference_dir, challenger_dir))
  except ValueError as e:
    parser.error(f'--sets {args.sets}: {e}')
  except KeyError as e:
    parser.error(f'--kind {args.kind}: the pair has no {e} (run it with '
                 '--shifted_test).')
  if args.keep:
    for role, source in (('reference', reference_dir),
                         ('challenger', challenger_dir)):
      if source.suffix != '.npz':
        save_distances(source, pathlib.Path(args.keep)
                       / f'{args.name}-{role}.npz', None, bare='test',
                       seeds=False)
  if reference.shape != challenger.shape:
    parser.error(f'--pair: {reference.shape} and {challenger.shape} '
                 'predictions differ in seeds or images.')
  c = stats.variance_components(challenger - reference)
  reference_mde = float(reference.mean())
  out = pathlib.Path(args.out)
  result = json.loads(out.read_text()) if out.is_file() else {}
  name = (args.name if args.kind is None else f'{args.name}:{args.kind}') + (
      '' if args.sets is None else f':{args.sets}')
  result[name] = {
      'pair': [str(reference_dir), str(challenger_dir)], 'kind': args.kind,
      **({} if args.sets is None else {'sets': args.sets}),
      ('reference_mde' if args.sets is None else 'reference_size'):
          reference_mde, 'components': c._asdict(),
      'alpha': args.alpha, 'power': 0.8,
      'table': power_table(c, reference_mde, alpha=args.alpha, seeds=seeds,
                           images=images)}
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(result, indent=2) + '\n')
  measure = 'MDE' if args.sets is None else 'mean set size'
  print(f'{name}: delta {c.mean:+.4f} (reference {measure} '
        f'{reference_mde:.4f}); sd over seeds {math.sqrt(c.var_seed):.4f}, '
        f'over images {math.sqrt(c.var_image):.4f}, residual '
        f'{math.sqrt(c.var_residual):.4f}')
  print(f'  detectable effect, % of the reference {measure}: bootstrap test '
        '(seed variance at its 80 % upper bound), exact model')
  for row in result[name]['table']:
    print(f"  {row['seeds']:3d} seeds x {row['images']:6d} images: "
          f"{100 * row['bootstrap']:.1f} "
          f"({100 * row['bootstrap_seed_upper']:.1f}), "
          f"{100 * row['exact']:.1f}")
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
