"""Where an export puts its files.

    OUT/recognizer/model.onnx      OUT/recognizer/manifest.json
    OUT/expression/model.onnx      OUT/expression/manifest.json

Anything that takes an export accepts OUT, one artifact folder, or the ``model.onnx`` in it.
"""

from __future__ import annotations

from pathlib import Path

MODEL_FILE = "model.onnx"
RECOGNIZER, EXPRESSION = "recognizer", "expression"
ARTIFACTS = (RECOGNIZER, EXPRESSION)


def artifact_dir(path: Path, artifact: str = RECOGNIZER) -> Path:
    """The artifact folder that ``path`` (an export, an artifact folder or its ONNX file) names."""
    if path.is_file() and path.suffix == ".onnx":
        return path.parent
    if (path / MODEL_FILE).is_file():
        return path
    if (path / artifact / MODEL_FILE).is_file():
        return path / artifact
    raise FileNotFoundError(f"{path}: no ONNX export here (expected {path}/{artifact}/{MODEL_FILE}); "
                            "make one with `python -m export onnx --out DIR`")
