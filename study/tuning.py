"""Tuning on validation, for every protocol: the choice, the edge rule and
the loop that runs both.

The choice is the (point, epoch, decoding) of lowest mean validation MDE
(:func:`choose`). Where it sits on an edge of the values tried, a protocol's
:class:`EdgeRule` adds a cell a step further out, until no rule fires
(:func:`tune`). What differs between the protocols of ``results/protocol.md``
is data: which hyperparameters extend, whether an extension is a slab (the
family's other values swept again at the new value: the screening study) or
one point (the confirmation), the limits, the doubled budget and the tie
rule.
"""

from __future__ import annotations

import collections
import dataclasses
import fractions
import pathlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from study.cells import slug
from study.records import Choice, TuningCell
from trainer.config import Config


def point_config(cell: TuningCell, point: dict) -> Config:
  return dataclasses.replace(cell.config, sweep={}, **point)


def exact_mde(mde: float, cell: TuningCell) -> fractions.Fraction:
  """A point's mean validation MDE as the ratio it estimates: the digit
  distances summed over the validation images and the cell's seeds, over
  their number. The float32 mean of two equal sums can differ in its last
  bits; as ratios they tie, and the tie rule decides."""
  count = cell.config.validation_size * len(cell.seeds)
  return fractions.Fraction(round(mde * count), count)


def _ranked(cells: Sequence[TuningCell], exact_ties: bool) -> list[tuple]:
  """Every evaluated (point, epoch, decoding), best first: lowest mean
  validation MDE, then the earlier epoch, then argmax, then the first
  cell's and grid's order."""
  def key(mde: float, cell: TuningCell) -> fractions.Fraction | float:
    return exact_mde(mde, cell) if exact_ties else mde

  candidates = [(key(e[d]['mean_digit_distance'], cell), e['epoch'], d,
                 e[d]['mean_digit_distance'], cell, point)
                for cell in cells for point in cell.points
                if not point.diverged
                for e in point.curve for d in ('argmax', 'bayes')]
  if not candidates:
    raise ValueError('every tuning point diverged: nothing to choose; '
                     'learning rates tried: '
                     f'{values_tried(cells, "learning_rate")}')
  return sorted(candidates, key=lambda c: c[:3])


def _as_choice(candidate: tuple) -> Choice:
  *_, epoch, decoding, mde, cell, point = candidate
  return Choice(point_config(cell, point.hyperparameters), epoch, decoding,
                mde)


def choose(cells: Sequence[TuningCell], *, exact_ties: bool = True
           ) -> Choice:
  """The (point, epoch, decoding) of lowest mean validation MDE; ties go
  to the earlier epoch, then argmax, then the first cell's and grid's
  order. ``exact_ties=False`` compares the float means as they are: the
  study's protocol registered no tie rule, and its committed finals
  followed that order (one of them, scarce2000's slace[linear], through a
  tie)."""
  return _as_choice(_ranked(cells, exact_ties)[0])


def tied_choices(cells: Sequence[TuningCell]) -> list[Choice]:
  """Every (point, epoch, decoding) whose validation MDE, as the exact
  ratio, equals the lowest: :func:`choose`'s choice first, then the ones
  the tie rule passed over."""
  ranked = _ranked(cells, exact_ties=True)
  return [_as_choice(c) for c in ranked if c[0] == ranked[0][0]]


def values_tried(cells: Sequence[TuningCell], name: str) -> list[float]:
  """Every value of hyperparameter ``name`` the cells tried (a diverged
  point's too), sorted."""
  return sorted({point.hyperparameters.get(name, getattr(cell.config, name))
                 for cell in cells for point in cell.points})


def edge_side(value: float, tried: Sequence[float]) -> str | None:
  """'bottom' or 'top' where ``value`` is an edge of two or more values
  tried, else None: one value tried has no edge (no registered grid tries
  one; the screening study's first rule would have halved it)."""
  if len(tried) < 2 or value not in (tried[0], tried[-1]):
    return None
  return 'top' if value == tried[-1] else 'bottom'


def extension(chosen: float, tried: Sequence[float], times: int,
              top: Sequence[float] = (), *, limit: int | None = None
              ) -> float | None:
  """The value an edge rule adds, or None: not on an edge, or ``limit``
  extensions already added on that side (``times``). The bottom edge
  halves; the top doubles, or takes the next of ``top`` (a bounded
  hyperparameter's registered values)."""
  side = edge_side(chosen, tried)
  if side is None or (limit is not None and times >= limit):
    return None
  if side == 'bottom':
    return chosen / 2
  if not top:
    return chosen * 2
  higher = [v for v in top if v > chosen]
  return higher[0] if higher else None


