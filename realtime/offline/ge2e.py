"""Converting Resemblyzer's pretrained GE2E speaker encoder into the shipped weights
(``python -m realtime.ge2e convert``).

``pretrained.pt`` comes inside Resemblyzer's PyPI wheel (``pip download --no-deps resemblyzer==0.1.4``,
then unzip it). It is read with ``torch.load(weights_only=True)``, which loads tensors and nothing that
runs; the first ``LAYERS`` LSTM layers are written as safetensors with a sidecar.
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import torch

from realtime.nets.ge2e import HIDDEN, LAYERS, N_MELS, WEIGHTS_PATH
from realtime.nets.model_files import write_model_files

SOURCE = "Resemblyzer 0.1.4 (Apache-2.0), resemblyzer/pretrained.pt: GE2E speaker encoder, LSTM layers 1-2 of 3"


def convert(source: Path, out: Path) -> None:
    """Write the LSTM layers' weights and the sidecar at ``out`` from Resemblyzer's ``pretrained.pt``."""
    try:
        state = torch.load(source, map_location="cpu", weights_only=True)["model_state"]
    except (OSError, RuntimeError, KeyError, TypeError, EOFError, pickle.UnpicklingError) as e:
        raise ValueError(f"{source} is not Resemblyzer's pretrained.pt ({e})") from e
    tensors = {}
    for n in range(LAYERS):
        shapes = {"weight_ih": (4 * HIDDEN, N_MELS if n == 0 else HIDDEN), "weight_hh": (4 * HIDDEN, HIDDEN),
                  "bias_ih": (4 * HIDDEN,), "bias_hh": (4 * HIDDEN,)}
        for kind, shape in shapes.items():
            t = state.get(f"lstm.{kind}_l{n}")
            if t is None or tuple(t.shape) != shape:
                raise ValueError(f"{source}: lstm.{kind}_l{n} is missing or not {shape}; "
                                 "is it Resemblyzer's pretrained.pt?")
            tensors[f"{kind}_l{n}"] = t.float()
    meta = {"source": SOURCE, "layers": LAYERS, "hidden": HIDDEN, "n_mels": N_MELS,
            "licence": "Apache-2.0 (Resemblyzer, Corentin Jemine)"}
    write_model_files(tensors, out, out.with_suffix(".json"), meta)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) and {out.with_suffix('.json').name}")


def parser() -> argparse.ArgumentParser:
    """The command line: the ``convert`` sub-command."""
    ap = argparse.ArgumentParser(prog="python -m realtime.ge2e", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True, help="what to do")
    conv = sub.add_parser("convert", help="Resemblyzer's pretrained.pt -> safetensors + sidecar")
    conv.add_argument("--source", type=Path, required=True, help="resemblyzer/pretrained.pt from its wheel")
    conv.add_argument("--out", type=Path, default=WEIGHTS_PATH, help="where to write (default: %(default)s)")
    return ap


def main(argv: list[str] | None = None) -> None:
    a = parser().parse_args(argv)
    if not a.source.is_file():
        parser().exit(2, f"python -m realtime.ge2e: {a.source} not found; "
                         "unzip Resemblyzer's wheel and pass its pretrained.pt\n")
    convert(a.source, a.out)
