"""One engine for every protocol of ``results/protocol.md``: a protocol as
frozen data (:class:`Protocol`: its regimes, the families it tunes, the tuning
seeds, the edge rule, the finals), and what runs any of them: the cell store
(:class:`Store`, which trains a cell or, read only, replays a committed one),
the tuning (:func:`tune`) and the finals (:func:`run_finals`).

What differs between the protocols is data; what a protocol derives from
its choices (the screening study's best-of family and fixed hyperparameters,
the confirmation's permuted twin, matched mass and tied control, the shift's
replayed choices) stays with it, as small functions over this engine's
results.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from data import Split
from study import finals as study_finals
from study import tuning
from study.cells import (
  diverged_final,
  diverged_points,
  final_scores,
  read_cell,
  run_cell,
  save_distances,
  slug,
  tuning_curves,
  workdir_of,
)
from study.records import Choice, FinalCell, TuningCell
from trainer.config import Config


@dataclasses.dataclass(frozen=True)
class Tuned:
  """A family to tune: its Config overrides, the registered grid of each
  hyperparameter it tunes (learning rate first), for a bounded one the
  values its top edge adds in turn (else it doubles), and the phase of the
  protocol it runs in (the confirmation's primary or secondary families;
  empty where a protocol has one phase)."""
  overrides: Mapping[str, Any]
  grid: Mapping[str, tuple[float, ...]]
  top: Mapping[str, tuple[float, ...]] = dataclasses.field(
      default_factory=dict)
  phase: str = ''


@dataclasses.dataclass(frozen=True)
class Finals:
  """A protocol's finals: ``groups`` programs of ``group_size`` seeds from
  ``first_seed``, each with the data ``fields`` (the confirmation split, the
  shifted sets) and the shifted test sets or not. A group's cell is
  ``final-<family><suffix>``: ``suffixes[g]`` where given, else
  ``-s<first seed>``. ``kept_sets``: the scored sets whose per-image
  distances each group keeps (none: no per-image file); ``bare``: the one
  kept without a prefix. ``keep``: what a group keeps per image instead,
  ``keep(workdir, path)`` writing it from the run's workdir."""
  first_seed: int
  groups: int
  group_size: int
  shifted: bool = False
  fields: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  suffixes: tuple[str, ...] = ()
  kept_sets: tuple[str, ...] = ()
  bare: str | None = None
  keep: Callable[[pathlib.Path, pathlib.Path], None] | None = None

  @property
  def keeps_images(self) -> bool:
    return bool(self.kept_sets) or self.keep is not None

  def keep_images(self, workdir: pathlib.Path, path: pathlib.Path) -> None:
    """A finished group's per-image file, from its workdir."""
    if self.keep is not None:
      self.keep(workdir, path)
    else:
      save_distances(workdir, path, self.kept_sets, bare=self.bare,
                     seeds=True)

  def configs(self, choice: Choice, groups: Sequence[int] | None = None
              ) -> list[Config]:
    """The finals' programs (``groups``: which of them; default all)."""
    programs = study_finals.final_groups(
        choice, first_seed=self.first_seed, groups=self.groups,
        group_size=self.group_size, shifted=self.shifted, **self.fields)
    return [programs[g] for g in (range(self.groups) if groups is None
                                  else groups)]

  def stem(self, family: str, group: int) -> str:
    suffix = (self.suffixes[group] if self.suffixes else
              f'-s{self.first_seed + group * self.group_size}')
    return f'final-{slug(family)}{suffix}'


@dataclasses.dataclass(frozen=True)
class Derived:
  """A family made from a regime's tuned choices rather than tuned itself:
  its name, the phase whose finals it joins, the tuned family whose cells
  it borrows (and that family's edges too, where ``keeps_edges``), and
  ``make(regime, tunings)``, its choice, or None where the regime has
  none."""
  name: str
  phase: str
  source: str
  make: Callable[[str, Mapping[str, tuning.Tuning]], Choice | None]
  keeps_edges: bool = False

  def tuning(self, regime: str, tunings: Mapping[str, tuning.Tuning]
             ) -> tuning.Tuning | None:
    """Its tuning as a report reads it: the source's cells, its choice."""
    choice = self.make(regime, tunings)
    if choice is None:
      return None
    source = tunings[self.source]
    return dataclasses.replace(
        source, choice=choice,
        on_edge=source.on_edge if self.keeps_edges else ())


