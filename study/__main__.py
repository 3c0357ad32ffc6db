"""``python -m study``: the loss study behind results/study.md."""

import sys

from study.experiments import main

sys.exit(main())
