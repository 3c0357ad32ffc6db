"""The confirmation under shift's primary estimates (results/protocol.md,
"Shift protocol"), from the committed cells and per-image files of
``results/shift/``: per kind of corruption (S1-S4), smoothed SORD's MDE
minus label smoothing's with the confirmation's statistics
(``confirm_rows.estimate``: two-way interval, p-values, detectable effect),
Holm over the four and each verdict against the kind's registered band; the
fewer/closer split over the kind's (corruption, image) pairs; and the
registered check of a variance between groups, a t-interval over the group
means. Nothing trains.
"""

from __future__ import annotations

import functools
import pathlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import corruptions
from study import confirm_rows, power, shift, stats
from study.cells import diverged, per_image_arrays
from study.confirm_cells import final_cells
from study.records import Choice

KINDS = tuple(corruptions.KINDS)
# The registered equivalence bands: 3 %, or the design's floor where it
# cannot resolve 3 % (noise, blur).
BANDS = {'noise': 0.065, 'blur': 0.054, 'geometric': 0.03,
         'occlusion/texture': 0.03}
# z_{1 - alpha/2} + z_{0.8} at alpha = 0.05 / 4: effects detected with 80 %.
DETECT_Z = power.detectable_effect(1.0, alpha=0.05 / len(KINDS))
HYPOTHESES = tuple(
    confirm_rows.Hypothesis(f'S{i}', shift.REGIME, 'smoothed_sord',
                            'label_smoothing', 'mean_digit_distance',
                            BANDS[kind])
    for i, kind in enumerate(KINDS, 1))


def kind_sets(kind: str) -> tuple[str, ...]:
  """The kept sets of a kind's corruptions of the confirmation images."""
  return tuple(f'confirmation[{name}]' for name in corruptions.KINDS[kind])


def dropped_groups(root: pathlib.Path, family: str) -> set[int]:
  """The first seeds of the groups a family's rows leave out: those in
  which it diverged, and for a primary family those in which either primary
  family diverged (the registered exclusion rule)."""
  families = (shift.PRIMARY_FAMILIES if family in shift.PRIMARY_FAMILIES
              else (family,))
  dropped = set()
  for other in families:
    for g in range(shift.SHIFT_GROUPS):
      seed = shift.SHIFT_SEED + g * 10
      path = root / 'cells' / f'final-{other}-s{seed}.json'
      if path.exists() and diverged(path):
        dropped.add(seed)
  return dropped


@functools.lru_cache(maxsize=8)
def _confirmed(results_dir: pathlib.Path) -> dict[str, Choice]:
  """The confirmed choices, replayed once per results folder."""
  return shift.confirmed(results_dir)


def group_distances(root: pathlib.Path, family: str, decoding: str,
                    sets: Sequence[str]) -> dict[int, np.ndarray | None]:
  """First seed of each group -> its distances ``[C, 10, N]`` on the C
  ``sets`` (None: the group is dropped, :func:`dropped_groups`), each
  group's cell read back against the confirmed choice's shift finals;
  FileNotFoundError naming a group (or the confirmation) not run yet;
  ValueError if a cell holds another configuration or a file other
  seeds."""
  dropped = dropped_groups(root, family)
  finals = shift.SHIFT.finals
  cells = final_cells(root / 'cells', None, family,
                      _confirmed(root.parent)[family], finals)
  out: dict[int, np.ndarray | None] = {}
  for g, (seed, cell) in enumerate(cells.items()):
    if seed in dropped:
      out[seed] = None
      continue
    stem = finals.stem(family, g)
    f = per_image_arrays(root / 'images' / f'{stem}.npz')
    if list(f['seeds']) != cell.seeds:
      raise ValueError(f'{stem}.npz holds seeds {list(f["seeds"])}.')
    out[seed] = np.stack([f[f'{name}_{decoding}'] for name in sets]
                         ).astype(np.int16)
  return out


class NoGroupKept(ValueError):
  """Every group was dropped from one side or another: nothing to
  estimate."""


