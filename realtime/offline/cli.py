"""Options the encoders' offline command lines share."""

from __future__ import annotations

import argparse
from pathlib import Path

from realtime.core.resources import cache_dir


def add_png_option(parser: argparse.ArgumentParser, name: str) -> None:
    """``--png``: where ``evaluate`` saves its confusion matrix (default: the user cache's ``name``/)."""
    parser.add_argument("--png", type=Path, default=cache_dir(name) / "confusion.png",
                        help="where the confusion matrix is saved (default: %(default)s)")
