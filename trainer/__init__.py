"""The trainer behind ``train.py``, by concept.

``loop``: ``train_and_evaluate``, the epochs of a run, divergence.
``config``: a run's configuration as plain data, each field with its help.
``resolve``: the one validation, a config into a run spec; ``spec``: the
``RunSpec``, plain data. ``point``: a point's loss, probabilities and
optimizer, built from the spec inside the programs. ``cli``: the flags made
from the fields, ``--resume`` rules. ``programs``: the compiled epoch and
evaluation. ``run_data``: the validation split, each seed's subset and label
noise, each epoch's batches. ``progress``: the progress bar and the
per-epoch line. ``devices``: the mesh and where the arrays go. ``parallel``:
several processes (flags, start-up, agreement). ``runfiles``: what a run
writes (metrics lines, summary, predictions), atomic writes, checkpoints.
``sets``: prediction sets calibrated on the calibration split, scored on
the test split, and the command that writes a finished run's sets.
``restore``: a finished run's models back from its last checkpoint.
"""
