"""The live recognizer in a checkout: ``python main.py --camera 0`` (see --help). The CLI is
``realtime.cli``; installed, the same entry is ``dmd-realtime`` and ``python -m realtime``."""

import sys

from realtime.cli import main, parse_args  # noqa: F401  (parse_args: for the CLI help checks)

if __name__ == "__main__":
    sys.exit(main())
