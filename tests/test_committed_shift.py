"""Every committed number of the confirmation under shift regenerates from
the committed cells and per-image files, so a hand-edited row fails a test.

Fast lane: the verdicts and Holm p of shift.csv follow from its committed
intervals, the replicates each row states are the registered ones, and the
README and the answers page state the committed answer. Slow lane:
``python -m study.shift_report`` writes every file again, byte for byte on
Linux x86_64 (elsewhere the CSVs to the bootstrap's float32 noise).
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
from study import confirm_rows, shift_readme, shift_report, shift_secondary
from study.confirm_report import read_csv

COMMITTED = ROOT / 'results' / 'shift'


@pytest.mark.slow
def test_the_report_regenerates_every_committed_file(tmp_path):
  (tmp_path / 'shift').mkdir()
  for part in ('cells', 'images'):
    (tmp_path / 'shift' / part).symlink_to(COMMITTED / part)
  (tmp_path / 'confirmation').symlink_to(ROOT / 'results' / 'confirmation')
  assert shift_report.main(['--results_dir', str(tmp_path)]) == 0
  fresh = tmp_path / 'shift'
  # The README's figure, drawn from the committed CSVs.
  assert (tmp_path / 'answer.png').stat().st_size > 10_000
  if EXACT_HERE:
    for name in (*shift_report.CSVS, 'shift.md'):
      assert (fresh / name).read_bytes() == (COMMITTED / name).read_bytes(), (
          name)
  else:
    found = []
    for name in shift_report.CSVS:
      found += mismatches(read(COMMITTED / name), read(fresh / name), name,
                          within_float32_noise)
    assert not found, found[:10]


def test_the_readme_and_the_answers_page_state_the_committed_shift_answer():
  primary, secondary, families = (read_csv(COMMITTED / name)
                                  for name in shift_report.CSVS)
  readme = ' '.join((ROOT / 'README.md').read_text().split())
  assert shift_readme.headline(primary) in readme
  assert shift_readme.front_advice(primary, secondary, families) in readme
  assert shift_readme.matched_sentence(secondary) in readme
  page = (ROOT / 'docs' / 'confirmation.md').read_text()
  for line in shift_readme.answer_table(primary):
    assert line in page.splitlines(), line
  # The sentences, which the page wraps.
  words = ' '.join(page.split())
  for sentence in (*shift_readme.kind_recipes(primary, secondary, families),
                   *shift_readme.decoding_advice(secondary),
                   *shift_readme.interaction_lines(secondary),
                   shift_readme.clean_sentence(secondary),
                   shift_readme.matched_sentence(secondary)):
    assert sentence in words, sentence
  # The registered phrase only where the interaction allows it.
  allowed = sum('under shift but not on clean images' in line
                for line in shift_readme.interaction_lines(secondary))
  # (+1: the page's statement of the rule itself.)
  assert words.count('under shift but not on clean images') == allowed + 1
  assert 'under shift but not on clean images' not in readme


def test_the_committed_verdicts_follow_from_the_committed_intervals():
  committed = read_csv(COMMITTED / 'shift.csv')
  assert_verdicts_follow(committed, confirm_rows.verdicts)
  # The replicates each committed row states are the registered ones.
  assert {r['replicates'] for r in read(COMMITTED / 'shift.csv')} == {
      str(confirm_rows.REPLICATES)}
  assert {r['replicates'] for r in read(COMMITTED / 'shift_secondary.csv')
          } == {str(shift_secondary.REPLICATES), ''}  # '': the test split's
