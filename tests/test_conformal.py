"""conformal.py: each method against a plain NumPy reference of its paper's
algorithm, its guarantee on synthetic exchangeable data over many random
splits, contiguity, nesting, the signature rule, and the file copied
alone."""

import inspect
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import conformal
from conftest import run_copied_alone, third_party_imports

K = 10
# The everyday lane keeps one case of each property; the rest are slow.
SLOW = pytest.mark.slow
# One compile each, instead of one per operation and shape.
risk_control_threshold = jax.jit(conformal.risk_control_threshold,
                                 static_argnames=('alpha', 'shape',
                                                  'nonempty'))
prediction_sets = jax.jit(conformal.prediction_sets,
                          static_argnames=('shape', 'nonempty'))
LINEAR = np.abs(np.arange(K)[:, None] - np.arange(K)[None, :])
CYCLIC = np.minimum(LINEAR, K - LINEAR)


def _model(rng, n, *, cyclic=False, temperature=1.2):
  """A calibrated model of ordinal labels: probabilities that decay with
  the distance from a random centre, noisy, and labels drawn from them."""
  centre_N = rng.integers(0, K, n)
  distance = CYCLIC if cyclic else LINEAR
  logits_NxK = (-distance[centre_N] / temperature
                + rng.normal(0, 0.7, (n, K)))
  probs_NxK = np.exp(logits_NxK - logits_NxK.max(axis=1, keepdims=True))
  probs_NxK /= probs_NxK.sum(axis=1, keepdims=True)
  labels_N = np.array([rng.choice(K, p=p) for p in probs_NxK])
  return probs_NxK.astype(np.float32), labels_N


# ----------------------------------------------------------------------------
# NumPy references, one per paper's algorithm, written with loops.


def _ref_quantile(scores, alpha):
  n = len(scores)
  rank = math.ceil(round((n + 1) * (1 - alpha), 9))
  return np.inf if rank > n else np.sort(scores)[rank - 1]


def _ref_interval(members):
  """The smallest interval holding the members."""
  out = np.zeros(K, bool)
  if members:
    out[min(members):max(members) + 1] = True
  return out


def _ref_arc(members):
  """The smallest arc holding the members: every arc tried, shortest
  first, then by start."""
  if not members:
    return np.zeros(K, bool)
  for length in range(1, K + 1):
    for start in range(K):
      arc = {(start + j) % K for j in range(length)}
      if set(members) <= arc:
        out = np.zeros(K, bool)
        out[list(arc)] = True
        return out
  raise AssertionError('unreachable')


def _ref_lac_hull(cal_probs, cal_labels, probs, alpha, hull=_ref_interval):
  """Chakraborty et al.: the hull of every class whose conformal p-value
  exceeds alpha, the score being 1 - p."""
  cal = 1 - cal_probs[np.arange(len(cal_labels)), cal_labels]
  sets = []
  for p in probs:
    members = [k for k in range(K)
               if (1 + np.sum(cal >= 1 - p[k])) / (len(cal) + 1) > alpha]
    sets.append(hull(members))
  return np.array(sets)


def _ref_grown(p, cyclic=False):
  """Lu et al.'s ordinal APS: the classes in the order the interval grown
  from the argmax adds them, with the mass after each."""
  low = high = int(np.argmax(p))
  order, masses = [low], [float(p[low])]
  while len(order) < K:
    left, right = low - 1, high + 1
    p_left = p[left % K] if cyclic or left >= 0 else -np.inf
    p_right = p[right % K] if cyclic or right < K else -np.inf
    if p_right >= p_left:  # a tie goes up, as in the paper's code
      high, added = right, right % K
    else:
      low, added = left, left % K
    order.append(added)
    masses.append(masses[-1] + float(p[added]))
  return order, masses


