"""The lines the README must hold, made from the committed CSVs of
``study.confirm_report`` (a test checks that the README holds each): its
answer table, the advice over cross-entropy, the pair at matched mass, the
secondary regime's lead, H3 read against label smoothing, the tuning
sensitivity, and each regime's recipe by the rule protocol.md registers
(its change log, 2026-12-07).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from study import confirm
from study.confirm_report import BANDS, estimate_cells, p_text, share
from study.confirm_rows import uniform_error_distance


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
        f"{r['reference_value']:.4f} | {estimate_cells(r)} | "
        f"{100 * r['detectable_share']:.1f} % | {r['verdict']} |")
  return lines


def _confirmation_row(secondary: Sequence[dict[str, Any]], regime: str,
                      challenger: str, reference: str,
                      metric: str = 'mean_digit_distance') -> dict[str, Any]:
  """The one secondary.csv row of a pair and metric on the confirmation
  split (not the test split's)."""
  (row,) = [r for r in secondary if r['regime'] == regime
            and not r.get('split') and r['challenger'] == challenger
            and r['reference'] == reference and r['metric'] == metric]
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
          f"{ls['delta']:+.4f} ({share(ls['delta'], ls['reference_value'])},"
          f" 95 % interval {ls['ci95_low']:+.4f} to {ls['ci95_high']:+.4f}; "
          f"fewer mistakes {ls['fewer_part']:+.4f}, closer "
          f"{ls['closer_part']:+.4f}), smoothed SORD {ss['delta']:+.4f} "
          f"({share(ss['delta'], ss['reference_value'])}, "
          f"{ss['ci95_low']:+.4f} to {ss['ci95_high']:+.4f}).")


def _interval(r: dict[str, Any]) -> str:
  """A row's 95 % interval, as values and as shares of its reference."""
  ref = r['reference_value']
  return (f"95 % interval {r['ci95_low']:+.4f} to {r['ci95_high']:+.4f}, "
          f"{share(r['ci95_low'], ref)} to {share(r['ci95_high'], ref)}")


def _interval_and_p(r: dict[str, Any]) -> str:
  """A secondary row's 95 % interval and bootstrap p."""
  return f"{_interval(r)}; p {p_text(r['p_bootstrap'], r['replicates'])}"


def at_matched_mass(secondary: Sequence[dict[str, Any]],
                    regimes: Sequence[str] = confirm.REGIMES) -> str:
  """The README's sentence on the primary pair at matched off-label mass
  (a registered secondary) in ``regimes``, from secondary.csv."""
  parts = []
  for regime in regimes:
    r = _confirmation_row(secondary, regime, 'smoothed_sord',
                          'label_smoothing_matched')
    parts.append(f"{r['delta']:+.4f} in {regime} ({_interval(r)})")
  return ("At the same mean off-label mass, smoothed SORD's MDE minus label "
          f"smoothing's is {' and '.join(parts)}.")


def secondary_pair(secondary: Sequence[dict[str, Any]], regime: str) -> str:
  """The README's sentence on the primary pair in a secondary regime, from
  secondary.csv."""
  r = _confirmation_row(secondary, regime, 'smoothed_sord', 'label_smoothing')
  ref = r['reference_value']
  return (f"In {regime}, smoothed SORD's MDE minus label smoothing's is "
          f"{r['delta']:+.4f} ({r['challenger_value']:.4f} against "
          f"{ref:.4f}; {_interval_and_p(r)}; "
          f"detectable {100 * r['detectable_share']:.1f} % at alpha 0.05).")


def h3_against_label_smoothing(primary: Sequence[dict[str, Any]],
                               secondary: Sequence[dict[str, Any]]) -> str:
  """H3 read against the distance-blind control (post hoc): the mean error
  distance (argmax, as H3) of SORD and smoothed SORD minus label
  smoothing's, and H3's permuted control against chance."""
  (h3,) = [r for r in primary if r['hypothesis'] == 'H3']
  sord, smoothed = (_confirmation_row(secondary, 'scarce2000', family,
                                      'label_smoothing',
                                      'mean_error_distance')
                    for family in ('sord_linear', 'smoothed_sord'))
  return (
      'Against label smoothing (post hoc, chosen after the results were '
      "known; argmax decoding), SORD's mistakes are "
      f"{-sord['delta']:.2f} digits closer ({sord['challenger_value']:.2f} "
      f"against {sord['reference_value']:.2f}; 95 % interval "
      f"{-sord['ci95_high']:.2f} to {-sord['ci95_low']:.2f}) and smoothed "
      f"SORD's {-smoothed['delta']:.2f} closer "
      f"({smoothed['challenger_value']:.2f}; {-smoothed['ci95_high']:.2f} to "
      f"{-smoothed['ci95_low']:.2f}). H3's control is not neutral: SORD over "
      f"the permuted order makes mistakes {h3['reference_value']:.2f} digits "
      'away, farther than a uniformly random wrong digit '
      f'({uniform_error_distance():.2f}).')


# The recipe rule (protocol.md's change log, 2026-12-07): simplest first.
SIMPLEST_FIRST = ('cross_entropy', 'label_smoothing', 'sord_linear',
                  'smoothed_sord')


