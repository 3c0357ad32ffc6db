"""The prediction sets' rows (results/protocol.md, "Prediction-sets
protocol"): the four primaries P1-P4 with their three-way intervals, Holm p
and verdicts, and the registered secondaries, from the finals' kept files
under ``results/sets/images/``.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from study import prediction_sets, recalibration, sets_estimates, stats
from study.cells import diverged
from study.sets_estimates import Contrast

ALPHA = 0.05
REPLICATES = 20_000
SECONDARY_REPLICATES = 2_000
BOOTSTRAP_SEED = 0
SIGN_FLIPS = 200_000
LEVELS = prediction_sets.MEASURE_LEVELS


@dataclasses.dataclass(frozen=True)
class Hypothesis:
  """A registered difference of mean set sizes, challenger minus control,
  under one measure's levels; ``band``: the equivalence band as a share of
  the control's mean excess over one digit."""
  name: str
  measure: str
  challenger: str
  control: str
  band: float

  @property
  def contrast(self) -> Contrast:
    return Contrast(((1.0, self.challenger), (-1.0, self.control)),
                    LEVELS[self.measure])

  @property
  def description(self) -> str:
    return (f'{self.challenger} - {self.control}, mean set size over '
            f'{", ".join(LEVELS[self.measure])}')


# The registered bands (results/protocol.md's sets entry): each one's
# detectable effect at 40 seeds, seed variance at its 80 % upper bound
# (results/sets/power_recalibrated.json), rounded up to a whole percent.
PRIMARY = (
    Hypothesis('P1', 'lac', 'smoothed_sord', 'label_smoothing', 0.33),
    Hypothesis('P2', 'lac', 'smoothed_sord', 'cross_entropy', 0.19),
    Hypothesis('P3', 'risk', 'smoothed_sord', 'label_smoothing', 0.06),
    Hypothesis('P4', 'risk', 'smoothed_sord', 'cross_entropy', 0.17),
)
DETECT_Z = 3.3393  # z(1 - 0.05/8) + z(0.8): Holm's first step over four
# A tenth of the control's excess over one digit: a band wider than this
# says no larger difference was resolved, not that the recipes are
# equivalent.
EFFECT_OF_INTEREST = 0.10
CLIPPED_LIMIT = 0.01  # above this share of clipped thresholds a row says so


def all_groups() -> list[int]:
  """The first seed of each of the finals' programs."""
  return [prediction_sets.SETS_SEED + 10 * g
          for g in range(prediction_sets.SETS_GROUPS)]


def dropped_groups(root: pathlib.Path,
                   families: Sequence[str]) -> list[int]:
  """The groups in which any of ``families`` diverged (the registered
  exclusion: dropped from every one of them)."""
  return [seed for seed in all_groups() for family in families
          if (path := root / 'cells' / f'final-{family}-s{seed}.json')
          .exists() and diverged(path)]


def load_family(root: pathlib.Path, family: str,
                groups: Sequence[int]) -> dict[str, np.ndarray]:
  """A family's kept files of ``groups`` (first seeds), joined;
  FileNotFoundError naming the first one missing."""
  arrays = []
  for seed in groups:
    path = root / 'images' / f'final-{family}-s{seed}.npz'
    if not path.exists():
      raise FileNotFoundError(path)
    stat = path.stat()
    arrays.append(dict(_kept_file(path.resolve(), stat.st_ino, stat.st_size,
                                  stat.st_mtime_ns)))
  return sets_estimates.concatenate(arrays)


# The registered protocol's 4 families x 4 groups, and room to spare.
@functools.lru_cache(maxsize=32)
def _kept_file(path: pathlib.Path, inode: int, size: int,
               mtime_ns: int) -> Mapping[str, np.ndarray]:
  """One kept file's arrays, read once per process (each holds about 1 400
  small arrays; the primary and the secondary rows read the same files),
  read-only since they are shared; a rewritten file (another inode, size or
  time) is read again."""
  del inode, size, mtime_ns
  with np.load(path) as f:
    arrays = {key: f[key] for key in f.files}
  for array in arrays.values():
    array.flags.writeable = False
  return arrays


