"""The study's cells: one ``train_and_evaluate`` run each, remembered as a
small JSON file, so that a rerun skips every finished one.

:func:`run_cell` trains a configuration unless its file holds the result
(:func:`read_cell`, which checks a cell against the configuration it must
hold: the run's, and the reports' replay of the tuning);
the ``make_cell`` functions say what a finished run keeps (a tuning cell's
validation curves, a final's scores) and the ``on_diverged`` ones what a run
whose every point diverged keeps. :func:`migrate_cell` reads cells written
under old names; :func:`save_distances` keeps a final's per-image digit
distances.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
import shutil
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from data import Split
from trainer import loop
from trainer.config import Config, migrate, renamed_fields
from trainer.resolve import resolve
from trainer.runfiles import write_text_atomic


def slug(name: str) -> str:
  return ''.join(c if c.isalnum() or c in '.-_' else '_' for c in name)


def workdir_of(path: pathlib.Path, runs_dir: str | pathlib.Path
               ) -> pathlib.Path:
  """A cell's run folder: its file's place below its folder's parent,
  under ``runs_dir``, without the suffix."""
  return pathlib.Path(runs_dir) / path.relative_to(
      path.parents[1]).with_suffix('')


def run_cell(path: pathlib.Path, config: Config,
             runs_dir: str | pathlib.Path, dataset: dict[str, Split] | None,
             log: Callable[[str], object],
             make_cell: Callable[[dict, pathlib.Path], dict],
             on_diverged: Callable[[Config, str], dict] | None = None) -> dict:
  """Trains ``config`` unless ``path`` already holds its result.

  ``make_cell(summary, workdir)`` turns the finished run into what the cell
  keeps; ``on_diverged(config, message)`` does for a run whose every point
  diverged (without it, the TrainingError propagates). An unfinished run
  resumes from its last checkpoint.
  """
  if path.exists():
    return read_cell(path, config)
  workdir = workdir_of(path, runs_dir)
  resume = (workdir / 'config.json').exists()
  if resume and Config(**migrate(json.loads(
      (workdir / 'config.json').read_text()))) != config:
    # An unfinished run of an earlier plan; the cell file is what counts.
    log(f'  {workdir}: unfinished run of another configuration, restarted')
    shutil.rmtree(workdir)
    resume = False
  t0 = time.perf_counter()
  try:
    summary = loop.train_and_evaluate(config, workdir, resume=resume,
                                      dataset=dataset)
    content = make_cell(summary, workdir)
  except loop.TrainingError as e:
    if on_diverged is None:
      raise
    log(f'  {path.parent.name}/{path.stem}: every point diverged')
    summary = {'seeds': resolve(config).seeds, 'num_train': None}
    content = on_diverged(config, str(e))
  cell = {'config': dataclasses.asdict(config), 'seeds': summary['seeds'],
          'num_train': summary['num_train'],
          'wall_s': time.perf_counter() - t0, **content}
  path.parent.mkdir(parents=True, exist_ok=True)
  write_text_atomic(path, json.dumps(cell) + '\n')
  log(f'  {path.parent.name}/{path.stem}: {cell["wall_s"]:.0f}s')
  return cell


def read_cell(path: pathlib.Path, config: Config, *,
              any_data_location: bool = False) -> dict:
  """A finished cell as :func:`run_cell` returns it, read only: migrated,
  and checked to hold ``config``; with ``any_data_location``, where the
  data were read from aside (a report replaying committed cells, whose
  split is checked by its digest). FileNotFoundError where it is not
  there; ValueError where it holds another configuration."""
  cell = migrate_cell(cell_json(path))
  # Config(**saved) fills fields added since the cell was written with
  # their defaults, which is what the cell ran with.
  saved = Config(**cell['config'])
  if any_data_location:
    config = dataclasses.replace(config, data_dir=saved.data_dir,
                                 tfds_data_dir=saved.tfds_data_dir)
  if saved != config:
    raise ValueError(f'{path} holds another configuration; remove it or '
                     'choose another --results_dir.')
  return cell


def diverged(path: pathlib.Path) -> bool:
  """Whether a final cell's run diverged."""
  return 'diverged' in cell_json(path)


def _version(path: pathlib.Path) -> tuple[pathlib.Path, int, int]:
  # The caches' key: a rewritten file is read again.
  stat = path.stat()
  return path, stat.st_mtime_ns, stat.st_size


