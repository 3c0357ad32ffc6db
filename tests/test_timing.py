"""timing.py: round-robin timing and the summary of its rounds."""

from bench import timing


def test_rounds_interleave_the_contestants_after_their_warm_ups():
  calls = []

  def contestant(name):
    return timing.Contestant(
        parts={'epoch': lambda: calls.append(f'{name}.epoch'),
               'eval': lambda: calls.append(f'{name}.eval')},
        warm_up=lambda: calls.append(f'{name}.warm_up'))

  times = timing.time_interleaved({'a': contestant('a'), 'b': contestant('b')},
                                  repeats=2, pause_s=0.0)
  assert calls == ['a.warm_up', 'b.warm_up'] + [
      'a.epoch', 'a.eval', 'b.epoch', 'b.eval'] * 2
  assert {name: {part: len(seconds) for part, seconds in parts.items()}
          for name, parts in times.items()} == {
              'a': {'epoch': 2, 'eval': 2}, 'b': {'epoch': 2, 'eval': 2}}
  assert all(s >= 0 for parts in times.values() for seconds in parts.values()
             for s in seconds)


def test_spread_reports_the_median_and_the_range_of_the_rounds():
  assert timing.spread([3.0, 1.0, 2.0, 10.0]) == {
      'median': 2.5, 'min': 1.0, 'max': 10.0, 'all_rounds': [3.0, 1.0, 2.0,
                                                            10.0]}
