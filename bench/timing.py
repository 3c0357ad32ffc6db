"""How the bench's contests and micro-loop time things: contestants run
round-robin, medians with ranges, a profile by kind of XLA op, and the
PyTorch reference CNN."""

from __future__ import annotations

import collections
import dataclasses
import pathlib
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import jax

K = TypeVar('K')


@dataclasses.dataclass
class Contestant:
  """Parts timed one after the other in each round ('epoch', 'eval', ...)."""
  parts: dict[str, Callable[[], object]]
  warm_up: Callable[[], object]
  num_images: int = 0  # training images per 'epoch' (or per call)
  steps: int = 0
  # Called with no arguments; '...' admits epochs.py's `lambda n=name: ...`.
  compiled_text: dict[str, Callable[..., str | None]] = dataclasses.field(
      default_factory=dict)


def time_interleaved(contestants: dict[K, Contestant], repeats: int,
                     pause_s: float = 0.5) -> dict[K, dict[str, list[float]]]:
  """Seconds of each part of each contestant, round-robin, after a warm-up.

  The pause lets the previous contestant's worker threads go idle (OpenMP
  pools spin-wait after a parallel region) so they do not steal the cores.
  """
  for contestant in contestants.values():
    contestant.warm_up()
  times: dict[K, dict[str, list[float]]] = {
      name: {part: [] for part in c.parts}
      for name, c in contestants.items()}
  for _ in range(repeats):
    for name, contestant in contestants.items():
      for part, run in contestant.parts.items():
        time.sleep(pause_s)
        t0 = time.perf_counter()
        run()
        times[name][part].append(time.perf_counter() - t0)
  return times


def _hlo_ops(compiled_text: str) -> dict[str, str]:
  """HLO instruction name -> 'shape opcode' from compiled HLO text."""
  ops = {}
  for m in re.finditer(r'^\s*(?:ROOT )?%?([\w.\-]+) = (\S+) ([\w\-]+)\(',
                       compiled_text, re.MULTILINE):
    ops[m.group(1)] = f'{m.group(2)} {m.group(3)}'
  return ops


def profile_ops(run: Callable[[], object], compiled_text: str | None,
                per: int, top: int) -> dict[str, Any]:
  """Time per kind of XLA op in one call of ``run``, from a profiler trace.

  Sums the trace events of XLA's threads by HLO op, groups ops of the same
  shape and opcode (the conv layers run once per chunk, so each of their ops
  appears once per chunk) and divides by ``per`` (the steps of an epoch, or
  1). A ``fusion`` whose name starts with ``ynn_fusion`` is a matmul through
  YNNPACK. Ops run on several threads at once, so the sum can exceed the
  wall time.
  """
  with tempfile.TemporaryDirectory() as trace_dir:
    jax.profiler.start_trace(trace_dir)
    t0 = time.perf_counter()
    run()
    wall = time.perf_counter() - t0
    jax.profiler.stop_trace()
    trace_files = list(pathlib.Path(trace_dir).rglob('*.xplane.pb'))
    if not trace_files:
      raise RuntimeError(f'jax.profiler wrote no trace under {trace_dir}.')
    profile = jax.profiler.ProfileData.from_file(str(trace_files[0]))
  assert compiled_text is not None  # None where the backend has no HLO text
  hlo = _hlo_ops(compiled_text)
  groups_ns: collections.Counter[str]
  groups_ops: collections.defaultdict[str, set[str]]
  groups_ns, groups_ops = collections.Counter(), collections.defaultdict(set)
  for plane in profile.planes:
    for line in plane.lines:
      for event in line.events:
        if event.name in hlo:
          key = f"{hlo[event.name]} {event.name.rstrip('.0123456789')}"
          groups_ns[key] += event.duration_ns
          groups_ops[key].add(event.name)
  total_ms = sum(groups_ns.values()) / 1e6 / per
  rows = [{'ops': key, 'count': len(groups_ops[key]),
           'ms': ns / 1e6 / per, 'fraction_of_ops': ns / 1e6 / per / total_ms}
          for key, ns in groups_ns.most_common(top)]
  return {'wall_ms': wall * 1e3 / per, 'ops_ms': total_ms, 'top_ops': rows}


def print_profile(profile: dict[str, Any], what: str) -> None:
  print(f"\nprofile of {what}: {profile['wall_ms']:.1f} ms wall, "
        f"{profile['ops_ms']:.1f} ms in XLA ops (summed over threads)")
  print(f"{'ms':>7} {'share':>6} {'ops':>4}  shape opcode name")
  for r in profile['top_ops']:
    print(f"{r['ms']:7.2f} {100 * r['fraction_of_ops']:5.1f}% "
          f"{r['count']:>4}  {r['ops']}")


def spread(values: Sequence[float]) -> dict[str, Any]:
  return {'median': statistics.median(values), 'min': min(values),
          'max': max(values), 'all_rounds': list(values)}


def torch_cnn() -> Any:  # a torch.nn.Sequential
  import torch
  from torch import nn
  torch.manual_seed(0)
  return nn.Sequential(
      nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
      nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
      nn.Flatten(), nn.Linear(7 * 7 * 64, 256), nn.ReLU(), nn.Linear(256, 10))
