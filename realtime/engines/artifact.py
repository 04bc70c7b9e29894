"""An export on disk: where it puts its files, and its ``manifest.json`` (written by ``export.manifest``).

    OUT/recognizer/model.onnx      OUT/recognizer/manifest.json
    OUT/expression/model.onnx      OUT/expression/manifest.json
    OUT/text/model.onnx            OUT/text/manifest.json          OUT/text/vocab.txt

Anything that takes an export accepts OUT, one artifact folder, or the ``model.onnx`` in it.
"""

from __future__ import annotations

from pathlib import Path

from realtime.core.files import read_json, sha256

MODEL_FILE = "model.onnx"
MANIFEST = "manifest.json"
REEXPORT = "re-export with `python -m export onnx|quantize ... --out DIR`"
RECOGNIZER, EXPRESSION, TEXT = "recognizer", "expression", "text"
ARTIFACTS = (RECOGNIZER, EXPRESSION, TEXT)
VOCAB_FILE = "vocab.txt"  # the text artifact's word-piece vocabulary
BATCH_AXIS = "batch"  # the name of every exported input's and output's axis 0


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


def read_manifest(directory: Path) -> dict:
    """The manifest of an artifact folder; checks that its files are the ones it describes."""
    path = directory / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{directory} has no {MANIFEST}: not an export made by `python -m export`")
    manifest = read_json(path, REEXPORT)
    for name, digest in manifest.get("files", {}).items():
        if not (directory / name).is_file():
            raise FileNotFoundError(f"{directory / name}, listed in {path}, is missing")
        if sha256(directory / name) != digest:
            raise ValueError(f"{directory / name} does not match the sha256 in {path}: "
                             f"the file changed after export; {REEXPORT}")
    return manifest