def _ref_aps(cal_probs, cal_labels, probs, alpha, cyclic=False):
  """The score of (x, y): the mass of the grown interval that first holds
  y; the set: the largest grown interval whose mass is at most the
  quantile (the argmax alone at least)."""
  cal = []
  for p, y in zip(cal_probs, cal_labels, strict=True):
    order, masses = _ref_grown(p, cyclic)
    cal.append(masses[order.index(y)])
  q = _ref_quantile(np.array(cal), alpha)
  sets = []
  for p in probs:
    order, masses = _ref_grown(p, cyclic)
    out = np.zeros(K, bool)
    out[order[0]] = True
    for k, mass in zip(order, masses, strict=True):
      if mass <= q:
        out[k] = True
    sets.append(out)
  return np.array(sets)


def _ref_rps(p, y):
  cdf = np.cumsum(p)
  return sum((cdf[j] - (y <= j)) ** 2 for j in range(K - 1))


def _ref_rps_sets(cal_probs, cal_labels, probs, alpha):
  q = _ref_quantile(np.array([_ref_rps(p, y) for p, y in zip(
      cal_probs, cal_labels, strict=True)]), alpha)
  sets = []
  for p in probs:
    scores = [_ref_rps(p, k) for k in range(K)]
    sets.append(np.array([s <= q or k == int(np.argmin(scores))
                          for k, s in enumerate(scores)]))
  return np.array(sets)


def _sets_at(scores, threshold, hull=_ref_interval, nonempty=True):
  sets = []
  for s in scores:
    members = [k for k in range(K) if s[k] <= threshold]
    if nonempty:
      members = sorted({*members, int(np.argmin(s))})
    sets.append(hull(members))
  return np.array(sets)


def _ref_risk_control(scores, labels, distance, alpha, hull=_ref_interval,
                      nonempty=True):
  """Angelopoulos et al.'s conformal risk control, every candidate
  threshold tried from the smallest, each example's loss taken as the
  largest it reaches at that threshold or above (a loss that falls)."""
  n = len(labels)
  thresholds = [-np.inf, *np.unique(scores)]
  loss_TxN = []
  for threshold in thresholds:
    sets = _sets_at(scores, threshold, hull, nonempty)
    loss_TxN.append([distance[y][s].min() if s.any() else distance.max()
                     for s, y in zip(sets, labels, strict=True)])
  falling_TxN = np.maximum.accumulate(np.array(loss_TxN)[::-1], axis=0)[::-1]
  allowed = (round((n + 1) * alpha, 9) - 1) * distance.max()
  for threshold, losses in zip(thresholds, falling_TxN, strict=True):
    if losses.sum() <= allowed:
      return threshold
  return np.inf


@pytest.fixture(scope='module')
def small():
  rng = np.random.default_rng(0)
  cal = _model(rng, 40)
  test = _model(rng, 60)
  return cal, test


@pytest.mark.parametrize('alpha', [pytest.param(0.05, marks=SLOW), 0.1,
                                   pytest.param(0.3, marks=SLOW)])
def test_lac_hull_is_the_hull_of_the_classes_whose_p_value_exceeds_alpha(
    small, alpha):
  (cal_probs, cal_labels), (probs, _) = small
  threshold = conformal.calibrate(conformal.lac_scores(cal_probs),
                                  cal_labels, alpha=alpha)
  sets = conformal.prediction_sets(conformal.lac_scores(probs), threshold,
                                   nonempty=False)
  np.testing.assert_array_equal(
      sets, _ref_lac_hull(cal_probs, cal_labels, probs, alpha))


def test_lac_arcs_are_the_smallest_arcs():
  rng = np.random.default_rng(1)
  cal_probs, cal_labels = _model(rng, 40, cyclic=True)
  probs, _ = _model(rng, 60, cyclic=True)
  threshold = conformal.calibrate(conformal.lac_scores(cal_probs),
                                  cal_labels, alpha=0.05)
  sets = conformal.prediction_sets(conformal.lac_scores(probs), threshold,
                                   shape='arc', nonempty=False)
  np.testing.assert_array_equal(
      sets, _ref_lac_hull(cal_probs, cal_labels, probs, 0.05, _ref_arc))


@pytest.mark.parametrize('cyclic, alpha', [
    (False, 0.2), pytest.param(True, 0.2, marks=SLOW),
    pytest.param(False, 0.05, marks=SLOW), (True, 0.05)])
