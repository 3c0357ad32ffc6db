"""The confirmation under shift's secondaries (study/shift_secondary.py)
and the advice its rules give (study/shift_readme.py), on fake finals
whose differences are known: smoothed SORD drops a fifth of label
smoothing's mistakes under the geometric corruptions only; cross-entropy
equals label smoothing under noise at its Bayes decoding and is worse
everywhere else; label smoothing's Bayes decoding is worse than its
argmax, cross-entropy's better."""

import functools

import numpy as np
import pytest

import corruptions
from conftest import ROOT
from shift_fixtures import SETS, corrupted, write_shift_finals
from study import (
  answer_figure,
  confirm_rows,
  shift_readme,
  shift_report,
  shift_rows,
  shift_secondary,
)
from study.confirm_report import read_csv

N = 60
DECODINGS = {'label_smoothing': 'argmax', 'smoothed_sord': 'argmax',
             'cross_entropy': 'bayes', 'label_smoothing_matched': 'argmax'}
GEOMETRIC = slice(3, 7)
NOISE = slice(0, 2)


@pytest.fixture(scope='module')
def few_flips():
  """The sign-flip p's flips cut (200 000 take about 0.4 s a row)."""
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(confirm_rows, 'SIGN_FLIPS', 2_000)
    yield


@pytest.fixture(scope='module')
def fake(tmp_path_factory, few_flips):
  rng = np.random.default_rng(0)
  ls_CxSxN = (rng.uniform(size=(12, 120, N)) < 0.2) * rng.integers(
      1, 6, (12, 120, N))
  ss_CxSxN = ls_CxSxN.copy()
  ss_CxSxN[GEOMETRIC] = np.where(rng.uniform(size=(4, 120, N)) < 0.2, 0,
                                 ls_CxSxN[GEOMETRIC])
  clean_SxN = (rng.uniform(size=(120, 3 * N)) < 0.05) * 2
  # Smoothed SORD makes more mistakes on clean images: (d) and (g) see it.
  ss_clean_SxN = clean_SxN + (rng.uniform(size=clean_SxN.shape) < 0.1)
  ce_CxSxN = np.where(ls_CxSxN > 0, ls_CxSxN,
                      (rng.uniform(size=ls_CxSxN.shape) < 0.3) * 3)
  ce_bayes_CxSxN = np.where(rng.uniform(size=ls_CxSxN.shape) < 0.5,
                            ls_CxSxN, ce_CxSxN)
  ce_bayes_CxSxN[NOISE] = ls_CxSxN[NOISE]
  ce = corrupted(ce_CxSxN, clean_SxN)
  for name, d in zip(SETS, ce_bayes_CxSxN, strict=False):
    ce[name, 'bayes'] = d
  root = tmp_path_factory.mktemp('results')
  # The choices the test split's rows read the finals against.
  (root / 'confirmation').symlink_to(ROOT / 'results' / 'confirmation')
  write_shift_finals(root / 'shift', 'label_smoothing',
                     corrupted(ls_CxSxN, clean_SxN, bayes_shift=1))
  write_shift_finals(root / 'shift', 'smoothed_sord',
                     corrupted(ss_CxSxN, ss_clean_SxN), diverged_group=4)
  write_shift_finals(root / 'shift', 'cross_entropy', ce)
  write_shift_finals(root / 'shift', 'label_smoothing_matched',
                     corrupted(ls_CxSxN, clean_SxN))
  messages = []
  secondary = shift_secondary.secondary_rows(root, DECODINGS,
                                             log=messages.append,
                                             replicates=200)
  families = shift_secondary.family_rows(root, DECODINGS, replicates=200)
  primary = shift_rows.primary_rows(root, log=messages.append,
                                    replicates=200)
  assert not messages
  return {'root': root, 'ls': ls_CxSxN, 'ss': ss_CxSxN, 'ce': ce_CxSxN,
          'ce_bayes': ce_bayes_CxSxN, 'clean': clean_SxN,
          'ss_clean': ss_clean_SxN,
          'secondary': secondary, 'families': families, 'primary': primary}


def _rows(fake, label):
  return {r['kind'] if label != '(b)' else r['corruptions']: r
          for r in fake['secondary'] if r['label'] == label}


KEPT = np.r_[0:40, 50:120]  # smoothed SORD's group 2040-2049 diverged


