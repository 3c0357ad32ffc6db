"""The Flax NNX CNN of the Flax MNIST example, made to train fast on CPU.

conv 32 -> conv 64 (3x3, ReLU, 2x2 average pooling), dense 256, then the
loss's head (:class:`Head`, looked up by :func:`head_for`): ``K`` logits for
softmax losses, ``K - 1`` for CORAL, CORN and CLM, one score for the binomial
head, (score, log temperature) for the Poisson head, (cos, sin) for von Mises.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple, cast

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax
from jax.sharding import NamedSharding, PartitionSpec
from jax.typing import DTypeLike

from losses import get_loss, poisson_head_outputs

NHWC_HWIO = ('NHWC', 'HWIO', 'NHWC')

# See CNN's chunk_size. Tuned side by side at batch 128 on a 2-core EPYC with
# 32 MiB of L3: chunks of 8 and 16 equally fast, 32 little faster than the
# whole batch. `python bench.py` compares it with the whole batch (ours_whole).
CPU_CHUNK_SIZE = 16
# Chunks are unrolled (each is its own code): a cap keeps compiles short.
MAX_CHUNKS = 16


class Head(NamedTuple):
  """The model's last layer for a loss, as data; :class:`CNN` builds it.

  Attributes:
    kind: ``'dense'``: a linear layer of ``num_outputs`` units.
      ``'coral'``: one shared weight vector and ``K - 1`` ordered biases
      (rank consistent). ``'clm'``: a one-unit projection ``f`` and ``K - 1``
      learned thresholds kept ordered by construction (the first plus
      cumulative squares), output ``theta - f``. ``'poisson'``: a one-unit
      score and a learned log temperature, packed by
      ``losses.poisson_head_outputs``.
    num_outputs: the size of the model's output for ``K`` classes.
  """
  kind: str
  num_outputs: Callable[[int], int]


def _num_tasks(num_classes: int) -> int:
  return num_classes - 1


SOFTMAX_HEAD = Head('dense', lambda num_classes: num_classes)
# The registered losses whose outputs are not softmax logits over K classes.
_HEADS = {
    'coral': Head('coral', _num_tasks),
    'corn': Head('dense', _num_tasks),
    'clm': Head('clm', _num_tasks),
    'binomial_head': Head('dense', lambda num_classes: 1),
    'poisson_head': Head('poisson', lambda num_classes: 2),
    'von_mises_head': Head('dense', lambda num_classes: 2),
    # K unconstrained outputs made unimodal by the loss (losses.copoc_probs).
    'copoc_head': Head('dense', lambda num_classes: num_classes),
}


def head_for(loss: str) -> Head:
  """The head a registered loss (a key of ``losses.LOSSES``) trains."""
  spec = get_loss(loss)
  if spec.takes_logits:
    return SOFTMAX_HEAD
  return _HEADS[loss]


def _same_padding(kernel_size: int) -> tuple[int, int]:
  total = kernel_size - 1
  return total // 2, total - total // 2


def shifted_conv_general_dilated(
    lhs: jax.Array, rhs: jax.Array, window_strides: Sequence[int],
    padding: str | Sequence[tuple[int, int]],
    lhs_dilation: Sequence[int] | None = None,
    rhs_dilation: Sequence[int] | None = None,
    dimension_numbers: lax.ConvGeneralDilatedDimensionNumbers = None,
    feature_group_count: int = 1, precision: lax.PrecisionLike = None,
    preferred_element_type: DTypeLike | None = None,
    out_sharding: NamedSharding | PartitionSpec | None = None) -> jax.Array:
  """``lax.conv_general_dilated`` for stride-1 NHWC convs: slices, one matmul.

  XLA:CPU computes the weight gradient of its native convolution about 10x
  slower inside ``lax.scan`` than outside (jax-ml/jax#12868), and a whole epoch
  is one scan here. Gathering the ``kh * kw`` shifted copies of the input and
  multiplying once by the reshaped kernel gives the same result (to float
  rounding) with gradients that are plain matmuls. Only what ``nnx.Conv`` uses
  in this model is supported; anything else raises ``NotImplementedError``.
  """
  del out_sharding  # Single-device layout; sharding comes from the inputs.
  if (any(s != 1 for s in window_strides) or feature_group_count != 1 or
      any(d != 1 for d in (lhs_dilation or ())) or
      any(d != 1 for d in (rhs_dilation or ()))):
    raise NotImplementedError('shifted conv supports stride 1, no dilation '
                              'and feature_group_count=1 only.')
  if dimension_numbers is not None and dimension_numbers != (
      lax.conv_dimension_numbers(lhs.shape, rhs.shape, NHWC_HWIO)):
    raise NotImplementedError('shifted conv supports NHWC/HWIO layouts only.')
  kh, kw, cin, cout = rhs.shape
  pads: list[tuple[int, ...]]
  if padding == 'SAME':
    pads = [_same_padding(kh), _same_padding(kw)]
  elif padding == 'VALID':
    pads = [(0, 0), (0, 0)]
  else:
    # (low, high) pairs; another string (e.g. 'SAME_LOWER') is unsupported.
    pads = [tuple(p) for p in cast(Sequence[tuple[int, int]], padding)]
  x_BxHxWxC = jnp.pad(lhs, ((0, 0), pads[0], pads[1], (0, 0)))
  out_h, out_w = x_BxHxWxC.shape[1] - kh + 1, x_BxHxWxC.shape[2] - kw + 1
  # Patch channels are ordered (i, j, c), matching the HWIO kernel reshape.
  patches_BxHxWxC = jnp.concatenate(
      [x_BxHxWxC[:, i:i + out_h, j:j + out_w, :]
       for i in range(kh) for j in range(kw)], axis=-1)
  return jnp.dot(patches_BxHxWxC, rhs.reshape(kh * kw * cin, cout),
                 precision=precision,
                 preferred_element_type=preferred_element_type)


class CNN(nnx.Module):
  """The Flax MNIST example's CNN.

  Args:
    num_classes: ``K``.
    head: the last layer, :class:`Head` data (see its docstring): a dense
      layer, CORAL's shared weight with ordered biases, CLM's projection with
      learned ordered thresholds, or the Poisson score with a learned
      temperature.
    conv: the convolution primitive: ``lax.conv_general_dilated`` (the stock
      ``nnx.Conv``) or :func:`shifted_conv_general_dilated`; the trainer picks
      one per backend (``programs.conv_settings``).
    chunk_size: run the conv layers on chunks of this many examples (when it
      divides the batch; at most ``MAX_CHUNKS`` chunks, bigger ones if need
      be) and concatenate their features; 0 runs the whole batch at once.
      Per example the math is the same. On CPU it keeps the convs' working
      set in cache: at batch 128 the second conv's patches alone are 29 MB,
      about the L3 cache of a small server CPU, and memory beyond the cache
      streams ~5x slower (5 vs 25 GB/s measured on the 2-core EPYC). The
      chunks are unrolled, not a ``lax.map``: a scan stacks every chunk's
      saved activations into one buffer for the backward pass, and was
      6-17 % slower.
    rngs: parameter initialisation.
  """

  def __init__(self, num_classes: int, *, head: Head = SOFTMAX_HEAD,
               conv: Callable[..., jax.Array] = lax.conv_general_dilated,
               chunk_size: int = 0, rngs: nnx.Rngs) -> None:
    if chunk_size < 0:
      raise ValueError(f'chunk_size must be >= 0, got {chunk_size}.')
    if head.kind not in HEAD_KINDS:
      raise ValueError(f'unknown head kind {head.kind!r}; one of '
                       f'{", ".join(HEAD_KINDS)}.')
    self.chunk_size = chunk_size
    self.head_kind = head.kind
    self.conv1 = nnx.Conv(1, 32, (3, 3), conv_general_dilated=conv, rngs=rngs)
    self.conv2 = nnx.Conv(32, 64, (3, 3), conv_general_dilated=conv, rngs=rngs)
    self.hidden = nnx.Linear(7 * 7 * 64, 256, rngs=rngs)
    num_outputs = head.num_outputs(num_classes)
    if head.kind == 'dense':
      self.out = nnx.Linear(256, num_outputs, rngs=rngs)
    elif head.kind == 'coral':
      self.out = nnx.Linear(256, 1, use_bias=False, rngs=rngs)
      # CORAL's initialisation: decreasing biases, rank-ordered from the start.
      self.out_biases = nnx.Param(
          jnp.arange(num_outputs, 0, -1, dtype=jnp.float32) / num_outputs)
    elif head.kind == 'clm':
      # dlordinal's CLM parametrisation: theta_0 = b, theta_k = theta_{k-1} +
      # a_k^2, so the thresholds stay ordered whatever the optimizer does.
      self.out = nnx.Linear(256, 1, use_bias=False, rngs=rngs)
      self.first_threshold = nnx.Param(jnp.zeros((1,), jnp.float32))
      self.threshold_gaps = nnx.Param(jnp.ones((num_outputs - 1,), jnp.float32))
    else:  # poisson: the temperature is learned, as in dlordinal's PoissonLayer
      self.out = nnx.Linear(256, 1, rngs=rngs)
      self.log_temperature = nnx.Param(jnp.zeros((1,), jnp.float32))

  def thresholds(self) -> jax.Array:
    """The CLM head's ordered thresholds, shape ``[K - 1]``."""
    gaps = self.threshold_gaps[...]**2
    return self.first_threshold[...] + jnp.concatenate(
        [jnp.zeros((1,), gaps.dtype), jnp.cumsum(gaps)])

  def features(self, images_BxHxWx1: jax.Array) -> jax.Array:
    """The conv layers: images to flattened ``[B, 7 * 7 * 64]`` features."""
    x: jax.Array = images_BxHxWx1.astype(jnp.float32) / 255.0
    x = nnx.avg_pool(nnx.relu(self.conv1(x)), (2, 2), strides=(2, 2))
    x = nnx.avg_pool(nnx.relu(self.conv2(x)), (2, 2), strides=(2, 2))
    return x.reshape(x.shape[0], -1)

  def num_chunks(self, batch: int) -> int:
    """How many chunks the conv layers of a batch of this size run in."""
    if self.chunk_size == 0 or batch % self.chunk_size:
      return 1
    chunks = batch // self.chunk_size
    return max(n for n in range(1, MAX_CHUNKS + 1) if chunks % n == 0)

  def __call__(self, images_BxHxWx1: jax.Array) -> jax.Array:
    chunks = jnp.split(images_BxHxWx1, self.num_chunks(images_BxHxWx1.shape[0]))
    x = jnp.concatenate([self.features(chunk) for chunk in chunks])
    out_BxO = self.out(nnx.relu(self.hidden(x)))
    if self.head_kind == 'coral':
      return out_BxO + self.out_biases[None, :]
    if self.head_kind == 'clm':
      return self.thresholds()[None, :] - out_BxO
    if self.head_kind == 'poisson':
      log_t_Bx1 = jnp.broadcast_to(self.log_temperature[None, :], out_BxO.shape)
      return poisson_head_outputs(out_BxO, log_t_Bx1)
    return out_BxO


HEAD_KINDS = ('dense', 'coral', 'clm', 'poisson')
