"""``python -m realtime.ge2e``: converting the pretrained GE2E speaker encoder (``realtime.offline.ge2e``)."""

from realtime.core.errors import run_cli
from realtime.offline.ge2e import main, parser  # noqa: F401  (parser: for the CLI help checks)

if __name__ == "__main__":
    run_cli(main)