def load_families(root: pathlib.Path, families: Sequence[str]
                  ) -> tuple[dict[str, dict[str, np.ndarray]], int]:
  """``families``' kept arrays on the groups none of them dropped, and how
  many groups were dropped."""
  dropped = set(dropped_groups(root, families))
  kept = [g for g in all_groups() if g not in dropped]
  if not kept:
    raise NoGroupKept(f'every group of {", ".join(families)} diverged')
  return {f: load_family(root, f, kept) for f in families}, len(dropped)


class NoGroupKept(ValueError):
  """Every group diverged somewhere: nothing to estimate."""


def estimate_row(h: Hypothesis, families: Mapping[str, Mapping[str, Any]],
                 replicates: sets_estimates.Replicates,
                 num_groups: int) -> dict[str, Any]:
  """Every number of a primary's row but its Holm p and verdict."""
  delta_SxN = sets_estimates.contrast_values(families, h.contrast)
  per_seed = delta_SxN.mean(axis=1).astype(np.float64)
  control = float(sets_estimates.family_values(
      families[h.control], h.contrast).mean())
  challenger = float(sets_estimates.family_values(
      families[h.challenger], h.contrast).mean())
  samples = replicates.samples
  lo95, hi95 = stats.percentile_interval(samples, 0.95)
  lo90, hi90 = stats.percentile_interval(samples, 0.90)
  fixed95 = stats.percentile_interval(replicates.fixed, 0.95)
  seeds_mean, seeds_half = stats.mean_ci(per_seed)
  groups95 = sets_estimates.group_interval(
      per_seed, len(per_seed) // num_groups)
  excess = control - 1
  return {
      'hypothesis': h.name, 'measure': h.measure,
      'levels': ' '.join(LEVELS[h.measure]), 'challenger': h.challenger,
      'control': h.control, 'n_seeds': len(per_seed),
      'n_images': delta_SxN.shape[1], 'replicates': len(samples),
      'challenger_size': challenger, 'control_size': control,
      'control_excess': excess, 'delta': float(per_seed.mean()),
      'delta_share_of_excess': float(per_seed.mean()) / excess,
      'ci95_low': lo95, 'ci95_high': hi95, 'ci90_low': lo90,
      'ci90_high': hi90, 'p_bootstrap': stats.bootstrap_p(samples),
      'mean_offset': replicates.mean_offset,
      'clipped_share': replicates.clipped_share,
      'fixed_calibration_ci95_low': fixed95[0],
      'fixed_calibration_ci95_high': fixed95[1],
      'seeds_ci95_low': seeds_mean - seeds_half,
      'seeds_ci95_high': seeds_mean + seeds_half,
      'groups_ci95_low': groups95[0], 'groups_ci95_high': groups95[1],
      'p_t': stats.paired_test(per_seed, np.zeros_like(per_seed))[1],
      'p_sign_flip': stats.sign_flip_p(per_seed, flips=SIGN_FLIPS),
      'detectable_share_of_excess': DETECT_Z * float(samples.std()) / excess,
      'band_share_of_excess': h.band,
  }


UNSTABLE = 'unstable (not interpreted)'
UNSTABLE_GROUPS = 1  # more groups dropped than this: "unstable"


def p_bound(replicates: int) -> float:
  """The smallest two-sided bootstrap p above 0: ``2 / replicates``."""
  return 2 / replicates


def verdicts(rows: list[dict[str, Any]]) -> None:
  """Holm over the four bootstrap p-values (a p no replicate reached counts
  as its bound :func:`p_bound` and prints as '< bound'), then each row's
  verdict: "smaller" or "larger" where Holm's p < 0.05; where the 90 %
  interval lies inside +-B times the control's excess, "equivalent within
  B" for a band B up to the effect of interest and "no difference larger
  than B" for a wider one; both where both hold; else "not resolved";
  "unstable" where more than one group was dropped; and a note where more
  than 1 % of the replicate thresholds were clipped."""
  bounded = [r['p_bootstrap'] == 0 for r in rows]
  p_values = [p_bound(r['replicates']) if bound else r['p_bootstrap']
              for r, bound in zip(rows, bounded, strict=True)]
  for row, (p, bound) in zip(rows, stats.holm_with_bounds(p_values, bounded),
                             strict=True):
    row['p_holm'] = f'< {p:g}' if bound else p
    if row['groups_dropped'] > UNSTABLE_GROUPS:
      row['verdict'] = UNSTABLE
      continue
    band = row['band_share_of_excess'] * row['control_excess']
    words = []
    if p < ALPHA:
      words.append('smaller' if row['delta'] < 0 else 'larger')
    if -band < row['ci90_low'] and row['ci90_high'] < band:
      share = f"{100 * row['band_share_of_excess']:g} % of the excess"
      words.append(f'equivalent within {share}'
                   if row['band_share_of_excess'] <= EFFECT_OF_INTEREST
                   else f'no difference larger than {share}')
    row['verdict'] = ' and '.join(words) or 'not resolved'
    if row['clipped_share'] > CLIPPED_LIMIT:
      row['verdict'] += (f" ({100 * row['clipped_share']:.1f} % of the "
                         'replicate thresholds clipped)')


def primary_rows(root: pathlib.Path, *, replicates: int = REPLICATES,
                 log: Callable[[str], object] = print
                 ) -> list[dict[str, Any]]:
  """P1-P4 once every primary family's groups are in (Holm needs all)."""
  try:
    families, dropped = load_families(root, prediction_sets.PRIMARY_FAMILIES)
  except FileNotFoundError as e:
    log(f'primaries: not ready ({e})')
    return []
  except NoGroupKept as e:
    log(f'primaries: unstable ({e})')
    rows = [{'hypothesis': h.name, 'measure': h.measure,
             'challenger': h.challenger, 'control': h.control,
             'groups_dropped': prediction_sets.SETS_GROUPS,
             'p_holm': float('nan'), 'verdict': UNSTABLE} for h in PRIMARY]
    return rows
  draws = sets_estimates.bootstrap(
      families, {h.name: h.contrast for h in PRIMARY},
      replicates=replicates, seed=BOOTSTRAP_SEED)
  num_groups = prediction_sets.SETS_GROUPS - dropped
  rows = [{**estimate_row(h, families, draws[h.name], num_groups),
           'groups_dropped': dropped} for h in PRIMARY]
  verdicts(rows)
  return rows


# ----------------------------------------------------------------------------
# Secondaries (uncorrected, labelled).


def _interval_row(label: str, what: str, measure: str, quantity: str,
                  value: float, samples: np.ndarray | None,
                  per_seed: np.ndarray, **fields: Any) -> dict[str, Any]:
  row: dict[str, Any] = {'label': label, 'what': what, 'measure': measure,
                         'quantity': quantity, 'value': value,
                         'n_seeds': len(per_seed)}
  if samples is not None:
    row['ci95_low'], row['ci95_high'] = stats.percentile_interval(samples)
    row['p_bootstrap'] = stats.bootstrap_p(samples)
    row['replicates'] = len(samples)
  mean, half = stats.mean_ci(per_seed)
  row['seeds_ci95_low'], row['seeds_ci95_high'] = mean - half, mean + half
  return {**row, **fields}


def _bootstrapped(label: str, what: str, contrast: Contrast,
                  families: Mapping[str, Mapping[str, np.ndarray]],
                  draws: sets_estimates.Replicates,
                  dropped: int) -> dict[str, Any]:
  per_seed = sets_estimates.contrast_values(families, contrast).mean(axis=1)
  row = _interval_row(label, what, ' '.join(contrast.levels),
                      contrast.quantity, float(per_seed.mean()),
                      draws.samples, per_seed, groups_dropped=dropped)
  if len(contrast.terms) == 1:
    del row['p_bootstrap']  # a family's value, not a difference
  return row


def _pair(challenger: str, control: str) -> tuple[tuple[float, str], ...]:
  return ((1.0, challenger), (-1.0, control))


def recalibrated_contrasts() -> dict[str, tuple[str, str, Contrast]]:
  """Secondaries (a)-(c): name -> (label, what, contrast)."""
  out = {}
  for family in prediction_sets.PRIMARY_FAMILIES:
    for level in prediction_sets.WINDOWED:
      for quantity in recalibration.QUANTITIES:
        out[f'a {family} {level} {quantity}'] = (
            '(a)', family, Contrast(((1.0, family),), (level,), quantity))
  for h in PRIMARY:
    for level in LEVELS[h.measure]:
      out[f'b {h.name} {level}'] = (
          '(b)', f'{h.challenger} - {h.control}',
          Contrast(_pair(h.challenger, h.control), (level,)))
  for measure, levels in LEVELS.items():
    out[f'c {measure}'] = ('(c)', 'label_smoothing - cross_entropy',
                           Contrast(_pair('label_smoothing', 'cross_entropy'),
                                    levels))
  return out


def sord_contrasts() -> dict[str, tuple[str, str, Contrast]]:
  """Secondary (d): SORD against label smoothing under each measure."""
  return {f'd {measure}': ('(d)', 'sord_linear - label_smoothing',
                           Contrast(_pair('sord_linear', 'label_smoothing'),
                                    levels))
          for measure, levels in LEVELS.items()}


def seed_mean_rows(families: Mapping[str, Mapping[str, np.ndarray]],
                   dropped: int) -> list[dict[str, Any]]:
  """Secondaries (e) and (f), over seeds only ("on these images"): the
  secondary measures' and the hull-free LAC sizes' per-seed means, and the
  test split's coverage and size per windowed level, of each family and of
  smoothed SORD against each control."""
  rows = []
  keys: list[tuple[str, str, str, str]] = [
      ('(e)', 'evaluation', name, quantity)
      for name in prediction_sets.SECONDARY_MEASURES
      for quantity in ('size', 'covered')]
  keys += [('(e)', 'evaluation', name, 'plain_size')
           for name in prediction_sets.WINDOWED if name.startswith('lac')]
  keys += [('(f)', 'test', name, quantity)
           for name in prediction_sets.WINDOWED
           for quantity in ('size', 'covered')]

  def per_seed(kept: Mapping[str, np.ndarray], split: str, name: str,
               quantity: str) -> np.ndarray:
    return np.asarray(kept[f'{split}_{name}_{quantity}'], np.float64)

  for label, split, name, quantity in keys:
    values = {f: per_seed(kept, split, name, quantity)
              for f, kept in families.items()}
    for family, v in values.items():
      rows.append(_interval_row(label, family, name, quantity,
                                float(v.mean()), None, v, split=split,
                                groups_dropped=dropped))
    for control in ('label_smoothing', 'cross_entropy'):
      diff = values['smoothed_sord'] - values[control]
      rows.append(_interval_row(
          label, f'smoothed_sord - {control}', name, quantity,
          float(diff.mean()), None, diff, split=split,
          p_t=stats.paired_test(values['smoothed_sord'], values[control])[1],
          groups_dropped=dropped))
  return rows


def secondary_rows(root: pathlib.Path, *,
                   replicates: int = SECONDARY_REPLICATES,
                   log: Callable[[str], object] = print
                   ) -> list[dict[str, Any]]:
  """The registered secondaries (a)-(f) that can be computed now."""
  try:
    families, dropped = load_families(root, prediction_sets.PRIMARY_FAMILIES)
  except (FileNotFoundError, NoGroupKept) as e:
    log(f'secondaries: not ready ({e})')
    return []
  contrasts = recalibrated_contrasts()
  draws = sets_estimates.bootstrap(
      families, {name: c for name, (_, _, c) in contrasts.items()},
      replicates=replicates, seed=BOOTSTRAP_SEED)
  rows = [_bootstrapped(label, what, c, families, draws[name], dropped)
          for name, (label, what, c) in contrasts.items()]
  rows += seed_mean_rows(families, dropped)
  try:
    with_sord, sord_dropped = load_families(
        root, ('label_smoothing', 'sord_linear'))
  except (FileNotFoundError, NoGroupKept) as e:
    log(f'secondary (d): not ready ({e})')
    return rows
  contrasts = sord_contrasts()
  draws = sets_estimates.bootstrap(
      with_sord, {name: c for name, (_, _, c) in contrasts.items()},
      replicates=replicates, seed=BOOTSTRAP_SEED)
  rows += [_bootstrapped(label, what, c, with_sord, draws[name], sord_dropped)
           for name, (label, what, c) in contrasts.items()]
  return rows
