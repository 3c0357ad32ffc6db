"""The study: does knowing the digit distance help beyond the best control?

``python -m study`` runs it (``results/protocol.md`` is its protocol).
``plan`` holds what it runs as plain data (families, regimes, grids, seeds);
``experiments`` the engine (tuning, choices on validation, finals) and the
command line; ``cells`` runs and remembers one cell; ``loss_table`` the
one-epoch table of every loss; ``rows`` turns finished cells into rows with
intervals, paired tests and Holm; ``report`` writes the verdicts, tables and
plots.
"""
