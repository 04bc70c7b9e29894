"""Copies of shipped weights with their JSON sidecar, for tests that damage the sidecar."""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def copied_weights(source: Path, folder: Path) -> tuple[Path, dict]:
    """``source`` copied into ``folder`` (without its sidecar), and the sidecar's contents."""
    path = folder / source.name
    shutil.copy(source, path)
    return path, json.loads(source.with_suffix(".json").read_text())


def write_sidecar(weights: Path, meta: dict) -> None:
    weights.with_suffix(".json").write_text(json.dumps(meta))
