"""Every committed number of the prediction sets regenerates from the
committed cells and per-image files, so a hand-edited row fails a test.

Every row of sets.csv and sets_secondary.csv, every column but those from
random resampling (recomputed with a handful of replicates and not
compared), as the CSV prints it; the verdicts from the committed intervals;
the README's lines. The resampled columns take the report's full run
(``python -m study sets_report``, about ten minutes): no test repeats it.
"""

import pytest

from committed import assert_verdicts_follow, mismatches, read
from conftest import ROOT
from study import sets_readme, sets_report, sets_rows
from study.confirm_report import read_csv, write_csv

COMMITTED = ROOT / 'results' / 'sets'
RESAMPLED = {'ci95_low', 'ci95_high', 'ci90_low', 'ci90_high', 'p_bootstrap',
             'p_holm', 'verdict', 'detectable_share_of_excess',
             'fixed_calibration_ci95_low', 'fixed_calibration_ci95_high',
             'mean_offset', 'clipped_share', 'replicates', 'p_sign_flip'}

pytestmark = pytest.mark.skipif(not (COMMITTED / 'sets.csv').exists(),
                                reason='the sets report is not committed yet')


def _cheap_columns_equal(name, column, committed, fresh):
  del name
  return column in RESAMPLED or committed == fresh


def test_every_committed_row_recomputes_from_the_committed_files(
    tmp_path, monkeypatch):
  monkeypatch.setattr(sets_rows, 'SIGN_FLIPS', 20)
  rows = {'sets.csv': sets_rows.primary_rows(COMMITTED, replicates=20,
                                             log=lambda m: None),
          'sets_secondary.csv': sets_rows.secondary_rows(
              COMMITTED, replicates=20, log=lambda m: None)}
  for row in rows['sets.csv']:
    row['command'] = sets_report.COMMAND
  found = []
  for name in sets_report.CSVS:
    write_csv(rows[name], tmp_path / name)
    found += mismatches(read(COMMITTED / name), read(tmp_path / name), name,
                        _cheap_columns_equal)
  assert not found, found[:10]
  assert {r['replicates'] for r in read(COMMITTED / 'sets.csv')} == {
      str(sets_rows.REPLICATES)}


def test_the_committed_verdicts_follow_from_the_committed_intervals():
  committed = read_csv(COMMITTED / 'sets.csv')
  assert_verdicts_follow(committed, sets_rows.verdicts)


def test_the_readme_states_the_committed_sets_answer():
  primary, secondary = (read_csv(COMMITTED / name)
                        for name in sets_report.CSVS)
  readme = ' '.join((ROOT / 'README.md').read_text().split())
  for line in sets_readme.readme_lines(primary, secondary):
    assert ' '.join(line.split()) in readme, line