def test_ordinal_aps_is_lu_et_als_grown_interval(small, cyclic, alpha):
  (cal_probs, cal_labels), (probs, _) = small
  scores = jax.jit(conformal.aps_scores, static_argnames='cyclic')
  threshold = conformal.calibrate(scores(cal_probs, cyclic=cyclic),
                                  cal_labels, alpha=alpha)
  sets = conformal.prediction_sets(scores(probs, cyclic=cyclic), threshold,
                                   shape='arc' if cyclic else 'interval')
  np.testing.assert_array_equal(
      sets, _ref_aps(cal_probs, cal_labels, probs, alpha, cyclic))


def test_rps_sets_are_sublevel_sets_around_the_median(small):
  (cal_probs, cal_labels), (probs, _) = small
  scores = conformal.rps_scores(probs)
  np.testing.assert_allclose(
      scores, [[_ref_rps(p, k) for k in range(K)] for p in probs],
      rtol=1e-5, atol=1e-6)
  threshold = conformal.calibrate(conformal.rps_scores(cal_probs),
                                  cal_labels, alpha=0.1)
  sets = conformal.prediction_sets(scores, threshold, shape=None)
  np.testing.assert_array_equal(
      sets, _ref_rps_sets(cal_probs, cal_labels, probs, 0.1))
  # Intervals without a hull, around the median: RPS(p, k+1) - RPS(p, k)
  # is 2 F_k - 1.
  np.testing.assert_array_equal(sets, conformal.hull(sets))
  median = np.argmax(np.cumsum(probs, axis=1) >= 0.5, axis=1)
  np.testing.assert_array_equal(np.argmin(scores, axis=1), median)
  np.testing.assert_allclose(np.diff(scores, axis=1),
                             2 * np.cumsum(probs, axis=1)[:, :-1] - 1,
                             atol=1e-5)


@SLOW
def test_the_class_conditional_quantile_is_each_classs_own():
  rng = np.random.default_rng(2)
  probs, labels = _model(rng, 300)
  scores = np.asarray(conformal.aps_scores(probs))
  thresholds = conformal.calibrate(scores, labels, alpha=0.1,
                                   class_conditional=True)
  expected = [_ref_quantile(scores[labels == k, k], 0.1) for k in range(K)]
  np.testing.assert_array_equal(thresholds, np.float32(expected))
  # A class with too few images keeps every class: +inf.
  assert np.isinf(conformal.calibrate(scores[:5], labels[:5], alpha=0.1,
                                      class_conditional=True)).all()


@pytest.mark.parametrize('shape, distance, nonempty', [
    pytest.param('arc', CYCLIC, True, marks=SLOW),
    pytest.param('interval', LINEAR, True, marks=SLOW),
    pytest.param(None, LINEAR, True, marks=SLOW),
    pytest.param('arc', CYCLIC, False, marks=SLOW),
    pytest.param(None, LINEAR, False, marks=SLOW)])
def test_risk_control_is_angelopoulos_et_als_threshold(shape, distance,
                                                       nonempty):
  rng = np.random.default_rng(3)
  probs, labels = _model(rng, 30, cyclic=shape == 'arc')
  scores = np.asarray(conformal.lac_scores(probs))
  hull = {'interval': _ref_interval, 'arc': _ref_arc,
          None: lambda members: np.isin(np.arange(K), members)}[shape]
  for alpha in (0.1, 0.3):
    got = risk_control_threshold(
        scores, labels, distance=distance, alpha=alpha, shape=shape,
        nonempty=nonempty)
    assert got == _ref_risk_control(scores, labels, distance, alpha, hull,
                                    nonempty), alpha


def test_the_quantile_is_the_conservative_rank_or_infinity():
  scores = np.arange(1.0, 10.0)
  assert conformal.conformal_quantile(scores, alpha=0.2) == 8.0
  assert conformal.conformal_quantile(scores, alpha=0.1) == 9.0
  # ceil(10 * 0.75) = 8, not ceil(9 * 0.75) = 7.
  assert conformal.conformal_quantile(scores, alpha=0.25) == 8.0
  # ceil(10 * 0.95) = 10 > 9 images: every class.
  assert conformal.conformal_quantile(scores, alpha=0.05) == np.inf


