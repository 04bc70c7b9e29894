"""Evaluate a DMD checkpoint on an MMSA-format pickle with MMSA's metrics.

    python -m dmd_lite.evaluate --checkpoint runs/mosi/best --data aligned_50.pkl --split test

The last line on stdout is one JSON object with the metrics (Has0/Non0 Acc-2 and F1, Acc-3,
Acc-5, Acc-7, MAE, Corr, and the mean GD-Unit edge weights).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from .checkpoint import load_checkpoint
from .gd_unit import EDGE_NAMES
from .metrics import regression_metrics
from .mmsa import SPLITS, MMSADataset, MMSASplit, load_mmsa
from .model import DMD


@torch.no_grad()
def predict(model: DMD, split: MMSASplit, device: torch.device, batch_size: int = 64) -> dict[str, np.ndarray]:
    """Regression scores (N,) and both GD-Units' edge weights (N, 6) for every sample."""
    model.eval()
    scores, homo, hetero = [], [], []
    for batch in DataLoader(MMSADataset(split), batch_size=batch_size):
        out = model(*(batch[k].to(device) for k in ("text", "audio", "vision")))
        scores.append(out.logits[:, -1].float().cpu())
        homo.append(out.edges_homo.float().cpu())
        hetero.append(out.edges_hetero.float().cpu())
    return {"score": torch.cat(scores).numpy(), "edges_homo": torch.cat(homo).numpy(),
            "edges_hetero": torch.cat(hetero).numpy()}


def evaluate_split(model: DMD, split: MMSASplit, device: torch.device) -> dict[str, float | dict]:
    """MMSA metrics, the L1 ``loss`` (official model-selection key) and mean edge weights."""
    if not model.cfg.regression:
        raise ValueError("MMSA files carry sentiment scores; this checkpoint has no regression head")
    pred = predict(model, split, device)
    metrics = regression_metrics(pred["score"], split.labels)
    edges = {f"{kind}:{name}": float(w) for kind in ("homo", "hetero")
             for name, w in zip(EDGE_NAMES, pred[f"edges_{kind}"].mean(axis=0))}
    return {"loss": metrics["MAE"], **metrics, "gd_edges": edges}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dmd_lite.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True,
                   help="checkpoint directory (model.safetensors + config.json), e.g. runs/x/best")
    p.add_argument("--data", type=Path, required=True,
                   help="MMSA aligned_50.pkl / unaligned_50.pkl (a pickle: only use files you trust)")
    p.add_argument("--split", default="test", choices=SPLITS, help="split to evaluate (default: %(default)s)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="device (default: %(default)s)")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if not args.data.is_file():
        p.error(f"no such data file: {args.data}")
    model, _ = load_checkpoint(args.checkpoint, device=args.device)
    split = load_mmsa(args.data)[args.split]
    print(json.dumps({"split": args.split, "n": len(split), **evaluate_split(model, split, torch.device(args.device))}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
