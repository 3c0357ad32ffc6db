"""bench.py times train.py's real programs; its FLOP count agrees with XLA's."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import pytest
from flax import nnx
from jax import lax

import data
from bench import cold_start, command, epochs, many, micro
from conftest import MNIST_DIR, needs_mnist
from model import CNN, CPU_CHUNK_SIZE
from trainer import run_data
from trainer.config import Config
from trainer.programs import build_programs
from trainer.resolve import resolve


def test_forward_flops_match_xla_cost_analysis():
  model = CNN(10, conv=lax.conv_general_dilated, rngs=nnx.Rngs(0))
  x = jnp.zeros((8, 28, 28, 1), jnp.uint8)
  cost = jax.jit(model).lower(x).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  per_image = cost['flops'] / 8
  analytic = micro.cnn_flops_per_image()['forward']
  # XLA also counts the element-wise ops (bias, ReLU, pooling): about 1 %.
  assert analytic <= per_image <= 1.03 * analytic, (analytic, per_image)


@pytest.fixture(scope='module')
def bench_result(tmp_path_factory):
  out = tmp_path_factory.mktemp('bench') / 'bench.json'
  assert command.main(['--data_dir', str(MNIST_DIR), '--train_size', '256',
                     '--batch_sizes', '64,32', '--torch_batch_sizes', '32,64',
                     '--repeats', '2', '--profile', '5', '--micro', '--steps',
                     '2', '--seeds', '1,2', '--no_torch', '--json',
                     str(out)]) == 0
  return json.loads(out.read_text())


@pytest.mark.slow
@needs_mnist
def test_bench_times_train_py_epoch_and_evaluation(bench_result):
  epochs = bench_result['epochs']
  assert epochs['num_train'] == 256
  assert set(epochs['rows']) == {'ours@64', 'ours@32'}
  for row in epochs['rows'].values():
    for part in ('epoch_s', 'eval_s'):
      assert len(row[part]['all_rounds']) == 2 and row[part]['min'] > 0
  assert bench_result['command'].startswith('python -m bench --data_dir')


@pytest.mark.slow
@needs_mnist
def test_bench_compiles_exactly_train_py_programs():
  dataset = data.load_mnist(MNIST_DIR)
  contestant = epochs.ours_epoch(dataset, 64, train_size=256)
  contestant.warm_up()
  config = Config(batch_size=64, train_size=256)
  spec = resolve(config)
  prepared = run_data.prepare_data(config, dataset, spec.seeds)
  programs = build_programs(spec, prepared.steps_per_epoch)
  batches = run_data.batches_on_devices(prepared, spec.seeds, 1, 64,
                                        mesh=None)
  test = dataset['test']
  want = {'epoch': programs.train_epoch.lower(
              programs.params, programs.opt_state, spec.inputs_P, *batches),
          'eval': programs.evaluate.lower(programs.params, spec.inputs_P,
                                          test.images, test.labels)}
  for part, lowered in want.items():
    # The stack-frame table after the program names the caller's file.
    ours, theirs = (text.split('\nFileNames\n')[0] for text in (
        contestant.compiled_text[part](), lowered.compile().as_text()))
    assert ours == theirs, part


@pytest.mark.slow
@needs_mnist
def test_bench_times_the_evaluation_of_five_models_against_one():
  # Speed is the bench's to measure (python bench.py prints the ratio, its
  # rounds interleaved); the suite checks that it measures it.
  full = data.load_mnist(MNIST_DIR)
  dataset = {'train': full['train'],
             'test': data.Split(full['test'].images[:256],
                                full['test'].labels[:256])}
  result = many.eval_seeds(dataset, [1, 5], repeats=3)
  assert result['test_images'] == 256
  rows = result['rows']
  assert set(rows) == {'1', '5'}
  for row in rows.values():
    assert len(row['eval_s']['all_rounds']) == 3 and row['eval_s']['min'] > 0
  # The ratio is of the medians of the interleaved rounds.
  assert rows['5']['ratio_to_first'] == pytest.approx(
      rows['5']['eval_s']['median'] / rows['1']['eval_s']['median'])


@pytest.mark.slow
@needs_mnist
def test_bench_profiles_the_real_epoch_and_evaluation(bench_result):
  for part in ('epoch', 'eval'):
    profile = bench_result['profile'][part]
    assert len(profile['top_ops']) == 5
    times = [row['ms'] for row in profile['top_ops']]
    assert times == sorted(times, reverse=True) and times[-1] > 0
    assert 0 < sum(r['fraction_of_ops'] for r in profile['top_ops']) <= 1 + 1e-9
  # Training's matmuls are among its most expensive ops, once per conv chunk
  # (batch 64, chunks of 16). Evaluation runs the stock convolution, which
  # XLA:CPU hands to YNNPACK with the rest of the forward pass.
  assert any(row['count'] == 64 // CPU_CHUNK_SIZE and 'ynn_fusion' in row['ops']
             for row in bench_result['profile']['epoch']['top_ops'])
  eval_top = bench_result['profile']['eval']['top_ops'][0]
  assert 'ynn_fusion' in eval_top['ops'] and eval_top['fraction_of_ops'] > 0.5


@pytest.mark.slow
@needs_mnist
def test_bench_micro_loop_is_labelled(bench_result, capsys):
  micro = bench_result['micro']
  assert micro['label'].startswith('micro-loop: 2 steps of synthetic images')
  assert set(micro['throughput']) == {'ours', 'ours_whole', 'ours_progress',
                                      'jit_step'}
  for row in micro['throughput'].values():
    assert row['images_per_s'] > 0 and row['fraction_of_matmul'] > 0
  assert set(micro['vmapped_seeds']) == {'1', '2'}


@pytest.mark.slow
@needs_mnist
def test_torch_ratios_when_torch_is_installed(tmp_path):
  pytest.importorskip('torch')
  out = tmp_path / 'bench.json'
  assert command.main(['--data_dir', str(MNIST_DIR), '--train_size', '128',
                     '--batch_sizes', '64', '--torch_batch_sizes', '32,64',
                     '--repeats', '1', '--json', str(out)]) == 0
  epochs = json.loads(out.read_text())['epochs']
  rows, best = epochs['rows'], epochs['torch_fastest_batch']
  assert best in ('torch@32', 'torch@64')
  ours = rows['ours@64']
  same = ours['vs_torch@64']
  assert same['ratio_of_medians'] == pytest.approx(
      rows['torch@64']['epoch_s']['median']
      / ours['epoch_and_eval_s']['median'])
  assert f'vs_{best}' in ours


@pytest.mark.slow
@needs_mnist
def test_time_to_99_runs_train_py_from_the_command_line():
  result = cold_start.time_to_99(MNIST_DIR, ['--train_size', '256',
                                           '--batch_size', '64'])
  assert result['command'].startswith('python train.py --epochs 1 --quiet '
                                      '--workdir WORKDIR')
  assert 0 < result['accuracy'] < 0.99 and not result['reached_target']
  assert result['total_s'] > result['train_and_eval_s'] > 0


def test_bad_profile_count_exits_2(capsys):
  with pytest.raises(SystemExit) as exit_info:
    command.main(['--profile', '-1'])
  assert exit_info.value.code == 2
  assert '--profile' in capsys.readouterr().err


@pytest.mark.parametrize('flags, message', [
    (['--batch_sizes', '64,x'], '--batch_sizes'),
    (['--torch_batch_sizes', '0'], '--torch_batch_sizes'),
    (['--train_size', '16', '--batch_sizes', '32'], '--train_size'),
])
def test_bad_flags_exit_2(flags, message, capsys):
  with pytest.raises(SystemExit) as exit_info:
    command.main(flags)
  assert exit_info.value.code == 2
  assert message in capsys.readouterr().err


@pytest.mark.slow
@needs_mnist
def test_sweep_against_separate_runs_times_the_same_points():
  dataset = data.load_mnist(MNIST_DIR)
  config = Config(epochs=1, batch_size=32, train_size=64, validation_size=256,
                  num_seeds=2, score_test=False,
                  sweep={'learning_rate': [0.001, 0.002]})
  result = many.sweep_vs_separate(dataset, config, repeats=1)
  assert result['points'] == 2 and result['config'] == dataclasses.asdict(
      config)
  for name in ('one_sweep_s', 'separate_runs_s'):
    assert len(result[name]['all_rounds']) == 1 and result[name]['min'] > 0
  cell = many.sweep_cell(8, epochs=2, train_size=2000)
  assert resolve(cell).num_points == 8 and cell.num_seeds == 2
