"""The fast conv must keep the model's math: equal to lax.conv / nnx.Conv."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax import lax

import losses
from model import (
  CNN,
  MAX_CHUNKS,
  NHWC_HWIO,
  Head,
  head_for,
  shifted_conv_general_dilated,
)


@pytest.mark.parametrize('kernel, cin, cout, padding', [
    ((3, 3), 1, 32, 'SAME'),
    pytest.param((3, 3), 32, 64, 'SAME', marks=pytest.mark.slow),
    pytest.param((5, 3), 4, 8, 'SAME', marks=pytest.mark.slow),
    pytest.param((3, 3), 3, 5, 'VALID', marks=pytest.mark.slow),
    ((3, 3), 3, 5, ((2, 0), (1, 1))),
])
def test_shifted_conv_equals_lax_conv(kernel, cin, cout, padding):
  kx, kw = jax.random.split(jax.random.key(0))
  x = jax.random.normal(kx, (4, 14, 12, cin))
  w = jax.random.normal(kw, kernel + (cin, cout))
  dn = lax.conv_dimension_numbers(x.shape, w.shape, NHWC_HWIO)
  want = lax.conv_general_dilated(x, w, (1, 1), padding, dimension_numbers=dn,
                                  precision=lax.Precision.HIGHEST)
  got = shifted_conv_general_dilated(x, w, (1, 1), padding,
                                     dimension_numbers=dn,
                                     precision=lax.Precision.HIGHEST)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_shifted_conv_rejects_what_it_does_not_implement():
  x, w = jnp.zeros((1, 8, 8, 2)), jnp.zeros((3, 3, 2, 2))
  with pytest.raises(NotImplementedError, match='stride 1'):
    shifted_conv_general_dilated(x, w, (2, 2), 'SAME')


HEAD_LOSSES = {  # loss name -> its hyperparameters
    'expected_cost': {'distance': losses.linear_distance(10)},
    'coral': {}, 'clm': {'link': 'logit'},
    'binomial_head': {'num_classes': 10}, 'poisson_head': {'num_classes': 10},
    'von_mises_head': {'num_classes': 10},
}


# Every head (softmax, CLM, Poisson, ...) in the slow lane: a CNN's
# compile each.
@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(HEAD_LOSSES))
def test_cnn_logits_and_gradients_match_stock_nnx_conv(name):
  head = head_for(name)
  fast = CNN(10, head=head, conv=shifted_conv_general_dilated, rngs=nnx.Rngs(0))
  stock = CNN(10, head=head, conv=lax.conv_general_dilated, rngs=nnx.Rngs(0))
  rng = np.random.default_rng(0)
  images = jnp.asarray(rng.integers(0, 256, (8, 28, 28, 1), np.uint8))
  labels = jnp.asarray(rng.integers(0, 10, 8).astype(np.int32))
  loss_fn = losses.make_loss(name, **HEAD_LOSSES[name])

  def loss_and_grads(model):
    graphdef, params = nnx.split(model)

    def mean_loss(params):
      logits = nnx.merge(graphdef, params)(images)
      return jnp.mean(loss_fn(logits, labels)), logits

    with jax.default_matmul_precision('highest'):
      return jax.jit(jax.value_and_grad(mean_loss, has_aux=True))(params)

  (loss_f, logits_f), grads_f = loss_and_grads(fast)
  (loss_s, logits_s), grads_s = loss_and_grads(stock)
  assert logits_f.shape == (8, head.num_outputs(10))
  np.testing.assert_allclose(logits_f, logits_s, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(loss_f, loss_s, rtol=1e-5)
  for g_f, g_s in zip(jax.tree.leaves(grads_f), jax.tree.leaves(grads_s),
                      strict=True):
    assert np.any(g_f != 0)  # every head parameter is trained
    np.testing.assert_allclose(g_f, g_s, rtol=1e-4, atol=1e-6)


IMAGES = jnp.asarray(np.random.default_rng(1).integers(0, 256, (5, 28, 28, 1),
                                                        np.uint8))


def test_coral_head_starts_rank_consistent():
  model = CNN(10, head=head_for('coral'), rngs=nnx.Rngs(1))
  probs_gt = jax.nn.sigmoid(model(IMAGES))
  assert np.all(np.diff(np.asarray(probs_gt), axis=-1) < 0)


def test_clm_thresholds_stay_ordered_whatever_their_parameters():
  model = CNN(10, head=head_for('clm'), rngs=nnx.Rngs(2))
  model.threshold_gaps[...] = jnp.asarray(
      np.random.default_rng(2).normal(0, 3, 8), jnp.float32)
  model.first_threshold[...] = jnp.array([-4.0])
  thresholds = np.asarray(model.thresholds())
  assert thresholds.shape == (9,) and thresholds[0] == -4.0
  assert np.all(np.diff(thresholds) >= 0)
  z = np.asarray(model(IMAGES))  # theta - f: the same f for every threshold
  minus_f = z - thresholds[None, :]
  np.testing.assert_allclose(minus_f, np.broadcast_to(minus_f[:, :1], z.shape),
                             atol=1e-4)


def test_poisson_head_outputs_its_learned_log_temperature():
  model = CNN(10, head=head_for('poisson_head'), rngs=nnx.Rngs(3))
  model.log_temperature[...] = jnp.array([np.log(0.3)], jnp.float32)
  outputs = np.asarray(model(IMAGES))
  assert outputs.shape == (5, 2)
  np.testing.assert_allclose(outputs[:, 1], np.log(0.3), rtol=1e-6)


def test_unknown_head_kind_is_an_error():
  with pytest.raises(ValueError, match="unknown head kind 'mixture'"):
    CNN(10, head=Head('mixture', lambda k: k), rngs=nnx.Rngs(0))


@pytest.mark.parametrize('batch, chunk_size', [
    (8, 4), pytest.param(8, 2, marks=pytest.mark.slow),
    pytest.param(6, 4, marks=pytest.mark.slow)])
def test_chunked_conv_layers_keep_logits_and_gradients(batch, chunk_size):
  # (6, 4): the chunk does not divide the batch, so the batch runs whole.
  whole = CNN(10, rngs=nnx.Rngs(0))
  chunked = CNN(10, chunk_size=chunk_size, rngs=nnx.Rngs(0))
  rng = np.random.default_rng(2)
  images = jnp.asarray(rng.integers(0, 256, (batch, 28, 28, 1), np.uint8))
  labels = jnp.asarray(rng.integers(0, 10, batch).astype(np.int32))

  def loss_and_grads(model):
    graphdef, params = nnx.split(model)

    def mean_loss(params):
      logits = nnx.merge(graphdef, params)(images)
      return jnp.mean(losses.soft_label_cross_entropy(
          logits, labels, distance=losses.cyclic_distance(10))), logits

    return jax.jit(jax.value_and_grad(mean_loss, has_aux=True))(params)

  (loss_w, logits_w), grads_w = loss_and_grads(whole)
  (loss_c, logits_c), grads_c = loss_and_grads(chunked)
  np.testing.assert_allclose(logits_c, logits_w, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(loss_c, loss_w, rtol=1e-5)
  for g_c, g_w in zip(jax.tree.leaves(grads_c), jax.tree.leaves(grads_w),
                      strict=True):
    np.testing.assert_allclose(g_c, g_w, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize('chunk_size, batch, chunks', [
    (16, 128, 8), (16, 32, 2), (16, 96, 6), (16, 16, 1), (16, 8, 1),
    (16, 100, 1), (16, 1024, 16), (16, 16 * 17, 1), (0, 128, 1)])
def test_num_chunks(chunk_size, batch, chunks):
  # Chunks are unrolled: never more than MAX_CHUNKS of them (1024 / 16 = 64
  # chunks become 16 of 64; 17 is prime, so 272 runs whole).
  assert MAX_CHUNKS == 16
  model = CNN(10, chunk_size=chunk_size, rngs=nnx.Rngs(0))
  assert model.num_chunks(batch) == chunks


def test_chunked_forward_runs_the_conv_layers_per_chunk():
  # Guards the speed-up itself: a refactor that silently stops chunking
  # would still pass the equality test above.
  images = jnp.zeros((8, 28, 28, 1), jnp.uint8)
  chunked = jax.make_jaxpr(CNN(10, conv=shifted_conv_general_dilated,
                               chunk_size=4, rngs=nnx.Rngs(0)))(images)
  whole = jax.make_jaxpr(CNN(10, conv=shifted_conv_general_dilated,
                             rngs=nnx.Rngs(0)))(images)

  def dots(jaxpr):
    return [e for e in jaxpr.jaxpr.eqns if e.primitive.name == 'dot_general']

  # Two convs per chunk, then the two dense layers on the whole batch.
  assert [e.outvars[0].aval.shape[0] for e in dots(whole)] == [8, 8, 8, 8]
  sizes = [e.outvars[0].aval.shape[0] for e in dots(chunked)]
  assert sizes == [4, 4, 4, 4, 8, 8]


def test_negative_chunk_size_is_rejected():
  with pytest.raises(ValueError, match='chunk_size'):
    CNN(10, chunk_size=-1, rngs=nnx.Rngs(0))
