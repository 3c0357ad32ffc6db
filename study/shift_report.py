"""The confirmation under shift's answer (results/protocol.md, "Shift
protocol"), written out from ``study.shift_rows``' estimates:
``results/shift/shift.csv`` (S1-S4), once their finals are in.

    python -m study.shift_report
"""

from __future__ import annotations

import argparse
import pathlib
from collections.abc import Sequence

from study.confirm_report import write_csv
from study.shift_rows import primary_rows


def build_parser() -> argparse.ArgumentParser:
  """The command line's flags (its own argument check)."""
  parser = argparse.ArgumentParser(
      prog='python -m study.shift_report',
      description=__doc__.split('\n\n')[0],
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument('--results_dir', default='results',
                      help='the folder holding shift/ (cells, images)')
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  args = build_parser().parse_args(argv)
  results_dir = pathlib.Path(args.results_dir)
  rows = primary_rows(results_dir)
  if not rows:
    print('no kind has both families\' finals yet')
    return 0
  write_csv(rows, results_dir / 'shift' / 'shift.csv')
  for row in rows:
    print(f"{row['hypothesis']} {row['kind']}: Δ {row['delta']:+.4f} "
          f"[{row['ci95_low']:+.4f}, {row['ci95_high']:+.4f}] "
          f"({100 * row['delta_share']:+.1f} %): {row['verdict']}")
  print(f'written: {results_dir}/shift/shift.csv')
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
