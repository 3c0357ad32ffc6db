"""``python -m bench``: the speed of train.py's own epoch and evaluation."""

import sys

from bench.contests import main

sys.exit(main())
