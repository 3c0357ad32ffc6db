"""``python -m bench``: the speed of train.py's own epoch and evaluation."""

import sys

from bench.command import main

sys.exit(main())
