"""The prediction sets' answer (results/protocol.md, "Prediction-sets
protocol"), written out from ``study.sets_rows``: ``results/sets/sets.csv``
(the primaries P1-P4), ``sets_secondary.csv`` (the registered secondaries,
labelled (a)-(f)) and ``sets.md`` (their tables).

    python -m study sets_report
"""

from __future__ import annotations

import argparse
import pathlib
from collections.abc import Sequence
from typing import Any

from study import commands, prediction_sets
from study.confirm_report import write_csv
from study.sets_rows import (
  LEVELS,
  REPLICATES,
  SECONDARY_REPLICATES,
  p_bound,
  primary_rows,
  secondary_rows,
)

COMMAND = 'python -m study sets_report'
CSVS = ('sets.csv', 'sets_secondary.csv')


def build_parser() -> argparse.ArgumentParser:
  """The command line's flags (its own argument check)."""
  return commands.report_parser(
      COMMAND, __doc__, 'the folder holding sets/ (cells, images)')


def _signed(value: float) -> str:
  return f'{value:+.4f}'


def p_text(value: float | str, replicates: int | None = None) -> str:
  """A p-value; a bootstrap p of 0 (no replicate crossed zero) as its bound
  ``2 / replicates``; a Holm bound's text as it is."""
  if isinstance(value, str):
    return value
  if value == 0 and replicates:
    return f'< {p_bound(replicates):g}'
  return f'{value:.3g}'


def _with_bounds(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
  """Rows whose bootstrap p of 0 is written as its bound."""
  return [{**r, 'p_bootstrap': p_text(r['p_bootstrap'], r['replicates'])}
          if r.get('p_bootstrap') == 0 else dict(r) for r in rows]


def _range(low: float, high: float) -> str:
  return f'[{low:+.4f}, {high:+.4f}]'


def _primary_table(rows: Sequence[dict[str, Any]]) -> list[str]:
  lines = ['| | measure | smoothed SORD | control | Δ digits per set (share '
           'of the excess) | 95 %, thresholds recalibrated | 95 %, '
           'calibration fixed | p (Holm) | on these images: seeds-only 95 %, '
           't over the group means | detectable | band | mean offset '
           '(centred), clipped | verdict |',
           '|' + '---|' * 13]
  for r in rows:
    if 'delta' not in r:
      lines.append(f"| {r['hypothesis']} | {r['measure']} | | "
                   f"{r['control']} | | | | | | | | | {r['verdict']} |")
      continue
    fixed = _range(r['fixed_calibration_ci95_low'],
                   r['fixed_calibration_ci95_high'])
    lines.append(
        f"| {r['hypothesis']} | {r['measure']} ({r['levels']}) | "
        f"{r['challenger_size']:.4f} | {r['control']} "
        f"{r['control_size']:.4f} | {_signed(r['delta'])} "
        f"({100 * r['delta_share_of_excess']:+.1f} %) | "
        f"{_range(r['ci95_low'], r['ci95_high'])} | "
        f"{fixed} | {p_text(r['p_bootstrap'], r['replicates'])} "
        f"({p_text(r['p_holm'], r['replicates'])}) | "
        f"{_range(r['seeds_ci95_low'], r['seeds_ci95_high'])}, "
        f"{_range(r['groups_ci95_low'], r['groups_ci95_high'])} | "
        f"{100 * r['detectable_share_of_excess']:.1f} % | "
        f"{100 * r['band_share_of_excess']:g} % | "
        f"{_signed(r['mean_offset'])}, {100 * r['clipped_share']:.2f} % | "
        f"{r['verdict']} |")
  return lines


def _secondary_table(rows: Sequence[dict[str, Any]]) -> list[str]:
  lines = ['| | what | measure | quantity | split | value | 95 % (thresholds '
           'recalibrated) | p (uncorrected) | seeds-only 95 % |',
           '|' + '---|' * 9]
  for r in rows:
    recalibrated = (_range(r['ci95_low'], r['ci95_high'])
                    if 'ci95_low' in r else 'seeds only')
    p = (p_text(r['p_bootstrap'], r['replicates']) if 'p_bootstrap' in r
         else p_text(r['p_t']) + ' (t)' if 'p_t' in r else '')
    lines.append(
        f"| {r['label']} | {r['what']} | {r['measure']} | {r['quantity']} | "
        f"{r.get('split', 'evaluation')} | {r['value']:.4f} | "
        f"{recalibrated} | {p} | "
        f"{_range(r['seeds_ci95_low'], r['seeds_ci95_high'])} |")
  return lines


def markdown(primary: Sequence[dict[str, Any]],
             secondary: Sequence[dict[str, Any]]) -> str:
  first = prediction_sets.SETS_SEED
  seeds = f'{first}-{first + 10 * prediction_sets.SETS_GROUPS - 1}'
  lines = [
      '# Prediction sets: does a distance-aware loss give smaller sets?',
      '',
      'Protocol: `results/protocol.md`, "Prediction-sets protocol" '
      '(registered before its cells). Scarce2000\'s confirmed recipes on '
      f'seeds {seeds}; sets cross-fitted over the two halves of the '
      '30 000-image confirmation split (each image evaluated once per seed, '
      'by the sets calibrated on the other half). Measures: the mean set '
      'size over the LAC levels '
      f"{', '.join(LEVELS['lac'])} and over the risk-control levels "
      f"{', '.join(LEVELS['risk'])}. Intervals: bootstrap over seeds and "
      'images with every threshold recalibrated on the resampled images '
      '(20 000 replicates for the primaries, 2 000 for the secondaries); '
      'Holm over P1-P4 only. Command: `python -m study sets_report`.', '']
  if primary:
    lines += ['## Primaries', '', *_primary_table(primary), '']
  else:
    lines += ['## Primaries', '', 'Pending: not every primary group is in.',
              '']
  if secondary:
    lines += ['## Secondaries (uncorrected)', '',
              '(a) each family\'s coverage, size and distance per level; (b) '
              'each primary pair per level; (c) label smoothing against '
              'cross-entropy; (d) SORD against label smoothing; (e) the '
              'secondary measures and the hull-free LAC sizes, over seeds '
              'only; (f) the test split (other writers, fold 0\'s thresholds, '
              'no guarantee), over seeds only.', '',
              *_secondary_table(secondary), '']
  return '\n'.join(lines)


def write_report(results_dir: pathlib.Path, *,
                 replicates: int = REPLICATES,
                 secondary_replicates: int = SECONDARY_REPLICATES
                 ) -> list[str]:
  """Every file of the report; the names written."""
  root = results_dir / 'sets'
  primary = primary_rows(root, replicates=replicates)
  for row in primary:
    row['command'] = COMMAND
  secondary = secondary_rows(root, replicates=secondary_replicates)
  written = []
  for name, rows in zip(CSVS, (primary, secondary), strict=True):
    if rows:
      write_csv(_with_bounds(rows), root / name)
      written.append(name)
  (root / 'sets.md').write_text(markdown(primary, secondary) + '\n')
  return [*written, 'sets.md']


def main(argv: Sequence[str] | None = None) -> int:
  return commands.run_report(build_parser(), argv, lambda results_dir: [
      f'wrote {name}' for name in write_report(results_dir)])


if __name__ == '__main__':
  raise SystemExit(main())
