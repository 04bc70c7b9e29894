"""The face appearance model: a small CNN on the landmark-aligned face crop.

MediaPipe's blendshapes alone reach about 0.52 on FER2013; pixels carry the rest. The crop is made
by ``align_face`` from the eye landmarks (eyes level, fixed inter-ocular distance, 64x64
grayscale) and that one function serves training images and live frames alike. Its framing
constants are the median eye geometry MediaPipe finds on FER2013's own 48x48 crops, so an aligned
crop and the fallback crop (the whole FER image resized, used when no face is found) look alike.

The CNN gives a 64-d embedding and 7 class probabilities (``LABELS`` order), deployed as the mean
over the crop and its mirror image (``MirrorAveraged``). Weights ship as
``models/expression_cnn.safetensors`` with a JSON sidecar (labels, input size, alignment
parameters, metrics); loading checks both and refuses a mismatch.

CLI (data: FER2013 48x48 PNGs under <emotion> folders of train/val/test)::

    python -m realtime.expression train --data ../shared/data/fer2013_48 [--epochs 22]
    python -m realtime.expression evaluate --data ../shared/data/fer2013_48

Training uses the train split only, picks the epoch by val accuracy and touches test once, at the
end. Aligned crops of all images are computed once into a cache ``.npz`` (MediaPipe is the slow
part), keyed by the alignment parameters.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn
from tqdm import tqdm

from .errors import run_cli
from .feature_spec import LABELS
from .weights import checked_sidecar, load_weights

REPO_ROOT = Path(__file__).resolve().parent.parent
WEIGHTS_PATH = REPO_ROOT / "models" / "expression_cnn.safetensors"
CACHE_PATH = REPO_ROOT / "runs" / "expression" / "fer2013_aligned.npz"

CROP_SIZE = 64  # aligned crop side, pixels
EMBED_DIM = 64  # expression embedding length
INTEROCULAR_FRAC = 0.36  # eye-centre distance as a fraction of the crop side (FER2013 median)
EYE_LINE_Y_FRAC = 0.40  # height of the eye line as a fraction of the crop side (FER2013 median)
EYE_LANDMARKS = ((33, 133), (362, 263))  # MediaPipe corners of the eye on the image's left, right
SPLITS = ("train", "val", "test")
FER_TO_LABEL = {"neutral": "neutral", "happy": "happy", "sad": "sad", "angry": "angry",
                "fear": "fearful", "disgust": "disgusted", "surprise": "surprised"}
ALIGNMENT = {"crop_size": CROP_SIZE, "interocular_frac": INTEROCULAR_FRAC,
             "eye_line_y_frac": EYE_LINE_Y_FRAC, "eye_landmarks": [list(e) for e in EYE_LANDMARKS]}


# ---------------------------------------------------------------- alignment

def align_face(gray: np.ndarray, landmarks_px: np.ndarray) -> np.ndarray:
    """(CROP_SIZE, CROP_SIZE) uint8 crop of a grayscale image, rotated so the eyes are level and
    scaled to a fixed inter-ocular distance. ``landmarks_px``: (478, 2) MediaPipe landmarks in
    pixels of ``gray``."""
    eyes = np.stack([landmarks_px[list(e)].mean(0) for e in EYE_LANDMARKS]).astype(np.float64)  # (2, 2)
    dx, dy = eyes[1] - eyes[0]
    scale = INTEROCULAR_FRAC * CROP_SIZE / max(math.hypot(dx, dy), 1e-6)
    if scale < 0.75:  # shrink with area averaging first: a bilinear warp alone would alias
        h, w = gray.shape
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        eyes = eyes * (size[0] / w, size[1] / h)
        scale = INTEROCULAR_FRAC * CROP_SIZE / max(float(np.linalg.norm(eyes[1] - eyes[0])), 1e-6)
    mid = eyes.mean(0)
    m = cv2.getRotationMatrix2D((float(mid[0]), float(mid[1])), math.degrees(math.atan2(dy, dx)), scale)
    m[:, 2] += (CROP_SIZE / 2 - mid[0], EYE_LINE_Y_FRAC * CROP_SIZE - mid[1])
    return cv2.warpAffine(gray, m, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def fallback_crop(gray: np.ndarray) -> np.ndarray:
    """The whole image resized to the crop size: for images that are already face crops (FER2013)
    when MediaPipe finds no face in them."""
    return cv2.resize(gray, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_CUBIC)


def crops_to_tensor(crops: np.ndarray) -> torch.Tensor:
    """(n, S, S) uint8 crops -> (n, 1, S, S) float32, each standardised to zero mean, unit std
    (removes lighting and contrast differences between cameras and data sets)."""
    x = torch.from_numpy(np.ascontiguousarray(crops)).float().unsqueeze(1)  # (n, 1, S, S)
    mean = x.mean(dim=(2, 3), keepdim=True)
    std = x.std(dim=(2, 3), keepdim=True)
    return (x - mean) / (std + 1.0)


# ---------------------------------------------------------------- model

def _conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class ExpressionCNN(nn.Module):
    """VGG-style, sized for a 2-core CPU: 64 -> 32 -> 16 -> 8 -> global pool -> embedding -> logits
    (~0.3 M parameters, ~40 M multiply-adds per crop)."""

    def __init__(self, n_classes: int = len(LABELS), embed_dim: int = EMBED_DIM) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _conv(1, 32), nn.MaxPool2d(2),  # (B, 32, 32, 32)
            _conv(32, 32), nn.MaxPool2d(2),  # (B, 32, 16, 16)
            _conv(32, 64), _conv(64, 64), nn.MaxPool2d(2),  # (B, 64, 8, 8)
            _conv(64, 128), _conv(128, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten(),  # (B, 128)
        )
        self.embed = nn.Sequential(nn.Dropout(0.2), nn.Linear(128, embed_dim), nn.BatchNorm1d(embed_dim), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(embed_dim, n_classes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, 1, 64, 64) standardised crops -> embedding (B, E), logits (B, C)."""
        e = self.embed(self.features(x))
        return e, self.head(e)


