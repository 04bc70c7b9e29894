"""``python -m realtime.text_encoder``: the text encoder's training and evaluation (``realtime.offline.text_encoder``)."""

from realtime.core.errors import run_cli
from realtime.offline.text_encoder import main, parser  # noqa: F401  (parser: for the CLI help checks)

if __name__ == "__main__":
    run_cli(main)