def _pair(rows: Sequence[dict[str, Any]], regime: str, a: str, b: str
          ) -> dict[str, Any] | None:
  """The MDE row of two families on the confirmation split, either way."""
  found = [r for r in rows if r['regime'] == regime and not r.get('split')
           and r['metric'] == 'mean_digit_distance'
           and {r['challenger'], r['reference']} == {a, b}]
  return found[0] if found else None


def recipe(regime: str, pairs: Sequence[dict[str, Any]],
           families: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
  """The regime's recipe: the simplest tuned family whose difference from
  the family of lowest confirmation MDE has its 90 % interval inside ±
  the registered band times that MDE (``pairs``: confirmation.csv's and
  secondary.csv's rows); None where no band was registered."""
  if regime not in BANDS:
    return None
  tuned = {r['family']: r for r in families
           if r['regime'] == regime and r['family'] in SIMPLEST_FIRST}
  best = min(tuned.values(), key=lambda r: r['mde'])
  bound = BANDS[regime] * best['mde']

  def within_band(family: str) -> bool:
    if family == best['family']:
      return True
    row = _pair(pairs, regime, family, best['family'])
    if row is None:
      raise ValueError(f'{regime}: no confirmation row of {family} against '
                       f"{best['family']}; the rule cannot judge it.")
    return bool(-bound < row['ci90_low'] and row['ci90_high'] < bound)

  return next(tuned[f] for f in SIMPLEST_FIRST
              if f in tuned and within_band(f))


def recipe_sentence(regime: str, pairs: Sequence[dict[str, Any]],
                    families: Sequence[dict[str, Any]]) -> str:
  """The README's statement of a regime's recipe, by the rule."""
  chosen = recipe(regime, pairs, families)
  if chosen is None:
    return (f'{regime} registered no equivalence band, so it gets no '
            'recipe: its estimates are a lead.')
  return (f"The recipe in {regime} is {chosen['family']} (MDE "
          f"{chosen['mde']:.4f}): the simplest tuned family within "
          f'±{100 * BANDS[regime]:g} % of the lowest MDE on the confirmation '
          '(90 % interval over seeds and images; a rule set post hoc).')


def tied_control(secondary: Sequence[dict[str, Any]],
                 families: Sequence[dict[str, Any]]) -> str:
  """scarce500's lead against its other tied control (registered
  secondary)."""
  (tied,) = [r for r in families if (r['regime'], r['family']) == (
      'scarce500', 'label_smoothing_tied')]
  pair = _confirmation_row(secondary, 'scarce500', 'smoothed_sord',
                           'label_smoothing_tied')
  ref = pair['reference_value']
  return (f"At the other tied point (ε {tied['epsilon']:g}, learning rate "
          f"{tied['learning_rate']:g}, epoch {tied['epoch']} of "
          f"{tied['budget']}), label smoothing scores {ref:.4f}, and smoothed "
          f"SORD's MDE minus it is {pair['delta']:+.4f} "
          f"({_interval_and_p(pair)}).")


def matched_epsilon_moves(secondary: Sequence[dict[str, Any]],
                          families: Sequence[dict[str, Any]]) -> str:
  """A tuning move measured on the confirmation: label smoothing at
  smoothed SORD's off-label mass against its own choice, per regime."""
  parts = []
  for regime in confirm.ALL_REGIMES:
    r = _confirmation_row(secondary, regime, 'label_smoothing_matched',
                          'label_smoothing')
    epsilon = {f['family']: f['epsilon'] for f in families
               if f['regime'] == regime}
    parts.append(f"{r['delta']:+.4f} in {regime} (ε "
                 f"{epsilon['label_smoothing_matched']:g} for "
                 f"{epsilon['label_smoothing']:g}; 95 % interval "
                 f"{share(r['ci95_low'], r['reference_value'])} to "
                 f"{share(r['ci95_high'], r['reference_value'])})")
  return ('On the confirmation, label smoothing moved to smoothed SORD\'s '
          'off-label mass changes its MDE by ' + ', '.join(parts[:-1])
          + f' and {parts[-1]}.')


def front_page(primary: Sequence[dict[str, Any]],
               secondary: Sequence[dict[str, Any]]) -> str:
  """The README's answer in two sentences: H1 and H2 as shares with their
  intervals and verdicts, then what the recipes gain over cross-entropy (a
  test checks that the README holds it)."""
  regimes = {'scarce2000': 'with 2 000 training images',
             'noisy40': 'with 40 % of those labels wrong'}
  parts = []
  for r in primary:
    if r['regime'] not in regimes or r['metric'] != 'mean_digit_distance':
      continue
    ref = r['reference_value']
    parts.append(
        f"{share(r['delta'], ref)} {regimes[r['regime']]} (95 % "
        f"{share(r['ci95_low'], ref)} to {share(r['ci95_high'], ref)}: "
        f"{r['verdict']})")
  gains = []
  for regime in regimes:
    ls, ss = (_confirmation_row(secondary, regime, family, 'cross_entropy')
              for family in ('label_smoothing', 'smoothed_sord'))
    gains.append(f"{share(ls['delta'], ls['reference_value'])} and "
                 f"{share(ss['delta'], ss['reference_value'])} in {regime}")
  return ("Smoothed SORD's MDE differs from label smoothing's by "
          + ' and '.join(parts) + '. Against plain cross-entropy, tuned '
          'alike, label smoothing and smoothed SORD change the MDE by '
          + ', '.join(gains) + ' (secondary).')
