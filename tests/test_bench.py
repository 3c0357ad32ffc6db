"""bench.py runs end to end, and its FLOP count agrees with XLA's."""

import json

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

import bench
from model import CNN


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
                     '--no_torch', '--json', str(out)]) == 0
  result = json.loads(out.read_text())
  assert set(result['throughput']) == {'ours', 'jit_step'}
  for row in result['throughput'].values():
    assert row['images_per_s'] > 0 and 0 < row['fraction_of_matmul']
  assert result['throughput']['ours']['vs_jit_step'] > 0
  assert set(result['vmapped_seeds']) == {'1', '2'}
  assert result['matmul_gflops'] > 0
  assert 'vs torch' in capsys.readouterr().out
