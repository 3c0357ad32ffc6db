"""The confirmation (results/protocol.md, "Confirmation protocol"): the
primary pair tuned to a real optimum on validation, then scored once on 30 000
training images nobody has scored.

    python -m study.confirm --data_dir ../shared/mnist --regimes scarce2000

Per regime and family: one tuning ``--sweep`` over the registered joint grid
on seeds 100-102 (validation only), the edge rules (a learning rate or
temperature on an edge adds a value a factor of two out, ε at its grid's top
adds its registered values toward its bound, at its bottom halves; at most
K = 3 per hyperparameter; a choice at the last epoch of the budget B reruns
the point with 2B, once), then finals on seeds 1000-1079 in eight programs
of ten with ``--confirmation_size 30000``. Every
cell is a small JSON file under ``results/confirmation/cells/``; each
final's per-image digit distances on the confirmation split go to
``results/confirmation/images/`` (int8). A rerun skips what is done.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import pathlib
from collections.abc import Mapping, Sequence

import numpy as np

from data import (
  CONFIRMATION_SEED,
  VALIDATION_SEED,
  Split,
  held_out_indices,
)
from study import commands, engine
from study.engine import Derived, Finals, Protocol, Store, Tuned
from study.plan import PERMUTED_ORDER, VALIDATION_SIZE
from study.records import Choice
from study.tuning import EdgeRule, Tuning, tied_choices
from trainer import cli
from trainer.config import Config

CONFIRMATION_SIZE = 30_000
TUNE_SEED, TUNE_SEEDS = 100, 3
FINAL_SEED, FINAL_GROUPS, GROUP_SIZE = 1000, 8, 10
MAX_EXTENSIONS = 3          # per hyperparameter (K)
EPSILONS = (0.1, 0.3, 0.5, 0.7, 0.9)


@dataclasses.dataclass(frozen=True)
class Terms:
  """A regime's registered data, epoch budget B (evaluated every
  ``eval_every`` epochs) and learning-rate grid."""
  train_size: int
  label_noise: float
  budget: int
  eval_every: int
  rates: tuple[float, ...]


TERMS = {
    'scarce2000': Terms(2000, 0.0, 12, 2, (0.003, 0.006, 0.012, 0.024)),
    'noisy40': Terms(2000, 0.4, 12, 2, (0.00075, 0.0015, 0.003)),
    # A secondary regime on the primary pair's terms (protocol.md's change
    # log, entry of 2026-12-03): the study's scarce500 budget.
    'scarce500': Terms(500, 0.0, 24, 4, (0.0015, 0.003, 0.006, 0.012)),
}
REGIMES = ('scarce2000', 'noisy40')  # the primary regimes
SECONDARY_REGIMES = ('scarce500',)
ALL_REGIMES = REGIMES + SECONDARY_REGIMES  # TERMS's keys, primaries first
# A family's phase: the primary families run in every regime first; the
# secondary ones once every primary regime's finals are done.
PRIMARY, SECONDARY = 'primary', 'secondary'


def families(regime: str) -> dict[str, Tuned]:
  """The registered families and grids of a regime."""
  rates = TERMS[regime].rates
  out = {
      # At ε = 1 label smoothing's target is uniform: no label left.
      'label_smoothing': Tuned(
          {'loss': 'label_smoothing_cross_entropy'},
          {'learning_rate': rates, 'epsilon': EPSILONS},
          {'epsilon': (0.95, 0.975)}, PRIMARY),
      # At ε = 1 smoothed SORD is plain SORD.
      'smoothed_sord': Tuned(
          {'loss': 'soft_label_cross_entropy'},
          {'learning_rate': rates, 'epsilon': EPSILONS,
           'temperature': (1.5, 3.0, 6.0)}, {'epsilon': (1.0,)}, PRIMARY),
  }
  if regime == 'scarce2000':
    out['sord_linear'] = Tuned({'loss': 'soft_label_cross_entropy'}, {
        'learning_rate': rates, 'temperature': (0.5, 1.0, 2.0)},
        phase=PRIMARY)
  return out


def secondary_families(regime: str) -> dict[str, Tuned]:
  """Secondary families tuned on the primary pair's terms (protocol.md's
  change log, second entry): plain cross-entropy, the "over cross-entropy"
  of the README's advice."""
  return {'cross_entropy': Tuned({'loss': 'cross_entropy'},
                                 {'learning_rate': TERMS[regime].rates},
                                 phase=SECONDARY)}


def off_label_mass(config: Config) -> float:
  """The mean over digits of the training target's mass off the label:
  0.9 ε for label smoothing, ε (1 - mean diagonal of softmax(-C / T)) for
  smoothed SORD over the linear distance."""
  if (config.loss == 'label_smoothing_cross_entropy'
      and config.epsilon is not None):
    return 0.9 * config.epsilon
  if config.loss != 'soft_label_cross_entropy' or config.distance != 'linear':
    raise ValueError(f'no off-label mass for {config.loss} over '
                     f'{config.distance}.')
  digits = np.arange(10)
  logits_KxK = -np.abs(digits[:, None] - digits[None, :]) / config.temperature
  targets_KxK = np.exp(logits_KxK)
  targets_KxK /= targets_KxK.sum(axis=1, keepdims=True)
  epsilon = 1.0 if config.epsilon is None else config.epsilon
  return float(epsilon * (1 - np.diag(targets_KxK).mean()))