# A final cell holds every split's per-seed scores (the shift's: 140 kB) and
# a per-image file every seed's distances; the reports ask each one many
# times, so each version of a file is read once.
@functools.lru_cache(maxsize=2048)
def _parsed(path: pathlib.Path, mtime_ns: int, size: int) -> dict:
  del mtime_ns, size
  cell: dict = json.loads(path.read_text())
  return cell


def cell_json(path: pathlib.Path) -> dict:
  """A cell file's contents, parsed once per version (shared: not to be
  changed)."""
  return _parsed(*_version(path))


@functools.lru_cache(maxsize=512)
def _arrays(path: pathlib.Path, mtime_ns: int, size: int
            ) -> dict[str, np.ndarray]:
  del mtime_ns, size
  with np.load(path) as f:
    arrays = {name: f[name] for name in f.files}
  for array in arrays.values():
    array.flags.writeable = False
  return arrays


def per_image_arrays(path: pathlib.Path) -> dict[str, np.ndarray]:
  """A per-image file's arrays, read once per version (read-only)."""
  return _arrays(*_version(path))


def migrate_cell(cell: dict) -> dict:
  """A cell written before a rename, under today's names: its configuration
  and its tuning points' hyperparameters (``config.migrate``)."""
  renames = renamed_fields(cell['config'])
  migrated = {**cell, 'config': migrate(cell['config'])}
  if 'points' in cell:
    migrated['points'] = [{**point, 'hyperparameters': {
        renames.get(name, name): value
        for name, value in point['hyperparameters'].items()}}
                          for point in cell['points']]
  return migrated


CURVE_METRICS = ('mean_digit_distance', 'accuracy', 'error_rate',
                 'mean_error_distance')


def tuning_curves(summary: dict, workdir: pathlib.Path) -> dict:
  """Each point's validation curve (seed means) from metrics.jsonl."""
  points = [{'hyperparameters': p['hyperparameters'], 'curve': [],
             'diverged': p.get('diverged')} for p in summary['points']]
  for line in (workdir / 'metrics.jsonl').read_text().splitlines():
    record = json.loads(line)
    if 'validation' not in record:
      continue
    scores = record['validation']
    points[record['point']]['curve'].append({
        'epoch': record['epoch'],
        **{d: {m: scores[d][m]['mean'] for m in CURVE_METRICS}
           for d in ('argmax', 'bayes')},
        'mean_digit_distance_per_seed': {
            d: scores[d]['mean_digit_distance']['per_seed']
            for d in ('argmax', 'bayes')}})
  return {'points': points}


def diverged_points(config: Config, message: str) -> dict:
  """A tuning cell's points when every one diverged: tried, never chosen."""
  return {'points': [{'hyperparameters': point, 'curve': [],
                      'diverged': message} for point in resolve(config).points]}


def diverged_final(config: Config, message: str) -> dict:
  del config
  return {'diverged': message}


def final_scores(summary: dict, workdir: pathlib.Path) -> dict:
  del workdir
  return {k: v for k, v in summary['final'].items() if k != 'train_loss'}


def prediction_key(split: str, field: str) -> str:
  """predictions.npz's name of a split's field: the test split's bare
  (``argmax``, ``labels``), every other one's prefixed."""
  return field if split == 'test' else f'{split}_{field}'


def save_distances(workdir: str | pathlib.Path, path: str | pathlib.Path,
                   sets: Sequence[str] | None, *, bare: str | None,
                   seeds: bool) -> None:
  """A final's per-image digit distances, per seed and decoding, as int8.

  ``sets``: the scored sets kept (None: the test split and each shifted
  set of it the run scored); ``bare``: the one set whose arrays are kept as
  ``argmax`` and ``bayes``, every other one's as ``<set>_argmax``; ``seeds``:
  keep the run's seeds too (first).
  """
  path = pathlib.Path(path)
  with np.load(pathlib.Path(workdir) / 'predictions.npz') as f:
    if sets is None:
      sets = ['test', *(name[:-len('_labels')] for name in f.files
                        if name.startswith('test[')
                        and name.endswith('_labels'))]
    kept: dict[str, Any] = {'seeds': f['seeds']} if seeds else {}
    for name in sets:
      labels_N = f[prediction_key(name, 'labels')]
      for decoding in ('argmax', 'bayes'):
        key = decoding if name == bare else f'{name}_{decoding}'
        kept[key] = np.abs(f[prediction_key(name, decoding)].astype(np.int16)
                           - labels_N[None, :]).astype(np.int8)
  path.parent.mkdir(parents=True, exist_ok=True)
  np.savez_compressed(path, **kept)
