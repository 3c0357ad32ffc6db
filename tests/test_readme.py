"""The README's Python snippets run as written."""

import pathlib
import re

import numpy as np
import pytest

README = pathlib.Path(__file__).resolve().parent.parent / 'README.md'
SNIPPETS = re.findall(r'```python\n(.*?)```', README.read_text(), re.DOTALL)


def test_the_readme_has_its_library_snippets():
  assert len(SNIPPETS) >= 2
  assert "make_loss('soft_label_cross_entropy'" in SNIPPETS[0]


@pytest.mark.parametrize('index', range(len(SNIPPETS)))
def test_snippet_runs(index):
  namespace = {}
  exec(compile(SNIPPETS[index], f'README.md python block {index}', 'exec'),
       namespace)
  if index == 0:  # the first recipe: masked entries are 0, the mean is finite
    assert namespace['per_example'].shape == (32,)
    assert np.all(np.asarray(namespace['per_example'])[30:] == 0.0)
    assert np.isfinite(float(namespace['loss']))
