"""``python -m realtime.expression``: the expression CNN's training and evaluation (``realtime.offline.expression``)."""

from realtime.core.errors import run_cli
from realtime.offline.expression import main, parser  # noqa: F401  (parser: for the CLI help checks)

if __name__ == "__main__":
    run_cli(main)
