"""The expression CNN's training and evaluation on FER2013 (``python -m realtime.expression``).

Data: FER2013 48x48 PNGs under <emotion> folders of train/val/test::

    python -m realtime.expression train --data ../shared/data/fer2013_48 [--epochs 30]
    python -m realtime.expression evaluate --data ../shared/data/fer2013_48

Training uses the train split only, picks the epoch by val accuracy (of the deployed, mirror-averaged
CNN) and touches test once, at the end. ``--init`` starts from trained weights (a fine-tune: give it a
lower ``--lr``); ``--average-from K`` also scores the mean of the weights of epoch K on (stochastic
weight averaging, Izmailov et al. 2018) and keeps it when val prefers it. Aligned crops of all images
are computed once into a cache ``.npz`` (MediaPipe is the slow part), keyed by the alignment
parameters.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from dmd_lite.metrics import classification_metrics
from realtime.core.feature_spec import LABELS
from realtime.core.resources import cache_dir
from realtime.frontends.face import FaceFrontEnd
from realtime.nets.expression import (WEIGHTS_PATH, ExpressionCNN, ExpressionEncoder, MirrorAveraged,
                                      crops_to_tensor)
from realtime.nets.face_crop import ALIGNMENT, CROP_SIZE, EMBED_DIM, fallback_crop
from realtime.nets.model_files import write_model_files
from realtime.offline.cli import report_confusion, train_evaluate_parser
from realtime.offline.datasets import FER_SPLITS, FER_TO_LABEL

CACHE_PATH = cache_dir("expression") / "fer2013_aligned.npz"


@dataclass
class CropSet:
    """Aligned crops of a FER2013 folder tree, all splits."""

    crops: np.ndarray  # (n, S, S) uint8
    labels: np.ndarray  # (n,) int64 index into LABELS
    split: np.ndarray  # (n,) int64 index into FER_SPLITS
    fallback: np.ndarray  # (n,) bool: no face found, whole image resized

    def part(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        keep = self.split == FER_SPLITS.index(name)
        return self.crops[keep], self.labels[keep]

    def fallback_rate(self, name: str | None = None) -> float:
        keep = np.ones(len(self.split), bool) if name is None else self.split == FER_SPLITS.index(name)
        return float(self.fallback[keep].mean())


def build_crop_set(data: Path) -> CropSet:
    """Align every FER2013 image with the face front-end in still-image mode (slow: minutes)."""
    files = [(p, FER_TO_LABEL[p.parent.name], s) for s in FER_SPLITS
             for p in sorted((data / s).glob("*/*.png")) if p.parent.name in FER_TO_LABEL]
    if not files:
        raise FileNotFoundError(f"no FER2013 images under {data}/{{train,val,test}}/<emotion>/*.png")
    crops = np.zeros((len(files), CROP_SIZE, CROP_SIZE), np.uint8)
    fallback = np.zeros(len(files), bool)
    with FaceFrontEnd(encoder=None, still_images=True) as front:
        for i, (p, _, _) in enumerate(tqdm(files, desc="aligning FER2013", unit="img", mininterval=5)):
            gray = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
            if gray is None:
                raise ValueError(f"unreadable image {p}")
            crop = front.aligned_crop(gray)
            fallback[i] = crop is None
            crops[i] = fallback_crop(gray) if crop is None else crop
    labels = np.array([LABELS.index(lab) for _, lab, _ in files])
    split = np.array([FER_SPLITS.index(s) for _, _, s in files])
    return CropSet(crops, labels, split, fallback)


def load_crop_set(data: Path, cache: Path = CACHE_PATH) -> CropSet:
    """The cached crops when they were made with this code's alignment, else build and cache them."""
    if cache.is_file():
        z = np.load(cache)
        if json.loads(str(z["alignment"])) == ALIGNMENT:
            return CropSet(z["crops"], z["labels"], z["split"], z["fallback"])
        print(f"{cache}: made with other alignment parameters, rebuilding", file=sys.stderr)
    cs = build_crop_set(data)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, crops=cs.crops, labels=cs.labels, split=cs.split, fallback=cs.fallback,
             alignment=json.dumps(ALIGNMENT))
    return cs


