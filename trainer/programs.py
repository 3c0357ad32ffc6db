"""The compiled programs: parameters, one epoch, evaluation.

A run trains P points (a sweep's hyperparameters; 1 for a plain run) x S seeds
of the model together: one epoch is one program, vmapped over both.

Shapes are suffixes of array names in the legend losses.py states: B batch
(any batch shape in losses.py), K classes, T = K - 1 thresholds or binary
tasks, O outputs of a model's head, N images of a split, M images a seed
trains on, S seeds, P points of a hyperparameter sweep, E steps of an epoch,
Q passes of an evaluation, H, W, C image height, width, channels; a digit is
that size, as in ``score_Bx1``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax import lax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import losses
import metrics
from model import CNN, CPU_CHUNK_SIZE, head_for, shifted_conv_general_dilated
from trainer import point
from trainer.config import NUM_CLASSES
from trainer.spec import RunSpec

EVAL_BATCH = 1000  # images per forward pass in evaluation; bounds memory


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


def eval_graphdef(spec: RunSpec) -> nnx.GraphDef[CNN]:
  """The model for evaluation: the stock convolution on whole batches.

  XLA:CPU's native convolution is slow only in the weight gradient inside a
  scan; forward, in passes of 1 000 images, it scored the 10 000 test images
  in 1.10 s against 1.96 s for the shifted conv in chunks of 16 (passes of
  128), interleaved, medians of 5. The parameters are the same.
  """
  model = CNN(NUM_CLASSES, head=head_for(spec.config.loss),
              conv=lax.conv_general_dilated,
              rngs=nnx.Rngs(0))
  return nnx.split(model)[0]


def init_params(spec: RunSpec, chunk_size: int | None = None,
                ) -> tuple[nnx.GraphDef[CNN], nnx.State]:
  """Graph definition and the params of each seed, stacked on axis 0."""
  conv, default_chunk_size = conv_settings()
  if chunk_size is None:
    chunk_size = default_chunk_size
  head = head_for(spec.config.loss)
  states = []
  for seed in spec.seeds:
    model = CNN(NUM_CLASSES, head=head, conv=conv, chunk_size=chunk_size,
                rngs=nnx.Rngs(seed))
    graphdef, state = nnx.split(model)
    states.append(state)
  return graphdef, jax.tree.map(lambda *xs: jnp.stack(xs), *states)


def build_train_epoch(
    graphdef: nnx.GraphDef[CNN], spec: RunSpec, steps_per_epoch: int,
    mesh: Mesh | None = None,
    on_step: Callable[[Any, Any], None] | None = None,
) -> Callable[..., tuple[nnx.State, Any, jax.Array]]:
  """One model's epoch: every step in one ``lax.scan`` over its batches.

  ``images_ExBxHxWxC`` and ``labels_ExB`` are the epoch's shuffled batches,
  made on the host (``run_data.epoch_batches``): one gather per epoch, and
  each process of a multi-process run makes only its own rows of every batch.
  ``hp`` holds the hyperparameters that vary across a sweep's points
  (``RunSpec.inputs_P``, one point's values). With a ``mesh``, the batch axis is
  split across its devices (data parallelism); parameters and optimizer state
  stay replicated, and XLA inserts the gradient all-reduce. With ``on_step``,
  the compiled epoch calls ``on_step(step, loss)`` on the host about every
  1 % of its steps (once per model under vmap): progress without splitting
  the program.
  """

  def shard_batch(x: jax.Array) -> jax.Array:
    if mesh is None:
      return x
    sharded: jax.Array = lax.with_sharding_constraint(
        x, NamedSharding(mesh, P('data')))
    return sharded

  def train_epoch(params: nnx.State, opt_state: Any, hp: dict[str, jax.Array],
                  images_ExBxHxWxC: jax.Array, labels_ExB: jax.Array,
                  ) -> tuple[nnx.State, Any, jax.Array]:
    steps = labels_ExB.shape[0]
    every = max(1, steps // 100)
    tx = point.optimizer(spec, steps_per_epoch, hp)

    def step(carry: tuple[nnx.State, Any],
             xs: tuple[jax.Array, jax.Array, jax.Array],
             ) -> tuple[tuple[nnx.State, Any], jax.Array]:
      images_BxHxWxC, labels_B, step_index = xs
      params, opt_state = carry
      images_BxHxWxC = shard_batch(images_BxHxWxC)
      labels_B = shard_batch(labels_B)

      def mean_loss(params: nnx.State) -> jax.Array:
        outputs_BxO = nnx.merge(graphdef, params)(images_BxHxWxC)
        return jnp.mean(point.loss(spec, outputs_BxO, labels_B, hp))

      loss, grads = jax.value_and_grad(mean_loss)(params)
      updates, opt_state = tx.update(grads, opt_state, params)
      if on_step is not None:
        lax.cond((step_index + 1) % every == 0,
                 lambda: jax.debug.callback(on_step, step_index, loss),
                 lambda: None)
      return (optax.apply_updates(params, updates), opt_state), loss

    (params, opt_state), loss_E = lax.scan(
        step, (params, opt_state),
        (images_ExBxHxWxC, labels_ExB, jnp.arange(steps)))
    return params, opt_state, loss_E

  return train_epoch


def score(preds_N: jax.Array, labels_N: jax.Array) -> dict[str, jax.Array]:
  """Every metric the run reports, for one model's predictions."""
  linear = losses.linear_distance(NUM_CLASSES)
  cyclic = losses.cyclic_distance(NUM_CLASSES)
  return {
      'accuracy': metrics.accuracy(preds_N, labels_N),
      'mean_digit_distance': metrics.mean_distance(preds_N, labels_N,
                                                   distance=linear),
      'far_error_rate': metrics.far_error_rate(preds_N, labels_N),
      'error_rate': 1 - metrics.accuracy(preds_N, labels_N),
      'mean_error_distance': metrics.mean_error_distance(
          preds_N, labels_N, distance=linear),
      'far_share_of_errors': metrics.far_share_of_errors(preds_N, labels_N),
      'cyclic_error': metrics.mean_distance(preds_N, labels_N, distance=cyclic),
      'off_by_one_accuracy': metrics.off_by_one_accuracy(preds_N, labels_N),
      'qwk': metrics.quadratic_weighted_kappa(preds_N, labels_N,
                                              num_classes=NUM_CLASSES),
  }


class Evaluation(NamedTuple):
  """One split scored by every model: [P, S] scores, [P, S, N, ...] outputs."""
  scores: dict[str, dict[str, Any]]  # decoding -> metric -> [P, S]
  probs_PxSxNxK: Any
  argmax_PxSxN: Any
  bayes_PxSxN: Any


def models_in_sequence() -> bool:
  """Whether evaluation runs the models one after the other.

  Vmapped, the models' convolutions become one grouped convolution with
  per-model weights, which XLA:CPU ran 28x slower than one model's for 5
  seeds (22.3 s against 0.80 s for the 10 000 test images); one after the
  other (``lax.map``), 5 seeds cost 5x one seed. Accelerators keep the
  vmap, which gives them all the models' work at once.
  """
  return jax.default_backend() == 'cpu'


def build_evaluate(graphdef: nnx.GraphDef[CNN], spec: RunSpec,
                   in_sequence: bool | None = None,
                   ) -> Callable[..., Evaluation]:
  """Every model's predictions and metrics on a split, argmax and Bayes.

  Each model sees the split in passes of ``EVAL_BATCH`` images; the models
  run one after the other or vmapped, per :func:`models_in_sequence` unless
  ``in_sequence`` says.
  """
  if in_sequence is None:
    in_sequence = models_in_sequence()
  # Maps a function over the models; the outputs, stacked, keep its type.
  over: Callable[[Callable[[Any], Evaluation], Any], Evaluation] = (
      lax.map if in_sequence else (lambda f, xs: jax.vmap(f)(xs)))

  def one_model(params: nnx.State, hp: dict[str, jax.Array],
                images_NxHxWxC: jax.Array, labels_N: jax.Array) -> Evaluation:
    model = nnx.merge(graphdef, params)
    n, batch = labels_N.shape[0], EVAL_BATCH
    passes = -(-n // batch)  # the last pass padded
    images_QxBxHxWxC = jnp.pad(
        images_NxHxWxC, ((0, passes * batch - n),) + ((0, 0),) * 3).reshape(
            passes, batch, *images_NxHxWxC.shape[1:])
    outputs_NxO = lax.map(model, images_QxBxHxWxC).reshape(
        passes * batch, -1)[:n]
    probs_NxK = point.probs(spec, outputs_NxO, hp)
    argmax_N = jnp.argmax(probs_NxK, axis=-1)
    bayes_N = metrics.bayes_decision(probs_NxK,
                                      distance=point.decode_distance(spec, hp))
    scores = {'argmax': score(argmax_N, labels_N),
              'bayes': score(bayes_N, labels_N)}
    return Evaluation(scores, probs_NxK, argmax_N, bayes_N)

  def evaluate(params_PxS: nnx.State, hp_P: dict[str, jax.Array],
               images_NxHxWxC: jax.Array, labels_N: jax.Array) -> Evaluation:
    def one_point(xs: tuple[nnx.State, dict[str, jax.Array]]) -> Evaluation:
      params_S, hp = xs
      return over(
          lambda params: one_model(params, hp, images_NxHxWxC, labels_N),
          params_S)
    return over(one_point, (params_PxS, hp_P))

  return evaluate


class RunPrograms(NamedTuple):
  """What train.py runs: every model's first state and the compiled programs."""
  params: Any     # [P, S, ...]: each point's copy of each seed's parameters
  opt_state: Any  # likewise
  # (params, opt_state, hp_P, images_SxExBxHxWxC, labels_SxExB)
  #   -> (params, opt_state, loss_PxSxE); donates params and opt_state.
  train_epoch: jax.stages.Wrapped
  # (params, hp_P, images_NxHxWxC, labels_N) -> Evaluation
  evaluate: jax.stages.Wrapped


def build_programs(spec: RunSpec, steps_per_epoch: int,
                   mesh: Mesh | None = None,
                   on_step: Callable[[Any, Any], None] | None = None,
                   chunk_size: int | None = None) -> RunPrograms:
  """The models' initial state and the jitted, vmapped epoch and evaluation.

  Every point of ``spec`` starts from the same parameters for a given seed, as
  its separate run would; the optimizer's schedule spans ``spec.config.epochs``
  epochs of ``steps_per_epoch`` steps (``run_data.RunData.steps_per_epoch``).
  train.py and the bench both run exactly these programs; ``chunk_size``
  overrides :func:`conv_settings`' (the bench).
  """
  graphdef, params_S = init_params(spec, chunk_size)
  params = jax.tree.map(
      lambda x: jnp.broadcast_to(x, (spec.num_points, *x.shape)), params_S)
  # The state's structure is the same at every point: the first one's serves.
  first_point = {k: v[0] for k, v in spec.inputs_P.items()}
  opt_state = jax.vmap(jax.vmap(
      point.optimizer(spec, steps_per_epoch, first_point).init))(params)
  over_seeds = jax.vmap(build_train_epoch(graphdef, spec, steps_per_epoch,
                                          mesh, on_step),
                        in_axes=(0, 0, None, 0, 0))
  train_epoch = jax.jit(jax.vmap(over_seeds, in_axes=(0, 0, 0, None, None)),
                        donate_argnums=(0, 1))
  evaluate = jax.jit(build_evaluate(eval_graphdef(spec), spec))
  return RunPrograms(params, opt_state, train_epoch, evaluate)
