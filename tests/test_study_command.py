"""``python -m study [COMMAND]``: one command line for every protocol."""

import importlib

import pytest

from study import commands


@pytest.mark.parametrize('name', sorted(commands.COMMANDS))
def test_each_command_runs_its_modules_main_with_the_rest(name, monkeypatch):
  module = importlib.import_module(commands.COMMANDS[name][0])
  seen = []
  monkeypatch.setattr(module, 'main', lambda argv: seen.append(argv) or 0)
  assert commands.main([name, '--data_dir', 'somewhere']) == 0
  assert seen == [['--data_dir', 'somewhere']]


def test_without_a_command_it_is_the_screening_study(monkeypatch):
  # The registered commands (python -m study --data_dir ...) keep working.
  from study import experiments
  seen = []
  monkeypatch.setattr(experiments, 'main', lambda argv: seen.append(argv) or 0)
  assert commands.main(['--data_dir', 'x', '--regimes', 'scarce500']) == 0
  assert commands.main([]) == 0
  assert seen == [['--data_dir', 'x', '--regimes', 'scarce500'], []]


def test_help_lists_every_command_then_the_screening_flags(capsys):
  with pytest.raises(SystemExit) as info:
    commands.main(['--help'])
  assert info.value.code == 0
  out = capsys.readouterr().out
  assert out.startswith('usage: python -m study [COMMAND] [FLAGS]')
  for name in commands.COMMANDS:
    assert f'\n  {name} ' in out
  assert 'usage: python -m study [-h] [--grid' in out


def test_an_unknown_command_exits_2_naming_the_commands(capsys):
  with pytest.raises(SystemExit) as info:
    commands.main(['confirmaton', '--data_dir', 'x'])
  assert info.value.code == 2
  assert ("no command 'confirmaton'; one of screening, confirmation, "
          'confirmation_report, shift, shift_report, power, sets, '
          'sets_report, sets_power, sets_figure.'
          ) in capsys.readouterr().err


def test_a_command_runs_its_modules_own_argument_check(capsys):
  # The confirmation's own check of --regimes, before any data are read.
  with pytest.raises(SystemExit) as info:
    commands.main(['confirmation', '--regimes', 'scarce9', '--data_dir',
                   'nowhere'])
  assert info.value.code == 2
  assert ('python -m study.confirm: error: argument --regimes: no regime '
          'scarce9' in capsys.readouterr().err)
