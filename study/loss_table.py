"""The one-epoch table of every registered loss (``python -m study --grid
losses``, results/losses.md): each loss and head variant with its defaults,
seed 0, the test split."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable

import losses
from data import Split
from study import rows as study_rows
from study.cells import final_scores, run_cell, slug
from study.records import FinalCell
from trainer.config import Config


def every_loss() -> dict[str, dict]:
  """One configuration per registered loss and head variant (its defaults).

  Behind the README's loss table: ``python -m study --grid losses``
  trains each for one epoch with the default configuration, seed 0.
  """
  table = {name: {'loss': name} for name in losses.LOSSES}
  del table['soft_target_cross_entropy']
  for family in losses.SOFT_LABEL_FAMILIES:
    table[f'soft_target_cross_entropy[{family}]'] = {
        'loss': 'soft_target_cross_entropy', 'soft_labels': family}
  for link in losses.CLM_LINKS:
    table[f'clm[{link}]'] = {'loss': 'clm', 'link': link}
  del table['clm']
  for name in ('soft_label_cross_entropy', 'slace', 'expected_cost'):
    table[f'{name}[cyclic]'] = {'loss': name, 'distance': 'cyclic'}
  return table


def run_loss_table(dataset: dict[str, Split], results_dir: str | pathlib.Path,
                   runs_dir: str | pathlib.Path, *, base: Config,
                   log: Callable[[str], object] = print) -> list[dict]:
  """One epoch of every loss (seed 0, test split); writes losses.md."""
  rows = []
  for name, overrides in every_loss().items():
    config = dataclasses.replace(base, epochs=1, **overrides)
    path = pathlib.Path(results_dir) / 'losses' / f'{slug(name)}.json'
    cell = FinalCell.from_json(run_cell(path, config, runs_dir, dataset, log,
                                        final_scores))
    scores = cell.scores['test']['argmax']
    rows.append({'name': name, 'accuracy': scores['accuracy']['mean'],
                 'mean_digit_distance': scores['mean_digit_distance']['mean'],
                 'far_error_rate': scores['far_error_rate']['mean'],
                 'command': study_rows.command_for(cell.config)})
  lines = ['# Every loss, one epoch', '',
           'One epoch, default configuration (batch 32, peak learning rate '
           '3e-3, AdamW, cosine), seed 0, argmax decoding, MNIST test split. '
           '`python -m study --grid losses` makes this table.', '',
           '| loss | test accuracy % | mean digit-distance error | '
           'far errors % | command |', '|---|---|---|---|---|']
  lines += [f"| {r['name']} | {100 * r['accuracy']:.2f} | "
            f"{r['mean_digit_distance']:.4f} | {100 * r['far_error_rate']:.2f} "
            f"| `{r['command']}` |" for r in rows]
  (pathlib.Path(results_dir) / 'losses.md').write_text('\n'.join(lines) + '\n')
  return rows
