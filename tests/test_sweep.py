"""A sweep: a grid of hyperparameter points x seeds trained as one program."""

import dataclasses
import json

import jax
import numpy as np
import pytest

import train
from conftest import read_jsonl
from trainer import cli, programs
from trainer.config import Config, ConfigError
from trainer.resolve import grid_points, load_distance, resolve


def assert_same_run(point_final, separate_final):
  # Traced and constant hyperparameters round differently in the last bits;
  # after a few Adam steps the runs agree to float tolerance.
  np.testing.assert_allclose(point_final['train_loss']['per_seed'],
                             separate_final['train_loss']['per_seed'],
                             rtol=2e-3)
  for decoding in ('argmax', 'bayes'):
    for metric, scores in separate_final['test'][decoding].items():
      np.testing.assert_allclose(
          point_final['test'][decoding][metric]['per_seed'],
          scores['per_seed'], atol=2 / 128, err_msg=f'{decoding} {metric}')


@pytest.mark.slow
@pytest.mark.parametrize('base, sweep', [
    ({}, {'learning_rate': [0.003, 0.006], 'weight_decay': [0.0, 0.1]}),
    ({'loss': 'soft_label_cross_entropy'}, {'temperature': [0.5, 2.0]}),
    ({'loss': 'expected_cost'}, {'ce_weight': [0.0, 1.0]}),
    ({'loss': 'soft_target_cross_entropy', 'soft_labels': 'geometric'},
     {'soft_label_param': [0.05, 0.2]}),
    ({'loss': 'von_mises_head'}, {'kappa': [0.5, 2.0]}),
    ({'loss': 'slace'}, {'sharpness': [0.5, 2.0]}),
    ({'loss': 'class_distance_weighted_ce'}, {'power': [0.5, 2.0]}),
    ({'loss': 'label_smoothing_cross_entropy'}, {'epsilon': [0.05, 0.4]}),
])
def test_each_point_equals_its_separate_run(base, sweep, tiny, tmp_path):
  config = Config(**base, epochs=1, batch_size=32, num_seeds=2, sweep=sweep)
  summary = train.train_and_evaluate(config, tmp_path / 'sweep', dataset=tiny)
  points = grid_points(sweep)
  assert [p['hyperparameters'] for p in summary['points']] == points
  assert 'final' not in summary
  for i, point in enumerate(points):
    separate = train.train_and_evaluate(
        Config(**base, **point, epochs=1, batch_size=32, num_seeds=2),
        tmp_path / f'p{i}', dataset=tiny)
    assert_same_run(summary['points'][i]['final'], separate['final'])
  # The points are different models.
  losses_P = [tuple(p['final']['train_loss']['per_seed'])
              for p in summary['points']]
  assert len(set(losses_P)) == len(points)


@pytest.mark.slow
def test_a_sweep_over_distance_files(tiny, tmp_path):
  linear = np.abs(np.subtract.outer(np.arange(10), np.arange(10)))
  order = np.array([4, 8, 1, 3, 7, 9, 6, 0, 2, 5])  # a permuted digit order
  position = np.argsort(order)
  permuted = np.abs(np.subtract.outer(position, position))
  paths = []
  for name, matrix in (('linear', linear), ('permuted', permuted)):
    paths.append(str(tmp_path / f'{name}.npy'))
    np.save(paths[-1], matrix.astype(np.float32))
  base = dict(loss='soft_label_cross_entropy', epochs=1, batch_size=32)
  summary = train.train_and_evaluate(
      Config(**base, sweep={'distance': paths}), tmp_path / 'sweep',
      dataset=tiny)
  for i, path in enumerate(paths):
    separate = train.train_and_evaluate(Config(**base, distance=path),
                                        tmp_path / f'p{i}', dataset=tiny)
    assert_same_run(summary['points'][i]['final'], separate['final'])
  # The permuted order needs no file: order:D0,...,D9.
  spec = 'order:' + ','.join(map(str, order))
  np.testing.assert_array_equal(load_distance(spec), permuted)
  with np.load(tmp_path / 'sweep' / 'predictions.npz') as pred:
    assert pred['probs'].shape == (2, 1, 128, 10)
    # Bayes decoding uses each point's own distance.
    for i, matrix in enumerate((linear, permuted)):
      cost = pred['probs'][i] @ matrix
      np.testing.assert_array_equal(pred['bayes'][i], cost.argmin(-1))


