"""Test-wide settings and the helpers the test modules share.

Settings: strict rank promotion (as in nanodo), the import path, JAX's
persistent compilation cache (a rerun skips the compiles of the last one),
and the ``slow`` marker (``pytest -m "not slow"`` is the two-minute lane).
"""

import json
import os
import pathlib
import sys

import jax
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
jax.config.update('jax_numpy_rank_promotion', 'raise')
# One cache folder per pytest-xdist worker: workers never write one entry
# at the same time.
jax.config.update('jax_compilation_cache_dir', os.environ.get(
    'JAX_COMPILATION_CACHE_DIR', str(ROOT / '.pytest_cache' / 'jax' /
                                     os.environ.get('PYTEST_XDIST_WORKER',
                                                    'main'))))
jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.5)

import data  # noqa: E402  (after ROOT is on the path)

# The everyday lane is made of small programs, each compiled once, so
# compiling is most of its time: there it compiles at LLVM's cheapest level
# (the same programs, less optimised machine code, so a value may move in
# its last bits; the goldens hold at 1e-6 under it). The slow lane, whose
# runs and benches time real work, compiles as users do.
EVERYDAY_LANE = 'not slow'


def pytest_configure(config):
  if config.option.markexpr == EVERYDAY_LANE:
    jax.config.update('jax_disable_most_optimizations', True)
    os.environ['JAX_DISABLE_MOST_OPTIMIZATIONS'] = '1'  # for subprocesses


def pytest_collection_modifyitems(items):
  # The docstrings' examples run op by op, each operation compiled on its
  # own (about 20 s of the everyday lane): they run in the slow lane, and
  # the library's unit tests check the same functions every day.
  for item in items:
    if isinstance(item, pytest.DoctestItem):
      item.add_marker(pytest.mark.slow)

# Real MNIST for the few tests that need it: $MNIST_DIR, else ../shared/mnist.
MNIST_DIR = pathlib.Path(os.environ.get('MNIST_DIR',
                                       ROOT.parent / 'shared' / 'mnist'))
needs_mnist = pytest.mark.skipif(
    not (MNIST_DIR / 'train-images-idx3-ubyte.gz').is_file(),
    reason=f'real MNIST not found in {MNIST_DIR} (set MNIST_DIR)')

# bfloat16 doubles the dtype-parametrized tests; float32 runs in the fast lane.
BFLOAT16_SLOW = pytest.param(jax.numpy.bfloat16, marks=pytest.mark.slow,
                             id='bfloat16')

# The script that made tests/data/dlordinal_reference.json needs PyTorch and
# dlordinal, which are never dependencies: not a test module.
collect_ignore_glob = ['data/*']


def num_outputs_of(loss: str, num_classes: int) -> int:
  """The size of the model output a registered loss reads."""
  from model import head_for
  return head_for(loss).num_outputs(num_classes)


def learnable_dataset(num_train=320, num_test=128, seed=0):
  """Noise with a bright band at a row set by the label: quick to learn."""
  rng = np.random.default_rng(seed)

  def split(n):
    labels = rng.integers(0, 10, n).astype(np.int32)
    images = rng.integers(0, 40, (n, 28, 28, 1)).astype(np.uint8)
    for image, label in zip(images, labels, strict=True):
      image[4 + 2 * label:6 + 2 * label] = 255
    return data.Split(images, labels)

  return {'train': split(num_train), 'test': split(num_test)}


@pytest.fixture(scope='session')
def tiny():
  """The synthetic dataset most training tests share (read-only)."""
  return learnable_dataset()


def read_jsonl(path):
  return [json.loads(line)
          for line in pathlib.Path(path).read_text().splitlines()]


def run_config(**kw):
  """A Config with the tests' defaults: batch 32, one epoch."""
  from trainer.config import Config
  kw.setdefault('batch_size', 32)
  kw.setdefault('epochs', 1)
  return Config(**kw)


# The registered losses whose per-loss properties the everyday lane checks:
# one of each head and target kind (softmax, soft targets, cumulative link,
# rank-consistent, Poisson, von Mises, unimodal).
EVERYDAY_LOSSES = ('clm', 'copoc_head', 'coral', 'cross_entropy',
                   'poisson_head', 'soft_label_cross_entropy', 'von_mises_head')


def everyday_subset(names, everyday):
  """``names`` as parameters, those outside ``everyday`` in the slow lane
  only: a per-loss property runs on a few losses every day (``everyday``,
  which must all be among ``names``) and on every loss in the slow lane."""
  names = list(names)
  assert set(everyday) <= set(names), set(everyday) - set(names)
  return [pytest.param(name, marks=() if name in everyday
                       else pytest.mark.slow) for name in names]


def write_split(folder, split, images, labels, gz=True):
  image_stem, label_stem = data.IDX_FILES[split]
  suffix = '.gz' if gz else ''
  data.write_idx(pathlib.Path(folder) / (image_stem + suffix), images)
  data.write_idx(pathlib.Path(folder) / (label_stem + suffix), labels)


def make_fake_mnist(folder, num_train=64, num_test=32, seed=0, gz=True):
  rng = np.random.default_rng(seed)
  for split, n in (('train', num_train), ('test', num_test)):
    write_split(folder, split, rng.integers(0, 256, (n, 28, 28), np.uint8),
                rng.integers(0, 10, n).astype(np.uint8), gz=gz)
  return folder


@pytest.fixture
def fake_dir(tmp_path):
  """A folder of small, valid MNIST IDX files."""
  (tmp_path / 'mnist').mkdir()
  return make_fake_mnist(tmp_path / 'mnist')


def third_party_imports(path):
  """The top-level packages a file imports, less the standard library."""
  import ast
  tree = ast.parse(pathlib.Path(path).read_text())
  imported = {alias.name.split('.')[0] for node in ast.walk(tree)
              if isinstance(node, ast.Import) for alias in node.names}
  imported |= {node.module.split('.')[0] for node in ast.walk(tree)
               if isinstance(node, ast.ImportFrom) and node.module}
  return imported - set(sys.stdlib_module_names)


def run_copied_alone(path, tmp_path, script):
  """Runs ``script`` in a fresh interpreter beside a copy of the library
  file ``path`` alone (no project on the path); returns its stdout and
  fails on a non-zero exit. The script checks that no project module was
  imported."""
  import shutil
  import subprocess
  import textwrap
  shutil.copy(path, tmp_path / pathlib.Path(path).name)
  project = {'config', 'data', 'model', 'metrics', 'losses', 'train',
             'trainer'} - {pathlib.Path(path).stem}
  check = textwrap.dedent(f"""
      import sys
      imported = set({sorted(project)!r}) & set(sys.modules)
      assert not imported, imported
      """)
  result = subprocess.run(
      [sys.executable, '-c', textwrap.dedent(script) + check], cwd=tmp_path,
      capture_output=True, text=True, timeout=120,
      env={'PATH': '/usr/bin:/bin', 'JAX_PLATFORMS': 'cpu'})
  assert result.returncode == 0, result.stderr
  return result.stdout