def matched_label_smoothing(label_smoothing: Choice,
                            smoothed_sord: Choice) -> Choice:
  """Label smoothing's choice at the ε (4 decimals) whose off-label mass
  equals smoothed SORD's chosen one (a registered secondary)."""
  epsilon = round(off_label_mass(smoothed_sord.config) / 0.9, 4)
  return dataclasses.replace(label_smoothing, config=dataclasses.replace(
      label_smoothing.config, epsilon=epsilon))


# A registered secondary (protocol.md's change log, 2026-12-07): where label
# smoothing's tuning ended in an exact tie, its other tied point too.
TIED_CONTROL_REGIMES = ('scarce500',)


def tied_control(label_smoothing: Tuning) -> Choice | None:
  """Label smoothing at the first tied point the tie rule passed over, or
  None where its choice had no tie."""
  choices = tied_choices(label_smoothing.cells)
  return choices[1] if len(choices) > 1 else None


def regime_base(regime: str) -> Config:
  """The data settings of a regime, with the confirmation split."""
  terms = TERMS[regime]
  return Config(confirmation_size=CONFIRMATION_SIZE,
                validation_size=VALIDATION_SIZE, train_size=terms.train_size,
                label_noise=terms.label_noise,
                clean_validation=terms.label_noise > 0,
                epochs=terms.budget, eval_every=terms.eval_every)


# SHA-256 of the registered split's sorted indices (int64; protocol.md), and
# of its images' bytes, which MNIST's IDX files give in that order.
SPLIT_SHA256 = (
    'fe7a2009a2e75830ac9bc16c9972c0b08c8c7cb6d0c86d645d67c47c924d2c25',
    '0d372530b432df8962ee99553fe8f33dc6d6eaaef5456c405c27592890dc2b47')


def split_digest(dataset: dict[str, Split]) -> tuple[str, str]:
  """The confirmation split's digests: of its indices into the training
  images, and of its images."""
  num_images = len(dataset['train'].labels)
  validation = held_out_indices(num_images, VALIDATION_SIZE, VALIDATION_SEED)
  pool = np.setdiff1d(np.arange(num_images), validation)
  indices = np.sort(pool[held_out_indices(len(pool), CONFIRMATION_SIZE,
                                          CONFIRMATION_SEED)])
  images = dataset['train'].images[indices]
  return (hashlib.sha256(indices.astype(np.int64).tobytes()).hexdigest(),
          hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest())


def load_registered_split(parser: argparse.ArgumentParser,
                          data_dir: str) -> dict[str, Split]:
  """MNIST from ``data_dir``; exits 2 through ``parser`` unless its
  confirmation split is the registered one."""
  dataset = cli.load_mnist(parser, data_dir)
  if (digest := split_digest(dataset)) != SPLIT_SHA256:
    parser.error(f'the confirmation split is not the registered one (SHA-256 '
                 f'of its indices and images {digest}); see '
                 'results/protocol.md.')
  return dataset


# The confirmation's edge rule: every tuned hyperparameter extends by one
# point, at most K per side; a choice at the budget's last epoch doubles it
# once; exact ties.
EDGES = EdgeRule(per_side=MAX_EXTENSIONS, double_budget=True)

# After every secondary family's finals: label smoothing's tied point.
TIED = 'tied'
PHASES = (PRIMARY, SECONDARY, TIED)


def _permuted(regime: str, tunings: Mapping[str, Tuning]) -> Choice | None:
  del regime
  linear = tunings.get('sord_linear')
  return None if linear is None else permuted_twin(linear.choice)


def _matched(regime: str, tunings: Mapping[str, Tuning]) -> Choice:
  del regime
  return matched_label_smoothing(tunings['label_smoothing'].choice,
                                 tunings['smoothed_sord'].choice)


def _tied(regime: str, tunings: Mapping[str, Tuning]) -> Choice | None:
  if regime not in TIED_CONTROL_REGIMES:
    return None
  return tied_control(tunings['label_smoothing'])


# The families derived from the primary choices: the permuted twin with the
# primaries, the matched mass with the secondaries, the tied control last.
DERIVED = (
    Derived('sord_permuted', PRIMARY, 'sord_linear', _permuted,
            keeps_edges=True),
    Derived('label_smoothing_matched', SECONDARY, 'label_smoothing',
            _matched),
    Derived('label_smoothing_tied', TIED, 'label_smoothing', _tied),
)

