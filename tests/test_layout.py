"""The layout the README describes, the import layers, and every documented
command's argument check (nothing trained)."""

import ast
import csv
import importlib
import json
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

from bench import command as bench_command
from conftest import ROOT
from study import commands as study_commands
from study import (
  confirm,
  confirm_report,
  power,
  shift,
  shift_report,
)
from trainer import cli, sets
from trainer.config import FIELDS, Config
from trainer.resolve import resolve

LIBRARY = {'losses', 'metrics', 'conformal', 'model', 'data', 'corruptions'}
PACKAGES = ('trainer', 'study', 'bench')


def test_the_root_holds_what_the_readme_lists_and_packages_for_the_rest():
  root = {p.name for p in ROOT.glob('*.py')} | {
      f'{p.name}/' for p in ROOT.iterdir() if (p / '__init__.py').is_file()}
  assert root == {f'{m}.py' for m in LIBRARY} | {'train.py'} | {
      f'{p}/' for p in PACKAGES}
  layout = README.split('\n## Layout\n')[1].split('\n## ')[0]
  listed = set(re.findall(r'^- `([a-z_]+(?:\.py|/))`', layout, re.M))
  listed |= set(re.findall(r'the package `([a-z_]+/)`', layout))
  assert listed == root


def _project_imports(path: pathlib.Path) -> set[str]:
  """The project modules ``path`` imports, anywhere in it, as dotted names."""
  tree = ast.parse(path.read_text())
  names = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names |= {alias.name for alias in node.names}
    elif isinstance(node, ast.ImportFrom) and node.module:
      names.add(node.module)
      names |= {f'{node.module}.{alias.name}' for alias in node.names}
  return {n for n in names if _module_path(n) is not None}


def _module_path(name: str) -> pathlib.Path | None:
  path = ROOT / (name.replace('.', '/') + '.py')
  return path if path.is_file() and 'tests' not in path.parts else None


MODULES = {'.'.join(p.relative_to(ROOT).with_suffix('').parts): p
           for p in [*ROOT.glob('*.py'), *(
               p for pkg in PACKAGES for p in (ROOT / pkg).glob('*.py')
               if p.stem not in ('__init__', '__main__'))]}
IMPORTS = {name: _project_imports(path) for name, path in MODULES.items()}


def test_the_library_imports_nothing_of_the_trainer_the_study_or_the_bench():
  for name in LIBRARY:
    above = {m for m in IMPORTS[name]
             if m == 'train' or m.split('.')[0] in PACKAGES}
    assert not above, (name, above)


def test_the_run_spec_imports_no_program_builder():
  for spec in ('trainer.config', 'trainer.resolve', 'trainer.spec'):
    assert not {'trainer.programs', 'trainer.point'} & IMPORTS[spec], spec


def test_the_run_spec_is_data_built_without_jax_or_optax():
  tree = ast.parse((ROOT / 'trainer' / 'spec.py').read_text())
  imported = {alias.name.split('.')[0] for node in ast.walk(tree)
              if isinstance(node, ast.Import) for alias in node.names} | {
      node.module.split('.')[0] for node in ast.walk(tree)
      if isinstance(node, ast.ImportFrom) and node.module}
  assert imported == {'__future__', 'dataclasses', 'typing', 'numpy',
                      'trainer'}
  assert IMPORTS['trainer.spec'] == {'trainer.config'}


def test_no_import_cycle():
  def visit(name, stack):
    assert name not in stack, ' -> '.join([*stack, name])
    for other in IMPORTS.get(name, ()):
      visit(other, [*stack, name])

  for name in IMPORTS:
    visit(name, [])


# ----------------------------------------------------------------------------
# Every documented command.

README = (ROOT / 'README.md').read_text()
COMMAND = (r'python (?:train\.py|-m study(?:\.power|\.shift(?:_report)?|'
           r'\.confirm(?:_report)?)?|'
           r'-m bench|-m trainer\.sets)\b'
           r'[^`|]*')
# Placeholders in documented templates, and a value that passes for each.
PLACEHOLDERS = {'B': '32', 'LR': '0.003', '...': '', '[COMMAND]': '',
                '[FLAGS]': ''}


def _command(text: str) -> str:
  """The command alone, without what the shell does after it."""
  return re.split(r'\s(?:&&?|\||;|\d?>)', text)[0].strip()


