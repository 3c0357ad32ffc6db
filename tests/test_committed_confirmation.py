"""Every committed number of the confirmation regenerates from the committed
cells and per-image files, so a hand-edited row fails a test.

Fast lane: every row of confirmation.csv, secondary.csv, families.csv and
sensitivity.csv, every column but the bootstrap's (those are recomputed
with a handful of replicates and not compared), as the CSV prints it.
Slow lane: ``python -m study.confirm_report`` writes every CSV and
confirmation.md again, byte for byte on Linux x86_64 (the machine kind that
wrote them, and CI's); elsewhere the bootstrap's float32 sums may differ in
their last bits with another BLAS or CPU, so the CSVs are compared with the
bootstrap's columns to rtol 1e-3 and confirmation.md is not compared.
"""

import csv
import math
import platform
import sys

import pytest

from conftest import ROOT
from study import confirm_report, confirm_rows

COMMITTED = ROOT / 'results' / 'confirmation'
CSVS = ('confirmation.csv', 'secondary.csv', 'families.csv',
        'sensitivity.csv')
# Columns that come from the bootstrap's replicates (and the Holm p and
# verdict of the primaries, which read them).
BOOTSTRAP_COLUMNS = {'ci95_low', 'ci95_high', 'ci90_low', 'ci90_high',
                     'p_bootstrap', 'p_holm', 'detectable_share',
                     'largest_90_share', 'mde_ci95_low', 'mde_ci95_high',
                     'replicates'}
EXACT_HERE = sys.platform == 'linux' and platform.machine() == 'x86_64'


def _read(path):
  with open(path, newline='') as f:
    return list(csv.DictReader(f))


def _mismatches(committed, fresh, name, close_enough):
  """Every cell of ``committed`` that ``fresh`` does not reproduce, as
  (file, row, column, committed, fresh)."""
  if len(committed) != len(fresh):
    return [(name, 'rows', len(committed), len(fresh))]
  out = []
  for i, (old, new) in enumerate(zip(committed, fresh, strict=True)):
    if list(old) != list(new):
      out.append((name, i, 'columns', list(old), list(new)))
      continue
    for column, value in old.items():
      if not close_enough(name, column, value, new[column]):
        out.append((name, i, column, value, new[column]))
  return out


def _cheap_columns_equal(name, column, committed, fresh):
  if column in BOOTSTRAP_COLUMNS or (name == 'confirmation.csv'
                                     and column == 'verdict'):
    return True
  return committed == fresh


def test_every_committed_row_recomputes_from_the_committed_files(tmp_path):
  results = ROOT / 'results'
  replicates = 20  # the bootstrap's columns are not compared here
  primary = confirm_rows.hypothesis_rows(results, log=lambda m: None,
                                         replicates=replicates)
  rows = {
      'confirmation.csv': primary,
      'secondary.csv': confirm_rows.secondary_rows(
          results, log=lambda m: None, replicates=replicates)
      + confirm_rows.test_split_rows(results, primary),
      'families.csv': confirm_rows.family_rows(results,
                                               replicates=replicates),
      'sensitivity.csv': confirm_rows.sensitivity_rows(results)}
  mismatches = []
  for name in CSVS:
    confirm_report.write_csv(rows[name], tmp_path / name)
    mismatches += _mismatches(_read(COMMITTED / name),
                              _read(tmp_path / name), name,
                              _cheap_columns_equal)
  assert not mismatches, mismatches[:10]
  # The replicates each committed row states are the registered ones.
  assert {r['replicates'] for r in _read(COMMITTED / 'confirmation.csv')} \
      == {str(confirm_rows.REPLICATES)}
  assert {r['replicates'] for r in _read(COMMITTED / 'secondary.csv')} == {
      str(confirm_rows.SECONDARY_REPLICATES), ''}  # '': the test split's


def _within_float32_noise(name, column, committed, fresh):
  if committed == fresh:
    return True
  if column not in BOOTSTRAP_COLUMNS:
    return False
  try:
    return math.isclose(float(committed), float(fresh), rel_tol=1e-3)
  except ValueError:  # a bound such as '< 5e-05'
    return False


@pytest.mark.slow
def test_the_report_regenerates_every_committed_file(tmp_path):
  for part in ('cells', 'images'):
    (tmp_path / 'confirmation').mkdir(exist_ok=True)
    (tmp_path / 'confirmation' / part).symlink_to(COMMITTED / part)
  assert confirm_report.main(['--results_dir', str(tmp_path)]) == 0
  fresh = tmp_path / 'confirmation'
  if EXACT_HERE:
    for name in (*CSVS, 'confirmation.md'):
      assert (fresh / name).read_bytes() == (COMMITTED / name).read_bytes(), (
          name)
  else:
    mismatches = []
    for name in CSVS:
      mismatches += _mismatches(_read(COMMITTED / name), _read(fresh / name),
                                name, _within_float32_noise)
    assert not mismatches, mismatches[:10]
