"""The documentation site (docs/): it builds with warnings as errors, and
its API reference has an entry for every name in ``losses.__all__`` and
``metrics.__all__`` (and nothing else of those modules)."""

import re
import subprocess
import sys

import pytest

import losses
import metrics
from conftest import ROOT


@pytest.fixture(scope='module')
def built(tmp_path_factory):
  out = tmp_path_factory.mktemp('html')
  subprocess.run([sys.executable, '-m', 'sphinx', '-W', '--keep-going',
                  '-q', '-b', 'html', '-c', str(ROOT / 'docs'), '-d',
                  str(out / '.doctrees'), str(ROOT), str(out)], check=True)
  return out / 'docs'


@pytest.mark.slow
@pytest.mark.parametrize('module', [losses, metrics])
def test_the_api_reference_lists_every_public_name(built, module):
  name = module.__name__
  page = (built / 'api' / f'{name}.html').read_text()
  anchors = set(re.findall(rf'id="{name}\.(\w+)"', page))
  assert anchors == set(module.__all__)


@pytest.mark.slow
def test_the_flags_page_is_made_from_the_parser(built):
  from trainer import cli
  page = (built / 'training.html').read_text()
  flags = [a.option_strings[0] for a in cli.build_parser()._actions
           if a.option_strings and a.dest != 'help']
  assert len(flags) > 30
  for flag in flags:
    assert f'<span class="pre">{flag}</span></code></p></td>' in page, flag


def _toctree_pages(index_text):
  """The pages the index's toctrees list, as paths from the root."""
  pages = set()
  for block in re.findall(r'```\{toctree\}\n(.*?)```', index_text, re.DOTALL):
    for line in block.splitlines():
      if line.strip() and not line.startswith(':'):
        pages.add(str((ROOT / 'docs' / f'{line.strip()}.md').resolve()
                      .relative_to(ROOT)))
  return pages


def test_every_page_is_in_a_toctree():
  # Sphinx -W fails on a page no toctree lists; this finds it every day.
  pages = {str(path.relative_to(ROOT)) for pattern in ('docs/**/*.md',
                                                       'results/**/*.md')
           for path in ROOT.glob(pattern) if '_build' not in path.parts}
  pages.discard('docs/index.md')
  assert _toctree_pages((ROOT / 'docs' / 'index.md').read_text()) == pages
