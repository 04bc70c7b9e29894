"""``manifest.json``: what an exported artifact is, written beside it.

Keys: ``artifact`` (recognizer | expression | text), ``files`` ({name: sha256}), ``precision`` (fp32 | int8 |
fp16), ``opset``, ``inputs`` / ``outputs`` (names, shapes with ``batch`` for the dynamic axis, dtypes),
``labels``, ``feature_spec`` (recognizer), ``source`` (checkpoint or weights and their sha256),
``versions`` (the libraries that made it), ``parity`` (see ``export.parity``) and, for quantized
artifacts, ``quantization`` (what was quantized, what kept in higher precision, the calibration set).
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

from realtime.engines.artifact import MANIFEST
from realtime.core.files import sha256


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
