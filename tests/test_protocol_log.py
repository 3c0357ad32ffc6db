"""results/protocol.md is append-only from the confirmation's registration
on: a line, once committed, stays byte for byte (corrections are new dated
entries). Read from git: every commit since the registration that touched
the file, then the working tree against HEAD."""

import subprocess

import pytest

from conftest import ROOT

PROTOCOL = 'results/protocol.md'
REGISTRATION = 'Registered 2026-12-02, **before any confirmation cell ran**'
# Commits that changed lines in place before this test existed, and how many
# lines each removed; the log's entry of 2026-12-07 says what they read.
KNOWN_EDITS = {'003b517': 1, '1c825ad': 2, '79d8dea': 6}


def _git(*args: str) -> str:
  return subprocess.run(['git', *args], cwd=ROOT, capture_output=True,
                        text=True, check=True).stdout


def removed_lines(diff: str) -> list[str]:
  """The lines a unified diff removes (its hunks' '-' lines, not the
  '--- a/...' header)."""
  removed, in_hunk = [], False
  for line in diff.splitlines():
    if line.startswith('@@'):
      in_hunk = True
    elif line.startswith('diff --git'):
      in_hunk = False
    elif in_hunk and line.startswith('-'):
      removed.append(line[1:])
  return removed


def test_removed_lines_reads_hunks_not_headers():
  diff = ('diff --git a/p.md b/p.md\n--- a/p.md\n+++ b/p.md\n'
          '@@ -3 +3 @@\n--- a line that began with two dashes\n+new\n'
          '@@ -9,0 +10 @@\n+appended\n')
  assert removed_lines(diff) == ['-- a line that began with two dashes']


needs_git = pytest.mark.skipif(not (ROOT / '.git').exists(),
                               reason='not a git clone')


def _registration() -> str:
  commits = _git('log', '--format=%H', '--reverse', '-S', REGISTRATION, '--',
                 PROTOCOL).split()
  assert commits, f'the registration is not in the history of {PROTOCOL}'
  return commits[0]


@needs_git
def test_no_committed_line_of_the_protocol_changed_since_its_registration():
  registration = _registration()
  commits = _git('log', '--format=%H', '--reverse',
                 f'{registration}^..HEAD', '--', PROTOCOL).split()
  assert commits[0] == registration
  seen = set()
  for commit in commits:
    removed = removed_lines(_git('diff', '-U0', f'{commit}^', commit, '--',
                                 PROTOCOL))
    known = KNOWN_EDITS.get(commit[:7])
    if known is not None:
      seen.add(commit[:7])
      assert len(removed) == known, (commit, removed)
      continue
    assert not removed, (
        f'{commit[:7]} changed {len(removed)} committed line(s) of '
        f'{PROTOCOL} in place: {removed[:3]}; add a dated entry instead')
  assert seen == set(KNOWN_EDITS)


@needs_git
def test_the_working_tree_changes_no_committed_line_of_the_protocol():
  removed = removed_lines(_git('diff', '-U0', 'HEAD', '--', PROTOCOL))
  assert not removed, (f'{PROTOCOL} changes committed lines: {removed[:3]}; '
                       'add a dated entry instead')


def test_a_dated_entry_discloses_each_known_edit():
  text = (ROOT / PROTOCOL).read_text()
  (entry,) = [e for e in text.split('\n- ') if e.startswith(
      '2026-12-07, a new session (issue 36')]
  for commit in KNOWN_EDITS:
    assert commit in entry, commit
  assert 'Clean and shifted were registered and dropped' in entry
