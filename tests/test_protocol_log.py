"""results/protocol.md is append-only from the confirmation's registration
on: each commit that touches it only adds text at its end, so a line, once
committed, stays byte for byte where it was (corrections are new dated
entries). Read from git: every commit since the registration that touched
the file, then the working tree against HEAD."""

import hashlib
import subprocess

import pytest

from conftest import ROOT

PROTOCOL = 'results/protocol.md'
REGISTRATION = 'Registered 2026-12-02, **before any confirmation cell ran**'
# Commits that changed lines in place before this test existed: the SHA-256
# (first 16 hex digits) of the lines each removed, joined by newlines. The
# log's entries of 2026-12-07 say what they read.
KNOWN_EDITS = {'003b517': '6a02603d4436f06f', '1c825ad': '0f14f6bcd0b453c8',
               '79d8dea': '550d5d92b0df3025'}


def _git(*args: str) -> str:
  return subprocess.run(['git', '-c', 'color.ui=never', *args], cwd=ROOT,
                        capture_output=True, text=True, check=True).stdout


def _digest(lines: list[str]) -> str:
  return hashlib.sha256('\n'.join(lines).encode()).hexdigest()[:16]


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


def _is_git_clone() -> bool:
  return (ROOT / '.git').exists()


needs_history = pytest.mark.skipif(
    not _is_git_clone() or _git('rev-parse', '--is-shallow-repository')
    .strip() == 'true', reason='needs a full git clone (not shallow)')


def _registration() -> str:
  commits = _git('log', '--format=%H', '--reverse', '-S', REGISTRATION, '--',
                 PROTOCOL).split()
  assert commits, f'the registration is not in the history of {PROTOCOL}'
  return commits[0]


def _show(revision: str) -> str:
  return _git('show', f'{revision}:{PROTOCOL}')


def _removed_since(*revisions: str) -> list[str]:
  return removed_lines(_git('diff', '--no-ext-diff', '-U0', *revisions, '--',
                            PROTOCOL))


@needs_history
def test_every_commit_since_the_registration_only_appends_to_the_protocol():
  registration = _registration()
  commits = _git('log', '--format=%H', '--reverse', '--full-history',
                 f'{registration}^..HEAD', '--', PROTOCOL).split()
  assert commits[0] == registration
  seen = set()
  for commit in commits:
    known = KNOWN_EDITS.get(commit[:7])
    if known is not None:
      seen.add(commit[:7])
      removed = _removed_since(f'{commit}^', commit)
      assert _digest(removed) == known, (commit, removed)
      continue
    before, after = _show(f'{commit}^'), _show(commit)
    assert after.startswith(before), (
        f'{commit[:7]} changed {PROTOCOL} other than by appending: '
        f'{_removed_since(f"{commit}^", commit)[:3]} removed, or text '
        'inserted before its end; add a dated entry at the end instead')
  assert seen == set(KNOWN_EDITS)


@pytest.mark.skipif(not _is_git_clone(), reason='not a git clone')
def test_the_working_tree_only_appends_to_the_committed_protocol():
  committed = _show('HEAD')
  assert (ROOT / PROTOCOL).read_text().startswith(committed), (
      f'{PROTOCOL} changes its committed text (removed: '
      f'{_removed_since("HEAD")[:3]}); add a dated entry at its end '
      'instead')


def test_a_dated_entry_discloses_each_known_edit():
  text = (ROOT / PROTOCOL).read_text()
  (entry,) = [e for e in text.split('\n- ') if e.startswith(
      '2026-12-07, a new session (issue 36')]
  for commit in KNOWN_EDITS:
    assert commit in entry, commit
  assert 'Clean and shifted were registered and dropped' in entry
