"""The shift advice the README and shift.md hold, made from the committed
CSVs of ``study.shift_report`` by the rules results/protocol.md registered
before the results ("Shift protocol", "What the README may advise"): per
kind, the simplest of cross-entropy, label smoothing and smoothed SORD
within the kind's band of the lowest MDE (each at its registered decoding);
Bayes decoding only where its 95 % interval against argmax lies below zero.
A test checks that the README holds these lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from study.confirm_report import estimate_cells, p_text, share
from study.confirm_rows import UNSTABLE
from study.shift_rows import BANDS, KINDS

# The families the per-kind rule weighs, simplest first.
SIMPLEST_FIRST = ('cross_entropy', 'label_smoothing', 'smoothed_sord')
NAMES = {'cross_entropy': 'cross-entropy', 'label_smoothing': 'label smoothing',
         'smoothed_sord': 'smoothed SORD',
         'label_smoothing_matched': 'label smoothing at matched mass'}


def _difference(pairs: Sequence[dict[str, Any]], kind: str, a: str, b: str
                ) -> tuple[float, float, float]:
  """a's MDE minus b's under the kind with its 90 % interval, from the row
  of the two at their registered decodings, either way round."""
  for r in pairs:
    if r['kind'] != kind or r.get('split'):
      continue
    if {r['challenger'], r['reference']} == {a, b} and (
        r['verdict'] == UNSTABLE):
      raise ValueError(f'{kind}: {a} against {b} is unstable (not '
                       'interpreted).')
    if (r['challenger'], r['reference']) == (a, b):
      return r['delta'], r['ci90_low'], r['ci90_high']
    if (r['challenger'], r['reference']) == (b, a):
      return -r['delta'], -r['ci90_high'], -r['ci90_low']
  raise ValueError(f'{kind}: no row of {a} against {b}; the rule cannot '
                   'judge it.')


def recipe(kind: str, pairs: Sequence[dict[str, Any]],
           families: Sequence[dict[str, Any]]
           ) -> tuple[str | None, dict[str, Any],
                      dict[str, tuple[float, float, float]]]:
  """The kind's recipe (None: no family but the lowest qualifies), the
  lowest family's row and each other family's difference from it.
  ``pairs``: the primaries and secondary (a) rows."""
  levels = {r['family']: r for r in families
            if r['kind'] == kind and r['family'] in SIMPLEST_FIRST
            and r['registered'] in (True, 'True')}
  missing = set(SIMPLEST_FIRST) - set(levels)
  if missing:
    raise ValueError(f'{kind}: no registered MDE of {sorted(missing)}.')
  lowest = min(levels.values(), key=lambda r: r['mde'])
  bound = BANDS[kind] * lowest['mde']
  differences = {f: _difference(pairs, kind, f, lowest['family'])
                 for f in SIMPLEST_FIRST if f != lowest['family']}
  qualified = [f for f in SIMPLEST_FIRST if f == lowest['family']
               or (-bound < differences[f][1] and differences[f][2] < bound)]
  if qualified == [lowest['family']]:
    return None, lowest, differences
  return qualified[0], lowest, differences


def kind_recipes(primary: Sequence[dict[str, Any]],
                 secondary: Sequence[dict[str, Any]],
                 families: Sequence[dict[str, Any]]) -> list[str]:
  """One line per kind: its recipe by the registered rule, the lowest MDE
  and each other family's difference from it (90 % interval)."""
  pairs = [*primary, *(r for r in secondary if r['label'] == '(a)')]
  lines = []
  for kind in KINDS:
    try:
      chosen, lowest, differences = recipe(kind, pairs, families)
    except ValueError as e:
      lines.append(f'{kind}: pending ({e})')
      continue
    m = lowest['mde']
    others = '; '.join(
        f'{NAMES[f]} {d:+.4f} ({share(d, m)}, 90 % interval '
        f'{share(lo, m)} to {share(hi, m)})'
        for f, (d, lo, hi) in differences.items())
    head = (f'**{NAMES[chosen]}**' if chosen else
            '**no recipe** (no other family is within the band of the '
            'lowest)')
    lines.append(
        f"{kind} (band ±{100 * BANDS[kind]:g} %): {head}. Lowest MDE "
        f"{NAMES[lowest['family']]} {m:.4f} [{lowest['mde_ci95_low']:.4f}, "
        f"{lowest['mde_ci95_high']:.4f}]; against it: {others}.")
  return lines


