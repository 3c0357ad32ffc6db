"""Two real processes (jax.distributed, gloo on 127.0.0.1) train like one."""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import train
from conftest import (
  ROOT,
  learnable_dataset,
  make_fake_mnist,
  run_config,
  write_split,
)
from trainer import parallel
from trainer.cli import build_parser

# 2 048 images, batch 32: 64 steps per epoch, 16 images per process per step.
RUN_FLAGS = ['--epochs', '3', '--batch_size', '32', '--distributed_timeout',
             '15', '--quiet']


def free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def env():
  # One CPU device per process, whatever the caller's XLA_FLAGS say.
  return {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'} | {
      'JAX_PLATFORMS': 'cpu'}


def launch(workdir, data_dir, *flags, process_id=None, port=None):
  command = [sys.executable, str(ROOT / 'train.py'), '--data_dir',
             str(data_dir), '--workdir', str(workdir), *RUN_FLAGS, *flags]
  if process_id is not None:
    command += ['--coordinator_address', f'127.0.0.1:{port}',
                '--num_processes', '2', '--process_id', str(process_id)]
  return subprocess.Popen(command, cwd=ROOT, env=env(), text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def launch_pair(workdir, data_dir, *flags, flags_1=()):
  port = free_port()
  return [launch(workdir, data_dir, *flags, process_id=0, port=port),
          launch(workdir, data_dir, *flags, *flags_1, process_id=1, port=port)]


def finish(procs, timeout=240):
  return [(p.wait(timeout=timeout), *p.communicate()) for p in procs]


@pytest.fixture(scope='module')
def mnist_dir(tmp_path_factory):
  """Learnable IDX files: confident predictions, so no argmax near a tie."""
  folder = tmp_path_factory.mktemp('mnist')
  for name, split in learnable_dataset(num_train=2048, num_test=128).items():
    write_split(folder, name, split.images[..., 0],
                split.labels.astype(np.uint8))
  return folder


@pytest.fixture(scope='module')
def runs(mnist_dir, tmp_path_factory):
  """One process, and two processes, on the same run."""
  root = tmp_path_factory.mktemp('runs')
  single = finish([launch(root / 'single', mnist_dir)])
  pair = finish(launch_pair(root / 'pair', mnist_dir))
  for rc, _, err in single + pair:
    assert rc == 0, err
  return {'single': root / 'single', 'pair': root / 'pair',
          'pair_out': [out for _, out, _ in pair]}


def final(workdir):
  return json.loads((pathlib.Path(workdir) / 'summary.json').read_text())


@pytest.mark.slow
def test_two_processes_match_one(runs):
  single, pair = final(runs['single']), final(runs['pair'])
  assert len(pair['devices']) == 2 and len(single['devices']) == 1
  # Same batches, same initial parameters. Two processes each take the
  # gradient of half a batch and all-reduce it, and run the conv layers
  # without the one-device chunks: sums in another order, so float32
  # rounding differs (about 1e-7 per step) and grows a little in training.
  np.testing.assert_allclose(pair['final']['train_loss']['mean'],
                             single['final']['train_loss']['mean'], rtol=1e-4)
  with np.load(runs['single'] / 'predictions.npz') as a, np.load(
      runs['pair'] / 'predictions.npz') as b:
    np.testing.assert_allclose(b['probs'], a['probs'], atol=1e-4)
    np.testing.assert_array_equal(b['argmax'], a['argmax'])
  for decoding in ('argmax', 'bayes'):
    for metric in ('accuracy', 'mean_digit_distance'):
      assert (pair['final']['test'][decoding][metric]['mean'] ==
              single['final']['test'][decoding][metric]['mean'])


@pytest.mark.slow
def test_only_process_0_writes_and_prints(runs):
  lines = (runs['pair'] / 'metrics.jsonl').read_text().splitlines()
  assert [json.loads(line)['epoch'] for line in lines] == [1, 2, 3]  # once
  out_0, out_1 = runs['pair_out']
  assert 'test argmax: accuracy' in out_0 and 'epoch 1:' in out_0
  # (gloo itself prints a line about its peers on every process)
  assert 'accuracy' not in out_1 and 'epoch' not in out_1
  assert sorted(p.name for p in runs['pair'].iterdir()) == [
      'checkpoints', 'config.json', 'metrics.jsonl', 'predictions.npz',
      'summary.json']


@pytest.mark.slow
def test_a_process_that_is_not_primary_writes_no_files(monkeypatch, tmp_path):
  monkeypatch.setattr(parallel, 'is_primary', lambda: False)
  summary = train.train_and_evaluate(run_config(), tmp_path,
                                     dataset=learnable_dataset())
  assert 'test' in summary['final']
  assert sorted(p.name for p in tmp_path.iterdir()) == ['checkpoints']


@pytest.mark.slow
def test_killed_peer_stops_the_other_and_resume_matches(runs, mnist_dir,
                                                        tmp_path):
  procs = launch_pair(tmp_path, mnist_dir)
  first_checkpoint = tmp_path / 'checkpoints' / '1'  # renamed in when whole
  deadline = time.time() + 180
  while not first_checkpoint.is_dir():
    assert time.time() < deadline and procs[0].poll() is None
    time.sleep(0.05)
  time.sleep(0.5)  # into epoch 2
  procs[1].send_signal(signal.SIGKILL)
  t0 = time.time()
  rc, _, err = finish(procs[:1], timeout=120)[0]
  # A collective with the dead peer fails at once; a barrier (orbax's save)
  # gives up after the missed heartbeats of --distributed_timeout 15 s.
  assert rc == 1 and 'Start every process again with --resume' in err, err
  assert time.time() - t0 < 60
  procs[1].wait()
  for rc, _, err in finish(launch_pair(tmp_path, mnist_dir, '--resume')):
    assert rc == 0, err
  resumed, whole = final(tmp_path), final(runs['pair'])
  assert resumed['resumed_from_epoch'] >= 1
  np.testing.assert_allclose(resumed['final']['train_loss']['mean'],
                             whole['final']['train_loss']['mean'], rtol=1e-6)
  assert resumed['final']['test'] == whole['final']['test']


@pytest.mark.slow
@pytest.mark.parametrize('flags_1, other_data, message', [
    (['--learning_rate', '0.001'], False, 'disagree on their flags'),
    ([], True, 'disagree on their data'),
])
def test_processes_that_disagree_stop_with_an_error(
    flags_1, other_data, message, mnist_dir, tmp_path):
  data_1 = mnist_dir
  if other_data:
    (tmp_path / 'other').mkdir()
    data_1 = make_fake_mnist(tmp_path / 'other', num_train=2048, num_test=128)
  port = free_port()
  procs = [launch(tmp_path / 'run', mnist_dir, process_id=0, port=port),
           launch(tmp_path / 'run', data_1, *flags_1, process_id=1, port=port)]
  for rc, _, err in finish(procs, timeout=120):
    assert rc == 2 and message in err, err
  assert not (tmp_path / 'run' / 'metrics.jsonl').exists()


@pytest.mark.slow
def test_unreachable_coordinator_fails_in_bounded_time(tmp_path, mnist_dir):
  t0 = time.time()
  proc = launch(tmp_path, mnist_dir, '--distributed_timeout', '3',
                process_id=1, port=free_port())
  rc, _, err = finish([proc], timeout=120)[0]
  assert rc == 1, err
  assert 'could not reach the coordinator at 127.0.0.1:' in err
  assert time.time() - t0 < 30


@pytest.mark.slow
def test_process_0_alone_gives_up_in_bounded_time(tmp_path, mnist_dir):
  t0 = time.time()
  proc = launch(tmp_path, mnist_dir, '--distributed_timeout', '3',
                process_id=0, port=free_port())
  rc, _, err = finish([proc], timeout=120)[0]
  # JAX aborts the process; the line before says what it waited for.
  assert rc != 0 and 'waiting up to 3 s for every process' in err
  assert time.time() - t0 < 30


@pytest.mark.slow
def test_batch_that_does_not_split_over_the_processes(tmp_path, mnist_dir):
  for rc, _, err in finish(launch_pair(tmp_path, mnist_dir, '--batch_size',
                                       '33'), timeout=120):
    assert rc == 2 and 'multiple of the 2 devices' in err, err


@pytest.mark.parametrize('flags, message', [
    (['--num_processes', '2'], 'go together'),
    (['--coordinator_address', 'localhost', '--num_processes', '2',
      '--process_id', '0'], 'HOST:PORT'),
    (['--coordinator_address', 'h:1', '--num_processes', '2',
      '--process_id', '2'], '--process_id'),
    (['--coordinator_address', 'h:1', '--num_processes', '0',
      '--process_id', '0'], '--num_processes'),
    (['--distributed', '--distributed_timeout', '0'], '--distributed_timeout'),
])
def test_bad_multi_process_flags_exit_2(flags, message, capsys):
  with pytest.raises(SystemExit) as exit_info:
    train.main(['--epochs', '1', *flags])
  assert exit_info.value.code == 2
  assert message in capsys.readouterr().err


MULTI_PROCESS_FLAGS = ['--coordinator_address', 'host:1234', '--num_processes',
                       '2', '--process_id', '1', '--distributed',
                       '--distributed_timeout', '30']


def _multi_process_values(args):
  return (args.coordinator_address, args.num_processes, args.process_id,
          args.distributed, args.distributed_timeout)


def test_multi_process_flags_parse_to_their_values_and_are_documented():
  parser = build_parser()
  given = parser.parse_args(MULTI_PROCESS_FLAGS)
  assert _multi_process_values(given) == ('host:1234', 2, 1, True, 30)
  assert parallel.check_flags(given) is None and parallel.wanted(given)
  defaults = parser.parse_args([])
  assert _multi_process_values(defaults) == (None, None, None, False, 120)
  assert parallel.check_flags(defaults) is None
  assert not parallel.wanted(defaults)
  text = ' '.join(parser.format_help().split())
  for flag, says in [('--coordinator_address HOST:PORT', "process 0's address"),
                     ('--num_processes', 'how many processes take part'),
                     ('--process_id', 'this process, 0 to --num_processes - 1'),
                     ('--distributed', 'join a multi-process run'),
                     ('--distributed_timeout SECONDS', 'give up when the '
                      'coordinator or a peer is not reachable')]:
    assert f'{flag} ' in text and says in text, flag