def augment(x: torch.Tensor, max_deg: float = 15.0, max_shift: float = 0.1, scale: float = 0.15) -> torch.Tensor:
    """A (B, 1, S, S) batch of standardised crops as a camera might give them: pose (random flip,
    rotation, shift and zoom, one affine warp), low resolution, side lighting, sensor noise and
    occlusion, each image re-standardised to its own spread."""
    b, _, size, _ = x.shape
    spread = x.std((2, 3), keepdim=True)  # each crop's own (``standardise``'s), restored at the end
    ang = torch.empty(b).uniform_(-max_deg, max_deg).deg2rad()
    s = torch.empty(b).uniform_(1 - scale, 1 + scale)
    flip = torch.where(torch.rand(b) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = flip * ang.cos() / s, -ang.sin() / s
    theta[:, 1, 0], theta[:, 1, 1] = flip * ang.sin() / s, ang.cos() / s
    theta[:, :, 2] = torch.empty(b, 2).uniform_(-max_shift, max_shift)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
    low = torch.rand(b) < 0.25  # a face far from the camera: down to 16-40 px and back up
    if low.any():
        side = int(torch.randint(16, 41, ()).item())
        small = F.interpolate(x[low], size=(side, side), mode="area")
        x[low] = F.interpolate(small, size=(size, size), mode="bilinear", align_corners=False)
    ramp = torch.linspace(-1, 1, size)
    direction = torch.rand(b) * 2 * math.pi  # light from one side: a linear ramp of up to 1 std
    light = direction.cos()[:, None, None] * ramp[None, None, :] + direction.sin()[:, None, None] * ramp[None, :, None]
    x = x + (torch.rand(b) < 0.3)[:, None, None, None] * torch.rand(b)[:, None, None, None] * light[:, None]
    x = x + (torch.rand(b) < 0.3)[:, None, None, None] * torch.rand(b)[:, None, None, None] * 0.15 * torch.randn_like(x)
    for i in torch.nonzero(torch.rand(b) < 0.4).flatten().tolist():  # occlusion: a hand, hair, glasses' glare
        area = float(torch.empty(()).uniform_(0.02, 0.15)) * size * size
        aspect = math.exp(float(torch.empty(()).uniform_(math.log(0.3), math.log(3.3))))
        h, w = min(size, round(math.sqrt(area * aspect))), min(size, round(math.sqrt(area / aspect)))
        top, left = int(torch.randint(0, size - h + 1, ())), int(torch.randint(0, size - w + 1, ()))
        x[i, :, top:top + h, left:left + w] = 0.0
    return (x - x.mean((2, 3), keepdim=True)) / (x.std((2, 3), keepdim=True) + 1e-3) * spread


@torch.inference_mode()
def predict(model: nn.Module, crops: np.ndarray, batch: int = 512) -> np.ndarray:
    """(n,) predicted class indices."""
    model.eval()
    return np.concatenate([model(crops_to_tensor(crops[i:i + batch]))[1].argmax(-1).numpy()
                           for i in range(0, len(crops), batch)])


def scores(model: nn.Module, crops: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy, macro F1 (``dmd_lite.metrics``) and the confusion matrix of ``model`` on labelled crops."""
    m = classification_metrics(predict(model, crops), labels, len(LABELS))
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "confusion": np.array(m["confusion"])}


@torch.no_grad()
def refresh_batch_norm(model: ExpressionCNN, crops: torch.Tensor, batch: int) -> None:
    """Recompute ``model``'s BatchNorm statistics over one pass of augmented training batches (averaged
    weights have none of their own)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a plain mean over the pass
    model.train()
    for i in range(0, len(crops), batch):
        model(augment(crops[i:i + batch]).contiguous(memory_format=torch.channels_last))
    model.eval()


def train(data: Path, epochs: int, batch: int, lr: float, patience: int, out: Path, cache: Path, seed: int,
          init: Path | None = None, average_from: int | None = None) -> dict:
    """Train on FER2013 train (from ``init``'s weights when given), keep the best val epoch or, from
    ``average_from`` on, the weights' running mean when val prefers it; report test once; write weights
    + sidecar.

    Steps run channels-last under bfloat16 autocast where oneDNN supports bf16 (about 10x faster
    than float32 on an AVX512-BF16 CPU); weights, BatchNorm statistics and evaluation stay float32.
    """
    cs = load_crop_set(data, cache)
    xtr, ytr = cs.part("train")
    xva, yva = cs.part("val")
    torch.manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        model = ExpressionCNN() if init is None else ExpressionEncoder(init).model.cnn
        model = model.to(memory_format=torch.channels_last)
        averaged = torch.optim.swa_utils.AveragedModel(model) if average_from else None
        bf16 = torch.ops.mkldnn._is_mkldnn_bf16_supported()
        if not bf16:
            print("bfloat16 not supported by this CPU: training in float32 (slow)", file=sys.stderr)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
        steps = math.ceil(len(xtr) / batch)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps, pct_start=0.15)
        xt, yt = crops_to_tensor(xtr), torch.from_numpy(ytr)
        best, best_state, since_best, log = -1.0, None, 0, []
        for epoch in range(1, epochs + 1):
            model.train()
            order, t0, total = torch.randperm(len(xt)), time.perf_counter(), 0.0
            for i in tqdm(range(steps), desc=f"epoch {epoch}/{epochs}", leave=False, mininterval=10):
                idx = order[i * batch:(i + 1) * batch]
                x = augment(xt[idx]).contiguous(memory_format=torch.channels_last)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    logits = model(x)[1]
                loss = F.cross_entropy(logits.float(), yt[idx], label_smoothing=0.1)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += loss.item()
            val = scores(MirrorAveraged(model), xva, yva)
            log.append({"epoch": epoch, "loss": total / steps, "val_accuracy": val["accuracy"],
                        "val_macro_f1": val["macro_f1"]})
            print(f"epoch {epoch:2d}  loss {total / steps:.4f}  val acc {val['accuracy']:.4f}  "
                  f"val macro-F1 {val['macro_f1']:.4f}  {time.perf_counter() - t0:.0f} s", flush=True)
            if averaged is not None and epoch >= average_from:
                averaged.update_parameters(model)
            if val["accuracy"] > best:
                best, since_best = val["accuracy"], 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                since_best += 1
                if since_best >= patience:
                    print(f"early stop: no val improvement in {patience} epochs", flush=True)
                    break
        model.load_state_dict(best_state)
        if averaged is not None and averaged.n_averaged > 0:
            refresh_batch_norm(averaged.module, xt, batch)
            val = scores(MirrorAveraged(averaged.module), xva, yva)
            n = int(averaged.n_averaged)
            log.append({"averaged_epochs": n, "val_accuracy": val["accuracy"], "val_macro_f1": val["macro_f1"]})
            print(f"mean of the last {n} epochs' weights: val acc {val['accuracy']:.4f}  "
                  f"val macro-F1 {val['macro_f1']:.4f}", flush=True)
            if val["accuracy"] > best:
                best = val["accuracy"]
                model.load_state_dict(averaged.module.state_dict())
        model = model.to(memory_format=torch.contiguous_format)
        xte, yte = cs.part("test")
        test = scores(MirrorAveraged(model), xte, yte)
    finally:
        torch.set_num_threads(threads)
    print(f"test (touched once): accuracy {test['accuracy']:.4f}  macro-F1 {test['macro_f1']:.4f}", flush=True)
    meta = {
        "labels": list(LABELS), "input": {"size": CROP_SIZE, "channels": 1, "normalisation": "per-crop standardise"},
        "alignment": ALIGNMENT, "embed_dim": EMBED_DIM,
        "metrics": {"val_accuracy": best, "test_accuracy": test["accuracy"], "test_macro_f1": test["macro_f1"],
                    "fallback_rate": {s: cs.fallback_rate(s) for s in FER_SPLITS} | {"all": cs.fallback_rate()}},
        "training": {"data": "FER2013 (research challenge release; non-commercial research use)",
                     "epochs_run": sum("epoch" in e for e in log), "bf16_autocast": bf16, "batch": batch, "lr": lr,
                     "seed": seed, "init": None if init is None else init.name, "average_from": average_from,
                     "log": log},
    }
    meta = write_model_files(model.state_dict(), out, out.with_suffix(".json"), meta)
    return meta


