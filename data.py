"""MNIST as numpy arrays: uint8 images [N, 28, 28, 1] and int32 labels [N].

Sources, tried in this order (:func:`load_mnist`):

1. The four standard IDX files (``train-images-idx3-ubyte[.gz]``, ...) in
   ``data_dir`` or, when that is not given, in ``$MNIST_DIR``.
2. tensorflow-datasets' ``mnist``, read TensorFlow-free with
   ``tfds.data_source`` from an already prepared tfds data directory.
3. The download cache, ``~/.cache/ordinal-mnist/mnist``.
4. A download into that cache from public mirrors, each file checked against
   the SHA-256 of its uncompressed bytes.

Everything read is validated (magic numbers, shapes, counts, label range); a
truncated or corrupt file raises :class:`DataError` naming the file.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import pathlib
import struct
import sys
import urllib.error
import urllib.request
import urllib.response
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

import numpy as np

IDX_FILES = {
    'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
    'test': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'),
}
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049  # IDX: uint8 data, 3 or 1 dimensions
NUM_CLASSES = 10

HOW_TO_POINT = (
    'Put the four MNIST IDX files (train-images-idx3-ubyte.gz, '
    'train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, '
    't10k-labels-idx1-ubyte.gz) into one folder and pass --data_dir FOLDER '
    '(or set MNIST_DIR=FOLDER), or prepare tfds\' mnist and pass its '
    '--tfds_data_dir.')


class DataError(Exception):
  """The data could not be found or failed validation."""


class Split(NamedTuple):
  images: np.ndarray  # uint8 [N, 28, 28, 1]
  labels: np.ndarray  # int32 [N]


def _find(folder: pathlib.Path, stem: str) -> pathlib.Path | None:
  for name in (stem + '.gz', stem):
    if (folder / name).is_file():
      return folder / name
  return None


def _read_bytes(path: pathlib.Path) -> bytes:
  try:
    if path.suffix == '.gz':
      with gzip.open(path, 'rb') as f:
        return f.read()
    return path.read_bytes()
  except (OSError, EOFError, gzip.BadGzipFile) as e:
    raise DataError(f'{path}: cannot read ({e}); the file is truncated or '
                    'corrupt, download it again.') from None


def read_idx(path: str | os.PathLike[str], *, magic: int,
             item_shape: tuple[int, ...]) -> np.ndarray:
  """Parses one IDX file of uint8 data and checks its header against its size.

  Args:
    path: the file, gzip-compressed if its name ends in ``.gz``.
    magic: the expected magic number (2051 for images, 2049 for labels).
    item_shape: the expected shape of one item, e.g. ``(28, 28)`` or ``()``.

  Returns:
    A uint8 array of shape ``[N, *item_shape]``.

  Raises:
    DataError: naming the file, for a wrong magic number, wrong item shape, or
      a payload that does not match the header (truncated or padded).
  """
  path = pathlib.Path(path)
  raw = _read_bytes(path)
  ndim = 1 + len(item_shape)
  header_size = 4 + 4 * ndim
  if len(raw) < header_size:
    raise DataError(f'{path}: only {len(raw)} bytes, shorter than the IDX '
                    'header; the file is truncated.')
  (found_magic,) = struct.unpack('>i', raw[:4])
  if found_magic != magic:
    raise DataError(f'{path}: magic number {found_magic}, expected {magic}; '
                    'this is not the right MNIST IDX file.')
  shape = struct.unpack(f'>{ndim}i', raw[4:header_size])
  if tuple(shape[1:]) != tuple(item_shape):
    raise DataError(f'{path}: items of shape {shape[1:]}, expected '
                    f'{item_shape}.')
  expected = int(np.prod(shape))
  payload = len(raw) - header_size
  if payload != expected:
    raise DataError(f'{path}: header promises {shape[0]} items '
                    f'({expected} bytes) but the file holds {payload} bytes; '
                    'it is truncated or corrupt.')
  return np.frombuffer(raw, np.uint8, offset=header_size).reshape(shape)


def load_idx_split(folder: str | os.PathLike[str], split: str) -> Split:
  """Reads and validates one split ('train' or 'test') from IDX files."""
  folder = pathlib.Path(folder)
  image_stem, label_stem = IDX_FILES[split]
  image_path, label_path = _find(folder, image_stem), _find(folder, label_stem)
  missing = [stem for stem, p in ((image_stem, image_path),
                                  (label_stem, label_path)) if p is None]
  if missing:
    raise DataError(f'{folder}: missing {", ".join(missing)}[.gz]. '
                    + HOW_TO_POINT)
  assert image_path is not None and label_path is not None  # none missing
  images = read_idx(image_path, magic=IMAGE_MAGIC, item_shape=(28, 28))
  labels = read_idx(label_path, magic=LABEL_MAGIC, item_shape=())
  if len(images) != len(labels):
    raise DataError(f'{image_path} has {len(images)} images but {label_path} '
                    f'has {len(labels)} labels.')
  if labels.size and labels.max() >= NUM_CLASSES:
    raise DataError(f'{label_path}: label {labels.max()} is outside 0..9; '
                    'the file is corrupt.')
  return Split(images[..., None], labels.astype(np.int32))


def load_tfds_split(split: str,
                    data_dir: str | os.PathLike[str] | None = None) -> Split:
  """Reads a split of tfds' prepared ``mnist`` without TensorFlow or network.

  tfds is imported only here; nothing is downloaded (offline, a tfds download
  retries for minutes before failing), so an unprepared dataset fails fast.
  """
  try:
    import tensorflow_datasets as tfds
  except ImportError:
    raise DataError('no IDX files given and tensorflow-datasets is not '
                    'installed. ' + HOW_TO_POINT) from None
  try:
    source = tfds.data_source('mnist', split=split, data_dir=data_dir,
                              download=False)
    examples = source.__getitems__(range(len(source)))
  except Exception as e:  # tfds raises assorted errors for "not prepared".
    raise DataError(f'tfds mnist is not prepared in '
                    f'{data_dir or "the default tfds data_dir"} '
                    f'({type(e).__name__}). ' + HOW_TO_POINT) from None
  images = np.stack([np.asarray(ex['image'], np.uint8) for ex in examples])
  labels = np.asarray([ex['label'] for ex in examples], np.int32)
  if images.shape[1:] != (28, 28, 1) or labels.min() < 0 or labels.max() > 9:
    raise DataError(f'tfds mnist {split}: unexpected shape {images.shape} or '
                    'labels outside 0..9.')
  return Split(images, labels)


def prepare_tfds_from_idx(idx_dir: str | os.PathLike[str],
                          tfds_data_dir: str | os.PathLike[str]) -> None:
  """Builds tfds' ``mnist`` (array_record) from local IDX files, TF-free.

  tfds' stock builder needs TensorFlow to extract and encode the files; this
  subclass parses them with :func:`load_idx_split` and hands PIL images to tfds,
  which encodes them without TensorFlow. Afterwards
  ``tfds.data_source('mnist', data_dir=tfds_data_dir)`` reads the dataset.
  """
  import PIL.Image
  from tensorflow_datasets.image_classification import mnist as tfds_mnist

  class IdxMNIST(  # type: ignore[call-arg]  # tfds base is Any to mypy
      tfds_mnist.MNIST, skip_registration=True):
    name = 'mnist'

    def _split_generators(
        self, dl_manager: Any
    ) -> dict[str, Iterator[tuple[int, dict[str, Any]]]]:
      del dl_manager  # Nothing to download.
      return {split: self._generate_examples(split) for split in IDX_FILES}

    def _generate_examples(
        self, split: str) -> Iterator[tuple[int, dict[str, Any]]]:
      images, labels = load_idx_split(idx_dir, split)
      for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        yield index, {'image': PIL.Image.fromarray(image[..., 0]),
                      'label': int(label)}

  IdxMNIST(data_dir=str(tfds_data_dir),
           file_format='array_record').download_and_prepare()


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None
                     ) -> pathlib.Path | None:
  """``data_dir`` if given, else ``$MNIST_DIR``, else None."""
  data_dir = data_dir or os.environ.get('MNIST_DIR')
  return pathlib.Path(data_dir) if data_dir else None


def tfds_prepared(tfds_data_dir: str | os.PathLike[str] | None = None) -> bool:
  """Whether tfds' ``mnist`` is prepared there; looks without creating."""
  root = pathlib.Path(tfds_data_dir or os.environ.get(
      'TFDS_DATA_DIR', '~/tensorflow_datasets')).expanduser()
  return any((root / 'mnist').glob('*/dataset_info.json'))


