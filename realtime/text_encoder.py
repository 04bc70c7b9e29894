"""``python -m realtime.text_encoder``: the text encoder's training and evaluation (``realtime.offline.text_encoder``)."""

from realtime.core.errors import run_cli
from realtime.offline.text_encoder import main

if __name__ == "__main__":
    run_cli(main)