def test_the_secondaries_in_their_registered_order(fake):
  labels = [r['label'] for r in fake['secondary']]
  assert labels == ['(a)'] * 8 + ['(f)'] * 4 + ['(b)'] * 12 + ['(c)'] * 16 \
      + ['(d)', *['(e)'] * 4, *['(g)'] * 4]
  assert {r['verdict'] for r in fake['secondary']} == {
      'secondary (uncorrected)'}
  assert {r['replicates'] for r in fake['secondary'] if 'replicates' in r} \
      == {200}


def test_each_recipe_against_cross_entropy_at_its_registered_decoding(fake):
  rows = [r for r in fake['secondary'] if r['label'] == '(a)'
          and r['kind'] == 'blur']
  ls, ss = rows
  assert (ls['challenger'], ls['reference'], ls['decodings']) == (
      'label_smoothing', 'cross_entropy', 'argmax/bayes')
  # Smoothed SORD's diverged group leaves every row of both primary
  # families (the registered exclusion), cross-entropy's own rows keep it.
  np.testing.assert_allclose(
      ls['delta'], (fake['ls'][2] - fake['ce_bayes'][2])[KEPT].mean(),
      rtol=1e-9)
  assert (ls['groups_dropped'], ss['groups_dropped']) == (1, 1)
  np.testing.assert_allclose(
      ss['delta'], (fake['ss'][2] - fake['ce_bayes'][2])[KEPT].mean(),
      rtol=1e-9)


def test_each_corruption_alone_and_the_clean_split(fake):
  per_corruption = _rows(fake, '(b)')
  assert list(per_corruption) == list(corruptions.CORRUPTIONS)
  for c, name in enumerate(corruptions.CORRUPTIONS):
    np.testing.assert_allclose(
        per_corruption[name]['delta'],
        (fake['ss'][c] - fake['ls'][c])[KEPT].mean(), rtol=1e-9, atol=1e-12)
    assert per_corruption[name]['kind'] in corruptions.KINDS
  (clean,) = _rows(fake, '(d)').values()
  assert (clean['n_images'], clean['n_seeds']) == (3 * N, 110)
  share = 100 * clean['delta'] / clean['reference_value']
  assert shift_readme.clean_sentence(fake['secondary']).startswith(
      f'On the clean confirmation images the same models differ by '
      f'{share:+.1f} % (95 % ')
  np.testing.assert_allclose(
      clean['delta'], (fake['ss_clean'] - fake['clean'])[KEPT].mean(),
      rtol=1e-9)


def test_bayes_against_argmax_per_family(fake):
  decoding = {(r['challenger'], r['kind']): r for r in fake['secondary']
              if r['label'] == '(c)'}
  ce = decoding['cross_entropy', 'geometric']
  assert ce['decodings'] == 'bayes/argmax' and ce['ci95_high'] < 0
  assert ce['groups_dropped'] == 0 and decoding[
      'label_smoothing', 'geometric']['groups_dropped'] == 1
  np.testing.assert_allclose(
      ce['delta'], (fake['ce_bayes'][GEOMETRIC]
                    - fake['ce'][GEOMETRIC]).mean(), rtol=1e-9)
  assert decoding['label_smoothing', 'noise']['ci95_low'] > 0
  assert decoding['smoothed_sord', 'noise']['delta'] == 0
  advice = shift_readme.decoding_advice(fake['secondary'])
  assert len(advice) == 4
  assert advice[0].startswith('Decoding under noise: Bayes for '
                              'cross-entropy, argmax for the rest.')


def test_the_test_split_rows_are_seeds_only(fake):
  row = _rows(fake, '(e)')['geometric']
  assert row['split'] == 'test' and 'ci95_low' not in row
  per_seed = (fake['ss'][GEOMETRIC].mean(axis=(0, 2))
              - fake['ls'][GEOMETRIC].mean(axis=(0, 2)))[KEPT]
  np.testing.assert_allclose(row['delta'], per_seed.mean(), rtol=1e-6)
  assert row['seeds_ci95_high'] < 0 and row['n_seeds'] == 110