def test_every_held_out_score_covers_exactly_as_the_rank_says():
  """Exchangeability without Monte Carlo: over n + 1 distinct scores, each
  held out in turn against the quantile of the other n, exactly
  ceil((1 - alpha)(n + 1)) are covered."""
  scores = np.random.default_rng(5).permutation(40).astype(np.float32)
  for alpha in (0.05, 0.1, 0.25):
    hits = sum(bool(scores[i] <= conformal.conformal_quantile(
        np.delete(scores, i), alpha=alpha)) for i in range(len(scores)))
    assert hits == math.ceil(round((1 - alpha) * len(scores), 9)), alpha


def test_aps_keeps_the_argmax_when_neighbours_have_no_mass():
  # Saturated softmax outputs: the other classes' mass is exactly 0.
  probs = np.array([[0.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0]], np.float32)
  scores = conformal.aps_scores(probs)
  assert list(np.argmin(scores, axis=1)) == [2, 1]
  sets = conformal.prediction_sets(scores, 0.5)
  np.testing.assert_array_equal(sets, probs > 0)
  # bfloat16 inputs are grown in float32.
  almost = jnp.array([0.001, 0.998, 0.001], jnp.bfloat16)
  assert int(jnp.argmin(conformal.aps_scores(almost))) == 1


def test_risk_control_bounds_an_arc_loss_that_rises_with_lambda():
  """A larger set's smallest arc need not hold a smaller set's: label 2 is
  inside the arc at lambda 0.2 and two digits away at 0.3."""
  scores = np.array([[.1, .9, .9, .9, .2, .9, .3, .9, .3, .9]], np.float32)
  label = np.array([2])
  at = [conformal.distance_to_set(prediction_sets(
      scores, t, shape='arc'), label, distance=CYCLIC)[0] for t in (0.2, 0.3)]
  assert at == [0, 2]
  # Ten copies: the threshold is where the bounded loss allows it, never
  # at 0.2, where the true loss is 0 but rises after.
  scores10, labels10 = np.repeat(scores, 10, axis=0), np.repeat(label, 10)
  for alpha in (0.1, 0.2, 0.3):
    got = risk_control_threshold(scores10, labels10, distance=CYCLIC,
                                 alpha=alpha, shape='arc')
    assert got == _ref_risk_control(scores10, labels10, CYCLIC, alpha,
                                    _ref_arc), alpha
    assert got != np.float32(0.2)


def test_the_class_conditional_rank_is_exact_for_large_classes():
  # 70 198 images of one class at alpha 0.01: float32 would take rank
  # 69 497 instead of ceil(70 199 * 0.99) = 69 498.
  count = 70_198
  scores = np.stack([np.arange(count, dtype=np.float32),
                     np.zeros(count, np.float32)], axis=1)
  thresholds = conformal.calibrate(scores, np.zeros(count, int), alpha=0.01,
                                   class_conditional=True)
  assert thresholds[0] == math.ceil(round((count + 1) * 0.99, 9)) - 1
  assert np.isinf(thresholds[1])


# ----------------------------------------------------------------------------
# The guarantees, over many random splits of exchangeable data.

TRIALS, N_CAL, N_TEST = 400, 100, 100


@pytest.fixture(scope='module')
def splits():
  rng = np.random.default_rng(4)
  probs, labels = _model(rng, TRIALS * (N_CAL + N_TEST))
  shape = (TRIALS, N_CAL + N_TEST)
  return probs.reshape(*shape, K), labels.reshape(shape)


def _per_split(method, probs, labels, alpha, **options):
  """Each split's calibration then test sets (vmapped over the splits)."""
  scores = method(probs)

  def one(scores_NxK, labels_N):
    threshold = conformal.calibrate(scores_NxK[:N_CAL], labels_N[:N_CAL],
                                    alpha=alpha)
    return conformal.prediction_sets(scores_NxK[N_CAL:], threshold,
                                     **options)

  return jax.jit(jax.vmap(one))(scores, labels), labels[:, N_CAL:]


