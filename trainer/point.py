"""What one point of a run computes inside the compiled programs, built from
its :class:`spec.RunSpec`: the loss, the probabilities, the cost that Bayes
decoding minimises and the optimizer.

``hp`` is one point's slice of ``RunSpec.inputs_P`` (traced inside the
programs, so a sweep's points share one program); values every point shares
come from ``RunSpec.constants``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

import losses
from trainer.config import Config
from trainer.spec import RunSpec


def loss(spec: RunSpec, outputs: jax.Array, labels: jax.Array,
         hp: dict[str, Any]) -> jax.Array:
  """Per-example losses of one point; ``[B]``."""
  return losses.make_loss(spec.config.loss, **spec.loss_kwargs(hp))(outputs,
                                                                    labels)


def probs(spec: RunSpec, outputs: jax.Array, hp: dict[str, Any]) -> jax.Array:
  """Class probabilities of one point's model outputs; ``[B, K]``."""
  return losses.make_probs(spec.config.loss, **spec.probs_kwargs(hp))(outputs)


def decode_distance(spec: RunSpec, hp: dict[str, Any]) -> jax.Array:
  """The cost ``[K, K]`` one point's Bayes decoding minimises."""
  return jnp.asarray(spec.value(hp, 'decode_distance'))


def optimizer(spec: RunSpec, steps_per_epoch: int,
              hp: dict[str, Any]) -> optax.GradientTransformation:
  """One point's optimizer over epochs of ``steps_per_epoch`` steps."""
  return make_optimizer(spec.config, steps_per_epoch,
                        learning_rate=spec.value(hp, 'learning_rate'),
                        weight_decay=spec.value(hp, 'weight_decay'))


def make_optimizer(config: Config, steps_per_epoch: int, *,
                   learning_rate: float | jax.Array,
                   weight_decay: float | jax.Array,
                   ) -> optax.GradientTransformation:
  """AdamW or Nesterov SGD with the config's learning-rate schedule.

  ``learning_rate`` (the peak) and ``weight_decay`` may be traced: a sweep
  builds each point's optimizer inside the compiled step. The state's
  structure does not depend on them.
  """
  total = config.epochs * steps_per_epoch
  lr: float | jax.Array | Callable[[jax.Array], jax.Array]  # optax's schedule
  if config.schedule == 'constant' or total == 1:
    # A one-step run has no room for a warm-up or a decay: its one step
    # takes the peak (optax's cosine decay needs at least one step).
    lr = learning_rate
  else:
    warmup = min(int(config.warmup_epochs * steps_per_epoch), total - 1)
    # The shape times the peak: optax's schedule branches on a concrete peak.
    shape: Callable[[jax.Array], jax.Array] = (
        optax.warmup_cosine_decay_schedule(0.0, 1.0, max(warmup, 1), total))

    def lr(count: jax.Array) -> jax.Array:
      return learning_rate * shape(count)

  if config.optimizer == 'adam':
    return optax.adamw(lr, weight_decay=weight_decay)
  return optax.sgd(lr, momentum=0.9, nesterov=True)
