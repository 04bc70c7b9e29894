"""Loading shipped weights: safetensors plus a JSON sidecar that says what code they were made for."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch import Tensor, nn

from realtime.core.files import read_json
from realtime.nets.model_files import ModuleT, fit_state, read_tensors

REMAKE = "re-download or retrain"


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


def to_float(stored: dict[str, Tensor]) -> dict[str, Tensor]:
    """Stored tensors -> float32."""
    return {k: v.float() for k, v in stored.items()}


def load_weights(model: ModuleT, path: Path,
                 convert: Callable[[dict[str, Tensor]], dict[str, Tensor]] = to_float) -> ModuleT:
    """``model`` in eval mode with the weights at ``path`` (``convert`` turns the stored tensors into the
    model's, float32 by default); a one-line error when the file is unreadable or does not fit."""
    stored = read_tensors(path, REMAKE)
    try:
        state = convert(stored)
    except KeyError as e:
        raise ValueError(f"{path} lacks the tensor {e} that another one needs; {REMAKE}") from e
    return fit_state(model, state, path, REMAKE).eval()
