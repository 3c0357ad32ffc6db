"""Train the MNIST CNN with any registered loss; score validation and test.

    python train.py --data_dir ../shared/mnist --epochs 3
    python train.py --loss expected_cost --distance cyclic --num_seeds 4
    python train.py --loss soft_label_cross_entropy --num_seeds 2 \\
        --sweep learning_rate=0.0015,0.003 --sweep temperature=0.5,1 \\
        --validation_size 5000 --no_test

A thin entry point over ``trainer.loop.train_and_evaluate(config, workdir)``
(also ``train.train_and_evaluate``, as in Flax's examples). The configuration
is resolved (``trainer.resolve``: every check, then a ``trainer.spec.RunSpec``
of plain data), by the flags' check before the data load and again by the
run; each epoch is one compiled program (every step and the
optimizer inside one ``lax.scan``, ``trainer.programs``, with the loss and
optimizer of ``trainer.point``), vmapped over ``--num_seeds``
models and over the points of ``--sweep``. After every evaluated epoch the
validation and test splits are scored for argmax and for cost-aware
(``bayes_decision``) predictions, a line per point goes to ``metrics.jsonl``
and an orbax checkpoint is written; ``--resume`` continues a killed run and
reaches the same final numbers. Around it, in the package ``trainer``:
``loop`` (the epochs, divergence, what a run writes), ``cli`` (the flags),
``run_data`` (splits and batches), ``progress`` (what is shown), ``runfiles``
(what a run writes), ``devices`` (where the arrays go), ``parallel`` (several
processes).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import jax

from trainer import cli, parallel
from trainer.config import ConfigError
from trainer.loop import TrainingError, train_and_evaluate


def print_final(summary: dict) -> None:
  """The final validation and test scores of every point."""
  for point in summary['points']:
    if summary['config']['sweep']:
      print(f"point {point['hyperparameters']}"
            + (f"  DIVERGED: {point['diverged']}" if 'diverged' in point
               else ''))
    for split in ('validation', 'test', 'confirmation'):
      if point['final'] is None or split not in point['final']:
        continue
      for decoding in ('argmax', 'bayes'):
        scores = point['final'][split][decoding]
        print(f"{split} {decoding:>6}: accuracy "
              f"{100 * scores['accuracy']['mean']:.2f}% "
              f"± {100 * scores['accuracy']['std']:.2f}  mean digit-distance "
              f"error {scores['mean_digit_distance']['mean']:.4f}  far errors "
              f"{100 * scores['far_error_rate']['mean']:.2f}%  "
              f"cyclic {scores['cyclic_error']['mean']:.4f}  "
              f"QWK {scores['qwk']['mean']:.4f}")
    for method, scores in (point['final'] or {}).get('test_sets', {}).items():
      print(f"test sets {method:>9}: coverage "
            f"{100 * scores['coverage']['mean']:.2f}%  mean size "
            f"{scores['size']['mean']:.3f}  distance to the set "
            f"{scores['distance']['mean']:.4f}")


def main(argv: Sequence[str] | None = None) -> int:
  parser = cli.build_parser()
  argv = sys.argv[1:] if argv is None else argv
  args = parser.parse_args(argv)
  if error := parallel.check_flags(args):
    parser.error(error)
  if parallel.wanted(args):  # before anything touches a JAX device
    try:
      parallel.initialize(args)
    except parallel.DistributedError as e:
      print(f'{parser.prog}: error: {e}', file=sys.stderr)
      return 1
    if jax.process_count() > 1 and args.workdir is None:
      parser.error('a multi-process run needs --workdir (the same folder for '
                   'every process).')
  config, workdir = cli.config_from_args(args, parser, argv)
  dataset = cli.load_mnist(parser, config.data_dir,
                           tfds_data_dir=config.tfds_data_dir,
                           no_download=args.no_download)
  if jax.process_count() > 1:
    try:  # also the barrier before process 0 writes to the workdir
      parallel.check_agreement(config, workdir, args.resume, dataset)
    except parallel.DistributedError as e:
      parser.error(str(e))
  # A progress bar on a terminal; plain lines in logs, pipes and from every
  # process of a multi-process run (process 0 alone prints them).
  quiet = args.quiet or not sys.stderr.isatty() or jax.process_count() > 1
  if not quiet:
    print(f'workdir: {workdir}  (compiling the epoch program...)',
          file=sys.stderr, flush=True)
  try:
    summary = train_and_evaluate(config, workdir, resume=args.resume,
                                 quiet=quiet, dataset=dataset)
  except ConfigError as e:  # the data flags and --epochs of a --resume
    parser.error(str(e))
  except TrainingError as e:
    print(f'{parser.prog}: error: {e}', file=sys.stderr)
    return 1
  except Exception:
    if jax.process_count() == 1:
      raise
    parallel.exit_after_failure(parser.prog)
  if not parallel.is_primary():
    return 0
  print_final(summary)
  print(f"wall time {summary['wall_s']['total']:.1f}s "
        f"(compile {summary['wall_s']['compile']:.1f}s); outputs in {workdir}")
  return 0


if __name__ == '__main__':
  sys.exit(main())
