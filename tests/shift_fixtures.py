"""Fake committed finals of the confirmation under shift, for the tests of
its estimates: a family's twelve groups of ten seeds as cells and int8
per-image files, as ``study.shift`` writes them."""

import dataclasses
import functools
import json

import numpy as np

import corruptions
from conftest import ROOT
from study import shift

SETS = (*(f'confirmation[{name}]' for name in corruptions.CORRUPTIONS),
        'confirmation')


@functools.cache
def _configs(family):
  """The family's shift finals as the committed confirmation chose it."""
  return shift.SHIFT.finals.configs(shift.confirmed(ROOT / 'results')[family])


def write_shift_finals(root, family, distances, diverged_group=None):
  """``distances``: (set, decoding) -> seeds x images (120 x N) for each
  of ``SETS`` and decoding; a cell's test-split MDE per corruption is
  its corrupted confirmation images' (the tests need some value). Each
  cell holds its registered configuration (the committed choices')."""
  for g in range(12):
    seed = 2000 + 10 * g
    stem = f'final-{family}-s{seed}'
    cell = {'config': dataclasses.asdict(_configs(family)[g]),
            'seeds': list(range(seed, seed + 10)), 'num_train': 2000,
            'wall_s': 100.0}
    if g == diverged_group:
      cell['diverged'] = 'loss became nan'
    else:
      for name in corruptions.CORRUPTIONS:
        cell[f'test[{name}]'] = {
            decoding: {'mean_digit_distance': {'per_seed': distances[
                f'confirmation[{name}]', decoding][10 * g:10 * g + 10]
                .mean(axis=1).tolist()}}
            for decoding in ('argmax', 'bayes')}
    (root / 'cells').mkdir(parents=True, exist_ok=True)
    (root / 'cells' / f'{stem}.json').write_text(json.dumps(cell))
    if g == diverged_group:
      continue
    arrays = {f'{name}_{decoding}': d[10 * g:10 * g + 10].astype(np.int8)
              for (name, decoding), d in distances.items()}
    (root / 'images').mkdir(parents=True, exist_ok=True)
    np.savez_compressed(root / 'images' / f'{stem}.npz',
                        seeds=cell['seeds'], **arrays)


def corrupted(distances_CxSxN, clean_SxN=None, bayes_shift=0):
  """A family's distances from its argmax ones under the 12 corruptions
  (and clean: zeros where not given); Bayes decoding's are argmax's plus
  ``bayes_shift``, clipped to 0-9."""
  s, n = distances_CxSxN.shape[1:]
  clean = np.zeros((s, 3 * n), int) if clean_SxN is None else clean_SxN
  out = {}
  for name, d in zip(SETS, (*distances_CxSxN, clean), strict=True):
    out[name, 'argmax'] = d
    out[name, 'bayes'] = np.clip(d + bayes_shift, 0, 9)
  return out
