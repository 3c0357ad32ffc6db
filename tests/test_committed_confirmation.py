"""Every committed number of the confirmation regenerates from the committed
cells and per-image files, so a hand-edited row fails a test.

Fast lane: the verdicts and Holm p of confirmation.csv follow from its
committed intervals, and the replicates each row states are the registered
ones. Slow lane: ``python -m study.confirm_report`` writes every CSV and
confirmation.md again, byte for byte on Linux x86_64 (the machine kind that
wrote them, and CI's); elsewhere the bootstrap's float32 sums may differ in
their last bits with another BLAS or CPU, so the CSVs are compared with the
bootstrap's columns to rtol 1e-3 and confirmation.md is not compared.
"""

import pytest

from committed import (
  EXACT_HERE,
  assert_verdicts_follow,
  mismatches,
  read,
  within_float32_noise,
)
from conftest import ROOT
from study import confirm_report, confirm_rows
from study.confirm_report import read_csv

COMMITTED = ROOT / 'results' / 'confirmation'
CSVS = ('confirmation.csv', 'secondary.csv', 'families.csv',
        'sensitivity.csv')
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


def test_the_committed_verdicts_follow_from_the_committed_intervals():
  committed = read_csv(COMMITTED / 'confirmation.csv')
  assert_verdicts_follow(committed, confirm_rows.verdicts)
  # The replicates each committed row states are the registered ones.
  assert {r['replicates'] for r in read(COMMITTED / 'confirmation.csv')} \
      == {str(confirm_rows.REPLICATES)}
  assert {r['replicates'] for r in read(COMMITTED / 'secondary.csv')} == {
      str(confirm_rows.SECONDARY_REPLICATES), ''}  # '': the test split's
