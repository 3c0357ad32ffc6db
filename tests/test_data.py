"""Tests for data.py: real MNIST, synthetic IDX files, validation, tfds."""

import contextlib
import functools
import gzip
import http.server
import socket
import threading
import time

import numpy as np
import pytest

import data
from conftest import MNIST_DIR, make_fake_mnist, needs_mnist

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.slow
@needs_mnist
def test_real_mnist_loads_with_known_counts():
  mnist = data.load_mnist(MNIST_DIR)
  train, test = mnist['train'], mnist['test']
  assert train.images.shape == (60000, 28, 28, 1)
  assert train.images.dtype == np.uint8 and train.labels.dtype == np.int32
  assert test.images.shape == (10000, 28, 28, 1)
  np.testing.assert_array_equal(np.bincount(train.labels), TRAIN_COUNTS)
  np.testing.assert_array_equal(np.bincount(test.labels), TEST_COUNTS)


@pytest.mark.parametrize('gz', [True, False])
def test_synthetic_idx_round_trip(tmp_path, gz):
  make_fake_mnist(tmp_path, gz=gz)
  rng = np.random.default_rng(0)
  want_images = rng.integers(0, 256, (64, 28, 28), np.uint8)
  got = data.load_mnist(tmp_path)
  np.testing.assert_array_equal(got['train'].images[..., 0], want_images)
  assert got['test'].labels.shape == (32,)


def test_mnist_dir_environment_variable(tmp_path, monkeypatch):
  make_fake_mnist(tmp_path)
  monkeypatch.setenv('MNIST_DIR', str(tmp_path))
  assert data.load_mnist()['train'].images.shape == (64, 28, 28, 1)


def corrupt(path, how):
  raw = gzip.decompress(path.read_bytes())
  if how == 'truncate':
    raw = raw[:-100]
  elif how == 'pad':
    raw = raw + b'\0' * 10
  elif how == 'magic':
    raw = b'\0\0\x08\x01' + raw[4:]
  elif how == 'header':
    raw = raw[:6]
  path.write_bytes(gzip.compress(raw))


@pytest.mark.parametrize('how, match', [
    ('truncate', 'holds .* bytes; it is truncated or corrupt'),
    ('pad', 'holds .* bytes; it is truncated or corrupt'),
    ('magic', 'magic number 2049, expected 2051'),
    ('header', 'shorter than the IDX header'),
])
def test_corrupt_image_file_names_the_file(tmp_path, how, match):
  make_fake_mnist(tmp_path)
  path = tmp_path / 'train-images-idx3-ubyte.gz'
  corrupt(path, how)
  with pytest.raises(data.DataError, match=match) as info:
    data.load_mnist(tmp_path)
  assert str(path) in str(info.value)


def test_truncated_gzip_stream_names_the_file(tmp_path):
  make_fake_mnist(tmp_path)
  path = tmp_path / 't10k-images-idx3-ubyte.gz'
  path.write_bytes(path.read_bytes()[:200])
  with pytest.raises(data.DataError, match='truncated or corrupt') as info:
    data.load_mnist(tmp_path)
  assert str(path) in str(info.value)


def test_image_label_count_mismatch(tmp_path):
  make_fake_mnist(tmp_path)
  data.write_idx(tmp_path / 'train-labels-idx1-ubyte.gz',
                 np.zeros(63, np.uint8))
  with pytest.raises(data.DataError, match=r'64 images but .* 63 labels'):
    data.load_mnist(tmp_path)


def test_label_out_of_range(tmp_path):
  make_fake_mnist(tmp_path)
  data.write_idx(tmp_path / 't10k-labels-idx1-ubyte.gz',
                 np.full(32, 10, np.uint8))
  with pytest.raises(data.DataError, match=r'label 10 is outside 0\.\.9'):
    data.load_mnist(tmp_path)


def test_wrong_image_size(tmp_path):
  make_fake_mnist(tmp_path)
  data.write_idx(tmp_path / 'train-images-idx3-ubyte.gz',
                 np.zeros((64, 32, 32), np.uint8))
  with pytest.raises(data.DataError, match=r'items of shape \(32, 32\)'):
    data.load_mnist(tmp_path)


def test_missing_files_say_how_to_point_at_them(tmp_path):
  with pytest.raises(data.DataError,
                     match='missing train-images-idx3-ubyte') as info:
    data.load_mnist(tmp_path)
  assert '--data_dir' in str(info.value) and 'MNIST_DIR' in str(info.value)
  with pytest.raises(data.DataError, match='is not a folder'):
    data.load_mnist(tmp_path / 'nope')


def test_offline_without_files_fails_fast(tmp_path, monkeypatch):
  # A tfds download would retry for minutes offline; we never download.
  monkeypatch.delenv('MNIST_DIR', raising=False)
  t0 = time.perf_counter()
  with pytest.raises(data.DataError, match='not prepared') as info:
    data.load_mnist(None, tfds_data_dir=tmp_path)
  assert time.perf_counter() - t0 < 60
  assert '--data_dir' in str(info.value)


