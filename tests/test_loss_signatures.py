"""The signature rule of losses.py, walked over every public loss, and the
file's promise that it can be copied alone.

The rule (stated at the top of losses.py): ``fn(<outputs>, labels, *,
<hyperparameters>, axis=-1, where=None)`` returning per-example losses, the
first argument ``logits`` exactly where a softmax over the K classes is meant
and ``outputs`` for every other head.
"""

import inspect

import jax.numpy as jnp
import numpy as np
import pytest

import losses
from conftest import (
  EVERYDAY_LOSSES,
  everyday_subset,
  run_copied_alone,
  third_party_imports,
)

K = 10
B = 6
VALUES = {'distance': losses.linear_distance(K), 'temperature': 0.7,
          'epsilon': 0.3, 'power': 1.5, 'sharpness': 1.5, 'kappa': 2.0,
          'targets': losses.soft_label_matrix('binomial', K),
          'num_classes': K, 'link': 'probit', 'stability': 1e-10}
# Every head that is not softmax logits: its output size for K classes.
OUTPUT_SIZES = {'coral_loss': K - 1, 'corn_loss': K - 1, 'clm_loss': K - 1,
                'binomial_loss': 1, 'poisson_loss': 1, 'poisson_head_loss': 2,
                'von_mises_loss': 2, 'coral_probs': K - 1, 'corn_probs': K - 1,
                'clm_probs': K - 1, 'binomial_probs': 1, 'poisson_probs': 1,
                'poisson_head_probs': 2, 'von_mises_probs': 2,
                'copoc_loss': K, 'copoc_probs': K}
# Named exceptions to "per-example losses", with the reason.
BATCH_LEVEL = {
    # log(1 - weighted kappa) of the batch's soft confusion matrix: it does
    # not decompose over examples, so it returns one number.
    'weighted_kappa_loss',
}


def _public_functions():
  return {name: getattr(losses, name) for name in losses.__all__
          if inspect.isfunction(getattr(losses, name))}


# A loss is a public function that takes labels; a probs function is named so.
LOSS_FNS = sorted(name for name, fn in _public_functions().items()
                  if 'labels' in inspect.signature(fn).parameters)
PROBS_FNS = sorted(name for name in _public_functions()
                   if name.endswith('_probs') and name != 'make_probs')


def hyperparams(fn):
  return {p.name: VALUES[p.name]
          for p in inspect.signature(fn).parameters.values()
          if p.kind == p.KEYWORD_ONLY and p.name not in ('axis', 'where')}


def inputs(name, seed=0):
  rng = np.random.default_rng(seed)
  size = OUTPUT_SIZES.get(name, K)
  outputs_BxO = rng.standard_normal((B, size)).astype(np.float32)
  if name.startswith('clm'):
    outputs_BxO = np.sort(outputs_BxO, axis=-1)
  return outputs_BxO, rng.integers(0, K, B).astype(np.int32)


def test_the_walk_finds_every_loss_and_every_registered_one():
  registered = {spec.fn.__name__ for spec in losses.LOSSES.values()}
  assert registered <= set(LOSS_FNS)
  assert {'poisson_loss', 'cross_entropy', 'expected_cost'} <= set(LOSS_FNS)
  assert len(LOSS_FNS) == 21 and len(PROBS_FNS) == 8
  for name in LOSS_FNS:
    assert list(inspect.signature(getattr(losses, name)).parameters)[1] == (
        'labels'), name


@pytest.mark.parametrize('name', LOSS_FNS + PROBS_FNS)
def test_parameters_follow_the_rule(name):
  params = list(inspect.signature(getattr(losses, name)).parameters.values())
  first = params[0]
  assert first.name == ('outputs' if name in OUTPUT_SIZES else 'logits'), name
  assert first.kind == first.POSITIONAL_OR_KEYWORD
  rest = params[2:] if name in LOSS_FNS else params[1:]
  assert all(p.kind == p.KEYWORD_ONLY for p in rest), name
  keywords = {p.name: p.default for p in rest}
  assert keywords['axis'] == -1
  if name in LOSS_FNS:
    assert keywords['where'] is None
    assert list(keywords)[-2:] == ['axis', 'where']
  assert set(VALUES) >= set(keywords) - {'axis', 'where'}, name


@pytest.mark.parametrize('name', everyday_subset(
    [n for n in LOSS_FNS if n not in OUTPUT_SIZES],
    ('cross_entropy', 'soft_label_cross_entropy', 'weighted_kappa_loss')))