def decoding_advice(secondary: Sequence[dict[str, Any]]) -> list[str]:
  """One line per kind: Bayes decoding minus argmax for each family
  (secondary (c)), and the decoding advised by the registered rule."""
  lines = []
  for kind in KINDS:
    rows = [r for r in secondary if r['label'] == '(c)' and r['kind'] == kind
            and r['verdict'] != UNSTABLE]
    if not rows:
      continue
    bayes = [r['challenger'] for r in rows if r['ci95_high'] < 0]
    parts = '; '.join(
        f"{NAMES[r['challenger']]} {share(r['delta'], r['reference_value'])} "
        f"(95 % {share(r['ci95_low'], r['reference_value'])} to "
        f"{share(r['ci95_high'], r['reference_value'])}, p "
        f"{p_text(r['p_bootstrap'], r['replicates'])})" for r in rows)
    advice = ('Bayes for ' + ', '.join(NAMES[f] for f in bayes)
              + ', argmax for the rest' if bayes else 'argmax for every family')
    lines.append(f'Decoding under {kind}: {advice}. Bayes minus argmax: '
                 f'{parts}.')
  return lines


def answer_table(primary: Sequence[dict[str, Any]]) -> list[str]:
  """The README's table of S1-S4, one line per kind (a test checks that
  the README holds these lines)."""
  lines = ['| | kind (corruptions) | smoothed SORD vs label smoothing | Δ '
           '(share) | 95 % interval over seeds and images | p (Holm) | '
           'detectable | band | verdict |', '|' + '---|' * 9]
  for r in primary:
    lines.append(
        f"| {r['hypothesis']} | {r['kind']} ({r['corruptions']}) | "
        f"{r['challenger_value']:.4f} vs {r['reference_value']:.4f} | "
        f"{estimate_cells(r)} | {100 * r['detectable_share']:.1f} % | "
        f"±{100 * r['band_share']:g} % | {r['verdict']} |")
  return lines


def headline(primary: Sequence[dict[str, Any]]) -> str:
  """The README's sentence on shift: per kind, the primary's share with
  its interval and verdict, and what it compares (recipes)."""
  parts = [f"{share(r['delta'], r['reference_value'])} under {r['kind']} "
           f"(95 % {share(r['ci95_low'], r['reference_value'])} to "
           f"{share(r['ci95_high'], r['reference_value'])}: {r['verdict']})"
           for r in primary]
  seeds = max(r['n_seeds'] for r in primary)
  return ('Under 12 synthetic corruptions of those images (blur is glass '
          f'blur alone; {seeds} fresh seeds), the smoothed SORD recipe\'s MDE '
          "differs from the label smoothing recipe's by " + ', '.join(parts)
          + ', Holm over the four; the recipes also differ in smoothing mass '
          'and epoch, so this credits the recipe, not the distance alone.')


def interaction_lines(secondary: Sequence[dict[str, Any]]) -> list[str]:
  """One line per kind from (g): "under shift but not on clean images"
  only where the pair's Δ under the kind minus its Δ on the same images
  clean has a 95 % interval that excludes zero (the registered rule)."""
  lines = []
  for r in secondary:
    if r['label'] != '(g)' or r['verdict'] == UNSTABLE:
      continue
    numbers = (f"the pair's Δ under {r['kind']} minus its Δ on the same "
               f"images clean: {r['delta']:+.4f}, 95 % interval "
               f"{r['ci95_low']:+.4f} to {r['ci95_high']:+.4f}")
    if r['ci95_low'] > 0 or r['ci95_high'] < 0:
      lines.append(f"{r['kind']}: the recipes differ under shift but not on "
                   f'clean images ({numbers}).')
    else:
      lines.append(f"{r['kind']}: the difference under shift is not shown "
                   f'to differ from the one on clean images ({numbers}).')
  return lines