class MirrorAveraged(nn.Module):
    """The CNN as deployed: standardised crops (B, 1, S, S) -> embedding (B, E) and probabilities
    (B, 7), each the mean of the crop's and its mirror image's (one batch of 2B through the CNN).

    Faces are near-symmetric and the CNN was trained with random flips, so the two views are two
    draws of the same answer: on FER2013 val, averaging them lifts accuracy from 0.672 to 0.675 and
    lowers the negative log-likelihood from 0.936 to 0.922 (the mirror alone: 0.661)."""

    def __init__(self, cnn: ExpressionCNN) -> None:
        super().__init__()
        self.cnn = cnn

    def forward(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding, logits = self.cnn(torch.cat([crops, crops.flip(-1)]))
        # (2B, D) -> (2, B, D) -> (B, D), with D a constant so the exported graph needs no shape arithmetic
        views = lambda t: t.reshape(2, -1, int(t.shape[1])).mean(0)  # noqa: E731
        return views(embedding), views(logits.softmax(-1))


class ExpressionModel(Protocol):
    """What the face front-end runs on aligned crops: ``ExpressionEncoder`` or an exported CNN."""

    def __call__(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """crops (S, S) or (n, S, S) uint8 -> embedding (.., EMBED_DIM), probabilities (.., 7), float32."""


class ExpressionEncoder:
    """Shipped CNN for inference: aligned crops in, (embedding, class probabilities) out."""

    def __init__(self, path: Path | str = WEIGHTS_PATH) -> None:
        path = Path(path)
        self.meta = checked_sidecar(path, {"labels": list(LABELS), "alignment": ALIGNMENT}, "expression",
                                    "python -m realtime.expression train --data <fer2013_48>")
        self.model = MirrorAveraged(load_weights(ExpressionCNN(), path)).eval()

    @torch.inference_mode()
    def __call__(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """crops (S, S) or (n, S, S) uint8 -> embedding (.., EMBED_DIM), probabilities (.., 7), float32."""
        single = crops.ndim == 2
        e, p = (t.numpy() for t in self.model(crops_to_tensor(crops[None] if single else crops)))
        return (e[0], p[0]) if single else (e, p)


# ---------------------------------------------------------------- data

@dataclass
class CropSet:
    """Aligned crops of a FER2013 folder tree, all splits."""

    crops: np.ndarray  # (n, S, S) uint8
    labels: np.ndarray  # (n,) int64 index into LABELS
    split: np.ndarray  # (n,) int64 index into SPLITS
    fallback: np.ndarray  # (n,) bool: no face found, whole image resized

    def part(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        keep = self.split == SPLITS.index(name)
        return self.crops[keep], self.labels[keep]

    def fallback_rate(self, name: str | None = None) -> float:
        keep = np.ones(len(self.split), bool) if name is None else self.split == SPLITS.index(name)
        return float(self.fallback[keep].mean())


def build_crop_set(data: Path) -> CropSet:
    """Align every FER2013 image with the face front-end in still-image mode (slow: minutes)."""
    from .face import FaceFrontEnd  # imported here: the front-end itself imports this module

    files = [(p, FER_TO_LABEL[p.parent.name], s) for s in SPLITS
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
    split = np.array([SPLITS.index(s) for _, _, s in files])
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


# ---------------------------------------------------------------- training and evaluation

def augment(x: torch.Tensor, max_deg: float = 12.0, max_shift: float = 0.08, scale: float = 0.1) -> torch.Tensor:
    """Random horizontal flip, rotation, shift and zoom of a (B, 1, S, S) batch, one affine warp."""
    b = x.shape[0]
    ang = torch.empty(b).uniform_(-max_deg, max_deg).deg2rad()
    s = torch.empty(b).uniform_(1 - scale, 1 + scale)
    flip = torch.where(torch.rand(b) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = flip * ang.cos() / s, -ang.sin() / s
    theta[:, 1, 0], theta[:, 1, 1] = flip * ang.sin() / s, ang.cos() / s
    theta[:, :, 2] = torch.empty(b, 2).uniform_(-max_shift, max_shift)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="border", align_corners=False)


@torch.inference_mode()
def predict(model: nn.Module, crops: np.ndarray, batch: int = 512) -> np.ndarray:
    """(n,) predicted class indices."""
    model.eval()
    return np.concatenate([model(crops_to_tensor(crops[i:i + batch]))[1].argmax(-1).numpy()
                           for i in range(0, len(crops), batch)])


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n: int = len(LABELS)) -> np.ndarray:
    """(n, n) counts, rows true class, columns predicted."""
    return np.bincount(y_true * n + y_pred, minlength=n * n).reshape(n, n)


def scores(cm: np.ndarray) -> dict[str, float]:
    """Accuracy and macro F1 of a confusion matrix."""
    tp = np.diag(cm).astype(float)
    f1 = 2 * tp / np.maximum(cm.sum(0) + cm.sum(1), 1)
    return {"accuracy": float(tp.sum() / cm.sum()), "macro_f1": float(f1.mean())}


def train(data: Path, epochs: int, batch: int, lr: float, patience: int, out: Path, cache: Path, seed: int) -> dict:
    """Train on FER2013 train, keep the best val epoch, report test once; write weights + sidecar.

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
        model = ExpressionCNN().to(memory_format=torch.channels_last)
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
            val = scores(confusion(yva, predict(model, xva)))
            log.append({"epoch": epoch, "loss": total / steps, **{f"val_{k}": v for k, v in val.items()}})
            print(f"epoch {epoch:2d}  loss {total / steps:.4f}  val acc {val['accuracy']:.4f}  "
                  f"val macro-F1 {val['macro_f1']:.4f}  {time.perf_counter() - t0:.0f} s", flush=True)
            if val["accuracy"] > best:
                best, since_best = val["accuracy"], 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                since_best += 1
                if since_best >= patience:
                    print(f"early stop: no val improvement in {patience} epochs", flush=True)
                    break
        model.load_state_dict(best_state)
        model = model.to(memory_format=torch.contiguous_format)
        xte, yte = cs.part("test")
        test = scores(confusion(yte, predict(model, xte)))
    finally:
        torch.set_num_threads(threads)
    print(f"test (touched once): accuracy {test['accuracy']:.4f}  macro-F1 {test['macro_f1']:.4f}", flush=True)
    meta = {
        "labels": list(LABELS), "input": {"size": CROP_SIZE, "channels": 1, "normalisation": "per-crop standardise"},
        "alignment": ALIGNMENT, "embed_dim": EMBED_DIM,
        "metrics": {"val_accuracy": best, "test_accuracy": test["accuracy"], "test_macro_f1": test["macro_f1"],
                    "fallback_rate": {s: cs.fallback_rate(s) for s in SPLITS} | {"all": cs.fallback_rate()}},
        "training": {"data": "FER2013 (research challenge release; non-commercial research use)",
                     "epochs_run": len(log), "bf16_autocast": bf16, "batch": batch, "lr": lr, "seed": seed, "log": log},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out)
    out.with_suffix(".json").write_text(json.dumps(meta, indent=1))
    return meta


def evaluate(data: Path, weights: Path, cache: Path, png: Path) -> dict[str, float]:
    """Print test accuracy, macro F1 and the confusion matrix of the shipped weights; save a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    enc = ExpressionEncoder(weights)
    xte, yte = load_crop_set(data, cache).part("test")
    cm = confusion(yte, predict(enc.model, xte))
    sc = scores(cm)
    print(f"FER2013 test: n={len(yte)}  accuracy {sc['accuracy']:.4f}  macro-F1 {sc['macro_f1']:.4f}")
    print("rows true, columns predicted: " + " ".join(f"{lab[:4]:>5}" for lab in LABELS))
    for lab, row in zip(LABELS, cm):
        print(f"{lab:>28} " + " ".join(f"{v:5d}" for v in row))
    fig, ax = plt.subplots(figsize=(6, 5))
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xticks(range(len(LABELS)), LABELS, rotation=45, ha="right")
    ax.set_yticks(range(len(LABELS)), LABELS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"FER2013 test: acc {sc['accuracy']:.3f}, macro-F1 {sc['macro_f1']:.3f}")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120)
    print(f"confusion matrix saved to {png}")
    return sc


def parser() -> argparse.ArgumentParser:
    """The command line: ``train`` and ``evaluate`` sub-commands."""
    ap = argparse.ArgumentParser(prog="python -m realtime.expression", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True, help="what to do")
    for name, what, weights in (("train", "train the CNN on FER2013 train, select on val, score test once",
                                 "where the weights (and their JSON sidecar) are written"),
                                ("evaluate", "score weights on FER2013 test and save a confusion matrix",
                                 "the weights to score")):
        p = sub.add_parser(name, help=what)
        p.add_argument("--data", type=Path, required=True, help="FER2013 root with train/val/test/<emotion>/*.png")
        p.add_argument("--weights", type=Path, default=WEIGHTS_PATH, help=f"{weights} (default: %(default)s)")
        p.add_argument("--cache", type=Path, default=CACHE_PATH, help="aligned-crop cache (.npz)")
    t = sub.choices["train"]
    t.add_argument("--epochs", type=int, default=22, help="most training epochs (default: %(default)s)")
    t.add_argument("--batch", type=int, default=128, help="mini-batch size (default: %(default)s)")
    t.add_argument("--lr", type=float, default=3e-3, help="peak of the one-cycle learning rate (default: %(default)s)")
    t.add_argument("--patience", type=int, default=6, help="stop after this many epochs without val gain")
    t.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    e = sub.choices["evaluate"]
    e.add_argument("--png", type=Path, default=REPO_ROOT / "runs" / "expression" / "confusion.png",
                   help="where the confusion matrix is saved (default: %(default)s)")
    return ap


def main(argv: list[str] | None = None) -> None:
    a = parser().parse_args(argv)
    if a.cmd == "train":
        train(a.data, a.epochs, a.batch, a.lr, a.patience, a.weights, a.cache, a.seed)
    else:
        evaluate(a.data, a.weights, a.cache, a.png)


if __name__ == "__main__":
    run_cli(main)