def test_the_interaction_is_shift_minus_clean_on_the_same_images(fake):
  row = _rows(fake, '(g)')['geometric']
  # The clean images are the first N of the clean split: the corrupted
  # ones' originals.
  increase = {f: fake[f][GEOMETRIC].mean(axis=0) - fake[clean][:, :N]
              for f, clean in (('ss', 'ss_clean'), ('ls', 'clean'))}
  np.testing.assert_allclose(row['challenger_value'],
                             increase['ss'][KEPT].mean(), rtol=1e-9)
  np.testing.assert_allclose(row['reference_value'],
                             increase['ls'][KEPT].mean(), rtol=1e-9)
  np.testing.assert_allclose(
      row['delta'], (increase['ss'] - increase['ls'])[KEPT].mean(),
      rtol=1e-9)
  assert row['ci95_high'] < 0 and 'fewer_part' not in row
  # Under noise the pair ties: (g) is minus its clean difference there.
  np.testing.assert_allclose(
      _rows(fake, '(g)')['noise']['delta'],
      -(fake['ss_clean'] - fake['clean'])[KEPT, :N].mean(), rtol=1e-9)
  lines = shift_readme.interaction_lines(fake['secondary'])
  assert len(lines) == 4
  for line, r in zip(lines, _rows(fake, '(g)').values(), strict=True):
    excluded = r['ci95_low'] > 0 or r['ci95_high'] < 0
    assert ('under shift but not on clean images' in line) == excluded
  assert 'under shift but not on clean images' in lines[2]


def test_each_familys_level_under_each_kind(fake):
  levels = {(r['family'], r['kind'], r['decoding']): r
            for r in fake['families']}
  assert len(levels) == 4 * 5 * 2
  geometric = levels['smoothed_sord', 'geometric', 'argmax']
  np.testing.assert_allclose(geometric['mde'],
                             fake['ss'][GEOMETRIC][:, KEPT].mean(), rtol=1e-9)
  assert geometric['mde_ci95_low'] < geometric['mde'] < geometric[
      'mde_ci95_high']
  assert geometric['registered'] and not levels[
      'cross_entropy', 'geometric', 'argmax']['registered']
  errors = fake['ss'][GEOMETRIC][:, KEPT] > 0
  np.testing.assert_allclose(geometric['error_rate'], errors.mean())
  distances = fake['ss'][GEOMETRIC][:, KEPT]
  np.testing.assert_allclose(
      geometric['mean_error_distance'],
      np.mean(distances.sum(axis=(0, 2)) / errors.sum(axis=(0, 2))))
  clean = levels['label_smoothing', 'clean', 'argmax']
  assert (clean['n_images'], clean['n_seeds']) == (3 * N, 110)
  assert levels['cross_entropy', 'clean', 'bayes']['n_seeds'] == 120


def test_the_recipe_per_kind_follows_the_registered_rule(fake):
  pairs = [*fake['primary'], *(r for r in fake['secondary']
                               if r['label'] == '(a)')]
  # Noise: all three equal at their registered decodings: the simplest.
  assert shift_readme.recipe('noise', pairs, fake['families'])[0] == (
      'cross_entropy')
  # Blur: label smoothing and smoothed SORD equal, cross-entropy worse.
  assert shift_readme.recipe('blur', pairs, fake['families'])[0] == (
      'label_smoothing')
  # Geometric: smoothed SORD lowest and nothing else within 3 %.
  chosen, lowest, differences = shift_readme.recipe(
      'geometric', pairs, fake['families'])
  assert chosen is None and lowest['family'] == 'smoothed_sord'
  assert differences['label_smoothing'][1] > 0.03 * lowest['mde']
  lines = shift_readme.kind_recipes(fake['primary'], fake['secondary'],
                                    fake['families'])
  assert lines[0].startswith('noise (band ±6.5 %): **cross-entropy**.')
  assert lines[2].startswith('geometric (band ±3 %): **no recipe**')
  advice = shift_readme.front_advice(fake['primary'], fake['secondary'],
                                     fake['families'])
  assert advice.endswith('decode cross-entropy with Bayes, label smoothing '
                         'and smoothed SORD with argmax (Bayes minus argmax, '
                         'secondary).')
  assert 'by the registered rule the recipe is cross-entropy under noise; '\
      'label smoothing under blur' in advice
  with pytest.raises(ValueError, match='no row of cross_entropy'):
    shift_readme.recipe('blur', fake['primary'], fake['families'])


def test_the_report_writes_its_files(fake, monkeypatch):
  monkeypatch.setattr(shift_secondary, 'registered_decodings',
                      lambda results_dir: DECODINGS)
  monkeypatch.setattr(shift_report, 'registered_decodings',
                      lambda results_dir: DECODINGS)
  for name in ('primary_rows', 'secondary_rows', 'family_rows'):
    monkeypatch.setattr(shift_report, name, functools.partial(
        getattr(shift_report, name), replicates=200))
  # fake['root'] / 'confirmation' is the committed one: its CSVs too.
  assert shift_report.main(['--results_dir', str(fake['root'])]) == 0
  root = fake['root'] / 'shift'
  assert (fake['root'] / 'answer.png').stat().st_size > 10_000
  text = (root / 'shift.md').read_text()
  assert '## Secondary (g)' in text and '**no recipe**' in text
  assert all((root / name).exists() for name in shift_report.CSVS)