@dataclasses.dataclass(frozen=True)
class Protocol:
  """A protocol as data: where its cells (and per-image files) go under
  the results folder, each regime's base configuration (data terms, budget
  B, evaluation period), the families it tunes per regime, the tuning
  seeds, the edge rule and the finals. A protocol that replays another's
  choices tunes nothing."""
  cells: str
  finals: Finals
  images: str | None = None
  regimes: Mapping[str, Config] = dataclasses.field(default_factory=dict)
  families: Mapping[str, Mapping[str, Tuned]] = dataclasses.field(
      default_factory=dict)
  tune_seed: int = 0
  tune_seeds: int = 0
  edges: tuning.EdgeRule = dataclasses.field(
      default_factory=tuning.EdgeRule)
  derived: tuple[Derived, ...] = ()
  primary_regimes: tuple[str, ...] = ()

  def derive(self, regime: str, phase: str,
             tunings: Mapping[str, tuning.Tuning]) -> dict[str, Choice]:
    """The choices of the families derived in ``phase`` that the regime
    has."""
    return {d.name: choice for d in self.derived if d.phase == phase
            if (choice := d.make(regime, tunings)) is not None}

  def tuning_config(self, regime: str, family: Tuned) -> Config:
    """The registered grid as one sweep on the tuning seeds, validation
    only."""
    return dataclasses.replace(
        self.regimes[regime], **family.overrides, seed=self.tune_seed,
        num_seeds=self.tune_seeds, score_test=False,
        sweep={name: list(values) for name, values in family.grid.items()})

  def store(self, results_dir: str | pathlib.Path, **fields: Any) -> Store:
    """Its cell store under ``results_dir`` (``fields``: the Store's)."""
    results_dir = pathlib.Path(results_dir)
    return Store(results_dir / self.cells,
                 images_dir=None if self.images is None
                 else results_dir / self.images, **fields)


@dataclasses.dataclass(frozen=True)
class Store:
  """A protocol's cells (``cells_dir``, a folder per regime) and per-image files
  (``images_dir``, in the same layout): a cell is trained (``dataset``; None
  reads MNIST from the configuration's folder) and remembered, or read back
  where its file is there. ``read_only``: never train, accept the cells
  wherever their data were read from (a report's replay; FileNotFoundError for
  a missing one). ``data_dir``: where the runs read MNIST (None: as the
  configuration says)."""
  cells_dir: pathlib.Path
  runs_dir: pathlib.Path | None = None
  images_dir: pathlib.Path | None = None
  dataset: dict[str, Split] | None = None
  data_dir: str | None = None
  log: Callable[[str], object] = print
  read_only: bool = False

  def _cell(self, path: pathlib.Path, config: Config,
            make_cell: Callable[[dict, pathlib.Path], dict],
            on_diverged: Callable[[Config, str], dict]) -> dict:
    if self.read_only:
      return read_cell(path, config, any_data_location=True)
    if self.data_dir is not None:
      config = dataclasses.replace(config, data_dir=self.data_dir)
    return run_cell(path, config, self._runs_dir(), self.dataset, self.log,
                    make_cell, on_diverged)

  def _runs_dir(self) -> pathlib.Path:
    if self.runs_dir is None:
      raise ValueError('a store that trains needs runs_dir.')
    return self.runs_dir

  def tuning_cell(self, path: pathlib.Path, config: Config) -> TuningCell:
    return TuningCell.from_json(self._cell(path, config, tuning_curves,
                                           diverged_points))

  def final_cell(self, path: pathlib.Path, config: Config,
                 finals: Finals) -> FinalCell:
    """A final's cell, and its per-image file where ``finals`` keeps one."""
    cell = FinalCell.from_json(self._cell(path, config, final_scores,
                                          diverged_final))
    if not finals.keeps_images or self.read_only or cell.diverged is not None:
      return cell
    if self.images_dir is None:
      raise ValueError('finals that keep per-image files need images_dir.')
    images = self.images_dir / path.relative_to(
        self.cells_dir).with_suffix('.npz')
    if not images.exists():
      finals.keep_images(workdir_of(path, self._runs_dir()), images)
    return cell


def tune(store: Store, protocol: Protocol, regime: str, name: str,
         family: Tuned) -> tuning.Tuning:
  """A family's tuning in a regime: its registered grid, then the edge
  rule until it no longer fires."""
  return tuning.tune(store.tuning_cell, store.cells_dir / regime, name,
                     protocol.tuning_config(regime, family), protocol.edges,
                     store.log, tops=family.top)


def run_finals(store: Store, finals: Finals, regime: str | None,
               family: str, choice: Choice,
               groups: Sequence[int] | None = None) -> list[FinalCell]:
  """A choice's finals (``groups``: which; default all), each group's cell
  under ``regime``'s folder (None: the store's own)."""
  folder = store.cells_dir if regime is None else store.cells_dir / regime
  indices = list(range(finals.groups) if groups is None else groups)
  out = []
  for g, config in zip(indices, finals.configs(choice, indices),
                       strict=True):
    store.log(f'[{regime or folder.parent.name}] final {family} seeds '
              f'{config.seed}-{config.seed + config.num_seeds - 1}')
    out.append(store.final_cell(folder / f'{finals.stem(family, g)}.json',
                                config, finals))
  return out
