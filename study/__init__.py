"""The study: does knowing the digit distance help beyond the best control?

``python -m study [COMMAND]`` (``commands``) runs every protocol of
``results/protocol.md`` and its report; without a command, the screening
study.

Shared by every protocol: ``engine`` a protocol as frozen data (``Protocol``:
regimes, families, tuning seeds, edge rule, ``Finals``, ``Derived`` families),
the cell store that trains or, read only, replays (``Store``), and the tuning
and finals of any protocol; ``tuning`` the choice on validation, the tie rule
and the edge rule as data (``EdgeRule``), and the loop that runs them;
``finals`` a choice on fresh seeds, as one program or in groups; ``cells``
runs, reads back and remembers one cell and keeps a final's per-image
distances; ``records`` types the cells and choices; ``stats`` the statistics
(t-intervals, paired tests, Holm, the fewer/closer split, variance components,
the two-way bootstrap, the sign-flip test).

The screening study: ``plan`` holds what it runs as plain data (families,
regimes, grids, seeds); ``experiments`` makes it a ``Protocol``, runs it
through the engine with what only it derives (the best-of family, fixed own
hyperparameters, more seeds where close) and is its command line;
``loss_table`` the one-epoch table of every loss; ``rows`` turns finished
cells into rows with intervals, paired tests and Holm; ``report`` writes the
verdicts, tables and plots.

The confirmation: ``confirm`` holds it as a ``Protocol`` and runs it with its
derived families (``python -m study confirmation``); ``confirm_cells`` reads
its committed cells and per-image files back; ``confirm_rows`` makes the
estimates of the pairs; ``confirm_families`` each family's rows and the
tuning's sensitivity; ``confirm_report`` writes the CSVs and confirmation.md;
``confirm_readme`` makes the README's lines from the CSVs; ``power`` sizes a
design from a pilot. The confirmation under shift: ``shift`` holds it (a
``Protocol`` that replays the confirmation's choices) and runs it,
``shift_rows`` estimates its primaries per kind of corruption,
``shift_secondary`` its secondaries, ``shift_readme`` gives the advice its
rules allow, ``shift_report`` writes it out and ``answer_figure`` draws the
README's figure. The prediction sets: ``prediction_sets`` holds their
protocol (a ``Protocol`` that replays the confirmation's choices and keeps
each final's cross-fitted set ends) and runs it (``python -m study sets``);
``recalibration`` keeps each calibrated threshold's window so that a
bootstrap can recompute it; ``sets_estimates`` the bootstrap over seeds and
images with every threshold recalibrated; ``sets_rows`` the primaries, Holm,
verdicts and secondaries; ``sets_report`` writes them out and
``sets_readme`` makes the README's lines from them; ``sets_power``
sizes the design from a pilot; ``sets_figure`` draws the sets of finished
runs (``results/sets.png``).
"""
