"""Where shipped files and caches are: every module finds them through these two functions.

``shipped(name)`` is a file or folder that ships with the recognizer: ``models/...`` (weights,
checkpoints, the face landmarker) and ``media/...`` (the demo clip). ``cache_dir(name)`` is a
folder for what the offline tools make and reuse (extraction caches, crop caches, reports). In a
checkout both live in the repository (``models/``, ``media/``, ``runs/``).
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def shipped(name: str) -> Path:
    """The shipped file or folder ``name``, e.g. ``"models/default"`` or ``"media/demo.mp4"``."""
    return REPO_ROOT / name


def cache_dir(name: str) -> Path:
    """The cache folder ``name``, e.g. ``"extract_cache"`` (not created here)."""
    return REPO_ROOT / "runs" / name
