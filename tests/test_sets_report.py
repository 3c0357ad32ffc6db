"""The prediction sets' report (study/sets_rows.py, study/sets_report.py)
on fake cells: kept files made by the protocol's own kept_sets from
synthetic probabilities in which smoothed SORD's mass sits on fewer digits,
so that its sets must come out smaller, and the exclusion rule."""

import csv
import json

import numpy as np
import pytest

from committed import registered_before_its_cells
from conftest import ROOT
from study import prediction_sets, sets_report, sets_rows

SEEDS_PER_GROUP = 2
IMAGES = 2400
# Each family's spread of probability around the label: smoothed SORD's
# sets are the tightest, cross-entropy's the widest.
NOISE = {'label_smoothing': 1.4, 'smoothed_sord': 0.6, 'cross_entropy': 1.6,
         'sord_linear': 1.0}


def _probs(labels, rng, noise):
  centres = labels + rng.normal(0, noise, labels.shape)
  logits = -np.abs(np.arange(10)[None, :] - centres[:, None]) / 0.7
  probs = np.exp(logits - logits.max(-1, keepdims=True))
  return (probs / probs.sum(-1, keepdims=True)).astype(np.float32)


def _write_fake_cells(root, families, diverged=()):
  labels = np.random.default_rng(0).integers(0, 10, IMAGES)
  test_labels = np.random.default_rng(1).integers(0, 10, 30)
  for family in families:
    for g, first in enumerate(sets_rows.all_groups()):
      seeds = np.arange(first, first + SEEDS_PER_GROUP)
      rng = np.random.default_rng([g, len(family)])
      probs = np.stack([_probs(labels, rng, NOISE[family]) for _ in seeds])
      test = np.stack([_probs(test_labels, rng, NOISE[family])
                       for _ in seeds])
      kept = prediction_sets.kept_sets(probs, labels, (test, test_labels),
                                       seeds)
      (root / 'images').mkdir(parents=True, exist_ok=True)
      (root / 'cells').mkdir(parents=True, exist_ok=True)
      np.savez_compressed(root / 'images' / f'final-{family}-s{first}.npz',
                          **kept)
      cell = {'diverged': 'loss is NaN at step 3'} if (
          family, first) in diverged else {'seeds': seeds.tolist()}
      (root / 'cells' / f'final-{family}-s{first}.json').write_text(
          json.dumps(cell))


@pytest.fixture(scope='module')
def fake_results(tmp_path_factory):
  results = tmp_path_factory.mktemp('results')
  _write_fake_cells(results / 'sets', prediction_sets.PRIMARY_FAMILIES)
  return results


@pytest.mark.slow
def test_the_report_finds_the_smaller_sets_it_was_built_with(fake_results):
  written = sets_report.write_report(fake_results, replicates=1000,
                                     secondary_replicates=200)
  assert written == ['sets.csv', 'sets_secondary.csv', 'sets.md']
  with open(fake_results / 'sets' / 'sets.csv') as f:
    rows = {r['hypothesis']: r for r in csv.DictReader(f)}
  assert list(rows) == ['P1', 'P2', 'P3', 'P4']
  for name, row in rows.items():
    assert float(row['delta']) < 0, name
    assert float(row['ci95_high']) < 0, name
    assert row['verdict'].startswith('smaller'), (name, row['verdict'])
    assert int(row['n_seeds']) == 4 * SEEDS_PER_GROUP
    assert int(row['n_images']) == IMAGES
    assert row['groups_dropped'] == '0'
    # Recalibrating widens the interval the calibrated thresholds give.
    assert (float(row['ci95_high']) - float(row['ci95_low'])
            > float(row['fixed_calibration_ci95_high'])
            - float(row['fixed_calibration_ci95_low'])), name
    assert row['command'] == 'python -m study sets_report'
  # The estimate is the kept sizes' difference, recomputed here.
  families, _ = sets_rows.load_families(fake_results / 'sets',
                                        prediction_sets.PRIMARY_FAMILIES)
  sizes = {f: np.mean([(k[f'evaluation_{m}_high'].astype(int)
                        - k[f'evaluation_{m}_low'] + 1).mean()
                       for m in prediction_sets.MEASURE_LEVELS['lac']])
           for f, k in families.items()}
  assert float(rows['P1']['delta']) == pytest.approx(
      sizes['smoothed_sord'] - sizes['label_smoothing'], rel=1e-5)
  text = (fake_results / 'sets' / 'sets.md').read_text()
  assert '| P3 | risk (risk@0.002 risk@0.001)' in text
  with open(fake_results / 'sets' / 'sets_secondary.csv') as f:
    secondary = list(csv.DictReader(f))
  labels = {r['label'] for r in secondary}
  assert labels == {'(a)', '(b)', '(c)', '(e)', '(f)'}  # no SORD run: (d)
  coverage = [r for r in secondary if r['label'] == '(a)'
              and r['quantity'] == 'covered' and r['measure'] == 'lac@0.02']
  assert len(coverage) == 3
  assert all(0.9 < float(r['value']) <= 1 for r in coverage)


@pytest.mark.slow
def test_a_diverged_group_is_dropped_from_every_primary_family(tmp_path):
  root = tmp_path / 'sets'
  first, second = sets_rows.all_groups()[:2]
  _write_fake_cells(root, prediction_sets.PRIMARY_FAMILIES,
                    diverged={('cross_entropy', first)})
  assert sets_rows.dropped_groups(root, prediction_sets.PRIMARY_FAMILIES
                                  ) == [first]
  families, dropped = sets_rows.load_families(
      root, prediction_sets.PRIMARY_FAMILIES)
  assert dropped == 1
  assert families['label_smoothing']['seeds'][0] == second
  rows = sets_rows.primary_rows(root, replicates=200)
  assert all(r['n_seeds'] == 3 * SEEDS_PER_GROUP for r in rows)
  assert not any(r['verdict'].startswith('unstable') for r in rows)
  cell = root / 'cells' / f'final-smoothed_sord-s{second}.json'
  cell.write_text(json.dumps({'diverged': 'loss is NaN at step 9'}))
  rows = sets_rows.primary_rows(root, replicates=200)
  assert [r['verdict'] for r in rows] == [sets_rows.UNSTABLE] * 4


def test_a_missing_group_leaves_the_report_pending(tmp_path, monkeypatch):
  monkeypatch.setattr(prediction_sets, 'PRIMARY_FAMILIES',
                      ('label_smoothing', 'cross_entropy'))
  root = tmp_path / 'sets'
  (root / 'images').mkdir(parents=True)
  log = []
  assert sets_rows.primary_rows(root, log=log.append) == []
  assert 'final-label_smoothing-s3000.npz' in log[0]
  assert sets_report.write_report(tmp_path) == ['sets.md']
  assert 'Pending: not every primary group is in.' in (
      root / 'sets.md').read_text()


@pytest.mark.skipif(not (ROOT / '.git').exists(), reason='not a git clone')
def test_the_sets_protocol_entered_git_before_any_of_its_cells():
  registered_before_its_cells('# Prediction-sets protocol (issue 40)',
                              'results/sets/cells', 'results/sets/images')