def load_mnist(data_dir: str | os.PathLike[str] | None = None, *,
               tfds_data_dir: str | os.PathLike[str] | None = None,
               download: bool | None = None) -> dict[str, Split]:
  """Loads both splits from the first source that has them.

  Order: the IDX folder ``data_dir`` (or ``$MNIST_DIR``); tfds' prepared
  ``mnist`` (in ``tfds_data_dir``, ``$TFDS_DATA_DIR`` or
  ``~/tensorflow_datasets``); the download cache (:func:`cache_dir`); a
  download into that cache (:func:`download_mnist`), unless ``download`` is
  False or ``$MNIST_NO_DOWNLOAD`` is set. A lookup that finds nothing leaves
  nothing behind.

  Returns:
    ``{'train': Split, 'test': Split}``.

  Raises:
    DataError: with a message that says how to point the program at the data.
  """
  folder = resolve_data_dir(data_dir)
  if folder is not None:
    if not folder.is_dir():
      raise DataError(f'{folder} is not a folder. ' + HOW_TO_POINT)
    return {split: load_idx_split(folder, split) for split in IDX_FILES}
  if tfds_data_dir is not None or tfds_prepared():
    return {split: load_tfds_split(split, tfds_data_dir) for split in IDX_FILES}
  if download is None:
    download = not os.environ.get('MNIST_NO_DOWNLOAD')
  cache = cache_dir()
  if not all(_find(cache, stem) for stems in IDX_FILES.values()
             for stem in stems):
    if not download:
      raise DataError('MNIST is not in the download cache '
                      f'({cache}) and downloading is off. ' + HOW_TO_POINT)
    download_mnist(cache)
  return {split: load_idx_split(cache, split) for split in IDX_FILES}


