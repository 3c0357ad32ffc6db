"""Comparing committed result CSVs with fresh ones: every cell a fresh
computation does not reproduce, with the columns that come from random
resampling compared only where the replicates are the same."""

import csv
import math
import platform
import subprocess
import sys

import pytest

from conftest import ROOT

# Columns that come from the bootstrap's replicates (and a Holm p and
# verdict, which read them).
BOOTSTRAP_COLUMNS = {'ci95_low', 'ci95_high', 'ci90_low', 'ci90_high',
                     'p_bootstrap', 'p_holm', 'detectable_share',
                     'largest_90_share', 'mde_ci95_low', 'mde_ci95_high',
                     'replicates'}
# The machine kind that wrote the committed files (and CI's): there a fresh
# report must match them byte for byte.
EXACT_HERE = sys.platform == 'linux' and platform.machine() == 'x86_64'


def read(path):
  with open(path, newline='') as f:
    return list(csv.DictReader(f))


def mismatches(committed, fresh, name, close_enough):
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


def within_float32_noise(name, column, committed, fresh):
  """Equal, or a bootstrap column within the float32 sums' last bits (a
  bound such as '< 5e-05' must be equal)."""
  if committed == fresh:
    return True
  if column not in BOOTSTRAP_COLUMNS:
    return False
  try:
    return math.isclose(float(committed), float(fresh), rel_tol=1e-3)
  except ValueError:
    return False


def _git(*args):
  return subprocess.run(['git', *args], cwd=ROOT, capture_output=True,
                        text=True, check=True).stdout


def registered_before_its_cells(registration, *folders):
  """Asserts that the text ``registration`` entered results/protocol.md in a
  commit before (an ancestor of, and not) every commit that added a file
  under ``folders``."""
  registered = _git('log', '--format=%H', '--reverse', '-S', registration,
                    '--', 'results/protocol.md').split()
  assert registered, f'{registration} is not in git'
  for commit in _git('log', '--format=%H', '--diff-filter=A', '--',
                     *folders).split():
    assert commit != registered[0], commit
    assert subprocess.run(['git', 'merge-base', '--is-ancestor',
                           registered[0], commit], cwd=ROOT).returncode == 0


def assert_verdicts_follow(committed, verdicts):
  """Holm and the verdict rules rerun on the committed rows' own columns
  (``committed`` as ``read_csv`` gives them; ``verdicts`` fills each row's
  verdict and Holm p in place) give the committed verdicts and Holm p. A p
  printed as a bound ('< 5e-05') is read as 0: no replicate reached it."""
  rows = [{**r, 'p_bootstrap': 0.0 if isinstance(r['p_bootstrap'], str)
           else r['p_bootstrap']} for r in committed]
  verdicts(rows)
  assert [r['verdict'] for r in rows] == [r['verdict'] for r in committed]
  assert [str(r['p_holm']) if isinstance(r['p_holm'], str)
          else pytest.approx(r['p_holm'], rel=1e-5) for r in rows] == [
              r['p_holm'] for r in committed]
