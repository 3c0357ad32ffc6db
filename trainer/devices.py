"""Where a run's arrays go: a 1-D mesh over every device of every process
(none on a single device); parameters, optimizer state and evaluation sets
replicated, each epoch's batches split along the batch axis.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, cast

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from trainer.parallel import DistributedError


def data_mesh() -> Mesh | None:
  """A 1-D mesh over every device of every process, or None on one device."""
  if jax.device_count() == 1:
    return None
  return Mesh(np.asarray(jax.devices()), ('data',))


def replicate(tree: Any, mesh: Mesh | None) -> Any:
  """Host values (the same on every process) as arrays on every device."""
  if mesh is None:
    return jax.device_put(tree)
  sharding = NamedSharding(mesh, P())

  def put(x: Any) -> jax.Array:
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])

  return jax.tree.map(put, tree)


def shard_batches(
    make_rows: Callable[[slice], tuple[np.ndarray, np.ndarray]],
    shape_SxExB: tuple[int, int, int], mesh: Mesh | None,
) -> tuple[jax.Array, jax.Array]:
  """An epoch's batches split over the mesh's devices along the batch axis.

  ``make_rows(rows)`` returns images ``[S, E, B', ...]`` and labels
  ``[S, E, B']`` for the slice ``rows`` of every batch: each process makes
  only the rows its own devices hold (``make_array_from_process_local_data``).
  """
  if mesh is None:
    on_device: tuple[jax.Array, jax.Array] = jax.device_put(
        make_rows(slice(None)))
    return on_device
  sharding = NamedSharding(mesh, P(None, None, 'data'))
  batch = shape_SxExB[2]
  # Every device holds a tuple of slices (the Mapping's None never occurs).
  spans = sorted(cast(tuple[slice, ...], index)[2].indices(batch)[:2]
                 for index in
                 sharding.addressable_devices_indices_map(shape_SxExB).values())
  if any(a[1] != b[0] for a, b in itertools.pairwise(spans)):
    raise DistributedError(f'this process holds rows {spans} of each batch, '
                           'not one contiguous slice.')
  images, labels = make_rows(slice(spans[0][0], spans[-1][1]))
  return (jax.make_array_from_process_local_data(
              sharding, images, shape_SxExB + images.shape[3:]),
          jax.make_array_from_process_local_data(sharding, labels, shape_SxExB))