def evaluate(data: Path, weights: Path, cache: Path, png: Path) -> dict[str, float]:
    """Print test accuracy, macro F1 and the confusion matrix of the shipped weights; save a PNG."""
    enc = ExpressionEncoder(weights)
    xte, yte = load_crop_set(data, cache).part("test")
    sc = scores(enc.model, xte, yte)
    cm = sc.pop("confusion")
    print(f"FER2013 test: n={len(yte)}  accuracy {sc['accuracy']:.4f}  macro-F1 {sc['macro_f1']:.4f}")
    report_confusion(cm, png, f"FER2013 test: acc {sc['accuracy']:.3f}, macro-F1 {sc['macro_f1']:.3f}", cell=5,
                     row_label=28)
    return sc


def parser() -> argparse.ArgumentParser:
    """The command line: ``train`` and ``evaluate`` sub-commands."""
    def inputs(p: argparse.ArgumentParser, command: str) -> None:
        weights = ("where the weights (and their JSON sidecar) are written" if command == "train"
                   else "the weights to score")
        p.add_argument("--data", type=Path, required=True, help="FER2013 root with train/val/test/<emotion>/*.png")
        p.add_argument("--weights", type=Path, default=WEIGHTS_PATH, help=f"{weights} (default: %(default)s)")
        p.add_argument("--cache", type=Path, default=CACHE_PATH, help="aligned-crop cache (.npz)")

    ap, t = train_evaluate_parser("python -m realtime.expression", __doc__, "expression",
                                  ("train the CNN on FER2013 train, select on val, score test once",
                                   "score weights on FER2013 test and save a confusion matrix"), inputs)
    t.add_argument("--epochs", type=int, default=30, help="most training epochs (default: %(default)s)")
    t.add_argument("--batch", type=int, default=128, help="mini-batch size (default: %(default)s)")
    t.add_argument("--lr", type=float, default=3e-3, help="peak of the one-cycle learning rate (default: %(default)s)")
    t.add_argument("--patience", type=int, default=8, help="stop after this many epochs without val gain")
    t.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    t.add_argument("--init", type=Path, help="start from these trained weights (a fine-tune; give a lower --lr)")
    t.add_argument("--average-from", type=int, metavar="K",
                   help="also score the mean of the weights of epoch K on, and keep it when val prefers it")
    return ap


def main(argv: list[str] | None = None) -> None:
    a = parser().parse_args(argv)
    if a.cmd == "train":
        train(a.data, a.epochs, a.batch, a.lr, a.patience, a.weights, a.cache, a.seed, a.init, a.average_from)
    else:
        evaluate(a.data, a.weights, a.cache, a.png)
