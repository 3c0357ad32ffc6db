"""The bench: train.py's epoch and evaluation timed against PyTorch's.

``python -m bench`` runs it. ``contests`` holds what is timed (train.py's own
programs, the evaluation of several models, a sweep against separate runs,
the op profile, time to 99 %) and the command line; ``micro`` the 40-step
micro-loop behind ``--micro``; ``timing`` the round-robin timing, medians,
the op profile and the PyTorch reference CNN they share.
"""
