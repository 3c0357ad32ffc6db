"""Test-wide settings: strict rank promotion, as in nanodo, and import paths."""

import os
import pathlib
import sys

import jax
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
jax.config.update('jax_numpy_rank_promotion', 'raise')

# Real MNIST for the few tests that need it: $MNIST_DIR, else ../shared/mnist.
MNIST_DIR = pathlib.Path(os.environ.get('MNIST_DIR',
                                       ROOT.parent / 'shared' / 'mnist'))

# The script that made tests/data/dlordinal_reference.json needs PyTorch and
# dlordinal, which are never dependencies: not a test module.
collect_ignore_glob = ['data/*']


def num_outputs_of(loss: str, num_classes: int) -> int:
  """The size of the model output a registered loss reads."""
  from model import head_for  # after ROOT is on the path
  return head_for(loss).num_outputs(num_classes)


@pytest.fixture
def fake_dir(tmp_path):
  """A folder of small, valid MNIST IDX files."""
  from test_data import make_fake_mnist  # after ROOT is on the path
  (tmp_path / 'mnist').mkdir()
  return make_fake_mnist(tmp_path / 'mnist')
