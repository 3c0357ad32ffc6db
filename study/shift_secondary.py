"""The confirmation under shift's secondaries (results/protocol.md, "Shift
protocol", uncorrected, 2 000 replicates), from the committed cells and
per-image files of ``results/shift/``, each a row as the primaries are
estimated (``shift_rows.pair_row``) but with no Holm p and no verdict:

- (a) each recipe against cross-entropy per kind;
- (f) smoothed SORD against label smoothing at its off-label mass per kind;
- (b) the primary pair under each corruption alone;
- (c) Bayes decoding against argmax for each family under each kind;
- (d) the primary pair on the clean confirmation split (30 000 images);
- (e) the primary pair on the test split's corrupted images, seeds only,
  from the cells' per-seed MDEs (images seen by the study and the pilot);
- (g) the interaction: the pair's Δ under a kind minus its Δ on the same
  10 000 images clean, two-way.

:func:`family_rows` gives each family's MDE under each kind and clean, both
decodings, with its interval: the levels the README's per-kind recipe reads.
A family or group not run yet leaves its rows out (and says so).
"""

from __future__ import annotations

import functools
import pathlib
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import numpy as np

import corruptions
from study import confirm_rows, shift, stats
from study.confirm_cells import final_cells, tuned
from study.records import Choice
from study.shift_rows import (
  KINDS,
  NoGroupKept,
  dropped_groups,
  kind_sets,
  pair_row,
  paired,
)

SECONDARY = confirm_rows.SECONDARY
REPLICATES = confirm_rows.SECONDARY_REPLICATES
DETECT_Z = confirm_rows.SECONDARY_DETECT_Z
PAIR = ('smoothed_sord', 'label_smoothing')
FAMILIES = (*shift.PRIMARY_FAMILIES, *shift.SECONDARY_FAMILIES)
CLEAN = 'confirmation'
# Each (label, challenger, reference) of the per-kind pairs, in the
# registered order.
KIND_PAIRS = (('(a)', 'label_smoothing', 'cross_entropy'),
              ('(a)', 'smoothed_sord', 'cross_entropy'),
              ('(f)', 'smoothed_sord', 'label_smoothing_matched'))


def registered_decodings(results_dir: pathlib.Path) -> dict[str, str]:
  """Each family's confirmed decoding, replayed from the confirmation's
  committed tuning cells (label smoothing's for its matched control)."""
  return {family: t.choice.decoding for family, t in tuned(
      results_dir / 'confirmation' / 'cells', shift.REGIME).items()
          if family in FAMILIES}


def _kind_of(name: str) -> str:
  (kind,) = [k for k, names in corruptions.KINDS.items() if name in names]
  return kind


def _row(name: str, sides: tuple[tuple[str, str], tuple[str, str]],
         sets: tuple[str, ...], root: pathlib.Path, replicates: int,
         **fields: Any) -> dict[str, Any]:
  """A secondary pair's row: ``name`` starts with its label."""
  label = name.split()[0]
  h = confirm_rows.Hypothesis(name, shift.REGIME, sides[0][0], sides[1][0],
                              'mean_digit_distance', float('nan'))
  row = pair_row(h, sides, sets, root, replicates, DETECT_Z)
  row.update({'label': label, **fields, 'verdict': _verdict(row)})
  return row


def _verdict(row: dict[str, Any]) -> str:
  return (confirm_rows.UNSTABLE if confirm_rows.is_unstable(row)
          else SECONDARY)