# ----------------------------------------------------------------------------
# Download, checked against the SHA-256 of the uncompressed IDX bytes (mirrors
# recompress the .gz files, so their own bytes differ from mirror to mirror).

MIRRORS = (
    'https://storage.googleapis.com/cvdf-datasets/mnist/',  # tfds
    'https://ossci-datasets.s3.amazonaws.com/mnist/',  # torchvision
    'http://yann.lecun.com/exdb/mnist/',  # the original
)
IDX_SHA256 = {
    'train-images-idx3-ubyte':
        'ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db',
    'train-labels-idx1-ubyte':
        '65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5',
    't10k-images-idx3-ubyte':
        '0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7',
    't10k-labels-idx1-ubyte':
        'ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2',
}
DOWNLOAD_TIMEOUT_S = 8  # per connection; a dead mirror is not asked again


def cache_dir() -> pathlib.Path:
  """``$XDG_CACHE_HOME/ordinal-mnist/mnist``, else ``~/.cache/...``."""
  base = os.environ.get('XDG_CACHE_HOME') or pathlib.Path.home() / '.cache'
  return pathlib.Path(base) / 'ordinal-mnist' / 'mnist'


def mirrors() -> list[str]:
  """``$MNIST_MIRRORS`` (comma-separated base URLs), else :data:`MIRRORS`."""
  env = os.environ.get('MNIST_MIRRORS')
  urls = [u.strip() for u in env.split(',') if u.strip()] if env else MIRRORS
  return [u if u.endswith('/') else u + '/' for u in urls]


