"""The compiled programs: optimizer, parameters, one epoch, evaluation.

Shape letters used across the code: B batch (any batch shape in losses.py),
K classes, T = K - 1 thresholds or binary tasks, N images of a split, M images
a seed trains on, S seeds (models vmapped together), E steps of an epoch,
H, W, C image height, width, channels.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax import lax
from jax.sharding import NamedSharding, PartitionSpec as P

import losses
import metrics
from config import (NUM_CLASSES, Config, load_distance, make_loss_fn,
                    make_probs_fn)
from model import CNN, CPU_CHUNK_SIZE, shifted_conv_general_dilated

EVAL_BATCH = 1000  # images per forward pass in evaluation; bounds memory



def make_optimizer(config: Config, steps_per_epoch: int):
  """AdamW or Nesterov SGD with the config's learning-rate schedule."""
  total = config.epochs * steps_per_epoch
  if config.schedule == 'constant':
    lr = config.learning_rate
  else:
    warmup = min(int(config.warmup_epochs * steps_per_epoch), total - 1)
    lr = optax.warmup_cosine_decay_schedule(
        0.0, config.learning_rate, max(warmup, 1), total)
  if config.optimizer == 'adam':
    return optax.adamw(lr, weight_decay=config.weight_decay)
  return optax.sgd(lr, momentum=0.9, nesterov=True)


def conv_settings() -> tuple[Callable, int]:
  """The convolution primitive and conv chunk size for this backend.

  XLA:CPU computes the native convolution's weight gradient about 10x slower
  inside ``lax.scan`` (jax-ml/jax#12868), and an epoch here is one scan: on
  CPU the conv is shifted slices and one matmul
  (``model.shifted_conv_general_dilated``), run on chunks of the batch that
  fit the cache when the CPU is the lone device (with several devices each
  already holds a slice). Accelerators get ``lax.conv_general_dilated`` on
  the whole batch: what cuDNN and TPUs are built for.
  """
  if jax.default_backend() != 'cpu':
    return lax.conv_general_dilated, 0
  chunk_size = CPU_CHUNK_SIZE if jax.device_count() == 1 else 0
  return shifted_conv_general_dilated, chunk_size


def eval_graphdef(config: Config):
  """The model for evaluation: the stock convolution on whole batches.

  XLA:CPU's native convolution is slow only in the weight gradient inside a
  scan; forward, in passes of 1 000 images, it scored the 10 000 test images
  in 1.10 s against 1.96 s for the shifted conv in chunks of 16 (passes of
  128), interleaved, medians of 5. The parameters are the same.
  """
  model = CNN(NUM_CLASSES, head=losses.get_loss(config.loss).head,
              conv=lax.conv_general_dilated, rngs=nnx.Rngs(0))
  return nnx.split(model)[0]


def init_params(config: Config, seeds, chunk_size: int | None = None):
  """Graph definition and the params of each seed, stacked on axis 0.

  ``chunk_size`` overrides :func:`conv_settings`' (``bench.py`` uses it).
  """
  spec = losses.get_loss(config.loss)
  conv, default_chunk_size = conv_settings()
  if chunk_size is None:
    chunk_size = default_chunk_size
  states = []
  for seed in seeds:
    model = CNN(NUM_CLASSES, head=spec.head, conv=conv, chunk_size=chunk_size,
                rngs=nnx.Rngs(seed))
    graphdef, state = nnx.split(model)
    states.append(state)
  return graphdef, jax.tree.map(lambda *xs: jnp.stack(xs), *states)


