"""The compiled programs: optimizer, parameters, one epoch, evaluation.

Shape letters used across the code: B batch (any batch shape in losses.py),
K classes, T = K - 1 thresholds or binary tasks, N images of a split, M images
a seed trains on, S seeds (models vmapped together), E steps of an epoch,
H, W, C image height, width, channels.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax import lax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

import losses
import metrics
from config import NUM_CLASSES, Config
from model import CNN, CPU_CHUNK_SIZE, shifted_conv_general_dilated

EVAL_CHUNK = 1000  # images per forward pass in evaluation; bounds memory


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


def data_mesh() -> Mesh | None:
  """A 1-D mesh over every device, or None on a single device."""
  if jax.device_count() == 1:
    return None
  return Mesh(np.asarray(jax.devices()), ('data',))


def build_train_epoch(graphdef, tx, loss_fn, steps_per_epoch, batch_size,
                      mesh=None, on_step=None):
  """One seed's epoch: shuffle its training subset, then every step in one
  lax.scan. ``labels`` are the seed's (possibly noisy) labels of the whole
  pool and ``subset`` the pool indices it trains on.

  With a ``mesh``, each batch is split across its devices (data parallelism);
  parameters and optimizer state stay replicated, and XLA inserts the gradient
  all-reduce. With ``on_step``, the compiled epoch calls
  ``on_step(step, loss)`` on the host about every 1 % of its steps (once per
  seed under vmap): progress without splitting the program.
  """
  every = max(1, steps_per_epoch // 100)

  def shard_batch(x):
    if mesh is None:
      return x
    return lax.with_sharding_constraint(x, NamedSharding(mesh, P('data')))

  def train_epoch(params, opt_state, images, labels, subset, key):
    order = subset[jax.random.permutation(key, subset.shape[0])]
    batches_ExB = order[:steps_per_epoch * batch_size].reshape(
        steps_per_epoch, batch_size)

    def step(carry, xs):
      idx_B, step_index = xs
      params, opt_state = carry
      images_B, labels_B = shard_batch(images[idx_B]), shard_batch(labels[idx_B])

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
        step, (params, opt_state), (batches_ExB, jnp.arange(steps_per_epoch)))
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
    logits = lax.map(model, images.reshape(-1, 1, 28, 28, 1),
                     batch_size=EVAL_CHUNK)
    probs_NxK = probs_fn(logits.reshape(labels.shape[0], -1))
    argmax_N = jnp.argmax(probs_NxK, axis=-1)
    bayes_N = metrics.bayes_decision(probs_NxK, distance=distance_KxK)
    scores = {'argmax': score(argmax_N, labels),
              'bayes': score(bayes_N, labels)}
    return scores, probs_NxK, argmax_N, bayes_N

  return evaluate