def download_mnist(folder: str | os.PathLike[str], *,
                   urls: Iterable[str] | None = None,
                   log: Callable[[str], None] | None = None
                   ) -> pathlib.Path:
  """Downloads the four IDX .gz files into ``folder``, each one checked.

  A file is streamed to a temporary name, and renamed into place only when
  the SHA-256 of its uncompressed bytes is the known one, so a broken or
  interrupted download leaves nothing half-written. A mirror that fails
  (unreachable, HTTP error, bad checksum) is followed by the next; one that
  cannot be reached is not asked again.

  Raises:
    DataError: naming every mirror tried and why it failed.
  """
  folder = pathlib.Path(folder)
  folder.mkdir(parents=True, exist_ok=True)
  urls = list(urls or mirrors())
  log = log or (lambda text: print(text, file=sys.stderr, flush=True))
  dead: set[str] = set()
  failures: list[str] = []
  for stem in IDX_SHA256:
    target = folder / f'{stem}.gz'
    if target.is_file():
      continue
    for base in urls:
      if base in dead:
        continue
      tmp = folder / f'.{stem}.gz.{os.getpid()}.part'
      try:
        with urllib.request.urlopen(base + target.name,
                                    timeout=DOWNLOAD_TIMEOUT_S) as response:
          _stream(response, tmp, f'{target.name} from {base}', log)
        digest = hashlib.sha256(gzip.decompress(tmp.read_bytes())).hexdigest()
        if digest != IDX_SHA256[stem]:
          raise ValueError(f'checksum mismatch (sha256 {digest[:12]}...)')
        os.replace(tmp, target)
        break
      except (urllib.error.URLError, OSError, ValueError, EOFError) as e:
        reason = getattr(e, 'reason', e)
        failures.append(f'{base}{target.name}: {reason}')
        if isinstance(e, urllib.error.URLError) and not isinstance(
            e, urllib.error.HTTPError):
          dead.add(base)
      finally:
        tmp.unlink(missing_ok=True)
    else:
      raise DataError(
          f'could not download {target.name} from any mirror '
          f'({"; ".join(failures)}). Set MNIST_MIRRORS to other mirrors, or '
          + HOW_TO_POINT)
  return folder


def _stream(response: http.client.HTTPResponse | urllib.response.addinfourl,
            path: pathlib.Path, what: str, log: Callable[[str], None],
            chunk: int = 1 << 16) -> None:
  """Copies ``response`` to ``path``, logging every quarter (or 8 MB)."""
  total = int(response.headers.get('Content-Length') or 0)
  step = total / 4 if total else 8e6
  done, next_report = 0, 0.0
  with open(path, 'wb') as f:
    while block := response.read(chunk):
      f.write(block)
      done += len(block)
      if done >= next_report or done == total:
        of_total = f' of {total / 1e6:.1f}' if total else ''
        log(f'downloading {what}: {done / 1e6:.1f}{of_total} MB')
        next_report = done + step


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
  """Writes uint8 ``array`` as an IDX file (gzip if the name ends in .gz).

  Used to make small synthetic datasets for tests and demos.
  """
  array = np.ascontiguousarray(array, np.uint8)
  magic = IMAGE_MAGIC if array.ndim == 3 else LABEL_MAGIC
  header = struct.pack(f'>i{array.ndim}i', magic, *array.shape)
  opener = gzip.open if str(path).endswith('.gz') else open
  with opener(path, 'wb') as f:
    f.write(header + array.tobytes())


# ----------------------------------------------------------------------------
# Held-out validation, small training sets and noisy labels (the study's
# regimes). Everything is seeded; numpy's generator, not JAX's, so that a
# split does not depend on the accelerator.

