"""A ``flags`` directive: the table of ``train.py``'s flags, made from the
field descriptions of ``trainer.config.Config`` (not retyped): each flag,
its default and its help text, as ``python train.py --help`` prints them."""

from __future__ import annotations

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective


def flag_rows() -> list[tuple[str, str, str]]:
  """(flag, default, help) for every action of train.py's parser."""
  from trainer import cli
  rows = []
  for action in cli.build_parser()._actions:
    if not action.option_strings or action.dest == 'help':
      continue
    default = '' if action.default is None else repr(action.default)
    rows.append((', '.join(action.option_strings), default,
                 ' '.join((action.help or '').split())))
  return rows


class Flags(SphinxDirective):
  """``.. flags::`` renders the table."""

  def run(self) -> list[nodes.Node]:
    table = nodes.table()
    group = nodes.tgroup(cols=3)
    table += group
    for width in (20, 12, 68):
      group += nodes.colspec(colwidth=width)
    head, body = nodes.thead(), nodes.tbody()
    group += head
    group += body
    for container, rows in ((head, [('flag', 'default', 'what it does')]),
                            (body, flag_rows())):
      for cells in rows:
        row = nodes.row()
        for i, text in enumerate(cells):
          entry = nodes.entry()
          entry += nodes.paragraph(
              '', '', nodes.literal(text, text) if i < 2 and container
              is body else nodes.Text(text))
          row += entry
        container += row
    return [table]


def setup(app: Sphinx) -> dict[str, bool]:
  app.add_directive('flags', Flags)
  return {'parallel_read_safe': True, 'parallel_write_safe': True}