@pytest.mark.slow
def test_cli_sweep_writes_points_and_a_metrics_line_per_point(fake_dir,
                                                              tmp_path):
  workdir = tmp_path / 'w'
  argv = ['--data_dir', str(fake_dir), '--workdir', str(workdir), '--epochs',
          '2', '--batch_size', '16', '--num_seeds', '2', '--quiet',
          '--sweep', 'learning_rate=0.003,0.006']
  assert train.main(argv) == 0
  summary = json.loads((workdir / 'summary.json').read_text())
  assert [p['hyperparameters'] for p in summary['points']] == [
      {'learning_rate': 0.003}, {'learning_rate': 0.006}]
  for point in summary['points']:
    assert len(point['final']['test']['argmax']['accuracy']['per_seed']) == 2
  lines = read_jsonl(workdir / 'metrics.jsonl')
  assert [(line['epoch'], line['point']) for line in lines] == [
      (1, 0), (1, 1), (2, 0), (2, 1)]
  assert lines[-1]['test'] == summary['points'][1]['final']['test']
  saved = json.loads((workdir / 'config.json').read_text())
  assert saved['sweep'] == {'learning_rate': [0.003, 0.006]}
  # The saved sweep resumes: two more epochs for both points.
  assert train.main(['--data_dir', str(fake_dir), '--workdir', str(workdir),
                     '--epochs', '3', '--quiet', '--resume']) == 0
  lines = read_jsonl(workdir / 'metrics.jsonl')
  assert [(line['epoch'], line['point'])
          for line in lines][-2:] == [(3, 0), (3, 1)]


@pytest.mark.slow
def test_a_diverging_point_does_not_stop_the_others(tiny, tmp_path, capsys):
  config = Config(optimizer='sgd', schedule='constant', epochs=2,
                  batch_size=32, sweep={'learning_rate': [0.01, 1e30]})
  summary = train.train_and_evaluate(config, tmp_path, dataset=tiny)
  fine, diverged = summary['points']
  assert 'diverged' not in fine
  assert fine['final']['test']['argmax']['accuracy']['mean'] > 0.2
  # No scores of NaN parameters pass for results.
  assert diverged['final'] is None
  assert diverged['diverged'].startswith('loss became')
  assert 'at epoch 1' in diverged['diverged']
  assert 'point 1' in capsys.readouterr().err
  lines = read_jsonl(tmp_path / 'metrics.jsonl')
  assert [sorted(set(line) & {'diverged', 'test'}) for line in lines] == [
      ['test'], ['diverged'], ['test'], ['diverged']]
  # Resumed, the point is still the one that diverged, where it did.
  resumed = train.train_and_evaluate(dataclasses.replace(config, epochs=3),
                                     tmp_path, resume=True, dataset=tiny)
  assert resumed['points'][1]['diverged'] == diverged['diverged']
  assert resumed['points'][0]['final'] is not None
  every = Config(optimizer='sgd', schedule='constant', epochs=1,
                 batch_size=32, sweep={'learning_rate': [1e30, 1e31]})
  with pytest.raises(train.TrainingError, match='every point of the sweep'):
    train.train_and_evaluate(every, tmp_path / 'all', dataset=tiny)


