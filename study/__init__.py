"""The study: does knowing the digit distance help beyond the best control?

``python -m study`` runs the screening study (``results/protocol.md`` is its
protocol). ``plan`` holds what it runs as plain data (families, regimes,
grids, seeds); ``experiments`` the engine (tuning, choices on validation,
finals) and the command line; ``cells`` runs and remembers one cell;
``records`` types what the engine hands the report; ``loss_table`` the
one-epoch table of every loss; ``rows`` turns finished cells into rows with
intervals, paired tests and Holm; ``report`` writes the verdicts, tables and
plots.

The confirmation (its own protocol in the same file): ``confirm`` runs it
(``python -m study.confirm``); ``confirm_cells`` reads its committed cells
and per-image files back; ``confirm_rows`` makes the estimates;
``confirm_report`` writes the CSVs and confirmation.md (``python -m
study.confirm_report``); ``confirm_readme`` makes the README's lines from
the CSVs; ``estimates`` holds the two-way bootstrap and the sign-flip test;
``power`` sizes a design from a pilot. ``shift`` runs the confirmation
under shift (``python -m study.shift``), ``shift_rows`` estimates its
primaries per kind of corruption, ``shift_secondary`` its secondaries,
``shift_readme`` gives the advice its rules allow and ``shift_report``
writes it out (``python -m study.shift_report``).
"""
