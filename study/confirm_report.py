"""The confirmation's answer (results/protocol.md, "Confirmation protocol"):
per primary hypothesis, Δ with its interval over seeds and images, from the
committed cells and per-image files; ``results/confirmation/confirmation.csv``.

    python -m study.confirm_report

Nothing here trains: the tuning cells give each family's choice (decoding,
edges) through ``confirm.tune`` reading the cell files, and the finals' int8
distances give the estimates. A hypothesis whose finals are not all done is
left out (and said so); a group of seeds that diverged in either family is
dropped from both.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import pathlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from study import confirm, estimates
from study import rows as study_rows
from study.cells import migrate_cell
from study.records import Choice, TuningCell
from trainer.config import Config

ALPHA = 0.05
REPLICATES, BOOTSTRAP_SEED = 20_000, 0
SIGN_FLIPS = 200_000
# z_{1 - alpha/2} + z_{0.8} at alpha = 0.05 / 3: effects detected with 80 %.
DETECT_Z = 3.2356


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


def _read_cell(path: pathlib.Path, config: Config) -> TuningCell:
  """A committed tuning cell (the report never trains)."""
  if not path.exists():
    raise FileNotFoundError(path)
  cell = migrate_cell(json.loads(path.read_text()))
  if Config(**cell['config']) != dataclasses.replace(config,
                                                     data_dir=cell['config'][
                                                         'data_dir']):
    raise ValueError(f'{path} holds another configuration.')
  return TuningCell.from_json(cell)


def tuned(cells_dir: pathlib.Path, regime: str) -> dict[str, confirm.Tuning]:
  """Each family's tuning, replayed from its committed cells."""
  base = confirm.regime_base(regime)
  out = {name: confirm.tune(_read_cell, cells_dir / regime, base, name,
                            family, log=lambda message: None)
         for name, family in confirm.families(regime).items()}
  if 'sord_linear' in out:
    linear = out['sord_linear']
    out['sord_permuted'] = dataclasses.replace(
        linear, choice=confirm.permuted_twin(linear.choice))
  return out


def group_distances(images_dir: pathlib.Path, cells_dir: pathlib.Path,
                    regime: str, family: str, decoding: str,
                    ) -> dict[int, np.ndarray | None]:
  """First seed of each group -> its distances ``[10, N]`` (None: the
  group diverged); KeyError naming a group not run yet; ValueError if a
  file holds other seeds."""
  out: dict[int, np.ndarray | None] = {}
  for g in range(confirm.FINAL_GROUPS):
    seed = confirm.FINAL_SEED + g * confirm.GROUP_SIZE
    stem = f'final-{family}-s{seed}'
    cell_path = cells_dir / regime / f'{stem}.json'
    if not cell_path.exists():
      raise KeyError(f'{regime} {family} seeds {seed}+ not run yet')
    if 'diverged' in json.loads(cell_path.read_text()):
      out[seed] = None
      continue
    with np.load(images_dir / regime / f'{stem}.npz') as f:
      if list(f['seeds']) != list(range(seed, seed + confirm.GROUP_SIZE)):
        raise ValueError(f'{stem}.npz holds seeds {list(f["seeds"])}.')
      out[seed] = f[decoding].astype(np.int16)
  return out


def _num_den(distances_SxN: np.ndarray,
             metric: str) -> tuple[np.ndarray, np.ndarray]:
  if metric == 'mean_digit_distance':
    return distances_SxN, np.ones_like(distances_SxN)
  return distances_SxN, (distances_SxN > 0).astype(np.int16)


def _attribution(a_SxN: np.ndarray, b_SxN: np.ndarray) -> tuple[float, float]:
  """The fewer / closer parts of Δ MDE, as the study splits it per seed."""
  e_a, e_b = (np.mean(x > 0, axis=1) for x in (a_SxN, b_SxN))
  d_a, d_b = (estimates.per_seed(*_num_den(x, 'mean_error_distance'))
              for x in (a_SxN, b_SxN))
  return (float(np.mean((e_a - e_b) * (d_a + d_b) / 2)),
          float(np.mean((d_a - d_b) * (e_a + e_b) / 2)))


def estimate(h: Hypothesis, a_SxN: np.ndarray, b_SxN: np.ndarray,
             *, replicates: int = REPLICATES) -> dict[str, Any]:
  """Every number of a hypothesis's row but its Holm p and verdict."""
  num_a, den_a = _num_den(a_SxN, h.metric)
  num_b, den_b = _num_den(b_SxN, h.metric)
  per_a, per_b = (estimates.per_seed(num_a, den_a),
                  estimates.per_seed(num_b, den_b))
  diff_S = per_a - per_b
  samples = estimates.two_way_bootstrap((num_a, den_a), (num_b, den_b),
                                        replicates=replicates,
                                        seed=BOOTSTRAP_SEED)
  reference = float(per_b.mean())
  lo95, hi95 = estimates.percentile_interval(samples, 0.95)
  lo90, hi90 = estimates.percentile_interval(samples, 0.90)
  seeds_mean, seeds_half = study_rows.mean_ci(diff_S)
  row = {
      'hypothesis': h.name, 'regime': h.regime, 'challenger': h.challenger,
      'reference': h.reference, 'metric': h.metric,
      'n_seeds': int(a_SxN.shape[0]), 'n_images': int(a_SxN.shape[1]),
      'challenger_value': float(per_a.mean()), 'reference_value': reference,
      'delta': float(diff_S.mean()), 'delta_share': float(diff_S.mean())
      / reference,
      'ci95_low': lo95, 'ci95_high': hi95, 'ci90_low': lo90,
      'ci90_high': hi90, 'p_bootstrap': estimates.bootstrap_p(samples),
      'seeds_ci95_low': seeds_mean - seeds_half,
      'seeds_ci95_high': seeds_mean + seeds_half,
      'p_t': study_rows.paired_test(per_a, per_b)[1],
      'p_sign_flip': estimates.sign_flip_p(diff_S, flips=SIGN_FLIPS),
      'detectable_share': DETECT_Z * float(samples.std()) / reference,
      'band_share': h.band,
      'largest_90_share': max(abs(lo90), abs(hi90)) / reference,
  }
  if h.metric == 'mean_digit_distance':
    row['fewer_part'], row['closer_part'] = _attribution(a_SxN, b_SxN)
  return row


