"""``python -m realtime.sentence_encoder``: the sentence encoder's conversion (``realtime.offline.sentence_encoder``)."""

from realtime.core.errors import run_cli
from realtime.offline.sentence_encoder import main

if __name__ == "__main__":
    run_cli(main)
