"""``python -m realtime.voice_encoder``: the voice encoder's training and evaluation (``realtime.offline.voice_encoder``)."""

from realtime.core.errors import run_cli
from realtime.offline.voice_encoder import main, parser  # noqa: F401  (parser: for the CLI help checks)

if __name__ == "__main__":
    run_cli(main)