UNSTABLE_GROUPS = 1  # more groups dropped than this: "unstable"


def verdicts(rows: list[dict[str, Any]]) -> None:
  """Holm over the rows' bootstrap p-values (an unstable row still counts,
  at p = 1 where it has none), then each row's verdict."""
  p_values = [1.0 if math.isnan(r['p_bootstrap']) else r['p_bootstrap']
              for r in rows]
  for row, p in zip(rows, study_rows.holm(p_values), strict=True):
    row['p_holm'] = p
    if row['groups_dropped'] > UNSTABLE_GROUPS:
      row['verdict'] = 'unstable (not interpreted)'
      continue
    band = row['band_share'] * row['reference_value']
    words = []
    if p < ALPHA:
      words.append('lower' if row['delta'] < 0 else 'higher')
    if -band < row['ci90_low'] and row['ci90_high'] < band:
      words.append(f"equivalent within {100 * row['band_share']:g} %")
    row['verdict'] = ' and '.join(words) or 'not resolved'


def hypothesis_rows(results_dir: pathlib.Path,
                    log: Callable[[str], object] = print,
                    hypotheses: Sequence[Hypothesis] = HYPOTHESES,
                    replicates: int = REPLICATES) -> list[dict[str, Any]]:
  root = results_dir / 'confirmation'
  cells_dir, images_dir = root / 'cells', root / 'images'
  rows = []
  tunings: dict[str, dict[str, confirm.Tuning]] = {}
  for h in hypotheses:
    try:
      if h.regime not in tunings:
        tunings[h.regime] = tuned(cells_dir, h.regime)
      tuning = tunings[h.regime]
      choices: dict[str, Choice] = {f: tuning[f].choice
                                    for f in (h.challenger, h.reference)}
      decoding = {f: 'argmax' if h.metric == 'mean_error_distance'
                  else choices[f].decoding for f in choices}
      groups = {f: group_distances(images_dir, cells_dir, h.regime,
                                   f, decoding[f]) for f in choices}
    except (FileNotFoundError, KeyError) as e:
      log(f'{h.name}: not ready ({e})')
      continue
    kept = [s for s in groups[h.challenger]
            if groups[h.challenger][s] is not None
            and groups[h.reference][s] is not None]
    if kept:
      a_SxN, b_SxN = (np.concatenate([groups[f][s] for s in kept])
                      for f in (h.challenger, h.reference))
      row = estimate(h, a_SxN, b_SxN, replicates=replicates)
    else:  # every group diverged on one side or the other
      row = {'hypothesis': h.name, 'regime': h.regime, 'band_share': h.band,
             'n_seeds': 0, 'p_bootstrap': float('nan')}
    row['groups_dropped'] = confirm.FINAL_GROUPS - len(kept)
    row['decodings'] = f'{decoding[h.challenger]}/{decoding[h.reference]}'
    row['tuning'] = '; '.join(
        f'{f}: {confirm.edge_label(f, hyper, side)}' for f in choices
        for hyper, side in tuning[f].on_edge) or 'complete'
    row['command'] = 'python -m study.confirm_report'
    rows.append(row)
  if len(rows) == len(hypotheses):
    verdicts(rows)
  else:  # Holm counts every primary hypothesis: none is judged alone.
    for row in rows:
      row['p_holm'], row['verdict'] = float('nan'), 'pending (Holm needs all)'
  return rows


def _cell(name: str, value: Any) -> Any:
  """A CSV cell: floats to 6 digits; a bootstrap p no replicate reached,
  as its bound."""
  if name.startswith('p_') and name != 'p_t' and value == 0:
    return f'< {1 / REPLICATES:g}'
  if isinstance(value, float) and not math.isnan(value):
    return f'{value:.6g}'
  return value


def write_csv(rows: list[dict[str, Any]], path: pathlib.Path) -> None:
  columns = list(dict.fromkeys(k for r in rows for k in r))
  with open(path, 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=columns, restval='')
    writer.writeheader()
    writer.writerows({k: _cell(k, v) for k, v in r.items()} for r in rows)


def build_parser() -> argparse.ArgumentParser:
  """The command line's flags (its own argument check)."""
  parser = argparse.ArgumentParser(
      prog='python -m study.confirm_report',
      description=__doc__.split('\n\n')[0],
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument('--results_dir', default='results',
                      help='the folder holding confirmation/ (cells, images)')
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  args = build_parser().parse_args(argv)
  results_dir = pathlib.Path(args.results_dir)
  rows = hypothesis_rows(results_dir)
  if not rows:
    print('no hypothesis has all its finals yet')
    return 0
  out = results_dir / 'confirmation' / 'confirmation.csv'
  write_csv(rows, out)
  for row in rows:
    if 'delta' not in row:
      print(f"{row['hypothesis']} {row['regime']}: {row['verdict']}")
      continue
    print(f"{row['hypothesis']} {row['regime']}: Δ {row['delta']:+.4f} "
          f"[{row['ci95_low']:+.4f}, {row['ci95_high']:+.4f}] "
          f"({100 * row['delta_share']:+.1f} %): {row['verdict']}")
  print(f'written: {out}')
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
