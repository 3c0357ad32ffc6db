"""A resolved run as data: :class:`RunSpec`, what :func:`resolve.resolve`
returns.

Checked values only, in one state: nothing here builds a loss, an optimizer
or a jax array. ``trainer.point`` builds those, next to the compiled programs
(``trainer.programs``), from a spec and the epoch length the data give.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from trainer.config import NUM_CLASSES, Config


@dataclasses.dataclass(frozen=True)
class RunSpec:
  """A checked configuration, the grid of its points and their values.

  A plain run is a sweep of one point. Values that are the same at every
  point are ``constants``; those that vary are the leaves of ``inputs_P``
  (stacked over the points) and reach the compiled programs as ``hp``, one
  point's slice of them: traced there, so every point trains in one vmapped
  program.
  """
  config: Config
  points: tuple[dict[str, Any], ...]  # each point's swept values, grid order
  constants: dict[str, Any]           # values shared by every point, by name
  inputs_P: dict[str, np.ndarray]     # values that vary, stacked: [P, ...]
  distance_PxKxK: np.ndarray          # each point's distance
  # The loss's keyword hyperparameters, of its per-example function and of
  # its probabilities (``losses.LossSpec``), and whether it takes softmax
  # logits (and so mixes with cross-entropy through ``ce_weight``).
  loss_hyperparams: tuple[str, ...]
  probs_hyperparams: tuple[str, ...]
  takes_logits: bool

  @property
  def num_points(self) -> int:
    return len(self.points)

  @property
  def seeds(self) -> list[int]:
    return [self.config.seed + i for i in range(self.config.num_seeds)]

  def value(self, hp: dict[str, Any], name: str) -> Any:
    """A point's value of ``name``: from ``hp`` if it varies, else shared."""
    return hp[name] if name in hp else self.constants[name]

  def loss_kwargs(self, hp: dict[str, Any]) -> dict[str, Any]:
    """``losses.make_loss``'s keyword arguments at one point."""
    mixed = ({'ce_weight': self.value(hp, 'ce_weight')}
             if self.takes_logits else {})
    return {**mixed, **self._kwargs(self.loss_hyperparams, hp)}

  def probs_kwargs(self, hp: dict[str, Any]) -> dict[str, Any]:
    """``losses.make_probs``'s keyword arguments at one point."""
    return self._kwargs(self.probs_hyperparams, hp)

  def _kwargs(self, names: tuple[str, ...],
              hp: dict[str, Any]) -> dict[str, Any]:
    # A hyperparameter that no Config field sets (weighted kappa's
    # stability) keeps the loss's own default.
    static = {'num_classes': NUM_CLASSES, 'link': self.config.link}
    return {n: static[n] if n in static else self.value(hp, n) for n in names
            if n in static or n in hp or n in self.constants}
