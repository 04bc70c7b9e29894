"""Model files: safetensors weights with a JSON beside them that records their sha256 (``SHA256_KEY``).
``write_model_files`` writes every such pair (checkpoints and the encoders' weights); reading checks them
before use, each failure a one-line ``ValueError`` that names the file and says what to do (``fix``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from realtime.core.files import sha256
from realtime.nets.sidecar import SHA256_KEY, check_sha256  # noqa: F401  (re-exported: checkpoint, tests)

SHOWN = 3  # problems named in a "does not fit" message; the rest are counted
ModuleT = TypeVar("ModuleT", bound=nn.Module)


def write_model_files(tensors: dict[str, Tensor], weights: Path, meta_path: Path, meta: dict,
                      metadata: dict[str, str] | None = None) -> dict:
    """Write ``tensors`` (as they are: cast them first) to ``weights`` and ``meta`` plus their sha256 to
    ``meta_path``; ``metadata`` goes into the safetensors header. Returns what the JSON holds."""
    weights.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, weights, metadata=metadata)
    written = {**meta, SHA256_KEY: sha256(weights)}
    meta_path.write_text(json.dumps(written, indent=2) + "\n")
    return written


def read_tensors(path: Path, fix: str, device: str = "cpu") -> dict[str, Tensor]:
    """The tensors of a safetensors file; a one-line error when it cannot be read."""
    try:
        return load_file(path, device=device)
    except SafetensorError as e:
        raise ValueError(f"{path} is not a readable safetensors file ({e}); {fix}") from e


def fit_state(model: ModuleT, state: dict[str, Tensor], path: Path, fix: str) -> ModuleT:
    """``model`` with ``state`` (read from ``path``) loaded; when they do not fit, a one-line error that
    names the first few missing, unexpected or differently shaped tensors and counts them all."""
    own = model.state_dict()
    problems = ([f"missing {k}" for k in own if k not in state]
                + [f"unexpected {k}" for k in state if k not in own]
                + [f"{k} {_dims(v)} in file, {_dims(own[k])} in model"
                   for k, v in state.items() if k in own and v.shape != own[k].shape])
    if problems:
        more = f"; {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
        raise ValueError(f"{path} does not fit {type(model).__name__} ({len(problems)} "
                         f"mismatch{'es' if len(problems) > 1 else ''}: {'; '.join(problems[:SHOWN])}{more}); {fix}")
    model.load_state_dict(state)
    return model


def _dims(t: Tensor) -> str:
    """A tensor's shape as ``32x40`` (``scalar`` for none)."""
    return "x".join(map(str, t.shape)) or "scalar"
