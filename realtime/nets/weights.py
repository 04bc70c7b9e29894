"""Loading shipped weights: safetensors plus a JSON sidecar that says what code they were made for."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch import Tensor, nn

from realtime.nets.model_files import ModuleT, fit_state, read_tensors
from realtime.nets.sidecar import REMAKE, checked_sidecar  # noqa: F401  (re-exported: every encoder's loader)


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