@pytest.mark.parametrize('method, alpha', [
    (conformal.aps_scores, 0.1),
    *(pytest.param(method, alpha, marks=SLOW)
      for method in (conformal.lac_scores, conformal.aps_scores,
                     conformal.rps_scores)
      for alpha in (0.05, 0.1) if (method, alpha) != (conformal.aps_scores,
                                                      0.1))])
def test_coverage_is_at_least_one_minus_alpha(splits, method, alpha):
  sets, labels = _per_split(method, *splits, alpha)
  coverage = float(conformal.covered(sets, labels).mean())
  # The mean over 400 splits: its standard error is about 0.002.
  assert coverage >= 1 - alpha - 0.008


@pytest.mark.parametrize('method, alpha', [
    (conformal.rps_scores, 0.1),
    pytest.param(conformal.rps_scores, 0.05, marks=SLOW),
    pytest.param(conformal.aps_scores, 0.05, marks=SLOW),
    pytest.param(conformal.aps_scores, 0.1, marks=SLOW)])
def test_sets_of_the_scores_alone_cover_at_most_one_minus_alpha_plus_a_bit(
    splits, method, alpha):
  """{s <= q} with distinct scores: at most 1 - alpha + 1 / (n + 1)."""
  sets, labels = _per_split(method, *splits, alpha, shape=None,
                            nonempty=False)
  coverage = float(conformal.covered(sets, labels).mean())
  assert 1 - alpha - 0.008 <= coverage <= 1 - alpha + 1 / (N_CAL + 1) + 0.008


@SLOW
def test_class_conditional_coverage_holds_within_each_class(splits):
  probs, labels = splits
  scores = conformal.aps_scores(probs)

  def one(scores_NxK, labels_N):
    thresholds = conformal.calibrate(scores_NxK[:N_CAL], labels_N[:N_CAL],
                                     alpha=0.2, class_conditional=True)
    return conformal.prediction_sets(scores_NxK[N_CAL:], thresholds)

  sets = jax.jit(jax.vmap(one))(scores, labels)
  per_class = conformal.coverage_per_class(sets, labels[:, N_CAL:])
  assert per_class.shape == (K,)
  assert float(per_class.min()) >= 0.8 - 0.02


@pytest.mark.parametrize('shape, distance, alpha', [
    ('interval', LINEAR, 0.05),
    pytest.param('interval', LINEAR, 0.02, marks=SLOW),
    pytest.param('arc', CYCLIC, 0.05, marks=SLOW),
    pytest.param('arc', CYCLIC, 0.02, marks=SLOW)])
def test_risk_control_keeps_the_expected_distance_at_most_alpha(
    splits, shape, distance, alpha):
  probs, labels = splits
  scores = conformal.lac_scores(probs)

  def one(scores_NxK, labels_N):
    threshold = conformal.risk_control_threshold(
        scores_NxK[:N_CAL], labels_N[:N_CAL], distance=distance, alpha=alpha,
        shape=shape)
    return conformal.prediction_sets(scores_NxK[N_CAL:], threshold,
                                     shape=shape)

  sets = jax.jit(jax.vmap(one))(scores, labels)
  risk = conformal.distance_to_set(sets, labels[:, N_CAL:],
                                   distance=distance) / distance.max()
  assert float(risk.mean()) <= alpha + 0.003
  # Not trivially: the sets are not all the classes.
  assert float(conformal.set_size(sets).mean()) < K - 1


@SLOW
def test_every_set_is_contiguous_and_nested_as_alpha_falls(splits):
  probs, labels = splits
  for method, shape, check in (
      (conformal.lac_scores, 'interval', _ref_interval),
      (conformal.aps_scores, 'interval', _ref_interval),
      (conformal.rps_scores, 'interval', _ref_interval),
      (lambda p: conformal.aps_scores(p, cyclic=True), 'arc', _ref_arc),
      (conformal.lac_scores, 'arc', _ref_arc)):
    wider, _ = _per_split(method, probs[:20], labels[:20], 0.05, shape=shape)
    narrower, _ = _per_split(method, probs[:20], labels[:20], 0.2,
                             shape=shape)
    assert bool(jnp.all(wider | ~narrower))  # nested
    for mask in np.asarray(wider).reshape(-1, K)[:300]:
      np.testing.assert_array_equal(mask, check(list(np.flatnonzero(mask))))
    assert bool(conformal.set_size(narrower).min() >= 1)  # nonempty


