"""The confirmation's answer (results/protocol.md, "Confirmation protocol"),
written out: ``results/confirmation/confirmation.csv`` (primary),
``secondary.csv`` (other pairs; the primaries on the test split),
``families.csv`` (each family's choice and scores) and ``confirmation.md``
(their tables), from ``study.confirm_rows``' estimates; and the lines the
README must hold (its answer table, the advice over cross-entropy), which a
test checks against the CSVs.

    python -m study.confirm_report
"""

from __future__ import annotations

import argparse
import csv
import math
import pathlib
from collections.abc import Sequence
from typing import Any

from study import confirm
from study.confirm_rows import (
  REPLICATES,
  SECONDARY_REPLICATES,
  family_rows,
  hypothesis_rows,
  secondary_rows,
  test_split_rows,
)


def _cell(name: str, value: Any, replicates: int) -> Any:
  """A CSV cell: floats to 6 digits; a bootstrap p no replicate reached,
  as its bound."""
  if name in ('p_bootstrap', 'p_holm') and value == 0:
    return _p(0.0, replicates)
  if isinstance(value, float) and not math.isnan(value):
    return f'{value:.6g}'
  return value


def write_csv(rows: list[dict[str, Any]], path: pathlib.Path) -> None:
  columns = list(dict.fromkeys(k for r in rows for k in r))
  with open(path, 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=columns, restval='')
    writer.writeheader()
    writer.writerows({k: _cell(k, v, r.get('replicates', REPLICATES))
                      for k, v in r.items()} for r in rows)


