"""Several processes (``jax.distributed``; on CPU they talk through gloo):
their flags, start-up, agreement and failure. Where the arrays go is
``devices``: the mesh then spans every process's devices, each process feeds
only its own rows of every batch, and all of them run the same compiled
programs. Two processes on one machine stand in for two hosts in the tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import pathlib
import re
import socket
import sys
import time
import traceback
from typing import TYPE_CHECKING, Any, NoReturn

import jax
import numpy as np
from jax.experimental import multihost_utils

if TYPE_CHECKING:  # annotations only: at run time, no project module
  import data
  from trainer.config import Config


class DistributedError(RuntimeError):
  """The processes of a multi-process run cannot work together."""


def is_primary() -> bool:
  """Whether this process writes the run's files (process 0 does)."""
  return jax.process_index() == 0


def add_flags(parser: argparse.ArgumentParser) -> None:
  """The flags of a multi-process run; :func:`check_flags` checks them."""
  multi = parser.add_argument_group(
      'several processes (jax.distributed; data parallelism over every '
      "process's devices, process 0 writes the files)")
  multi.add_argument('--coordinator_address', default=None,
                     metavar='HOST:PORT',
                     help="process 0's address, the same for every process")
  multi.add_argument('--num_processes', type=int, default=None,
                     help='how many processes take part')
  multi.add_argument('--process_id', type=int, default=None,
                     help='this process, 0 to --num_processes - 1')
  multi.add_argument('--distributed', action='store_true',
                     help='join a multi-process run whose settings JAX '
                     'detects (SLURM, Cloud TPU, ...); flags given above '
                     'override what it detects')
  multi.add_argument('--distributed_timeout', type=int, default=120,
                     metavar='SECONDS',
                     help='give up when the coordinator or a peer is not '
                     'reachable for this long (at start, and when a process '
                     'dies mid-run)')


def check_flags(args: argparse.Namespace) -> str | None:
  """The error in the multi-process flags, or None."""
  explicit = (args.coordinator_address, args.num_processes, args.process_id)
  if not args.distributed and any(v is not None for v in explicit) and (
      None in explicit):
    return ('--coordinator_address, --num_processes and --process_id go '
            'together (or pass --distributed to let JAX detect the cluster).')
  if args.coordinator_address is not None and not re.fullmatch(
      r'[^\s:]+:\d{1,5}', args.coordinator_address):
    return (f'--coordinator_address must be HOST:PORT, got '
            f'{args.coordinator_address!r}.')
  if args.num_processes is not None and args.num_processes < 1:
    return f'--num_processes must be >= 1, got {args.num_processes}.'
  if args.process_id is not None and not (
      0 <= args.process_id < (args.num_processes or float('inf'))):
    return (f'--process_id must be in [0, --num_processes), got '
            f'{args.process_id}.')
  if args.distributed_timeout <= 0:
    return f'--distributed_timeout must be > 0, got {args.distributed_timeout}.'
  return None


def wanted(args: argparse.Namespace) -> bool:
  return bool(args.distributed) or args.coordinator_address is not None


def wait_for_coordinator(address: str, timeout: float) -> None:
  """Raises DistributedError unless ``address`` takes a TCP connection in time.

  Checked before ``jax.distributed.initialize``, which aborts the process
  (a fatal C++ error, no Python exception) when it cannot register.
  """
  host, port = address.rsplit(':', 1)
  deadline = time.monotonic() + timeout
  while True:
    try:
      with socket.create_connection((host, int(port)), timeout=1):
        return
    except OSError as e:
      if time.monotonic() > deadline:
        raise DistributedError(
            f'could not reach the coordinator at {address} within {timeout} s '
            f'({e}): start process 0 with the same --coordinator_address, or '
            'check the host and port.') from None
      time.sleep(0.2)


def initialize(args: argparse.Namespace) -> None:
  """Joins the multi-process run the flags describe (before any JAX work).

  A process that cannot reach the coordinator, or whose peers do not all
  arrive, stops after ``--distributed_timeout`` seconds; so does one whose
  peer dies mid-run (missed heartbeats), instead of waiting forever.
  """
  timeout = args.distributed_timeout
  if args.coordinator_address and args.process_id:
    wait_for_coordinator(args.coordinator_address, timeout)
  # Said first because JAX aborts the process if the peers do not all come.
  print(f'joining the multi-process run at '
        f'{args.coordinator_address or "the detected coordinator"} as process '
        f'{args.process_id if args.process_id is not None else "?"} of '
        f'{args.num_processes or "?"}; waiting up to {timeout} s for every '
        'process', file=sys.stderr, flush=True)
  # CPU processes need a collectives library for their all-reduces.
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  jax.distributed.initialize(
      coordinator_address=args.coordinator_address,
      num_processes=args.num_processes, process_id=args.process_id,
      initialization_timeout=timeout, heartbeat_timeout_seconds=timeout,
      shutdown_timeout_seconds=timeout)


def exit_after_failure(prog: str) -> NoReturn:
  """Reports the exception being handled and ends this process at once.

  A normal exit would wait ``--distributed_timeout`` seconds at JAX's
  shutdown barrier for a peer that may be gone, then abort.
  """
  traceback.print_exc()
  print(f'{prog}: error: process {jax.process_index()} of '
        f'{jax.process_count()} stopped (above); when a collective failed, '
        'another process of the run stopped first. Start every process '
        'again with --resume to continue from the last checkpoint.',
        file=sys.stderr, flush=True)
  sys.stdout.flush()
  os._exit(1)


def _digest(*parts: Any) -> np.ndarray:
  h = hashlib.sha256()
  for part in parts:
    h.update(part if isinstance(part, bytes) else json.dumps(
        part, sort_keys=True, default=str).encode())
  return np.frombuffer(h.digest(), np.uint8)


def check_agreement(config: Config, workdir: pathlib.Path, resume: bool,
                    dataset: dict[str, data.Split]) -> None:
  """Raises DistributedError unless every process has the same run and data.

  Compares SHA-256 digests of the configuration (less the data location,
  which may differ from host to host), the workdir and the images and labels.
  It is also the barrier before any process writes to the workdir.
  """
  run = {k: v for k, v in dataclasses.asdict(config).items()
         if k not in ('data_dir', 'tfds_data_dir')}
  mine = np.stack([
      _digest(run, str(workdir.resolve()), resume),
      _digest(*(np.ascontiguousarray(a).tobytes() for split in (
          dataset['train'], dataset['test']) for a in split))])
  every = np.asarray(multihost_utils.process_allgather(mine))
  for row, what in ((0, 'flags (or --workdir, --resume)'), (1, 'data')):
    differ = [p for p in range(len(every))
              if not np.array_equal(every[p, row], every[0, row])]
    if differ:
      raise DistributedError(
          f'the processes disagree on their {what}: process(es) '
          f'{", ".join(map(str, differ))} differ from process 0. Start every '
          'process with the same flags and the same MNIST files.')
