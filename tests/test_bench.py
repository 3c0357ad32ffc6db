"""bench.py runs end to end, and its FLOP count agrees with XLA's."""

import json

import jax
import pytest
import jax.numpy as jnp
from flax import nnx
from jax import lax

import bench
from model import CNN, CPU_CHUNK_SIZE


def test_forward_flops_match_xla_cost_analysis():
  model = CNN(10, conv=lax.conv_general_dilated, rngs=nnx.Rngs(0))
  x = jnp.zeros((8, 28, 28, 1), jnp.uint8)
  cost = jax.jit(model).lower(x).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  per_image = cost['flops'] / 8
  analytic = bench.cnn_flops_per_image()['forward']
  # XLA also counts the element-wise ops (bias, ReLU, pooling): about 1 %.
  assert analytic <= per_image <= 1.03 * analytic, (analytic, per_image)


def test_bench_runs_and_writes_json(tmp_path, capsys):
  out = tmp_path / 'bench.json'
  assert bench.main(['--steps', '2', '--repeats', '1', '--seeds', '1,2',
                     '--no_torch', '--profile', '5', '--json', str(out)]) == 0
  result = json.loads(out.read_text())
  assert set(result['throughput']) == {'ours', 'ours_whole', 'ours_progress',
                                       'jit_step'}
  for row in result['throughput'].values():
    assert row['images_per_s'] > 0 and 0 < row['fraction_of_matmul']
  assert result['throughput']['ours']['vs_jit_step'] > 0
  assert set(result['vmapped_seeds']) == {'1', '2'}
  assert result['matmul_gflops'] > 0
  printed = capsys.readouterr().out
  assert 'vs torch' in printed and 'profile of ours' in printed
  profile = result['profile']
  assert len(profile['top_ops']) == 5
  # Ops are grouped by HLO shape and opcode; the conv layers run per chunk
  # of 16 examples, so at batch 128 each of their ops appears 8 times.
  times = [row['ms_per_step'] for row in profile['top_ops']]
  assert times == sorted(times, reverse=True) and times[-1] > 0
  assert 0 < sum(r['fraction_of_ops'] for r in profile['top_ops']) <= 1 + 1e-9
  # The step's matmuls are among its most expensive ops, once per chunk.
  assert any(row['count'] == 128 // CPU_CHUNK_SIZE and 'ynn_fusion' in row['ops']
             for row in profile['top_ops']), profile['top_ops']


def test_bad_profile_count_exits_2(capsys):
  with pytest.raises(SystemExit) as exit_info:
    bench.main(['--profile', '-1'])
  assert exit_info.value.code == 2
  assert '--profile' in capsys.readouterr().err