def build_parser() -> argparse.ArgumentParser:
  """The command line's flags (its own argument check)."""
  parser = argparse.ArgumentParser(
      prog='python -m study.confirm_report',
      description=__doc__.split('\n\n')[0],
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument('--results_dir', default='results',
                      help='the folder holding confirmation/ (cells, images)')
  return parser


def read_csv(path: pathlib.Path) -> list[dict[str, Any]]:
  """A CSV this module wrote, numbers as numbers (a bootstrap p that no
  replicate reached stays its bound, a string)."""
  def number(text: str) -> Any:
    for kind in (int, float):
      try:
        return kind(text)
      except ValueError:
        continue
    return text

  with open(path, newline='') as f:
    return [{k: number(v) for k, v in row.items()}
            for row in csv.DictReader(f)]


def readme_answer(primary: Sequence[dict[str, Any]]) -> list[str]:
  """The README's answer table, one line per primary hypothesis with its
  estimate (a test checks that the README holds these lines)."""
  lines = ['| | regime | challenger vs reference | Δ (share) | 95 % '
           'interval over seeds and images | p (Holm) | detectable | '
           'verdict |', '|' + '---|' * 8]
  for r in primary:
    if 'delta' not in r or r['delta'] == '':
      continue
    metric = ('MDE' if r['metric'] == 'mean_digit_distance'
              else 'mean error distance')
    lines.append(
        f"| {r['hypothesis']} | {r['regime']} | {metric}: {r['challenger']} "
        f"{r['challenger_value']:.4f} vs {r['reference']} "
        f"{r['reference_value']:.4f} | {r['delta']:+.4f} "
        f"({_share(r['delta'], r['reference_value'])}) | "
        f"[{r['ci95_low']:+.4f}, {r['ci95_high']:+.4f}] "
        f"({_share(r['ci95_low'], r['reference_value'])} to "
        f"{_share(r['ci95_high'], r['reference_value'])}) | "
        f"{_p(r['p_bootstrap'])} ({_p(r['p_holm'])}) | "
        f"{100 * r['detectable_share']:.1f} % | {r['verdict']} |")
  return lines


def _confirmation_row(secondary: Sequence[dict[str, Any]], regime: str,
                      challenger: str, reference: str) -> dict[str, Any]:
  """The one secondary.csv row of a pair on the confirmation split (not the
  test split's)."""
  (row,) = [r for r in secondary if r['regime'] == regime
            and not r.get('split') and r['challenger'] == challenger
            and r['reference'] == reference]
  return row


def over_cross_entropy(secondary: Sequence[dict[str, Any]], regime: str
                       ) -> str:
  """The README's advice on what the recipes gain over plain cross-entropy
  in a regime, from secondary.csv (a test checks that the README holds
  it)."""
  ls, ss = (_confirmation_row(secondary, regime, family, 'cross_entropy')
            for family in ('label_smoothing', 'smoothed_sord'))
  return (f"Over plain cross-entropy (MDE {ls['reference_value']:.4f}, tuned "
          'on the same terms; secondary): label smoothing '
          f"{ls['delta']:+.4f} ({_share(ls['delta'], ls['reference_value'])},"
          f" 95 % interval {ls['ci95_low']:+.4f} to {ls['ci95_high']:+.4f}; "
          f"fewer mistakes {ls['fewer_part']:+.4f}, closer "
          f"{ls['closer_part']:+.4f}), smoothed SORD {ss['delta']:+.4f} "
          f"({_share(ss['delta'], ss['reference_value'])}, "
          f"{ss['ci95_low']:+.4f} to {ss['ci95_high']:+.4f}).")


def at_matched_mass(secondary: Sequence[dict[str, Any]],
                    regimes: Sequence[str] = confirm.REGIMES) -> str:
  """The README's sentence on the primary pair at matched off-label mass
  (a registered secondary) in ``regimes``, from secondary.csv."""
  parts = []
  for regime in regimes:
    r = _confirmation_row(secondary, regime, 'smoothed_sord',
                          'label_smoothing_matched')
    ref = r['reference_value']
    parts.append(f"{r['delta']:+.4f} in {regime} (95 % interval "
                 f"{r['ci95_low']:+.4f} to {r['ci95_high']:+.4f}, "
                 f"{_share(r['ci95_low'], ref)} to "
                 f"{_share(r['ci95_high'], ref)})")
  return ("At the same mean off-label mass, smoothed SORD's MDE minus label "
          f"smoothing's is {' and '.join(parts)}.")


def secondary_pair(secondary: Sequence[dict[str, Any]], regime: str) -> str:
  """The README's sentence on the primary pair in a secondary regime, from
  secondary.csv."""
  r = _confirmation_row(secondary, regime, 'smoothed_sord', 'label_smoothing')
  ref = r['reference_value']
  return (f"In {regime}, smoothed SORD's MDE minus label smoothing's is "
          f"{r['delta']:+.4f} ({r['challenger_value']:.4f} against "
          f"{ref:.4f}; 95 % interval {r['ci95_low']:+.4f} to "
          f"{r['ci95_high']:+.4f}, {_share(r['ci95_low'], ref)} to "
          f"{_share(r['ci95_high'], ref)}; p "
          f"{_p(r['p_bootstrap'], r['replicates'])}; "
          f"detectable {100 * r['detectable_share']:.1f} % at alpha 0.05).")


def _share(value: float, reference: float) -> str:
  return f'{100 * value / reference:+.1f} %'


def _p(value: float | str, replicates: int = REPLICATES) -> str:
  """A p-value; 0 (no bootstrap replicate reached) as its bound; a bound or
  a pending one (NaN, '') as it is."""
  if isinstance(value, str):
    return value or 'pending'
  if math.isnan(value):
    return 'pending'
  return f'< {1 / replicates:g}' if value == 0 else f'{value:.3g}'


def markdown(primary: Sequence[dict[str, Any]],
             secondary: Sequence[dict[str, Any]],
             test_rows: Sequence[dict[str, Any]],
             families: Sequence[dict[str, Any]]) -> str:
  """confirmation.md: the tables of the four CSVs, each with its protocol,
  seeds, intervals and command."""
  lines = [
      '# The confirmation (issue 29)', '',
      'Protocol: [results/protocol.md](../protocol.md#confirmation-protocol-'
      'issue-29) (registered before any cell; its change log). Finals on '
      'seeds 1000-1079 in eight programs of ten, scored once on 30 000 '
      'training images nobody had scored (`--confirmation_size 30000`); '
      'intervals over seeds and images (two-way bootstrap, 20 000 '
      'replicates, seed 0, 95 %) unless labelled. Written by `python -m '
      'study.confirm_report` from the committed cells and per-image files '
      '(the cells: `python -m study.confirm --data_dir ../shared/mnist`). '
      'scarce500 (500 training images, budget 24 epochs) is a secondary '
      'regime registered later (the change log, 2026-12-03), after the '
      'primaries had scored these images; its choices read validation '
      'only.',
      '', '## Primary hypotheses (Holm over the three)', '',
      '| | regime | challenger - reference | metric | Δ (share) | 95 % '
      'interval, seeds and images | on these images, seeds only | p '
      'bootstrap / Holm | p t / sign flip | detectable | verdict | seeds x '
      'images | tuning |', '|' + '---|' * 13]
  for r in primary:
    if 'delta' not in r:
      lines.append(f"| {r['hypothesis']} | {r['regime']} | | | | | | | | | "
                   f"{r['verdict']} | 0 | |")
      continue
    ref = r['reference_value']
    lines.append(
        f"| {r['hypothesis']} | {r['regime']} | {r['challenger']} - "
        f"{r['reference']} ({r['decodings']}) | {r['metric']} | "
        f"{r['delta']:+.4f} ({_share(r['delta'], ref)}) | "
        f"[{r['ci95_low']:+.4f}, {r['ci95_high']:+.4f}] | "
        f"[{r['seeds_ci95_low']:+.4f}, {r['seeds_ci95_high']:+.4f}] | "
        f"{_p(r['p_bootstrap'])} / {_p(r['p_holm'])} | "
        f"{r['p_t']:.3g} / {r['p_sign_flip']:.3g} | "
        f"{100 * r['detectable_share']:.1f} % | {r['verdict']} | "
        f"{r['n_seeds']} x {r['n_images']} | {r['tuning']} |")
  lines += ['', 'Δ < 0: the challenger\'s metric is lower (better). Share: of '
            'the reference\'s value. Detectable: the effect the bootstrap '
            'test detects with 80 % power at alpha = 0.05/3.', '',
            '## Secondary: other pairs on the confirmation split '
            f'(uncorrected; {SECONDARY_REPLICATES} replicates)', '',
            '| regime | challenger - reference (decodings) | Δ MDE (share) | '
            '95 % interval, seeds and images | p bootstrap | detectable (alpha '
            '0.05) | seeds x images |', '|' + '---|' * 7]
  for r in secondary:
    if 'delta' not in r:
      continue
    lines.append(
        f"| {r['regime']} | {r['challenger']} - {r['reference']} "
        f"({r['decodings']}) | {r['delta']:+.4f} "
        f"({_share(r['delta'], r['reference_value'])}) | "
        f"[{r['ci95_low']:+.4f}, {r['ci95_high']:+.4f}] | "
        f"{_p(r['p_bootstrap'], r['replicates'])} | "
        f"{100 * r['detectable_share']:.1f} % | "
        f"{r['n_seeds']} x {r['n_images']} |")
  lines += ['', '## Secondary: the primary hypotheses on the test split '
            '(seen by the study; seeds only, on those 10 000 images)', '',
            '| | regime | Δ (share) | 95 % interval over seeds | p t / sign '
            'flip | seeds |', '|' + '---|' * 6]
  for r in test_rows:
    lines.append(
        f"| {r['hypothesis']} | {r['regime']} | {r['delta']:+.4f} "
        f"({_share(r['delta'], r['reference_value'])}) | "
        f"[{r['seeds_ci95_low']:+.4f}, {r['seeds_ci95_high']:+.4f}] | "
        f"{r['p_t']:.3g} / {r['p_sign_flip']:.3g} | {r['n_seeds']} |")
  lines += ['', '## Each family: its choice (on validation) and its scores',
            '', "Each family's `train.py` command (seeds 1000-1009; the other "
            'groups differ only in `--seed`) is in families.csv.', '',
            '| regime | family | learning rate | ε | temperature | '
            'distance | epoch / budget | decoding | tuning | MDE [95 %, '
            f'seeds and images, {SECONDARY_REPLICATES} replicates] | error '
            'rate | mean error distance (its decoding) | test MDE ± 95 % '
            '(seeds) | seeds |',
            '|' + '---|' * 14]
  for r in families:
    if 'mde' not in r:
      continue
    lines.append(
        f"| {r['regime']} | {r['family']} | {r['learning_rate']:g} | "
        f"{_maybe(r['epsilon'])} | {_maybe(r['temperature'])} | "
        f"{r['distance']} | {r['epoch']} / {r['budget']} | "
        f"{r['decoding']} | {r['tuning']} | {r['mde']:.4f} "
        f"[{r['mde_ci95_low']:.4f}, {r['mde_ci95_high']:.4f}] | "
        f"{100 * r['error_rate']:.2f} % | {r['mean_error_distance']:.2f} | "
        f"{r['test_mde']:.4f} ± {r['test_mde_ci95_half']:.4f} | "
        f"{r['n_seeds']} |")
  return '\n'.join(lines) + '\n'


def _maybe(value: float | None) -> str:
  return '' if value is None else f'{value:g}'


def main(argv: Sequence[str] | None = None) -> int:
  args = build_parser().parse_args(argv)
  results_dir = pathlib.Path(args.results_dir)
  root = results_dir / 'confirmation'
  rows = hypothesis_rows(results_dir)
  if not rows:
    print('no hypothesis has all its finals yet')
    return 0
  secondary = secondary_rows(results_dir)
  test_rows = test_split_rows(results_dir, rows)
  families = family_rows(results_dir)
  write_csv(rows, root / 'confirmation.csv')
  write_csv(secondary + test_rows, root / 'secondary.csv')
  write_csv(families, root / 'families.csv')
  (root / 'confirmation.md').write_text(
      markdown(rows, secondary, test_rows, families))
  for row in rows:
    if 'delta' not in row:
      print(f"{row['hypothesis']} {row['regime']}: {row['verdict']}")
      continue
    print(f"{row['hypothesis']} {row['regime']}: Δ {row['delta']:+.4f} "
          f"[{row['ci95_low']:+.4f}, {row['ci95_high']:+.4f}] "
          f"({100 * row['delta_share']:+.1f} %): {row['verdict']}")
  print(f'written: {root}/confirmation.csv, secondary.csv, families.csv, '
        'confirmation.md')
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
