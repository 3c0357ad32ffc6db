"""The confirmation's estimates (results/protocol.md, "Confirmation
protocol"), from the committed cells and per-image files: per primary
hypothesis, Δ with its interval over seeds and images, its p-values, Holm and
verdict; the secondary pairs; the primaries on the test split
(``study.confirm_families`` gives each family's rows).
``study.confirm_report`` writes them out.

Nothing here trains: ``study.confirm_cells`` reads back each family's
choice (decoding, edges) and the finals' int8 distances, which give the
stats. A hypothesis whose finals are not all done is
left out (and said so); a group of seeds that diverged in either family is
dropped from both.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
from collections.abc import Callable, Collection, Sequence
from typing import Any

import numpy as np

from study import confirm, stats
from study.confirm_cells import (
  diverged_groups,
  final_cells,
  group_distances,
  kept_groups,
  replayed_tunings,
  test_values,
)
from study.tuning import Tuning

ALPHA = 0.05
REPLICATES, BOOTSTRAP_SEED = 20_000, 0
# Secondary rows and each family's level: 2 000 replicates (about 10 s each
# on this CPU, against 2 min), enough for a 95 % interval; no p is corrected.
SECONDARY_REPLICATES = 2_000
SIGN_FLIPS = 200_000
# z_{1 - alpha/2} + z_{0.8} at alpha = 0.05 / 3: effects detected with 80 %.
DETECT_Z = 3.2356
# The same at alpha = 0.05, for the uncorrected secondary rows.
SECONDARY_DETECT_Z = 2.8016


@dataclasses.dataclass(frozen=True)
class Hypothesis:
  name: str
  regime: str
  challenger: str
  reference: str
  metric: str        # 'mean_digit_distance' or 'mean_error_distance'
  band: float        # the equivalence band, a share of the reference


HYPOTHESES = (
    Hypothesis('H1', 'scarce2000', 'smoothed_sord', 'label_smoothing',
               'mean_digit_distance', 0.04),
    Hypothesis('H2', 'noisy40', 'smoothed_sord', 'label_smoothing',
               'mean_digit_distance', 0.03),
    Hypothesis('H3', 'scarce2000', 'sord_linear', 'sord_permuted',
               'mean_error_distance', 0.03),
)


def num_den(distances_SxN: np.ndarray,
            metric: str) -> tuple[np.ndarray, np.ndarray]:
  """A metric's per-image numerator and denominator: the MDE's distance
  over 1, the mean error distance's over whether it is a mistake."""
  if metric == 'mean_digit_distance':
    return distances_SxN, np.ones_like(distances_SxN)
  return distances_SxN, (distances_SxN > 0).astype(np.int16)


def attribution(a_SxN: np.ndarray, b_SxN: np.ndarray) -> tuple[float, float]:
  """The fewer / closer parts of Δ MDE, split per seed
  (:func:`study.stats.fewer_closer`)."""
  e_a, e_b = (np.mean(x > 0, axis=1) for x in (a_SxN, b_SxN))
  d_a, d_b = (stats.per_seed(*num_den(x, 'mean_error_distance'))
              for x in (a_SxN, b_SxN))
  return stats.fewer_closer(e_a, e_b, d_a, d_b)


def estimate(h: Hypothesis, a_SxN: np.ndarray, b_SxN: np.ndarray,
             *, replicates: int = REPLICATES,
             detect_z: float = DETECT_Z) -> dict[str, Any]:
  """Every number of a hypothesis's row but its Holm p and verdict."""
  num_a, den_a = num_den(a_SxN, h.metric)
  num_b, den_b = num_den(b_SxN, h.metric)
  per_a, per_b = (stats.per_seed(num_a, den_a),
                  stats.per_seed(num_b, den_b))
  diff_S = per_a - per_b
  samples = stats.two_way_bootstrap((num_a, den_a), (num_b, den_b),
                                        replicates=replicates,
                                        seed=BOOTSTRAP_SEED)
  reference = float(per_b.mean())
  lo95, hi95 = stats.percentile_interval(samples, 0.95)
  lo90, hi90 = stats.percentile_interval(samples, 0.90)
  seeds_mean, seeds_half = stats.mean_ci(diff_S)
  row = {
      'hypothesis': h.name, 'regime': h.regime, 'challenger': h.challenger,
      'reference': h.reference, 'metric': h.metric,
      'n_seeds': int(a_SxN.shape[0]), 'n_images': int(a_SxN.shape[1]),
      'replicates': replicates, 'challenger_value': float(per_a.mean()),
      'reference_value': reference,
      'delta': float(diff_S.mean()), 'delta_share': float(diff_S.mean())
      / reference,
      'ci95_low': lo95, 'ci95_high': hi95, 'ci90_low': lo90,
      'ci90_high': hi90, 'p_bootstrap': stats.bootstrap_p(samples),
      'seeds_ci95_low': seeds_mean - seeds_half,
      'seeds_ci95_high': seeds_mean + seeds_half,
      'p_t': stats.paired_test(per_a, per_b)[1],
      'p_sign_flip': stats.sign_flip_p(diff_S, flips=SIGN_FLIPS),
      'detectable_share': detect_z * float(samples.std()) / reference,
      'band_share': h.band,
      'largest_90_share': max(abs(lo90), abs(hi90)) / reference,
  }
  if h.metric == 'mean_digit_distance':
    row['fewer_part'], row['closer_part'] = attribution(a_SxN, b_SxN)
  return row