def _interaction_row(kind: str, root: pathlib.Path, replicates: int,
                     decoding: str = 'argmax') -> dict[str, Any]:
  """(g): per image, its mean distance under the kind minus its clean
  distance; the pair's difference of those, two-way. Its values are each
  family's increase under the kind; its shares are of label smoothing's."""
  sides = tuple((family, decoding) for family in PAIR)
  kept, shifted = paired(root, sides, kind_sets(kind))
  _, clean = paired(root, sides, (CLEAN,))
  n = shifted[0].shape[2]  # the corrupted images are the clean split's first
  a_SxN, b_SxN = (s.mean(axis=0) - c[0, :, :n]
                  for s, c in zip(shifted, clean, strict=True))
  h = confirm_rows.Hypothesis(f'(g) {PAIR[0]} - {PAIR[1]}', shift.REGIME,
                              *PAIR, 'mean_digit_distance', float('nan'))
  row = confirm_rows.estimate(h, a_SxN, b_SxN, replicates=replicates,
                              detect_z=DETECT_Z)
  # Differences of distances: no mistakes to count fewer or closer.
  del row['fewer_part'], row['closer_part']
  row.update({'metric': 'mde_shift_minus_clean', 'label': '(g)', 'kind': kind,
              'corruptions': ' '.join(corruptions.KINDS[kind]),
              'groups_dropped': shift.SHIFT_GROUPS - len(kept),
              'decodings': f'{decoding}/{decoding}',
              'command': 'python -m study.shift_report'})
  row['verdict'] = _verdict(row)
  return row


def _test_split_mde(root: pathlib.Path, family: str, choice: Choice,
                    decoding: str, kind: str) -> dict[int, np.ndarray | None]:
  """First seed of each group -> its seeds' MDE on the test split's
  images under the kind (the mean over its corruptions; None: dropped),
  from the cells read back against ``choice``'s finals."""
  dropped = dropped_groups(root, family)
  cells = final_cells(root / 'cells', None, family, choice,
                      shift.SHIFT.finals)
  return {seed: None if seed in dropped else np.mean(
      [cell.scores[f'test[{name}]'][decoding]['mean_digit_distance'][
          'per_seed'] for name in corruptions.KINDS[kind]], axis=0)
          for seed, cell in cells.items()}


def _test_split_row(kind: str, root: pathlib.Path,
                    choices: Callable[[], Mapping[str, Choice]],
                    decoding: str = 'argmax') -> dict[str, Any]:
  """(e): the pair on the test split's corrupted images, seeds only;
  ``choices()``: the confirmed choices its finals are read against."""
  groups = {f: _test_split_mde(root, f, choices()[f], decoding, kind)
            for f in PAIR}
  kept = confirm_rows.kept_groups(groups)
  if not kept:
    raise NoGroupKept(f'every group of {list(PAIR)} dropped')
  a, b = (np.concatenate([groups[f][s] for s in kept]) for f in PAIR)
  mean, half = stats.mean_ci(a - b)
  row = {'hypothesis': f'(e) {PAIR[0]} - {PAIR[1]}', 'regime': shift.REGIME,
         'challenger': PAIR[0], 'reference': PAIR[1],
         'metric': 'mean_digit_distance', 'n_seeds': a.size,
         'challenger_value': float(a.mean()),
         'reference_value': float(b.mean()), 'delta': mean,
         'delta_share': mean / float(b.mean()),
         'seeds_ci95_low': mean - half, 'seeds_ci95_high': mean + half,
         'p_t': stats.paired_test(a, b)[1],
         'p_sign_flip': stats.sign_flip_p(
             a - b, flips=confirm_rows.SIGN_FLIPS),
         'label': '(e)', 'kind': kind, 'split': 'test',
         'corruptions': ' '.join(corruptions.KINDS[kind]),
         'groups_dropped': shift.SHIFT_GROUPS - len(kept),
         'decodings': f'{decoding}/{decoding}',
         'command': 'python -m study.shift_report'}
  row['verdict'] = _verdict(row)
  return row


def _kind_fields(kind: str) -> dict[str, str]:
  return {'kind': kind, 'corruptions': ' '.join(corruptions.KINDS[kind])}


