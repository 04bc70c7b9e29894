"""Loading shipped weights: safetensors plus a JSON sidecar that says what code they were made for."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn


def checked_sidecar(path: Path, contract: dict, what: str, train_hint: str) -> dict:
    """The sidecar (``path`` with ``.json``) of the weights at ``path``; a one-line error when either
    file is missing or the sidecar disagrees with ``contract`` (what this code needs)."""
    sidecar = path.with_suffix(".json")
    if not path.is_file() or not sidecar.is_file():
        raise FileNotFoundError(f"{what} weights not found at {path} (+ .json sidecar); train them with `{train_hint}`")
    meta = json.loads(sidecar.read_text())
    for key, want in contract.items():
        if meta.get(key) != want:
            raise ValueError(f"{sidecar}: {key} is {meta.get(key)!r}, this code needs {want!r}; retrain")
    return meta


def load_weights(model: nn.Module, path: Path) -> nn.Module:
    """``model`` in eval mode (float32) with the weights at ``path``; a one-line error when they do not fit."""
    try:
        model.load_state_dict({k: v.float() for k, v in load_file(path).items()})
    except SafetensorError as e:
        raise ValueError(f"{path} is not a readable safetensors file ({e}); re-download or retrain") from e
    except RuntimeError as e:
        raise ValueError(f"{path} does not fit {type(model).__name__}: {str(e).splitlines()[0]}") from e
    return model.eval()