UNSTABLE_GROUPS = 1  # more groups dropped than this: "unstable"
UNSTABLE = 'unstable (not interpreted)'


def is_unstable(row: dict[str, Any]) -> bool:
  return int(row['groups_dropped']) > UNSTABLE_GROUPS


def verdicts(rows: list[dict[str, Any]]) -> None:
  """Holm over the rows' bootstrap p-values (an unstable row still counts,
  at p = 1 where it has none; a p no replicate reached counts as its bound
  1 / replicates), then each row's verdict. A Holm p that is only a bound
  is kept as the text '< bound', as it prints."""
  bounded = [r['p_bootstrap'] == 0 for r in rows]
  p_values = [1 / r['replicates'] if bound
              else 1.0 if math.isnan(r['p_bootstrap']) else r['p_bootstrap']
              for r, bound in zip(rows, bounded, strict=True)]
  for row, (p, bound) in zip(rows, stats.holm_with_bounds(p_values, bounded),
                             strict=True):
    row['p_holm'] = f'< {p:g}' if bound else p
    if is_unstable(row):
      row['verdict'] = UNSTABLE
      continue
    band = row['band_share'] * row['reference_value']
    words = []
    if p < ALPHA:
      words.append('lower' if row['delta'] < 0 else 'higher')
    if -band < row['ci90_low'] and row['ci90_high'] < band:
      words.append(f"equivalent within {100 * row['band_share']:g} %")
    row['verdict'] = ' and '.join(words) or 'not resolved'


def _decodings(h: Hypothesis, tuning: dict[str, Tuning]
               ) -> dict[str, str]:
  return {f: 'argmax' if h.metric == 'mean_error_distance'
          else tuning[f].choice.decoding for f in (h.challenger, h.reference)}


def pair_row(h: Hypothesis, tuning: dict[str, Tuning],
             root: pathlib.Path, replicates: int,
             drop: Collection[int] = (),
             detect_z: float = DETECT_Z) -> dict[str, Any]:
  """A pair's row on the confirmation split, without the groups that
  diverged in either family or are in ``drop`` (KeyError or
  FileNotFoundError: a family or group not run yet)."""
  decoding = _decodings(h, tuning)
  groups = {f: group_distances(root / 'images', root / 'cells', h.regime, f,
                               tuning[f].choice, decoding[f])
            for f in decoding}
  kept = [s for s in kept_groups(groups) if s not in drop]
  if kept:
    a_SxN, b_SxN = (np.concatenate([groups[f][s] for s in kept])
                    for f in (h.challenger, h.reference))
    row = estimate(h, a_SxN, b_SxN, replicates=replicates,
                   detect_z=detect_z)
  else:  # every group diverged on one side or the other
    row = {'hypothesis': h.name, 'regime': h.regime, 'band_share': h.band,
           'n_seeds': 0, 'p_bootstrap': float('nan')}
  row['groups_dropped'] = confirm.FINAL_GROUPS - len(kept)
  row['decodings'] = f'{decoding[h.challenger]}/{decoding[h.reference]}'
  row['tuning'] = '; '.join(
      f'{f}: {confirm.edge_label(f, hyper, side)}' for f in decoding
      for hyper, side in tuning[f].on_edge) or 'complete'
  row['command'] = 'python -m study.confirm_report'
  return row


def hypothesis_rows(results_dir: pathlib.Path,
                    log: Callable[[str], object] = print,
                    hypotheses: Sequence[Hypothesis] = HYPOTHESES,
                    replicates: int = REPLICATES) -> list[dict[str, Any]]:
  root = results_dir / 'confirmation'
  tunings = replayed_tunings(root / 'cells', [h.regime for h in hypotheses])
  rows = []
  for h in hypotheses:
    if h.regime not in tunings:
      log(f'{h.name}: not ready ({h.regime} not tuned yet)')
      continue
    try:
      rows.append(pair_row(h, tunings[h.regime], root, replicates))
    except (KeyError, FileNotFoundError) as e:
      log(f'{h.name}: not ready ({e})')
  if len(rows) == len(hypotheses):
    verdicts(rows)
  else:  # Holm counts every primary hypothesis: none is judged alone.
    for row in rows:
      row['p_holm'], row['verdict'] = float('nan'), 'pending (Holm needs all)'
  return rows


