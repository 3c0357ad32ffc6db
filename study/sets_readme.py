"""The prediction sets' answer as the README states it, made from the
committed CSVs of ``study.sets_report`` by the rules results/protocol.md
registered before the results ("Prediction-sets protocol", "What the README
may say"): each primary with its interval, Holm p and verdict and its
per-level rows (secondary (b)) beside it; what the rows allow to be said of
each measure; each primary family's coverage and distance to the set per
level (secondary (a)), beside its guarantee. A test checks that the README
holds these lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from study.sets_rows import LEVELS, UNSTABLE

NAMES = {'label_smoothing': 'label smoothing',
         'cross_entropy': 'cross-entropy', 'smoothed_sord': 'smoothed SORD'}
MEASURE_NAMES = {'lac': 'LAC', 'risk': 'risk control'}


def _p(value: Any) -> str:
  return value if isinstance(value, str) else f'{value:.2g}'


def primary_line(row: dict[str, Any], secondary: Sequence[dict[str, Any]]
                 ) -> str:
  """One primary: its estimate, interval, Holm p, verdict and levels."""
  per_level = {r['measure']: r['value'] for r in secondary
               if r['label'] == '(b)' and r['what'] ==
               f"{row['challenger']} - {row['control']}"}
  levels = ', '.join(f"{name.split('@')[1]}: {per_level[name]:+.3f}"
                     for name in LEVELS[row['measure']])
  return (f"- {row['hypothesis']}, {MEASURE_NAMES[row['measure']]}, "
          f"smoothed SORD - {NAMES[row['control']]}: "
          f"{row['delta']:+.3f} digits per set "
          f"({100 * row['delta_share_of_excess']:+.0f} % of "
          f"{NAMES[row['control']]}'s {row['control_excess']:.3f} beyond one "
          f"digit), 95 % [{row['ci95_low']:+.3f}, {row['ci95_high']:+.3f}], "
          f"Holm p {_p(row['p_holm'])}: **{row['verdict']}**. Per level "
          f"(secondary): {levels}.")


def measure_claim(measure: str, primary: Sequence[dict[str, Any]]) -> str:
  """What the registered rule lets the README say of one measure."""
  rows = [r for r in primary if r['measure'] == measure]
  verdicts = {r['control']: r['verdict'] for r in rows}
  name = MEASURE_NAMES[measure]
  if any(v == UNSTABLE for v in verdicts.values()):
    return f'Under {name} the answer is unstable (not interpreted).'
  if all(v.startswith('smaller') for v in verdicts.values()):
    return (f'Under {name}, smoothed SORD gives smaller sets than both '
            'distance-blind recipes.')
  if all(v.startswith('equivalent') for v in verdicts.values()):
    return (f'Under {name}, smoothed SORD and both distance-blind recipes '
            'give sets of equivalent size.')
  said = '; '.join(f'against {NAMES[c]}: {v}' for c, v in verdicts.items())
  return (f'Under {name} no single claim holds for both controls ({said}).')


def guarantee_line(secondary: Sequence[dict[str, Any]]) -> str:
  """Each primary family's coverage per LAC level and mean distance to the
  set per risk level (secondary (a)), beside what each guarantees."""
  def value(family: str, measure: str, quantity: str) -> float:
    row, = (r for r in secondary if r['label'] == '(a)'
            and r['what'] == family and r['measure'] == measure
            and r['quantity'] == quantity)
    return float(row['value'])

  risk_levels = ', '.join(m.split('@')[1] for m in LEVELS['risk'])
  parts = []
  for family, name in NAMES.items():
    lac = ', '.join(f"{100 * value(family, m, 'covered'):.2f} %"
                    for m in LEVELS['lac'])
    risk = ', '.join(f"{value(family, m, 'distance'):.4f}"
                     for m in LEVELS['risk'])
    parts.append(f'{name} {lac}; {risk} digits')
  return ('Secondary (a), on the confirmation images: coverage at LAC '
          f"levels {', '.join(m.split('@')[1] for m in LEVELS['lac'])} "
          '(guaranteed at least 98, 99 and 99.5 %) and mean distance to the '
          f"set at risk levels {risk_levels} "
          '(guaranteed at most 0.018 and 0.009 digits): ' + '; '.join(parts)
          + '.')


def readme_lines(primary: Sequence[dict[str, Any]],
                 secondary: Sequence[dict[str, Any]]) -> list[str]:
  """The README's lines, in order."""
  return ([primary_line(r, secondary) for r in primary]
          + [measure_claim(m, primary) for m in LEVELS]
          + [guarantee_line(secondary)])
