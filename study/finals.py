"""A protocol's finals: a choice retrained on fresh seeds up to its chosen
epoch and scored once, as one program or in groups of seeds."""

from __future__ import annotations

import dataclasses
from typing import Any

from study.records import Choice
from trainer.config import Config


def final_config(choice: Choice, *, seed: int, num_seeds: int,
                 shifted: bool) -> Config:
  """The chosen point on fresh seeds, trained up to the chosen epoch."""
  config = choice.config
  return dataclasses.replace(
      config, seed=seed, num_seeds=num_seeds, score_test=True,
      shifted_test=shifted, eval_every=choice.epoch,
      stop_after=None if choice.epoch == config.epochs else choice.epoch)


def final_groups(choice: Choice, *, first_seed: int, groups: int,
                 group_size: int, shifted: bool, **fields: Any
                 ) -> list[Config]:
  """The finals as ``groups`` programs of ``group_size`` seeds from
  ``first_seed``, each with the protocol's data ``fields`` (the
  confirmation split, the shifted sets)."""
  return [dataclasses.replace(
      final_config(choice, seed=first_seed + g * group_size,
                   num_seeds=group_size, shifted=shifted), **fields)
          for g in range(groups)]