def clean_sentence(secondary: Sequence[dict[str, Any]]) -> str:
  """(d): the same models on the clean confirmation split, the check that
  the shift models reproduce H1's tie."""
  (r,) = [r for r in secondary if r['label'] == '(d)']
  ref = r['reference_value']
  return ('On the clean confirmation images the same models differ by '
          f"{share(r['delta'], ref)} (95 % {share(r['ci95_low'], ref)} to "
          f"{share(r['ci95_high'], ref)}; secondary).")


def matched_sentence(secondary: Sequence[dict[str, Any]]) -> str:
  """(f): smoothed SORD against label smoothing at its off-label mass per
  kind, the control that separates the distance from the amount of
  smoothing; what S1-S4 alone cannot credit."""
  rows = [r for r in secondary if r['label'] == '(f)'
          and r['verdict'] != UNSTABLE]
  if not rows:
    return ('The registered control at matched mass, secondary (f), is '
            'not in yet.')
  parts = [f"{share(r['delta'], r['reference_value'])} under {r['kind']} "
           f"(95 % {share(r['ci95_low'], r['reference_value'])} to "
           f"{share(r['ci95_high'], r['reference_value'])})" for r in rows]
  return ("Against label smoothing's choice with its ε set to smoothed "
          "SORD's off-label mass (not retuned; secondary (f), uncorrected), "
          "smoothed SORD's MDE differs by " + ', '.join(parts) + '.')


def _kinds_text(kinds: Sequence[str]) -> str:
  return (', '.join(kinds[:-1]) + ' and ' + kinds[-1] if len(kinds) > 1
          else kinds[0])


def front_advice(primary: Sequence[dict[str, Any]],
                 secondary: Sequence[dict[str, Any]],
                 families: Sequence[dict[str, Any]]) -> str:
  """The README's sentence on the recipes against cross-entropy under
  shift (secondary (a)) and on what the registered rule advises."""
  against: dict[str, list[str]] = {'higher': [], 'lower': [], 'unresolved': []}
  shares: dict[str, list[float]] = {'higher': [], 'lower': []}
  for kind in KINDS:
    rows = [r for r in secondary if r['label'] == '(a)' and r['kind'] == kind]
    if rows and all(r['ci95_low'] > 0 for r in rows):
      side = 'higher'
    elif rows and all(r['ci95_high'] < 0 for r in rows):
      side = 'lower'
    else:
      side = 'unresolved'
    against[side].append(kind)
    if side in shares:
      shares[side] += [100 * r['delta'] / r['reference_value'] for r in rows]
  parts = [f'{side} under {_kinds_text(kinds)} ({min(shares[side]):+.1f} % '
           f'to {max(shares[side]):+.1f} %)'
           for side, kinds in against.items() if kinds and side in shares]
  if against['unresolved']:
    parts.append(f"not resolved under {_kinds_text(against['unresolved'])}")
  pairs = [*primary, *(r for r in secondary if r['label'] == '(a)')]
  chosen = {kind: recipe(kind, pairs, families)[0] for kind in KINDS}
  with_recipe = {k: NAMES[f] for k, f in chosen.items() if f is not None}
  rule = ('no kind of shift has a recipe by the registered rule (only the '
          'lowest MDE is within its band)' if not with_recipe else
          'by the registered rule the recipe is ' + '; '.join(
              f'{f} under {k}' for k, f in with_recipe.items()))
  return ("Against plain cross-entropy's MDE (secondary), both recipes' is "
          + ' and '.join(parts) + f'; {rule}; {_decoding_clause(secondary)}.')


def _decoding_clause(secondary: Sequence[dict[str, Any]]) -> str:
  """Which decoding the registered rule advises for each family under
  shift (secondary (c)), the kinds named where it varies."""
  by_decoding: dict[str, list[str]] = {}
  for family in SIMPLEST_FIRST:
    rows = [r for r in secondary if r['label'] == '(c)'
            and r['challenger'] == family and r['verdict'] != UNSTABLE]
    bayes = [r['kind'] for r in rows if r['ci95_high'] < 0]
    text = ('Bayes' if len(bayes) == len(rows) else 'argmax' if not bayes
            else f'Bayes under {_kinds_text(bayes)}, else argmax')
    by_decoding.setdefault(text, []).append(NAMES[family])
  return 'decode ' + ', '.join(
      f'{_kinds_text(families)} with {text}'
      for text, families in by_decoding.items()) + (
          ' (Bayes minus argmax, secondary)')