def paired(root: pathlib.Path, sides: Sequence[tuple[str, str]],
           sets: Sequence[str]) -> tuple[list[int], list[np.ndarray]]:
  """Each (family, decoding) side's distances ``[C, S, N]`` on ``sets``,
  over the groups that every side's family keeps, and those groups."""
  groups = [group_distances(root, family, decoding, sets)
            for family, decoding in sides]
  kept = confirm_rows.kept_groups({str(i): g for i, g in enumerate(groups)})
  if not kept:
    raise NoGroupKept(f'every group of {[f for f, _ in sides]} dropped')
  return kept, [np.concatenate([g[s] for s in kept], axis=1) for g in groups]


def _pairs_SxM(distances_CxSxN: np.ndarray) -> np.ndarray:
  """Each seed's (corruption, image) pairs as one row."""
  c, s, n = distances_CxSxN.shape
  return distances_CxSxN.transpose(1, 0, 2).reshape(s, c * n)


def pair_row(h: confirm_rows.Hypothesis, sides: Sequence[tuple[str, str]],
             sets: Sequence[str], root: pathlib.Path, replicates: int,
             detect_z: float) -> dict[str, Any]:
  """Challenger minus reference (``sides``: each one's family and
  decoding) on the MDE over ``sets``, an image's MDE the mean over its
  versions in them; no Holm p or verdict. Every group dropped: a row that
  says so (it counts in Holm at p = 1 and reads "unstable")."""
  fields = {'decodings': f'{sides[0][1]}/{sides[1][1]}',
            'command': 'python -m study.shift_report'}
  try:
    kept, (a_CxSxN, b_CxSxN) = paired(root, sides, sets)
  except NoGroupKept:
    return {'hypothesis': h.name, 'regime': h.regime,
            'challenger': h.challenger, 'reference': h.reference,
            'band_share': h.band, 'n_seeds': 0, 'p_bootstrap': float('nan'),
            'groups_dropped': shift.SHIFT_GROUPS, **fields}
  row = confirm_rows.estimate(h, a_CxSxN.mean(axis=0), b_CxSxN.mean(axis=0),
                              replicates=replicates, detect_z=detect_z)
  row['fewer_part'], row['closer_part'] = confirm_rows.attribution(
      _pairs_SxM(a_CxSxN), _pairs_SxM(b_CxSxN))
  per_seed = a_CxSxN.mean(axis=(0, 2)) - b_CxSxN.mean(axis=(0, 2))
  group_means = per_seed.reshape(len(kept), 10).mean(axis=1)
  mean, half = stats.mean_ci(group_means)
  row.update({'groups_ci95_low': mean - half, 'groups_ci95_high': mean + half,
              'groups_dropped': shift.SHIFT_GROUPS - len(kept), **fields})
  return row


def kind_row(h: confirm_rows.Hypothesis, kind: str, root: pathlib.Path,
             replicates: int) -> dict[str, Any]:
  """A primary's row without its Holm p and verdict."""
  row = pair_row(h, ((h.challenger, 'argmax'), (h.reference, 'argmax')),
                 kind_sets(kind), root, replicates, DETECT_Z)
  row.update({'kind': kind, 'corruptions': ' '.join(corruptions.KINDS[kind])})
  return row


def primary_rows(results_dir: pathlib.Path,
                 log: Callable[[str], object] = print,
                 replicates: int = confirm_rows.REPLICATES
                 ) -> list[dict[str, Any]]:
  """S1-S4 once both families' finals are in; Holm over the four."""
  root = results_dir / 'shift'
  rows = []
  for h, kind in zip(HYPOTHESES, KINDS, strict=True):
    try:
      rows.append(kind_row(h, kind, root, replicates))
    except (KeyError, FileNotFoundError) as e:
      log(f'{h.name} ({kind}): not ready ({e})')
  if len(rows) == len(HYPOTHESES):
    confirm_rows.verdicts(rows)
  else:  # Holm counts every primary hypothesis: none is judged alone.
    for row in rows:
      row['p_holm'], row['verdict'] = float('nan'), 'pending (Holm needs all)'
  return rows