def secondary_rows(results_dir: pathlib.Path, decodings: Mapping[str, str],
                   log: Callable[[str], object] = print,
                   replicates: int = REPLICATES) -> list[dict[str, Any]]:
  """Every registered secondary whose finals are in, in the registered
  order (a), (f), (b), (c), (d), (e), (g); ``decodings``: each family's
  registered one."""
  root = results_dir / 'shift'
  makers: list[tuple[str, Callable[[], dict[str, Any]]]] = []
  for label, challenger, reference in KIND_PAIRS:
    sides = ((challenger, decodings[challenger]),
             (reference, decodings[reference]))
    name = f'{label} {challenger} - {reference}'
    makers += [(f'{name} ({kind})', partial(
        _row, name, sides, kind_sets(kind), root, replicates,
        **_kind_fields(kind))) for kind in KINDS]
  pair_argmax = ((PAIR[0], 'argmax'), (PAIR[1], 'argmax'))
  makers += [(f'(b) {corruption}', partial(
      _row, f'(b) {PAIR[0]} - {PAIR[1]}', pair_argmax,
      (f'confirmation[{corruption}]',), root, replicates,
      kind=_kind_of(corruption), corruptions=corruption))
             for corruption in corruptions.CORRUPTIONS]
  makers += [(f'(c) {family} ({kind})', partial(
      _row, f'(c) {family} bayes - argmax',
      ((family, 'bayes'), (family, 'argmax')), kind_sets(kind), root,
      replicates, **_kind_fields(kind)))
             for family in FAMILIES for kind in KINDS]
  makers.append(('(d) clean', partial(
      _row, f'(d) {PAIR[0]} - {PAIR[1]}', pair_argmax, (CLEAN,), root,
      replicates, kind='clean', corruptions='')))
  # Replayed once, when (e) first asks: a report without the
  # confirmation's cells still gives every other row.
  choices = functools.cache(partial(shift.confirmed, results_dir))
  makers += [(f'(e) {kind}', partial(_test_split_row, kind, root, choices))
             for kind in KINDS]
  makers += [(f'(g) {kind}', partial(_interaction_row, kind, root,
                                     replicates)) for kind in KINDS]
  rows = []
  for name, make in makers:
    try:
      rows.append(make())
    except (KeyError, FileNotFoundError, NoGroupKept) as e:
      log(f'{name}: not ready ({e})')
  return rows


def _level(d_CxSxN: np.ndarray, replicates: int) -> dict[str, Any]:
  """The MDE (an image's the mean over its versions) with its two-way
  interval; the error rate and mean error distance over the (version,
  image) pairs, each seed's then their mean."""
  per_image_SxN = d_CxSxN.mean(axis=0)
  zeros, ones = np.zeros_like(per_image_SxN), np.ones_like(per_image_SxN)
  samples = stats.two_way_bootstrap((per_image_SxN, ones), (zeros, ones),
                                        replicates=replicates,
                                        seed=confirm_rows.BOOTSTRAP_SEED)
  low, high = stats.percentile_interval(samples, 0.95)
  pairs_SxM = d_CxSxN.transpose(1, 0, 2).reshape(d_CxSxN.shape[1], -1)
  return {'n_seeds': int(d_CxSxN.shape[1]), 'n_images': int(d_CxSxN.shape[2]),
          'mde': float(per_image_SxN.mean()), 'mde_ci95_low': low,
          'mde_ci95_high': high, 'error_rate': float(np.mean(pairs_SxM > 0)),
          # The mean over seeds of each seed's ratio, as the confirmation's.
          'mean_error_distance': float(stats.per_seed(
              pairs_SxM, pairs_SxM > 0).mean())}


def family_rows(results_dir: pathlib.Path, decodings: Mapping[str, str],
                replicates: int = REPLICATES) -> list[dict[str, Any]]:
  """Each family run, under each kind and clean, at each decoding: its
  MDE with the interval over seeds and images (:func:`_level`), on the
  groups that trained."""
  root = results_dir / 'shift'
  rows = []
  for family in FAMILIES:
    for kind in (*KINDS, 'clean'):
      sets = (CLEAN,) if kind == 'clean' else kind_sets(kind)
      for decoding in ('argmax', 'bayes'):
        try:
          kept, (d_CxSxN,) = paired(root, ((family, decoding),), sets)
        except (KeyError, FileNotFoundError, NoGroupKept):
          continue
        rows.append({'family': family, 'kind': kind, 'decoding': decoding,
                     'registered': decoding == decodings[family],
                     **_level(d_CxSxN, replicates),
                     'groups_dropped': shift.SHIFT_GROUPS - len(kept),
                     'command': 'python -m study.shift_report'})
  return rows
