"""Every public loss's value and gradient on a fixed batch, pinned.

tests/data/loss_golden.json was written at 319ed63, before losses.py's
signatures were unified (issue 26), by ``python tests/test_loss_golden.py
--write``; the refactor must not move a value or a gradient by more than 1e-6.
Outputs and labels are passed positionally, so the cases read the same under
either argument name; three names changed since (cross_entropy was optax's
function, ``power`` and ``sharpness`` were ``alpha``).
"""

import json
import pathlib
import sys
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import losses

K = 10
GOLDEN = pathlib.Path(__file__).parent / 'data' / 'loss_golden.json'
LABELS_B = np.array([0, 3, 9, 5, 7], np.int32)
LINEAR = losses.linear_distance(K)
CYCLIC = losses.cyclic_distance(K)

# (case, function, outputs per example, hyperparameters).
CASES = [
    ('cross_entropy', losses.cross_entropy, K, {}),
    ('expected_value_mse', losses.expected_value_mse, K, {}),
    ('circular_mse', losses.circular_mse, K, {}),
    ('expected_cost[linear]', losses.expected_cost, K, {'distance': LINEAR}),
    ('expected_cost[cyclic]', losses.expected_cost, K, {'distance': CYCLIC}),
    ('sord', losses.soft_label_cross_entropy, K,
     {'distance': LINEAR, 'temperature': 0.7}),
    ('smoothed_sord', losses.soft_label_cross_entropy, K,
     {'distance': LINEAR, 'temperature': 3.0, 'epsilon': 0.6}),
    ('label_smoothing', losses.label_smoothing_cross_entropy, K,
     {'epsilon': 0.3}),
    ('squared_emd', losses.squared_emd, K, {}),
    ('circular_emd', losses.circular_emd, K, {}),
    ('cdw_ce', losses.class_distance_weighted_ce, K,
     {'distance': LINEAR, 'power': 1.5}),
    ('oll', losses.ordinal_log_loss, K, {'distance': CYCLIC, 'power': 0.5}),
    ('slace', losses.slace_loss, K, {'distance': LINEAR, 'sharpness': 1.5}),
    ('coral', losses.coral_loss, K - 1, {}),
    ('corn', losses.corn_loss, K - 1, {}),
    ('clm[logit]', losses.clm_loss, K - 1, {'link': 'logit'}),
    ('clm[probit]', losses.clm_loss, K - 1, {'link': 'probit'}),
    ('clm[cloglog]', losses.clm_loss, K - 1, {'link': 'cloglog'}),
    ('binomial', losses.binomial_loss, 1, {'num_classes': K}),
    ('poisson', losses.poisson_loss, 1,
     {'num_classes': K, 'temperature': 0.8}),
    ('poisson_head', losses.poisson_head_loss, 2, {'num_classes': K}),
    ('von_mises', losses.von_mises_loss, 2, {'num_classes': K, 'kappa': 2.0}),
    ('weighted_kappa', losses.weighted_kappa_loss, K,
     {'distance': losses.linear_distance(K, power=2)}),
] + [
    (f'soft_target[{family}]', losses.soft_target_cross_entropy, K,
     {'targets': losses.soft_label_matrix(family, K)})
    for family in losses.SOFT_LABEL_FAMILIES
]


def outputs_for(case: str, num_outputs: int) -> np.ndarray:
  rng = np.random.default_rng(zlib.crc32(case.encode()))
  return (2 * rng.standard_normal((len(LABELS_B), num_outputs))).astype(
      np.float32)


def value_and_grad(fn, outputs_BxO, hyperparams):
  def total(outputs):
    return jnp.sum(fn(outputs, LABELS_B, **hyperparams))
  value = fn(jnp.asarray(outputs_BxO), LABELS_B, **hyperparams)
  return np.asarray(value), np.asarray(jax.grad(total)(outputs_BxO))


def record() -> dict:
  golden = {}
  for case, fn, num_outputs, hyperparams in CASES:
    value, grad = value_and_grad(fn, outputs_for(case, num_outputs),
                                 hyperparams)
    golden[case] = {'value': value.tolist(), 'grad': grad.tolist()}
  return golden


@pytest.mark.parametrize('case, fn, num_outputs, hyperparams', CASES,
                         ids=[case[0] for case in CASES])
def test_value_and_gradient_equal_the_golden_record(case, fn, num_outputs,
                                                    hyperparams):
  expected = json.loads(GOLDEN.read_text())[case]
  value, grad = value_and_grad(fn, outputs_for(case, num_outputs),
                               hyperparams)
  np.testing.assert_allclose(value, expected['value'], rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(grad, expected['grad'], rtol=1e-6, atol=1e-6)


def test_every_case_is_recorded():
  assert sorted(json.loads(GOLDEN.read_text())) == sorted(c[0] for c in CASES)


if __name__ == '__main__':
  if sys.argv[1:] != ['--write']:
    sys.exit('usage: python tests/test_loss_golden.py --write')
  GOLDEN.write_text(json.dumps(record(), indent=1) + '\n')
  print(f'wrote {GOLDEN}')