# ----------------------------------------------------------------------------
# The metrics, the errors, the signature rule and the file alone.


def test_the_metrics_count_empty_sets():
  sets = np.array([[True, True, False, False], [False] * 4,
                   [False, False, True, True]])
  labels = np.array([1, 2, 0])
  distance = LINEAR[:4, :4]
  np.testing.assert_array_equal(conformal.covered(sets, labels),
                                [True, False, False])
  np.testing.assert_array_equal(conformal.set_size(sets), [2, 0, 2])
  np.testing.assert_array_equal(
      conformal.distance_to_set(sets, labels, distance=distance), [0, 3, 2])
  np.testing.assert_allclose(conformal.coverage_per_class(sets, labels),
                             [0, 1, 0, np.nan])
  np.testing.assert_allclose(conformal.coverage_per_size(sets, labels),
                             [0, np.nan, 0.5, np.nan, np.nan])


def test_bad_input_gets_a_clear_error():
  with pytest.raises(ValueError, match=r'alpha must be in \(0, 1\)'):
    conformal.calibrate(np.zeros((3, K)), np.zeros(3, int), alpha=1.5)
  with pytest.raises(TypeError, match='probs must be floating point'):
    conformal.aps_scores(np.ones((2, K), int))
  with pytest.raises(ValueError, match="shape must be one of"):
    conformal.hull(np.ones((2, K), bool), shape='circle')
  with pytest.raises(TypeError, match='sets must be boolean'):
    conformal.covered(np.ones((2, K), int), np.zeros(2, int))
  with pytest.raises(ValueError, match="labels' shape plus a class axis"):
    conformal.covered(np.ones((2, K), bool), np.zeros(3, int))
  with pytest.raises(ValueError, match=r'labels must be classes in \[0, 10\)'):
    conformal.calibrate(np.zeros((3, K)), np.array([0, 1, 10]), alpha=0.1)
  with pytest.raises(ValueError, match=r'labels must be classes'):
    conformal.covered(np.ones((2, K), bool), np.array([0, -1]))
  with pytest.raises(ValueError, match='distance'):
    conformal.risk_control_threshold(np.zeros((3, K)), np.zeros(3, int),
                                     distance=LINEAR[:3, :3], alpha=0.1)


def test_every_public_function_follows_the_signature_rule():
  """Arrays positional, options keyword-only: no parameter with a default
  is positional, and every keyword-only one is an option (not an array)."""
  for name in conformal.__all__:
    fn = getattr(conformal, name)
    for parameter in inspect.signature(fn).parameters.values():
      if parameter.default is not inspect.Parameter.empty:
        assert parameter.kind == parameter.KEYWORD_ONLY, (name, parameter)
      if parameter.kind == parameter.POSITIONAL_OR_KEYWORD:
        assert parameter.annotation in ('ArrayLike', 'int'), (name, parameter)
    assert fn.__doc__, name


def test_conformal_py_imports_only_jax_and_the_stdlib():
  assert third_party_imports(conformal.__file__) == {'jax'}


@pytest.mark.slow
def test_conformal_py_runs_when_copied_alone(tmp_path):
  out = run_copied_alone(conformal.__file__, tmp_path, """
      import jax.numpy as jnp
      import conformal
      probs = jnp.full((4, 10), 0.1)
      scores = conformal.aps_scores(probs)
      threshold = conformal.calibrate(scores, jnp.arange(4), alpha=0.5)
      print(int(conformal.set_size(conformal.prediction_sets(
          scores, threshold)).sum()))
      """)
  # Uniform probabilities: the interval grows right from class 0, so class
  # k scores (k + 1) / 10 (plus k units of precision); the labels 0-3 score
  # 0.1-0.4, the quantile is the third smallest, 0.3: every set is
  # {0, 1, 2}.
  assert int(out) == 12