def test_logits_are_softmax_logits(name):
  # A softmax over the classes ignores a shift of every logit.
  fn = getattr(losses, name)
  logits, labels = inputs(name)
  np.testing.assert_allclose(fn(logits + 5.0, labels, **hyperparams(fn)),
                             fn(logits, labels, **hyperparams(fn)),
                             rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('name', everyday_subset(
    sorted(set(LOSS_FNS) - BATCH_LEVEL),
    ('clm_loss', 'coral_loss', 'cross_entropy', 'poisson_head_loss',
     'soft_label_cross_entropy', 'von_mises_loss')))
def test_per_example_on_either_axis_and_masked_entries_exactly_zero(name):
  fn = getattr(losses, name)
  outputs, labels = inputs(name, seed=1)
  kw = hyperparams(fn)
  loss_B = np.asarray(fn(outputs, labels, **kw))
  assert loss_B.shape == (B,)
  np.testing.assert_allclose(fn(outputs.T, labels, axis=0, **kw), loss_B,
                             rtol=1e-6, atol=1e-6)
  mask = np.arange(B) % 2 == 0
  masked_B = np.asarray(fn(outputs, labels, where=mask, **kw))
  assert np.all(masked_B[~mask] == 0.0)
  np.testing.assert_array_equal(masked_B[mask], loss_B[mask])


def test_the_batch_level_exception_returns_a_scalar_that_where_filters():
  fn = losses.weighted_kappa_loss
  logits, labels = inputs('weighted_kappa_loss', seed=2)
  kw = hyperparams(fn)
  assert np.shape(fn(logits, labels, **kw)) == ()
  mask = np.arange(B) < 4
  np.testing.assert_allclose(fn(logits, labels, where=mask, **kw),
                             fn(logits[:4], labels[:4], **kw), rtol=1e-6)
  np.testing.assert_allclose(fn(logits.T, labels, axis=0, **kw),
                             fn(logits, labels, **kw), rtol=1e-6)


# Mixed with cross-entropy (0 and 0.7) only where the loss takes logits.
@pytest.mark.parametrize('name, ce_weight', [
    pytest.param(name, ce_weight, marks=() if name in EVERYDAY_LOSSES
                 else pytest.mark.slow)
    for name, spec in sorted(losses.LOSSES.items())
    for ce_weight in ([None, 0.0, 0.7] if spec.takes_logits else [None])])
def test_make_loss_equals_the_direct_call_with_axis_and_where(name, ce_weight):
  spec = losses.LOSSES[name]
  outputs, labels = inputs(spec.fn.__name__, seed=3)
  kw = hyperparams(spec.fn)
  mask = np.arange(B) != 2
  bound = losses.make_loss(name, ce_weight=ce_weight, **kw)
  got = bound(outputs.T, labels, axis=0, where=mask)
  direct = spec.fn(outputs, labels, where=mask, **kw)
  if ce_weight is None:
    want = direct
  else:
    ce = losses.cross_entropy(outputs, labels, where=mask)
    want = ce if ce_weight == 0 else jnp.where(mask, ce + ce_weight * direct,
                                               0.0)
  np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
  if np.ndim(got):
    assert np.all(np.asarray(got)[~mask] == 0.0)


@pytest.mark.parametrize('name, loss_names, probs_names', [
    ('cross_entropy', (), ()),
    ('soft_label_cross_entropy', ('distance', 'temperature', 'epsilon'), ()),
    ('slace', ('distance', 'sharpness'), ()),
    ('class_distance_weighted_ce', ('distance', 'power'), ()),
    ('weighted_kappa', ('distance', 'stability'), ()),
    ('clm', ('link',), ('link',)),
    ('von_mises_head', ('num_classes', 'kappa'), ('num_classes', 'kappa')),
    ('poisson_head', ('num_classes',), ('num_classes',)),
])
def test_registry_reads_hyperparameters_from_the_signatures(name, loss_names,
                                                            probs_names):
  spec = losses.LOSSES[name]
  assert spec.hyperparams == loss_names
  assert spec.probs_hyperparams == probs_names


@pytest.mark.parametrize('name', sorted(losses.LOSSES))
def test_takes_logits_is_the_signature_rule(name):
  spec = losses.LOSSES[name]
  assert spec.takes_logits == (spec.fn.__name__ not in OUTPUT_SIZES)


def test_an_alias_is_a_module_name_not_a_second_registry_row():
  assert losses.ordinal_log_loss is losses.class_distance_weighted_ce
  functions = [spec.fn for spec in losses.LOSSES.values()]
  assert len(functions) == len(set(functions))


def test_errors_are_plain_messages_naming_the_argument():
  # A loss that calls validate_distance gets its message as it is: the
  # traceback, not the message, names the functions.
  with pytest.raises(ValueError) as info:
    losses.expected_cost(np.zeros(3, np.float32), np.int32(0),
                         distance=-np.ones((3, 3)))
  assert str(info.value).startswith('distance has negative')
  with pytest.raises(ValueError) as info:
    losses.make_loss('expected_cost', distance=losses.linear_distance(3))(
        np.zeros(4, np.float32), np.int32(0))
  assert str(info.value) == ('distance is 3x3 but the logits have 4 '
                             'classes; build it with num_classes=4.')


def test_losses_py_imports_only_jax_numpy_optax_scipy_and_the_stdlib():
  assert third_party_imports(losses.__file__) == {'jax', 'numpy', 'optax',
                                                  'scipy'}


@pytest.mark.slow
def test_losses_py_runs_when_copied_alone(tmp_path):
  out = run_copied_alone(losses.__file__, tmp_path, """
      import jax.numpy as jnp
      import losses
      loss_fn = losses.make_loss('soft_label_cross_entropy', ce_weight=0.5,
                                 distance=losses.cyclic_distance(10))
      print(float(loss_fn(jnp.zeros((2, 10)), jnp.array([0, 9])).sum()))
      """)
  # Uniform logits: CE and soft-label CE are both log 10 for each example.
  assert float(out) == pytest.approx(3 * np.log(10), rel=1e-6)
