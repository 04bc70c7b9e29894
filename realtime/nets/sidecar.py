"""The JSON sidecar beside shipped weights: what code they were made for, and their sha256. No torch here,
so numpy-only nets check their files the same way."""

from __future__ import annotations

import logging
from pathlib import Path

from realtime.core.files import read_json, sha256

SHA256_KEY = "weights_sha256"
REMAKE = "re-download or retrain"

log = logging.getLogger(__name__)


def checked_sidecar(path: Path, contract: dict, what: str, train_hint: str) -> dict:
    """The sidecar (``path`` with ``.json``) of the weights at ``path``; a one-line error when either
    file is missing or the sidecar disagrees with ``contract`` (what this code needs)."""
    sidecar = path.with_suffix(".json")
    if not path.is_file() or not sidecar.is_file():
        raise FileNotFoundError(f"{what} weights not found at {path} (+ .json sidecar); train them with `{train_hint}`")
    meta = read_json(sidecar, f"{REMAKE} with `{train_hint}`")
    for key, want in contract.items():
        if meta.get(key) != want:
            raise ValueError(f"{sidecar}: {key} is {meta.get(key)!r}, this code needs {want!r}; retrain")
    return meta


def check_sha256(path: Path, meta: dict, meta_path: Path, fix: str) -> None:
    """Refuse the file at ``path`` when its sha256 is not the one ``meta`` (read from ``meta_path``)
    records; a file whose JSON records none (made before the check) loads with a warning."""
    recorded = meta.get(SHA256_KEY)
    if recorded is None:
        log.warning("%s records no %s for %s, so the weights are not checked; save them again to add it",
                    meta_path, SHA256_KEY, path.name)
        return
    if sha256(path) != recorded:
        raise ValueError(f"{path} does not match the sha256 in its {meta_path.name}: "
                         f"the weights changed or are damaged; {fix}")