def build_train_epoch(graphdef, tx, loss_fn, mesh=None, on_step=None):
  """One seed's epoch: every step in one ``lax.scan`` over its batches.

  ``images_ExBxHxWx1`` and ``labels_ExB`` are the epoch's shuffled batches,
  made on the host (``train.epoch_batches``): one gather per epoch, and each
  process of a multi-process run makes only its own rows of every batch.
  With a ``mesh``, the batch axis is split across its devices (data
  parallelism); parameters and optimizer state stay replicated, and XLA
  inserts the gradient all-reduce. With ``on_step``, the compiled epoch calls
  ``on_step(step, loss)`` on the host about every 1 % of its steps (once per
  seed under vmap): progress without splitting the program.
  """

  def shard_batch(x):
    if mesh is None:
      return x
    return lax.with_sharding_constraint(x, NamedSharding(mesh, P('data')))

  def train_epoch(params, opt_state, images_ExBxHxWx1, labels_ExB):
    steps = labels_ExB.shape[0]
    every = max(1, steps // 100)

    def step(carry, xs):
      images_B, labels_B, step_index = xs
      params, opt_state = carry
      images_B, labels_B = shard_batch(images_B), shard_batch(labels_B)

      def mean_loss(params):
        logits = nnx.merge(graphdef, params)(images_B)
        return jnp.mean(loss_fn(logits, labels_B))

      loss, grads = jax.value_and_grad(mean_loss)(params)
      updates, opt_state = tx.update(grads, opt_state, params)
      if on_step is not None:
        lax.cond((step_index + 1) % every == 0,
                 lambda: jax.debug.callback(on_step, step_index, loss),
                 lambda: None)
      return (optax.apply_updates(params, updates), opt_state), loss

    (params, opt_state), loss_E = lax.scan(
        step, (params, opt_state),
        (images_ExBxHxWx1, labels_ExB, jnp.arange(steps)))
    return params, opt_state, loss_E

  return train_epoch


def build_evaluate(graphdef, probs_fn, distance_KxK):
  """One seed's test predictions and metrics, argmax and Bayes-decoded."""
  linear = losses.linear_distance(NUM_CLASSES)
  cyclic = losses.cyclic_distance(NUM_CLASSES)

  def score(preds, labels):
    return {
        'accuracy': metrics.accuracy(preds, labels),
        'mean_digit_distance': metrics.mean_distance(preds, labels,
                                                     distance=linear),
        'far_error_rate': metrics.far_error_rate(preds, labels),
        'cyclic_error': metrics.mean_distance(preds, labels, distance=cyclic),
        'off_by_one_accuracy': metrics.off_by_one_accuracy(preds, labels),
        'qwk': metrics.quadratic_weighted_kappa(preds, labels,
                                                num_classes=NUM_CLASSES),
    }

  def evaluate(params, images, labels):
    model = nnx.merge(graphdef, params)
    # Passes of a fixed batch, the last one padded.
    n, batch = labels.shape[0], EVAL_BATCH
    passes = -(-n // batch)
    images_PxBxHxWx1 = jnp.pad(
        images, ((0, passes * batch - n),) + ((0, 0),) * 3).reshape(
            passes, batch, *images.shape[1:])
    logits = lax.map(model, images_PxBxHxWx1).reshape(passes * batch, -1)[:n]
    probs_NxK = probs_fn(logits)
    argmax_N = jnp.argmax(probs_NxK, axis=-1)
    bayes_N = metrics.bayes_decision(probs_NxK, distance=distance_KxK)
    scores = {'argmax': score(argmax_N, labels),
              'bayes': score(bayes_N, labels)}
    return scores, probs_NxK, argmax_N, bayes_N

  return evaluate


class RunPrograms(NamedTuple):
  """What train.py runs: the seeds' first state and its compiled programs."""
  params: Any     # each seed's parameters, stacked on axis 0
  opt_state: Any  # likewise
  # (params, opt_state, images_SxExBxHxWx1, labels_SxExB)
  #   -> (params, opt_state, loss_SxE); donates params and opt_state.
  train_epoch: Callable
  # (params, images_N, labels_N) -> (scores, probs_SxNxK, argmax_SxN, bayes_SxN)
  evaluate: Callable


def build_programs(config: Config, seeds, steps_per_epoch: int, mesh=None,
                   on_step=None) -> RunPrograms:
  """The seeds' initial state and the jitted, seed-vmapped epoch and evaluation.

  train.py and bench.py both run exactly these programs.
  """
  distance_KxK = load_distance(config.distance)
  graphdef, params = init_params(config, seeds)
  tx = make_optimizer(config, steps_per_epoch)
  train_epoch = jax.jit(
      jax.vmap(build_train_epoch(graphdef, tx,
                                 make_loss_fn(config, distance_KxK), mesh,
                                 on_step=on_step)),
      donate_argnums=(0, 1))
  evaluate = jax.jit(jax.vmap(
      build_evaluate(eval_graphdef(config),
                     make_probs_fn(config, distance_KxK), distance_KxK),
      in_axes=(0, None, None)))
  return RunPrograms(params, jax.vmap(tx.init)(params), train_epoch, evaluate)