@dataclasses.dataclass(frozen=True)
class EdgeRule:
  """How a protocol extends a grid whose choice sits on an edge.

  ``hyperparameters`` extend (empty: every one the first cell sweeps, in
  its order); an extension is a ``slab`` (the first cell's other swept
  values again, at the new value) or the chosen point with one value
  changed; at most ``per_side`` extensions per hyperparameter and side and
  ``in_all`` in all (None: no limit); ``double_budget``: a choice at the
  budget's last epoch reruns its point over twice the epochs, once;
  ``exact_ties``: the tie rule of :func:`choose`; ``cell_names``: a
  hyperparameter's name in an extension cell's file name.
  """
  hyperparameters: tuple[str, ...] = ()
  slab: bool = False
  per_side: int | None = None
  in_all: int | None = None
  double_budget: bool = False
  exact_ties: bool = True
  cell_names: Mapping[str, str] = dataclasses.field(default_factory=dict)

  def extending(self, first: Config) -> tuple[str, ...]:
    return self.hyperparameters or tuple(first.sweep)


@dataclasses.dataclass(frozen=True)
class Tuning:
  """A family's tuning cells and choice, and what still sits on an edge of
  the values tried once the rules are spent: (hyperparameter, 'top' or
  'bottom'), and ('epochs', 'top') where 2B won at its last epoch."""
  cells: tuple[TuningCell, ...]
  choice: Choice
  on_edge: tuple[tuple[str, str], ...]


def next_extension(cells: Sequence[TuningCell], rule: EdgeRule,
                   first: Config, added: Mapping[tuple[str, str], int] = {},
                   tops: Mapping[str, Sequence[float]] = {},
                   ) -> tuple[str, str, float, Choice] | None:
  """(hyperparameter, side, value) of the next cell the rule adds, the first
  hyperparameter in order whose rule fires, and the choice it extends;
  None once none does."""
  if rule.in_all is not None and sum(added.values()) >= rule.in_all:
    return None
  choice = choose(cells, exact_ties=rule.exact_ties)
  for hyper in rule.extending(first):
    chosen, tried = getattr(choice.config, hyper), values_tried(cells, hyper)
    side = edge_side(chosen, tried)
    value = extension(chosen, tried, added.get((hyper, side), 0) if side
                      else 0, tops.get(hyper, ()), limit=rule.per_side)
    if side is not None and value is not None:
      return hyper, side, value, choice
  return None


def tune(run: Callable[[pathlib.Path, Config], TuningCell],
         cells_dir: pathlib.Path, name: str, first: Config, rule: EdgeRule,
         log: Callable[[str], object],
         tops: Mapping[str, Sequence[float]] = {}) -> Tuning:
  """The first cell (``first``: the registered grid as one sweep on the
  tuning seeds, validation only), then the rule's extensions until none
  fires; the budget B is ``first.epochs``. ``run(path, config)`` runs or
  reads a cell."""
  budget = first.epochs
  cells = [run(cells_dir / f'tune-{slug(name)}.json', first)]
  added: collections.Counter[tuple[str, str]] = collections.Counter()
  while (step := next_extension(cells, rule, first, added, tops)) is not None:
    hyper, side, value, choice = step
    log(f'  {name}: {hyper} {getattr(choice.config, hyper):g} on an edge; '
        f'adds {value:g}')
    added[hyper, side] += 1
    extended: dict[str, Any] = {hyper: value}
    config = (dataclasses.replace(first, **extended, sweep={
        h: values for h, values in first.sweep.items() if h != hyper})
              if rule.slab else dataclasses.replace(choice.config, **extended))
    cells.append(run(cells_dir / f'tune-{slug(name)}-'
                     f'{rule.cell_names.get(hyper, hyper)}{value:g}.json',
                     config))
  choice = choose(cells, exact_ties=rule.exact_ties)
  if rule.double_budget and choice.epoch == choice.config.epochs == budget:
    log(f'  {name}: chose the last epoch of {budget}; reruns it over '
        f'{2 * budget}')
    cells.append(run(cells_dir / f'tune-{slug(name)}-epochs{2 * budget}.json',
                     dataclasses.replace(choice.config, epochs=2 * budget)))
    choice = choose(cells, exact_ties=rule.exact_ties)
  on_edge = [(h, edge) for h in rule.extending(first)
             if (edge := edge_side(getattr(choice.config, h),
                                   values_tried(cells, h))) is not None]
  if rule.double_budget and choice.epoch == choice.config.epochs == (
      2 * budget):
    on_edge.append(('epochs', 'top'))
  return Tuning(tuple(cells), choice, tuple(on_edge))
