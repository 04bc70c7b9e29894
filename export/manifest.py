"""``manifest.json``: what an exported artifact is, written beside it.

Keys: ``artifact`` (recognizer | expression), ``files`` ({name: sha256}), ``precision`` (fp32 | int8 |
fp16), ``opset``, ``inputs`` / ``outputs`` (names, shapes with ``batch`` for the dynamic axis, dtypes),
``labels``, ``feature_spec`` (recognizer), ``source`` (checkpoint or weights and their sha256),
``versions`` (the libraries that made it), ``parity`` (see ``export.parity``) and, for quantized
artifacts, ``quantization`` (what was quantized, what kept in higher precision, the calibration set).
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path

MANIFEST = "manifest.json"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def versions() -> dict[str, str]:
    """The versions of what made an artifact (those installed)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in ("torch", "onnx", "onnxruntime", "numpy", "tensorrt"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def write_manifest(directory: Path, files: list[Path], **fields: object) -> Path:
    """``directory/manifest.json`` with the files' sha256, the versions and ``fields``."""
    manifest = {**fields, "files": {p.name: sha256(p) for p in files}, "versions": versions()}
    path = directory / MANIFEST
    path.write_text(json.dumps(manifest, indent=1))
    return path


def read_manifest(directory: Path) -> dict:
    """The manifest of an artifact folder; checks that its files are the ones it describes."""
    path = directory / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{directory} has no {MANIFEST}: not an export made by `python -m export`")
    manifest = json.loads(path.read_text())
    for name, digest in manifest.get("files", {}).items():
        if not (directory / name).is_file():
            raise FileNotFoundError(f"{directory / name}, listed in {path}, is missing")
        if sha256(directory / name) != digest:
            raise ValueError(f"{directory / name} does not match the sha256 in {path}: the file changed after export")
    return manifest
