"""Where shipped files and caches are: every module finds them through these two functions.

``shipped(name)`` is a file or folder that ships with the recognizer as package data, under
``realtime/data/``: ``models/...`` (weights, checkpoints, the face landmarker) and ``media/...``
(the demo clip); the same path in a checkout and in an installed wheel. ``cache_dir(name)`` is a
folder for what the offline tools make and reuse (extraction caches, crop caches, reports):
``$XDG_CACHE_HOME/dmd-realtime/NAME`` (``~/.cache/dmd-realtime/NAME`` by default), never the
checkout or site-packages.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

APP_NAME = "dmd-realtime"
REPO_ROOT = Path(__file__).resolve().parents[2]  # the checkout, for offline tools that read ../shared (not installed data)


def shipped(name: str) -> Path:
    """The shipped file or folder ``name``, e.g. ``"models/default"`` or ``"media/demo.mp4"``."""
    return Path(str(files("realtime").joinpath("data", *name.split("/"))))


def cache_dir(name: str) -> Path:
    """The cache folder ``name``, e.g. ``"extract_cache"`` (not created here)."""
    base = os.environ.get("XDG_CACHE_HOME") or ""
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"  # XDG: a relative value is ignored
    return root / APP_NAME / name