def test_the_registered_decodings_are_the_confirmations():
  assert shift_secondary.registered_decodings(ROOT / 'results') == DECODINGS


def test_the_readme_lines_read_the_primaries(fake):
  table = shift_readme.answer_table(fake['primary'])
  assert len(table) == 6
  geometric = {r['kind']: r for r in fake['primary']}['geometric']
  assert table[4].startswith(
      f"| S3 | geometric (rotate shear scale translate) | "
      f"{geometric['challenger_value']:.4f} vs "
      f"{geometric['reference_value']:.4f} | {geometric['delta']:+.4f} (")
  assert table[4].endswith(f"| ±3 % | {geometric['verdict']} |")
  headline = shift_readme.headline(fake['primary'])
  share = 100 * geometric['delta'] / geometric['reference_value']
  assert f'{share:+.1f} % under geometric (95 % ' in headline
  assert '+0.0 % under noise (95 % +0.0 % to +0.0 %: ' in headline


def test_the_answer_figure_has_a_row_per_hypothesis(fake):
  confirmation, secondary = (
      read_csv(ROOT / 'results' / 'confirmation' / name)
      for name in ('confirmation.csv', 'secondary.csv'))
  lines = answer_figure.answer_lines(confirmation, secondary,
                                     fake['primary'], fake['secondary'])
  assert [line.label.split()[0] for line in lines] == [
      'H1', 'H2', 'H3', 'S1', 'S2', 'S3', 'S4']
  assert lines[2].over_ce == {}  # H3 has no cross-entropy pair
  geometric = lines[5]
  (row,) = [r for r in fake['secondary'] if r['label'] == '(a)'
            and r['kind'] == 'geometric' and r['challenger']
            == 'smoothed_sord']
  assert geometric.over_ce['smoothed_sord'].share == pytest.approx(
      row['delta'] / row['reference_value'])
  assert geometric.band == 0.03 and lines[0].band == 0.04


def test_two_dropped_groups_make_every_row_of_the_pair_unstable(tmp_path):
  rng = np.random.default_rng(3)
  d = (rng.uniform(size=(12, 120, 8)) < 0.3) * 2
  clean = (rng.uniform(size=(120, 24)) < 0.3) * 1
  root = tmp_path / 'shift'
  (tmp_path / 'confirmation').symlink_to(ROOT / 'results' / 'confirmation')
  for family, diverged in (('label_smoothing', 1), ('smoothed_sord', 7),
                           ('cross_entropy', None)):
    write_shift_finals(root, family, corrupted(d, clean), diverged)
  primary = shift_rows.primary_rows(tmp_path, log=print, replicates=50)
  assert {r['verdict'] for r in primary} == {confirm_rows.UNSTABLE}
  assert {r['groups_dropped'] for r in primary} == {2}
  secondary = shift_secondary.secondary_rows(
      tmp_path, DECODINGS, log=lambda m: None, replicates=50)
  by_label = {}
  for r in secondary:
    by_label.setdefault(r['label'], set()).add(r['verdict'])
  assert by_label['(a)'] == by_label['(g)'] == {confirm_rows.UNSTABLE}
  families = shift_secondary.family_rows(tmp_path, DECODINGS, replicates=50)
  with pytest.raises(ValueError, match='unstable'):
    shift_readme.recipe('noise', [*primary, *secondary], families)


def test_the_matched_mass_sentence_reads_the_f_rows():
  def row(kind, delta, low, high, verdict='lower'):
    return {'label': '(f)', 'kind': kind, 'delta': delta,
            'reference_value': 0.5, 'ci95_low': low, 'ci95_high': high,
            'verdict': verdict}

  assert shift_readme.matched_sentence([]) == (
      'The registered control at matched mass, secondary (f), is not in yet.')
  sentence = shift_readme.matched_sentence([
      row('noise', -0.05, -0.06, -0.04),
      row('blur', 0.01, -0.01, 0.03, confirm_rows.UNSTABLE)])
  assert sentence.endswith('differs by -10.0 % under noise (95 % -12.0 % '
                           'to -8.0 %).')
  assert 'blur' not in sentence
