"""Checkpoints: a directory with ``model.safetensors`` (weights) and ``config.json`` (the model
config plus whatever travels with it: training config, FeatureSpec, metrics). No pickles."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file, save_file

from .config import DMDConfig
from .model import DMD

WEIGHTS, CONFIG = "model.safetensors", "config.json"


def save_checkpoint(model: DMD, directory: str | Path, **extra: object) -> Path:
    """Write weights and config; ``extra`` entries (JSON-serialisable) go into config.json."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, directory / WEIGHTS, metadata={"format": "dmd_lite"})
    (directory / CONFIG).write_text(json.dumps({"model": model.cfg.to_dict(), **extra}, indent=2))
    return directory


def read_config(directory: str | Path) -> dict:
    """The checkpoint's config.json, with a clear error when it is not a checkpoint."""
    path = Path(directory) / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"{directory} is not a dmd_lite checkpoint (no {CONFIG}); "
                                "train one with `python -m dmd_lite.train` or convert one with `python -m dmd_lite.convert`")
    return json.loads(path.read_text())


def load_checkpoint(directory: str | Path, device: str = "cpu") -> tuple[DMD, dict]:
    """(model in eval mode, config.json contents); refuses weights that do not fit the config."""
    meta = read_config(directory)
    model = DMD(DMDConfig.from_dict(meta["model"]))
    state = load_file(Path(directory) / WEIGHTS, device=device)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"checkpoint {directory} does not match its config: "
                         f"missing {missing[:3]}, unexpected {unexpected[:3]}")
    return model.to(device).eval(), meta
