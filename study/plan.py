"""The study's plan: its loss families, regimes, grids and seeds.

What ``experiments.py`` runs, as plain data; ``results/protocol.md`` says
why each value is what it is.
"""

from __future__ import annotations

import dataclasses

VALIDATION_SIZE = 5000
TUNE_SEED, TUNE_SEEDS = 100, 2        # tuning seeds 100, 101
FINAL_SEEDS = 5                       # finals: seeds 0-4, then 5-9 if close
PERMUTED_ORDER = 'order:4,8,1,3,7,9,6,0,2,5'
# Smoothed SORD: (1 - eps) one-hot + eps SORD targets at T = 3, where SORD's
# own mass on the label is 0.20-0.29, so that eps spreads about as much mass
# off the label as label smoothing's eps does, decaying with the distance.
SMOOTHED_SORD_TEMPERATURE = 3.0

BASELINE, CONTROL, DISTANCE = 'baseline', 'control', 'distance-aware'


@dataclasses.dataclass(frozen=True)
class Family:
  """A loss family: its role, its Config overrides and its own
  hyperparameter with the two values tuning tries (None: only the rate)."""
  role: str
  overrides: dict
  own: tuple[str, tuple[float, float]] | None = None


def _sord(distance: str, role: str = DISTANCE) -> Family:
  # Bayes decoding minimises the linear cost that the MDE measures, for
  # every family: what differs is the training loss only.
  decode = {} if distance == 'linear' else {'decode_distance': 'linear'}
  return Family(role, {'loss': 'soft_label_cross_entropy',
                       'distance': distance, **decode},
                ('temperature', (0.5, 1.0)))


def _soft(family: str,
          own: tuple[str, tuple[float, float]] | None = None) -> Family:
  return Family(DISTANCE, {'loss': 'soft_target_cross_entropy',
                           'soft_labels': family}, own)


FAMILIES = {
    'ce': Family(BASELINE, {}),
    'ce+weight_decay': Family(CONTROL, {}, ('weight_decay', (0.1, 1.0))),
    'label_smoothing': Family(CONTROL, {
        'loss': 'label_smoothing_cross_entropy'}, ('epsilon', (0.3, 0.6))),
    'sord[permuted]': _sord(PERMUTED_ORDER, CONTROL),
    'sord[linear]': _sord('linear'),
    'sord[cyclic]': _sord('cyclic'),
    'smoothed_sord[linear]': Family(DISTANCE, {
        'loss': 'soft_label_cross_entropy',
        'temperature': SMOOTHED_SORD_TEMPERATURE}, ('epsilon', (0.3, 0.6))),
    'ce+expected_cost': Family(DISTANCE, {'loss': 'expected_cost'},
                               ('ce_weight', (0.3, 1.0))),
    'expected_value_mse': Family(DISTANCE, {'loss': 'expected_value_mse'}),
    'ce+expected_value_mse': Family(DISTANCE, {'loss': 'expected_value_mse'},
                                    ('ce_weight', (0.1, 1.0))),
    'clm[logit]': Family(DISTANCE, {'loss': 'clm', 'link': 'logit'}),
    'slace[linear]': Family(DISTANCE, {'loss': 'slace'},
                            ('sharpness', (1.0, 2.0))),
    'corn': Family(DISTANCE, {'loss': 'corn'}),
    'soft[triangular]': _soft('triangular', ('soft_label_param', (0.02, 0.1))),
    'soft[geometric]': _soft('geometric', ('soft_label_param', (0.1, 0.3))),
    'soft[beta]': _soft('beta'),
    'soft[von_mises]': _soft('von_mises', ('soft_label_param', (2.0, 5.0))),
    'binomial': Family(DISTANCE, {'loss': 'binomial_head'}),
    'poisson': Family(DISTANCE, {'loss': 'poisson_head'}),
    'von_mises': Family(DISTANCE, {'loss': 'von_mises_head'},
                        ('kappa', (1.0, 3.0))),
}
# Outside the scarce regimes: the controls, SORD, CORN and smoothed SORD (the
# family built to beat label smoothing), and the best distance-aware family of
# the scarce regimes (Regime.plus_best_of).
SCARCE = ('scarce500', 'scarce2000')
OTHER_FAMILIES = ('ce', 'ce+weight_decay', 'label_smoothing', 'sord[permuted]',
                  'sord[linear]', 'sord[cyclic]', 'smoothed_sord[linear]',
                  'corn')


@dataclasses.dataclass(frozen=True)
class Regime:
  """A regime's training data, its epoch budget and its families."""
  train_size: int | None
  label_noise: float
  epochs: int
  eval_every: int
  families: tuple[str, ...]
  shifted: bool = False  # its finals also score the corrupted test sets
  # Also the distance-aware family with the best mean rank of tuned
  # validation MDE over these regimes (protocol.md).
  plus_best_of: tuple[str, ...] = ()
  clean_validation: bool = False  # under label noise (protocol.md)
  # Each family's own hyperparameter fixed at its choice in this regime, so
  # that tuning tries the learning rates only (protocol.md: clean's cost).
  own_from: str | None = None


@dataclasses.dataclass(frozen=True)
class Grid:
  regimes: dict[str, Regime]
  learning_rates: tuple[float, ...]
  validation_size: int
  final_seeds: int
  max_extensions: int  # learning-rate cells added per family at most


GRIDS = {
    'full': Grid({
        'scarce500': Regime(500, 0.0, 24, 4, tuple(FAMILIES)),
        'scarce2000': Regime(2000, 0.0, 12, 2, tuple(FAMILIES)),
        'noisy40': Regime(2000, 0.4, 12, 2, OTHER_FAMILIES,
                          plus_best_of=SCARCE, clean_validation=True),
        'clean': Regime(None, 0.0, 1, 1, OTHER_FAMILIES, shifted=True,
                        plus_best_of=SCARCE, own_from='scarce2000'),
    }, (1.5e-3, 3e-3, 6e-3), VALIDATION_SIZE, FINAL_SEEDS, 6),
    'tiny': Grid({
        # Noisy, so that the tests see clean validation labels at work.
        'scarce': Regime(96, 0.2, 2, 1, ('ce', 'label_smoothing',
                                         'sord[permuted]', 'sord[linear]'),
                         clean_validation=True),
        'clean': Regime(None, 0.0, 1, 1, ('ce', 'label_smoothing',
                                          'sord[permuted]'), shifted=True,
                        plus_best_of=('scarce',), own_from='scarce'),
    }, (3e-3, 6e-3), 64, 2, 1),
}