def _commands_in(text: str) -> list[str]:
  text = text.replace('\\\n', ' ')
  found = []
  for block in re.findall(r'```[a-z]*\n(.*?)```', text, re.S):
    found += [_command(m.group(0)) for line in block.splitlines()
              if (m := re.search(COMMAND, line))]
  for span in re.findall(r'`([^`]+)`', re.sub(r'```.*?```', '', text,
                                              flags=re.S)):
    found += [_command(m.group(0))
              for m in [re.search(COMMAND, ' '.join(span.split()))] if m]
  return found


def documented_commands() -> list[tuple[str, str]]:
  commands = [('README.md', c) for c in _commands_in(README)]
  for path in sorted([*ROOT.glob('results/**/*.md'),
                      *ROOT.glob('docs/**/*.md')]):
    commands += [(path.name, c) for c in _commands_in(path.read_text())]
  notebook = json.loads((ROOT / 'notebooks' / 'ordinal_losses.ipynb')
                        .read_text())
  for cell in notebook['cells']:
    commands += [('notebook', c) for c in _commands_in(''.join(
        cell['source']))]
  with open(ROOT / 'results' / 'study.csv') as f:
    commands += [('study.csv', row['command']) for row in csv.DictReader(f)]
  for path in sorted(ROOT.glob('results/*.json')):
    command = json.loads(path.read_text()).get('command')
    if command:
      commands.append((path.name, command))
  return sorted(set(commands) - QUOTED)


# Commands the protocol's append-only log quotes as a line once read (the
# 2026-12-07 entry, on what 1c825ad changed): history, not instructions.
QUOTED = {('protocol.md', 'python -m study.confirm')}
COMMANDS = documented_commands()


def test_the_documents_hold_the_commands_of_every_entry_point():
  assert len(COMMANDS) >= 100
  for entry in ('python train.py', 'python -m study', 'python -m bench',
                'python -m trainer.sets'):
    assert any(c.startswith(entry) for _, c in COMMANDS), entry
  assert not [c for _, c in COMMANDS
              if re.search(r'python [a-z_]+\.py', c)
              and not c.startswith('python train.py')]


@pytest.mark.parametrize('source, command', COMMANDS,
                         ids=[f'{s}:{c[:60]}' for s, c in COMMANDS])
def test_a_documented_command_passes_its_argument_check(source, command,
                                                        tmp_path):
  del source
  argv = [PLACEHOLDERS.get(token, token) for token in shlex.split(command)]
  argv = [token for token in argv if token]
  if argv[1] == 'train.py':
    argv = argv[2:]
    parser = cli.build_parser()
    if '--help' in argv:
      with pytest.raises(SystemExit) as info:
        parser.parse_args(argv)
      assert info.value.code == 0
      return
    args = parser.parse_args(argv)
    if not args.resume:  # a resume's configuration is the saved one
      resolve(Config(**{k: v for k, v in vars(args).items() if k in FIELDS}))
  else:
    flags = argv[3:]
    if argv[2] == 'study':
      _, module, flags = study_commands.split(flags)
    else:
      module = {'study.power': power, 'study.shift': shift,
                'study.shift_report': shift_report, 'study.confirm': confirm,
                'study.confirm_report': confirm_report,
                'bench': bench_command, 'trainer.sets': sets}[argv[2]]
    module.build_parser().parse_args(flags)


@pytest.mark.slow
@pytest.mark.parametrize('entry', [['train.py'], ['-m', 'study'],
                                   ['-m', 'bench']])
def test_every_entry_point_starts_from_the_root(entry):
  result = subprocess.run([sys.executable, *entry, '--help'], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr
  assert result.stdout.startswith('usage: ')


@pytest.mark.parametrize('package', PACKAGES)
def test_the_package_docstring_and_the_layout_page_list_its_modules(package):
  # Every module of the folder, and nothing else, in its package docstring
  # (``name``) and on the layout page (`name.py`).
  folder = ROOT / package
  modules = {path.stem for path in folder.glob('*.py')
             if not path.stem.startswith('__')}
  docstring = importlib.import_module(package).__doc__
  listed = set(re.findall(r'``([a-z_]+)``', docstring))
  assert modules <= listed, sorted(modules - listed)
  bullets = (ROOT / 'docs' / 'layout.md').read_text().split('\n- `')
  (section,) = [b for b in bullets
                if b.startswith(f'{package}/`') or f'`{package}/`' in b]
  named = set(re.findall(r'`([a-z_]+)\.py`', section))
  root_modules = {path.stem for path in ROOT.glob('*.py')}
  assert modules <= named, sorted(modules - named)
  assert not named - modules - root_modules, sorted(named - modules)