VALIDATION_SEED = 20261129  # one validation split for every run and seed
# One confirmation split (results/protocol.md), held out from what validation
# leaves: a larger size holds every image of a smaller one.
CONFIRMATION_SEED = 20261202
# The calibration split of the prediction sets (--calibration_size), held out
# from what validation and the confirmation leave.
CALIBRATION_SEED = 20261208
# The corruptions of the confirmation split's images (--shifted_confirmation)
# draw from their own seed, so that they differ from the test split's (seed 0).
CONFIRMATION_SHIFT_SEED = 20261207


def held_out_indices(num_images: int, size: int, seed: int, *,
                     name: str = 'size') -> np.ndarray:
  """The sorted indices of ``size`` of ``num_images`` images, the first
  ``size`` of one fixed permutation: the same ones every time; errors name
  ``name``."""
  if not 0 <= size < num_images:
    raise ValueError(f'{name} must lie in [0, {num_images}), got {size}.')
  order = np.random.default_rng(seed).permutation(num_images)
  return np.sort(order[:size])


def _hold_out(train: Split, size: int, seed: int,
              name: str) -> tuple[Split, Split]:
  held = held_out_indices(len(train.labels), size, seed, name=name)
  kept = np.setdiff1d(np.arange(len(train.labels)), held)
  return (Split(train.images[kept], train.labels[kept]),
          Split(train.images[held], train.labels[held]))


def hold_out_validation(train: Split, size: int) -> tuple[Split, Split]:
  """Splits ``size`` images off the training split, the same ones every time.

  Returns:
    ``(pool, validation)``: the remaining training images and the held-out
    ones. The choice depends only on ``size`` and the data, so every
    configuration and seed is tuned on the same validation images.
  """
  return _hold_out(train, size, VALIDATION_SEED, 'validation_size')


def hold_out_confirmation(train: Split, size: int) -> tuple[Split, Split]:
  """``(rest, confirmation)``: ``size`` images of ``train`` (the pool
  validation leaves) set aside for the confirmation (clean labels, never
  trained or tuned on), the same ones every time; training subsets come from
  ``rest``."""
  return _hold_out(train, size, CONFIRMATION_SEED, 'confirmation_size')


def hold_out_calibration(train: Split, size: int) -> tuple[Split, Split]:
  """``(rest, calibration)``: ``size`` images of ``train`` (the pool that
  validation and the confirmation leave) set aside to calibrate prediction
  sets (clean labels, never trained or tuned on), the same ones every time."""
  return _hold_out(train, size, CALIBRATION_SEED, 'calibration_size')


def subset_indices(pool_size: int, size: int | None, seed: int) -> np.ndarray:
  """Indices of a seeded random training subset (all of the pool if None)."""
  if size is None:
    return np.arange(pool_size, dtype=np.int32)
  if not 1 <= size <= pool_size:
    raise ValueError(f'train_size must lie in [1, {pool_size}], got {size}.')
  rng = np.random.default_rng([seed, 1])
  return np.sort(rng.choice(pool_size, size, replace=False)).astype(np.int32)


def symmetric_label_noise(labels: np.ndarray, rate: float,
                          seed: int) -> np.ndarray:
  """Replaces each label, with probability ``rate``, by another class.

  The replacement is uniform over the other ``K - 1`` classes, so exactly a
  ``rate`` share of the labels (in expectation) is wrong: symmetric noise.
  """
  if not 0 <= rate < 1:
    raise ValueError(f'label_noise must lie in [0, 1), got {rate}.')
  rng = np.random.default_rng([seed, 2])
  flip = rng.random(labels.shape) < rate
  offsets = rng.integers(1, NUM_CLASSES, labels.shape)
  return np.where(flip, (labels + offsets) % NUM_CLASSES, labels).astype(
      np.int32)