@pytest.mark.parametrize('sweep, message', [
    ({'epochs': [1, 2]}, 'only ce_weight, distance'),
    ({'learning_rate': []}, 'at least one value'),
    ({'learning_rate': [0.1, 0.1]}, 'repeats a value'),
    ({'learning_rate': [0.1, -1.0]}, '--sweep learning_rate: --learning_rate '
     'must be > 0, got -1.0.'),
    ({'temperature': [0.5, 1.0]}, '--temperature does not apply to --loss '
     'cross_entropy'),
    ({'distance': ['linear', 'manhattan']}, '--sweep distance: --distance '
     'must be linear, cyclic, order:D0,...,D9 or an existing .npy file'),
    ({'distance': ['linear', 'order:1,2,3']}, 'each digit 0-9 once'),
    ({'distance': ['linear', 'cyclic']}, '--loss cross_entropy trains '
     'without a distance'),
])
def test_a_bad_sweep_is_an_error_naming_the_flag(sweep, message):
  with pytest.raises(ConfigError, match=message):
    resolve(Config(sweep=sweep))


@pytest.mark.parametrize('flags, message', [
    (['--sweep', 'learning_rate'], 'write NAME=V1,V2'),
    (['--sweep', 'learning_rate=0.1,x'], 'not a list of float values'),
    (['--sweep', 'lr=0.1'], 'only ce_weight'),
    (['--sweep', 'epochs=1,2'], 'only ce_weight'),
    (['--sweep', 'learning_rate=0.1', '--sweep', 'learning_rate=0.2'],
     'given twice'),
    (['--learning_rate', '0.1', '--sweep', 'learning_rate=0.1,0.2'],
     '--learning_rate 0.1 is also swept'),
])
def test_bad_sweep_flags_exit_2_with_one_line(flags, message, fake_dir,
                                              tmp_path, capsys):
  with pytest.raises(SystemExit) as info:
    train.main(['--data_dir', str(fake_dir), '--workdir', str(tmp_path / 'w'),
                *flags])
  assert info.value.code == 2
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and message in err, err
  assert not (tmp_path / 'w').exists()


def test_only_the_values_that_vary_are_inputs():
  run = resolve(Config(loss='soft_label_cross_entropy', temperature=0.5,
                       sweep={'learning_rate': [0.001, 0.002, 0.004]}))
  assert run.num_points == 3 and set(run.inputs_P) == {'learning_rate'}
  np.testing.assert_allclose(run.inputs_P['learning_rate'],
                             [0.001, 0.002, 0.004])
  plain = resolve(Config())
  assert plain.points == ({},) and plain.inputs_P == {}
  parser = cli.build_parser()
  args = parser.parse_args(['--sweep', 'temperature=0.5,1', '--sweep',
                            'distance=linear,cyclic'])
  assert args.sweep == {'temperature': [0.5, 1.0],
                        'distance': ['linear', 'cyclic']}
  assert parser.parse_args([]).sweep == {} == Config().sweep


def test_library_callers_get_the_swept_and_given_error():
  with pytest.raises(ConfigError, match=r'--learning_rate 0\.1 is also swept'):
    resolve(Config(learning_rate=0.1, sweep={'learning_rate': [0.2, 0.3]}))


@pytest.mark.slow
def test_models_in_sequence_or_vmapped_evaluate_alike(tiny):
  run = resolve(Config(loss='soft_label_cross_entropy', num_seeds=2,
                       sweep={'temperature': [0.5, 2.0]}))
  state = programs.build_programs(run, 10)
  graphdef = programs.eval_graphdef(run)
  test = tiny['test']
  got = [jax.jit(programs.build_evaluate(graphdef, run, in_sequence))(
             state.params, run.inputs_P, test.images, test.labels)
         for in_sequence in (True, False)]
  np.testing.assert_allclose(got[0].probs_PxSxNxK, got[1].probs_PxSxNxK,
                             atol=1e-5)
  assert got[0].probs_PxSxNxK.shape == (2, 2, 128, 10)
  np.testing.assert_array_equal(got[0].bayes_PxSxN, got[1].bayes_PxSxN)
