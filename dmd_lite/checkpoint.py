"""Checkpoints: a directory with ``model.safetensors`` (weights) and ``config.json`` (the model
config plus whatever travels with it: training config, FeatureSpec, metrics). No pickles."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch import nn

from realtime.core.files import read_json
from realtime.nets.model_files import ModuleT, check_sha256, fit_state, read_tensors, write_model_files

from .config import DMDConfig
from .model import DMD

WEIGHTS, CONFIG = "model.safetensors", "config.json"
MAKE = "restore it or make it again (`python -m dmd_lite.train`, `.convert` or `.recipes.default`)"


def write_checkpoint(model: nn.Module, directory: str | Path, meta: dict, fmt: str) -> Path:
    """Write ``model``'s weights and config.json: ``meta`` plus the weights' sha256 (``SHA256_KEY``)."""
    directory = Path(directory)
    write_model_files(model.state_dict(), directory / WEIGHTS, directory / CONFIG, meta, {"format": fmt})
    return directory


def save_checkpoint(model: DMD, directory: str | Path, **extra: object) -> Path:
    """Write weights and config; ``extra`` entries (JSON-serialisable) go into config.json."""
    return write_checkpoint(model, directory, {"model": model.cfg.to_dict(), **extra}, "dmd_lite")


def read_config(directory: str | Path) -> dict:
    """The checkpoint's config.json, with a clear error when it is not a checkpoint."""
    path = Path(directory) / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"{directory} is not a dmd_lite checkpoint (no {CONFIG}); "
                                "train one with `python -m dmd_lite.train` or convert one with `python -m dmd_lite.convert`")
    return read_json(path, MAKE)


def load_model(directory: str | Path, meta: dict, build: Callable[[dict], ModuleT], device: str = "cpu") -> ModuleT:
    """``build(meta)`` in eval mode on ``device`` with the checkpoint's weights, once they match the
    sha256 in config.json and fit the model; each failure is a one-line ``ValueError``."""
    directory = Path(directory)
    try:
        model = build(meta)
    except (KeyError, TypeError, ValueError, AssertionError, RuntimeError) as e:
        raise ValueError(f"{directory / CONFIG} does not describe a model this code can build ({e!r}); {MAKE}") from e
    if not (directory / WEIGHTS).is_file():
        raise FileNotFoundError(f"{directory} has no {WEIGHTS}; {MAKE}")
    check_sha256(directory / WEIGHTS, meta, directory / CONFIG, MAKE)
    state = read_tensors(directory / WEIGHTS, MAKE, device)
    return fit_state(model, state, directory / WEIGHTS, MAKE).to(device).eval()


def load_checkpoint(directory: str | Path, device: str = "cpu") -> tuple[DMD, dict]:
    """(model in eval mode, config.json contents); refuses weights that are damaged or do not fit the config."""
    meta = read_config(directory)
    return load_model(directory, meta, lambda m: DMD(DMDConfig.from_dict(m["model"])), device), meta