# Secondary pairs, uncorrected (protocol.md): the primary pair at matched
# off-label mass, then against label smoothing and against cross-entropy (its
# change log); the primary pairs are not repeated.
SECONDARY_PAIRS = {
    'scarce2000': (('smoothed_sord', 'label_smoothing_matched'),
                   ('label_smoothing_matched', 'label_smoothing'),
                   ('sord_linear', 'label_smoothing'),
                   ('sord_permuted', 'label_smoothing'),
                   ('label_smoothing', 'cross_entropy'),
                   ('smoothed_sord', 'cross_entropy'),
                   ('label_smoothing_matched', 'cross_entropy'),
                   ('sord_linear', 'cross_entropy'),
                   ('sord_permuted', 'cross_entropy')),
    'noisy40': (('smoothed_sord', 'label_smoothing_matched'),
                ('label_smoothing_matched', 'label_smoothing'),
                ('label_smoothing', 'cross_entropy'),
                ('smoothed_sord', 'cross_entropy'),
                ('label_smoothing_matched', 'cross_entropy')),
    # A secondary regime: its pair is one more secondary row.
    'scarce500': (('smoothed_sord', 'label_smoothing'),
                  ('smoothed_sord', 'label_smoothing_matched'),
                  ('label_smoothing_matched', 'label_smoothing'),
                  ('label_smoothing', 'cross_entropy'),
                  ('smoothed_sord', 'cross_entropy'),
                  ('label_smoothing_matched', 'cross_entropy'),
                  # The tied control (the change log, 2026-12-07).
                  ('smoothed_sord', 'label_smoothing_tied'),
                  ('label_smoothing_tied', 'label_smoothing')),
}


SECONDARY = 'secondary (uncorrected)'

# Post hoc (the change log, 2026-12-07): H3's mechanism against the
# distance-blind control, on the mean error distance (argmax, as H3).
POST_HOC_PAIRS = {'scarce2000': (('sord_linear', 'label_smoothing'),
                                 ('smoothed_sord', 'label_smoothing'))}
POST_HOC = 'post hoc (uncorrected)'


def secondary_rows(results_dir: pathlib.Path,
                   log: Callable[[str], object] = print,
                   replicates: int = SECONDARY_REPLICATES
                   ) -> list[dict[str, Any]]:
  """Every secondary pair whose finals are in, then the post hoc ones, as
  the primaries are estimated, with no correction and no verdict, on the
  groups that trained in every final of the regime."""
  root = results_dir / 'confirmation'
  tunings = replayed_tunings(root / 'cells', list(SECONDARY_PAIRS))
  rows = []
  for pairs, metric, label in (
      (SECONDARY_PAIRS, 'mean_digit_distance', SECONDARY),
      (POST_HOC_PAIRS, 'mean_error_distance', POST_HOC)):
    for regime, regime_pairs in pairs.items():
      drop = diverged_groups(root / 'cells', regime)
      for challenger, reference in regime_pairs:
        h = Hypothesis(f'{challenger} - {reference}', regime, challenger,
                       reference, metric, float('nan'))
        try:
          row = pair_row(h, tunings[regime], root, replicates, drop,
                         SECONDARY_DETECT_Z)
        except (KeyError, FileNotFoundError) as e:
          log(f'{regime} {h.name}: not ready ({e})')
          continue
        row['verdict'] = UNSTABLE if is_unstable(row) else label
        rows.append(row)
  return rows


def uniform_error_distance(num_classes: int = 10) -> float:
  """The mean error distance of a uniformly random wrong digit when every
  digit is equally likely (330 / 90 for ten): what "no sense of order"
  scores."""
  digits = np.arange(num_classes)
  distance_KxK = np.abs(digits[:, None] - digits[None, :])
  return float(distance_KxK.sum() / (num_classes * (num_classes - 1)))


def test_split_rows(results_dir: pathlib.Path, primaries: Sequence[
    dict[str, Any]]) -> list[dict[str, Any]]:
  """The primary hypotheses on the test split (seen by the study), over
  seeds only, on the confirmation's kept groups."""
  cells_dir = results_dir / 'confirmation' / 'cells'
  by_name = {h.name: h for h in HYPOTHESES}
  tunings = replayed_tunings(cells_dir, [r['regime'] for r in primaries])
  rows = []
  for primary in primaries:
    if not primary.get('n_seeds'):
      continue
    h = by_name[primary['hypothesis']]
    decoding = _decodings(h, tunings[h.regime])
    groups = {f: group_distances(results_dir / 'confirmation' / 'images',
                                 cells_dir, h.regime, f,
                                 tunings[h.regime][f].choice, decoding[f])
              for f in decoding}
    a, b = (test_values(final_cells(cells_dir, h.regime, f,
                                    tunings[h.regime][f].choice),
                        decoding[f], h.metric, kept_groups(groups))
            for f in (h.challenger, h.reference))
    mean, half = stats.mean_ci(a - b)
    rows.append({'hypothesis': h.name, 'regime': h.regime, 'split': 'test',
                 'n_seeds': a.size, 'challenger_value': float(a.mean()),
                 'reference_value': float(b.mean()), 'delta': mean,
                 'delta_share': mean / float(b.mean()),
                 'seeds_ci95_low': mean - half,
                 'seeds_ci95_high': mean + half,
                 'p_t': stats.paired_test(a, b)[1],
                 'p_sign_flip': stats.sign_flip_p(a - b,
                                                      flips=SIGN_FLIPS)})
  return rows
