"""The sets protocol's sizing with every threshold recalibrated: from the
pilot's runs (results/sets/pilot.md), each primary contrast's seed variance
component, its variance over images (with each fold's threshold
recalibrated on the resampled images) split into the part every seed shares
and each seed's own, and the effect a two-sided test at 0.05/4 (Holm's
first step over the four primaries) detects with 80 % power, as a share of
the control's mean excess over one digit per set.

    python -m study sets_power --pilot runs/sets_pilot \
        --out results/sets/power_recalibrated.json

Each pilot run's test images are cross-fitted as the protocol cross-fits
the confirmation split (``study.prediction_sets.kept_sets``: sets
calibrated on the even-numbered test images score the odd-numbered ones and
the other way round). The variance over images is that of the contrast with
the seeds fixed and the images resampled (2 000 replicates, seed 0), scaled
from the pilot's 10 000 images to the protocol's 30 000 (it falls as one
over the images, calibrating and evaluated alike). A design of S seeds has
the variance seed / S + shared + own / S, the seed component (ANOVA, as
estimated and at its 80 % upper bound) holding each seed's own calibration
noise once more, as the bootstrap over seeds and images does.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from study import power, prediction_sets, sets_estimates, stats
from study.sets_rows import PRIMARY

DESIGN_SEEDS = (40, 80, 120)
DESIGN_IMAGES = 30_000
REPLICATES = 2_000


def pilot_family(run: pathlib.Path) -> dict[str, np.ndarray]:
  """A pilot run's kept sets, its test images cross-fitted."""
  with np.load(run / 'predictions.npz') as f:
    probs_SxBxK, labels_B, seeds = f['probs'], f['labels'], f['seeds']
  return prediction_sets.kept_sets(probs_SxBxK, labels_B, None, seeds)


def shared_and_own(per_seed_RxS: np.ndarray) -> tuple[float, float]:
  """The variance over images of one seed's value, split into the part all
  seeds share (the same images) and each seed's own: from the replicates'
  per-seed values, var(mean over S seeds) = shared + own / S."""
  num_seeds = per_seed_RxS.shape[1]
  of_mean = float(per_seed_RxS.mean(axis=1).var())
  of_one = float(per_seed_RxS.var(axis=0).mean())
  shared = max(0.0, (num_seeds * of_mean - of_one) / (num_seeds - 1))
  return shared, max(0.0, of_one - shared)


def sizing(families: dict[str, dict[str, np.ndarray]],
           contrast: sets_estimates.Contrast, control: str) -> dict[str, Any]:
  """One contrast's components and detectable effects."""
  delta_SxN = sets_estimates.contrast_values(families, contrast)
  c = stats.variance_components(delta_SxN)
  over_images = sets_estimates.bootstrap(
      families, {'c': contrast}, replicates=REPLICATES,
      resample_seeds=False)['c']
  scale = c.num_images / DESIGN_IMAGES
  shared, own = shared_and_own(over_images.per_seed_RxS)
  shared, own = shared * scale, own * scale
  var_images_fixed = float(over_images.fixed.var()) * scale
  control_excess = float(sets_estimates.family_values(
      families[control], contrast).mean()) - 1
  upper = power.seed_upper_factor(c.num_seeds)
  detectable = {}
  for seeds in DESIGN_SEEDS:
    for label, factor in (('estimated', 1.0), ('seed_upper80', upper)):
      variance = factor * c.var_seed / seeds + shared + own / seeds
      detectable[f'{seeds}_{label}'] = power.detectable_effect(
          variance, alpha=0.05 / len(PRIMARY)) / control_excess
  return {'delta': float(delta_SxN.mean()), 'control_excess': control_excess,
          'var_seed': c.var_seed, 'var_image': c.var_image,
          'var_residual': c.var_residual,
          'var_over_images_shared_at_30000': shared,
          'var_over_images_per_seed_at_30000': own,
          'var_over_images_at_30000_calibration_fixed': var_images_fixed,
          'pilot_seeds': c.num_seeds, 'pilot_images': c.num_images,
          'detectable_share_of_excess': detectable}


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog='python -m study sets_power', description=__doc__,
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--pilot', required=True, type=pathlib.Path,
                      help='the folder of the pilot runs, one per family '
                      '(label_smoothing, smoothed_sord, cross_entropy)')
  parser.add_argument('--out', required=True, type=pathlib.Path,
                      help='the JSON file to write')
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  args = build_parser().parse_args(argv)
  names = sorted({family for h in PRIMARY for _, family in h.contrast.terms})
  missing = [n for n in names if not (args.pilot / n / 'predictions.npz')
             .exists()]
  if missing:
    print(f'error: no predictions.npz for {", ".join(missing)} under '
          f'{args.pilot}', file=sys.stderr)
    return 2
  families = {name: pilot_family(args.pilot / name) for name in names}
  out = {h.name: {'contrast': h.description,
                  **sizing(families, h.contrast, h.control)}
         for h in PRIMARY}
  args.out.parent.mkdir(parents=True, exist_ok=True)
  args.out.write_text(json.dumps(out, indent=1) + '\n')
  for name, row in out.items():
    shares = row['detectable_share_of_excess']
    print(f"{name}: delta {row['delta']:+.4f}, control excess "
          f"{row['control_excess']:.4f}, detectable at 80 seeds "
          f"{100 * shares['80_estimated']:.1f} % "
          f"({100 * shares['80_seed_upper80']:.1f} %)")
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
