"""Sphinx configuration: the API reference from the docstrings (autodoc,
napoleon for their Google-style sections), the guides in MyST Markdown so
that they read as plain Markdown on a code host too. Builds offline."""

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'docs' / '_ext'))

project = 'ordinal-mnist'
extensions = ['myst_parser', 'sphinx.ext.autodoc', 'sphinx.ext.napoleon',
              'sphinx.ext.mathjax', 'flags']
source_suffix = {'.md': 'markdown'}
# The source is the repository, so that links between docs/ and results/
# resolve both here and on a code host; only these files are read.
root_doc = 'docs/index'
include_patterns = ['docs/**', 'results/*.md', 'results/**/*.md']
exclude_patterns = ['docs/_build']
myst_enable_extensions = ['dollarmath']
myst_heading_anchors = 3
autodoc_member_order = 'bysource'
autodoc_typehints = 'description'
napoleon_google_docstring = True
napoleon_numpy_docstring = False
html_theme = 'alabaster'
html_static_path: list[str] = []
nitpicky = False
napoleon_use_ivar = True
