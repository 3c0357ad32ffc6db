"""The bench: train.py's epoch and evaluation timed against PyTorch's.

``python -m bench`` runs it; ``command`` is its command line. What is timed,
by concept: ``epochs`` (train.py's real epoch and evaluation against
PyTorch's epoch), ``many`` (the evaluation by several models; a sweep against
separate runs), ``cold_start`` (time to 99 % from the shell) and ``micro``
(the 40-step micro-loop behind ``--micro``); ``timing`` holds the round-robin
timing, medians, the op profile and the PyTorch reference CNN they share.
"""
