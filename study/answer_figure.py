"""The answer as one picture (``results/answer.png``), drawn from the
committed CSVs of the confirmation and of the confirmation under shift: per
registered hypothesis, Δ as a share of the reference with its two-way 95 %
interval and the registered equivalence band shaded; beside it, each recipe's
MDE against plain cross-entropy's where that was measured. ``python -m
study.shift_report`` draws it, after writing the shift's CSVs.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Sequence
from typing import Any

from study.confirm_report import read_csv

RECIPES = (('label_smoothing', 'label smoothing', 'C0'),
           ('smoothed_sord', 'smoothed SORD', 'C3'))


@dataclasses.dataclass(frozen=True)
class Interval:
  """A difference as shares of its reference: estimate, 95 % bounds and
  the 90 % ones (the equivalence test's)."""
  share: float
  low: float
  high: float
  low90: float
  high90: float

  @classmethod
  def of(cls, row: dict[str, Any]) -> Interval:
    ref = row['reference_value']
    return cls(*(row[k] / ref for k in ('delta', 'ci95_low', 'ci95_high',
                                        'ci90_low', 'ci90_high')))


@dataclasses.dataclass(frozen=True)
class Line:
  """One row of the figure: a hypothesis and, where measured, each recipe
  against cross-entropy."""
  label: str
  delta: Interval
  band: float
  over_ce: dict[str, Interval]


def _over_ce(rows: Sequence[dict[str, Any]], **where: str
             ) -> dict[str, Interval]:
  out = {}
  for family, _, _ in RECIPES:
    found = [r for r in rows if r['challenger'] == family
             and r['reference'] == 'cross_entropy'
             and all(r.get(k) == v for k, v in where.items())]
    if found:
      out[family] = Interval.of(found[0])
  return out


def answer_lines(confirmation: Sequence[dict[str, Any]],
                 secondary: Sequence[dict[str, Any]],
                 shift: Sequence[dict[str, Any]],
                 shift_secondary: Sequence[dict[str, Any]]) -> list[Line]:
  """The figure's rows, top to bottom: H1-H3 (clean confirmation images),
  then S1-S4 (the same images' corrupted versions)."""
  lines = []
  for r in confirmation:
    mde = r['metric'] == 'mean_digit_distance'
    label = f"{r['hypothesis']} {r['regime']}, clean" + (
        '' if mde else '\nSORD - permuted order\n(mean error distance)')
    lines.append(Line(label, Interval.of(r), r['band_share'], _over_ce(
        [s for s in secondary if not s.get('split')], regime=r['regime'])
                      if mde else {}))
  for r in shift:
    lines.append(Line(
        f"{r['hypothesis']} scarce2000,\nunder {r['kind']}", Interval.of(r),
        r['band_share'], _over_ce([s for s in shift_secondary
                                   if s['label'] == '(a)'], kind=r['kind'])))
  return lines


def draw(lines: Sequence[Line], path: pathlib.Path) -> None:
  """Two panels sharing the rows: each hypothesis's Δ with its band, and
  the recipes against cross-entropy."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  fig, (left, right) = plt.subplots(
      1, 2, figsize=(8.5, 0.55 * len(lines) + 1.6), sharey=True,
      gridspec_kw={'width_ratios': [1.15, 1]})
  ys = range(len(lines))[::-1]
  for y, line in zip(ys, lines, strict=True):
    left.fill_betweenx([y - 0.38, y + 0.38], -100 * line.band,
                       100 * line.band, color='0.85', lw=0)
    d = line.delta
    left.errorbar(100 * d.share, y, xerr=[[100 * (d.share - d.low)],
                                          [100 * (d.high - d.share)]],
                  fmt='o', color='k', ms=4, capsize=2, lw=1)
    # The 90 % interval, which the equivalence verdict reads, thicker.
    left.plot([100 * d.low90, 100 * d.high90], [y, y], color='k', lw=3.5,
              solid_capstyle='butt')
    for offset, (family, _, color) in zip((0.14, -0.14), RECIPES,
                                          strict=True):
      if family in line.over_ce:
        c = line.over_ce[family]
        right.errorbar(100 * c.share, y + offset,
                       xerr=[[100 * (c.share - c.low)],
                             [100 * (c.high - c.share)]],
                       fmt='o', color=color, ms=4, capsize=2, lw=1)
  left.axvline(0, color='k', lw=0.6)
  right.axvline(0, color='k', lw=0.6)
  left.set_yticks(list(ys), [line.label for line in lines], fontsize=7.5)
  left.set_xlabel('Δ, % of the reference (over seeds and images: thin 95 %, '
                  'thick 90 %;\ngrey: the registered equivalence band)',
                  fontsize=8)
  right.set_xlabel("MDE against plain cross-entropy's, %\n(secondary; "
                   'each recipe at its registered decoding)', fontsize=8)
  for _, name, color in RECIPES:
    right.plot([], [], 'o', color=color, label=name, ms=4)
  right.legend(fontsize=7.5, loc='upper right', frameon=False)
  for ax in (left, right):
    ax.tick_params(axis='x', labelsize=7.5)
    ax.grid(axis='x', lw=0.3, color='0.7')
  left.set_title('Each hypothesis: challenger minus reference', fontsize=9)
  right.set_title("Each recipe's MDE against cross-entropy's", fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=120, bbox_inches='tight')
  plt.close(fig)


def write(results_dir: pathlib.Path) -> pathlib.Path:
  """results/answer.png from the committed CSVs."""
  confirmation, secondary = (
      read_csv(results_dir / 'confirmation' / name)
      for name in ('confirmation.csv', 'secondary.csv'))
  shift, shift_secondary = (read_csv(results_dir / 'shift' / name)
                            for name in ('shift.csv', 'shift_secondary.csv'))
  path = results_dir / 'answer.png'
  draw(answer_lines(confirmation, secondary, shift, shift_secondary), path)
  return path
