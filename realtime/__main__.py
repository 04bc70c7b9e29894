"""``python -m realtime``: the live recognizer (``realtime.cli``; see --help)."""

import sys

from realtime.cli import main

sys.exit(main())
