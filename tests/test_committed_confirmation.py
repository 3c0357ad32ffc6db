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

import pytest

from committed import (
  BOOTSTRAP_COLUMNS,
  EXACT_HERE,
  mismatches,
  read,
  within_float32_noise,
)
from conftest import ROOT
from study import confirm_families, confirm_report, confirm_rows

COMMITTED = ROOT / 'results' / 'confirmation'
CSVS = ('confirmation.csv', 'secondary.csv', 'families.csv',
        'sensitivity.csv')
def _cheap_columns_equal(name, column, committed, fresh):
  if column in BOOTSTRAP_COLUMNS or (name == 'confirmation.csv'
                                     and column == 'verdict'):
    return True
  return committed == fresh


# The slow lane's regeneration below checks every byte of these files;
# this cheaper check reads every cell but the resampled ones, off Linux too.
@pytest.mark.slow
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
      'families.csv': confirm_families.family_rows(results,
                                               replicates=replicates),
      'sensitivity.csv': confirm_families.sensitivity_rows(results)}
  found = []
  for name in CSVS:
    confirm_report.write_csv(rows[name], tmp_path / name)
    found += mismatches(read(COMMITTED / name),
                              read(tmp_path / name), name,
                              _cheap_columns_equal)
  assert not found, found[:10]
  # The replicates each committed row states are the registered ones.
  assert {r['replicates'] for r in read(COMMITTED / 'confirmation.csv')} \
      == {str(confirm_rows.REPLICATES)}
  assert {r['replicates'] for r in read(COMMITTED / 'secondary.csv')} == {
      str(confirm_rows.SECONDARY_REPLICATES), ''}  # '': the test split's


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
    found = []
    for name in CSVS:
      found += mismatches(read(COMMITTED / name), read(fresh / name),
                                name, within_float32_noise)
    assert not found, found[:10]
