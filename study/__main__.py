"""``python -m study [COMMAND] [FLAGS]``: every protocol and report
(``study.commands``); without a command, the screening study."""

import sys

from study.commands import main

sys.exit(main())