def test_tfds_source_reads_what_the_idx_builder_prepared(tmp_path, monkeypatch):
  monkeypatch.delenv('MNIST_DIR', raising=False)
  idx_dir = tmp_path / 'idx'
  idx_dir.mkdir()
  make_fake_mnist(idx_dir, num_train=40, num_test=20)
  data.prepare_tfds_from_idx(idx_dir, tmp_path / 'tfds')
  from_idx = data.load_mnist(idx_dir)
  from_tfds = data.load_mnist(None, tfds_data_dir=tmp_path / 'tfds')
  for split in ('train', 'test'):
    a, b = from_idx[split], from_tfds[split]
    assert b.images.shape == a.images.shape and b.labels.dtype == np.int32
    # tfds shuffles the records; compare as sets of (image, label).

    def key(s):
      return sorted(zip(map(bytes, s.images), s.labels.tolist(), strict=True))

    assert key(a) == key(b)


# ----------------------------------------------------------------------------
# Download: a local HTTP server stands in for the mirrors (no internet).


@contextlib.contextmanager
def http_server(folder):
  handler = functools.partial(QuietHandler, directory=str(folder))
  server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  try:
    yield f'http://127.0.0.1:{server.server_address[1]}/'
  finally:
    server.shutdown()
    server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):

  def log_message(self, *args):
    del args


def dead_url():
  with socket.socket() as s:  # a port nothing listens on
    s.bind(('127.0.0.1', 0))
    return f'http://127.0.0.1:{s.getsockname()[1]}/'


@pytest.fixture
def no_local_data(tmp_path, monkeypatch):
  """No MNIST_DIR, an empty tfds dir and an empty cache under tmp_path."""
  monkeypatch.delenv('MNIST_DIR', raising=False)
  monkeypatch.delenv('MNIST_NO_DOWNLOAD', raising=False)
  monkeypatch.setenv('TFDS_DATA_DIR', str(tmp_path / 'tfds'))
  monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
  monkeypatch.setenv('HOME', str(tmp_path / 'home'))
  return tmp_path / 'cache' / 'ordinal-mnist' / 'mnist'


@pytest.mark.slow
@needs_mnist
def test_download_fills_the_cache_and_the_next_load_reads_it(
    no_local_data, monkeypatch):
  with http_server(MNIST_DIR) as url:
    monkeypatch.setenv('MNIST_MIRRORS', f'{dead_url()},{url}')  # dead first
    mnist = data.load_mnist()
  assert len(mnist['train'].labels) == 60000
  assert sorted(p.name for p in no_local_data.iterdir()) == sorted(
      f'{stem}.gz' for stem in data.IDX_SHA256)
  monkeypatch.setenv('MNIST_MIRRORS', dead_url())  # offline now
  again = data.load_mnist()
  np.testing.assert_array_equal(again['test'].labels, mnist['test'].labels)


def test_corrupted_mirror_is_an_error_and_leaves_the_cache_empty(
    no_local_data, tmp_path, monkeypatch):
  bad = tmp_path / 'bad_mirror'
  bad.mkdir()
  make_fake_mnist(bad)  # valid gzip IDX files, but not MNIST's bytes
  with http_server(bad) as url:
    monkeypatch.setenv('MNIST_MIRRORS', url)
    with pytest.raises(data.DataError, match='checksum mismatch') as info:
      data.load_mnist()
  assert url in str(info.value) and '--data_dir' in str(info.value)
  assert list(no_local_data.iterdir()) == []


def test_offline_fails_fast_naming_the_mirrors(no_local_data, monkeypatch):
  urls = [dead_url(), dead_url()]
  monkeypatch.setenv('MNIST_MIRRORS', ','.join(urls))
  start = time.perf_counter()
  with pytest.raises(data.DataError) as info:
    data.load_mnist()
  assert time.perf_counter() - start < 30
  assert all(u in str(info.value) for u in urls)
  assert '--data_dir' in str(info.value)


def test_no_download_never_touches_the_network_or_leaves_files(
    no_local_data, tmp_path, monkeypatch):
  monkeypatch.setenv('MNIST_MIRRORS', 'http://203.0.113.1/')  # never asked
  with pytest.raises(data.DataError, match='downloading is off'):
    data.load_mnist(download=False)
  monkeypatch.setenv('MNIST_NO_DOWNLOAD', '1')
  with pytest.raises(data.DataError, match='downloading is off'):
    data.load_mnist()
  # The tfds lookup found nothing and created nothing.
  assert not (tmp_path / 'tfds').exists()
  assert not (tmp_path / 'home' / 'tensorflow_datasets').exists()
  assert not no_local_data.exists()
