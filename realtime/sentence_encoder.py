"""``python -m realtime.sentence_encoder``: the sentence encoder's conversion (``realtime.offline.sentence_encoder``)."""

from realtime.core.errors import run_cli
from realtime.offline.sentence_encoder import main, parser  # noqa: F401  (parser: for the CLI help checks)

if __name__ == "__main__":
    run_cli(main)