CONFIRMATION = Protocol(
    cells='confirmation/cells', images='confirmation/images',
    regimes={regime: regime_base(regime) for regime in ALL_REGIMES},
    families={regime: {**families(regime), **secondary_families(regime)}
              for regime in ALL_REGIMES},
    tune_seed=TUNE_SEED, tune_seeds=TUNE_SEEDS, edges=EDGES,
    derived=DERIVED, primary_regimes=REGIMES,
    # The chosen point on seeds 1000-1079, eight programs of ten, each
    # keeping its distances on the confirmation split.
    finals=Finals(FINAL_SEED, FINAL_GROUPS, GROUP_SIZE,
                  fields={'confirmation_size': CONFIRMATION_SIZE},
                  kept_sets=('confirmation',), bare='confirmation'))


def edge_label(family: str, hyper: str, side: str) -> str:
  """The registered label of a choice left on an edge."""
  if (hyper, side) == ('epsilon', 'top'):
    if family == 'label_smoothing':
      return 'ε at the cap'
    if family == 'smoothed_sord':
      return 'ε = 1: plain SORD'
  if (family, hyper, side) == ('smoothed_sord', 'temperature', 'top'):
    return 'temperature converges to label smoothing'
  what = 'the budget' if hyper == 'epochs' else f'{hyper} at its {side}'
  return f'tuning incomplete ({what})'


def permuted_twin(choice: Choice) -> Choice:
  """SORD over the permuted digit order, otherwise SORD[linear]'s choice
  (its Bayes decoding keeps the linear cost the MDE measures)."""
  return dataclasses.replace(choice, config=dataclasses.replace(
      choice.config, distance=PERMUTED_ORDER, decode_distance='linear'))


def run_confirmation(protocol: Protocol, store: Store,
                     regimes: Sequence[str]) -> dict[str, dict[str, Choice]]:
  """The primary families of each regime (tuning, then finals), then,
  where every primary regime ran, the secondary ones and the derived
  controls; returns each regime's choices, the derived ones too."""
  log = store.log
  chosen: dict[str, dict[str, Choice]] = {regime: {} for regime in regimes}

  def tunings(regime: str, phase: str) -> dict[str, Tuning]:
    out = {}
    for name, family in protocol.families[regime].items():
      if family.phase != phase:
        continue
      log(f'[{regime}] tune {name}')
      out[name] = engine.tune(store, protocol, regime, name, family)
      for hyper, side in out[name].on_edge:
        log(f'[{regime}] {name}: {edge_label(name, hyper, side)}')
    return out

  def run_finals(regime: str, choices: dict[str, Choice]) -> None:
    for name, choice in choices.items():
      engine.run_finals(store, protocol.finals, regime, name, choice)
    chosen[regime].update(choices)

  primary = {}
  for regime in regimes:
    primary[regime] = tunings(regime, PRIMARY)
    run_finals(regime, {
        **{name: t.choice for name, t in primary[regime].items()},
        **protocol.derive(regime, PRIMARY, primary[regime])})
  if not set(protocol.primary_regimes) <= set(regimes):
    log('secondaries: not run; they follow every primary regime\'s finals '
        '(run without --regimes)')
    return chosen
  for regime in regimes:
    run_finals(regime, {
        **{name: t.choice for name, t in tunings(regime, SECONDARY).items()},
        **protocol.derive(regime, SECONDARY, primary[regime])})
  for regime in regimes:
    tied = protocol.derive(regime, TIED, primary[regime])
    if not tied and regime in TIED_CONTROL_REGIMES:
      log(f'[{regime}] label smoothing\'s choice had no tie: no tied control')
    run_finals(regime, tied)
  return chosen


def _regimes(text: str) -> list[str]:
  regimes = text.split(',')
  if unknown := set(regimes) - set(ALL_REGIMES):
    raise argparse.ArgumentTypeError(
        f'no regime {", ".join(sorted(unknown))} (there are '
        f'{", ".join(ALL_REGIMES)}).')
  return regimes


def build_parser() -> argparse.ArgumentParser:
  """The command line's flags (its own argument check)."""
  parser = commands.protocol_parser(
      'python -m study.confirm', __doc__, runs_dir='runs/confirmation',
      results_help='where confirmation/ (cells, per-image files) goes')
  parser.add_argument('--regimes', type=_regimes,
                      default=','.join(ALL_REGIMES),
                      help='comma-separated regimes, in that order (the '
                      'primary ones first; secondary families run once '
                      'every primary regime is listed)')
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  def run(args: argparse.Namespace, dataset: dict[str, Split]) -> None:
    run_confirmation(CONFIRMATION, CONFIRMATION.store(
        args.results_dir, runs_dir=pathlib.Path(args.runs_dir),
        dataset=dataset, data_dir=args.data_dir), args.regimes)

  return commands.run_protocol(build_parser(), argv, 'confirmation',
                               'confirmation_report', load_registered_split,
                               run)


if __name__ == '__main__':
  raise SystemExit(main())
