"""Train DMD on an MMSA-format pickle with the full DMD objective and the official schedule.

    python -m dmd_lite.train --data aligned_50.pkl --preset mosi_aligned --out runs/mosi
    python -m dmd_lite.train --data synth.pkl --preset lite --lr 1e-3 --accumulation 1 --out runs/lite

Schedule (official unless changed): Adam (no weight decay), gradient clipping by value after
every backward, gradients summed over ``accumulation`` mini-batches per step (the trailing
partial window of an epoch is dropped), learning rate halved when the validation loss has not
improved for ``patience`` epochs, early stop after ``early_stop`` epochs without improvement.
The best-validation checkpoint is kept and evaluated once on the test split at the end.
Writes: ``best/`` (checkpoint), ``metrics.jsonl`` (one line per epoch), ``curves.png``,
``test_metrics.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from realtime.core.errors import run_cli

from .checkpoint import load_checkpoint, save_checkpoint
from .config import PRESETS, DMDConfig, preset
from .evaluate import evaluate_split
from .mmsa import MMSADataset, MMSAFileError, feature_shapes, load_mmsa
from .model import DMD
from .objective import QUIRKS, ObjectiveConfig, dmd_loss
from .plots import plot_curves


@dataclass(frozen=True)
class TrainConfig:
    lr: float = 1e-4
    batch_size: int = 16
    grad_clip: float = 0.6  # clip_grad_value_
    accumulation: int = 10  # mini-batches summed per optimizer step (official "update_epochs")
    patience: int = 5  # ReduceLROnPlateau, factor 0.5, on the validation loss
    early_stop: int = 10
    max_epochs: int = 200
    seed: int = 1111
    modality_dropout: float = 0.0  # masked presets: drop each modality of a sample with this probability
    quirks: str = "corrected"  # objective switches: "official" or "corrected" (see objective.py)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is visible; use --device cpu")
    return torch.device(name)


def batch_inputs(batch: dict, device: torch.device) -> tuple[list[torch.Tensor], torch.Tensor]:
    """(text, audio, vision) and the (B, 1) regression target, on the device."""
    inputs = [batch[k].to(device) for k in ("text", "audio", "vision")]
    return inputs, batch["label"].to(device)


def drop_modalities(inputs: list[torch.Tensor], p: float, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Presence masks with each (sample, modality) dropped with probability p."""
    masks = {}
    for m, x in zip(("l", "a", "v"), inputs):
        keep = torch.rand(x.shape[0], generator=gen) >= p  # (B,)
        masks[f"mask_{m}"] = keep.to(x.device)[:, None].expand(x.shape[:2])
    return masks


def train(data: Path, out: Path, model_cfg: DMDConfig, cfg: TrainConfig, device: torch.device,
          workers: int = 0) -> dict:
    """Train, keep the best-validation checkpoint, evaluate it on test; returns the test metrics."""
    seed_everything(cfg.seed)
    splits = load_mmsa(data)
    model_cfg = model_cfg.with_data(**feature_shapes(splits["train"]))
    model = DMD(model_cfg).to(device)
    objective: ObjectiveConfig = QUIRKS[cfg.quirks]
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=cfg.patience)
    loader = DataLoader(MMSADataset(splits["train"]), batch_size=cfg.batch_size, shuffle=True,
                        num_workers=workers, generator=torch.Generator().manual_seed(cfg.seed))
    drop_gen = torch.Generator().manual_seed(cfg.seed + 1)
    amp = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "metrics.jsonl"
    log_path.write_text("")
    history, best, best_epoch, epoch = [], float("inf"), 0, 0
    meta = {"train": asdict(cfg), "objective": objective.to_dict(), "data": str(data)}

    while epoch - best_epoch < cfg.early_stop and epoch < cfg.max_epochs:
        epoch += 1
        model.train()
        sums: dict[str, float] = {}
        bar = tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=None)
        for i, batch in enumerate(bar):
            if i % cfg.accumulation == 0:
                opt.zero_grad(set_to_none=True)
            inputs, target = batch_inputs(batch, device)
            masks = drop_modalities(inputs, cfg.modality_dropout, drop_gen) if model_cfg.use_masks else {}
            with amp:
                out_ = model(*inputs, **masks, return_aux=True)
                losses = dmd_loss(model, out_, target, objective)
            losses["total"].backward()
            torch.nn.utils.clip_grad_value_(params, cfg.grad_clip)
            if (i + 1) % cfg.accumulation == 0:
                opt.step()
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v.item()
            bar.set_postfix(loss=f"{losses['total'].item():.3f}")
        valid = evaluate_split(model, splits["valid"], device)
        sched.step(valid["loss"])
        row = {"epoch": epoch, "lr": opt.param_groups[0]["lr"],
               **{f"train_{k}": v / len(loader) for k, v in sums.items()},
               **{f"valid_{k}": v for k, v in valid.items()}}
        history.append(row)
        with log_path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        improved = valid["loss"] < best - 1e-6
        if improved:
            best, best_epoch = valid["loss"], epoch
            save_checkpoint(model, out / "best", **meta, epoch=epoch, valid=valid)
        print(f"epoch {epoch}: train {row['train_total']:.4f}  valid loss {valid['loss']:.4f}  "
              f"Non0_acc_2 {valid['Non0_acc_2']:.4f}{'  *' if improved else ''}", file=sys.stderr)

    plot_curves(history, out / "curves.png")
    best_model, _ = load_checkpoint(out / "best", device=str(device))
    test = evaluate_split(best_model, splits["test"], device)
    (out / "test_metrics.json").write_text(json.dumps({"best_epoch": best_epoch, **test}, indent=2))
    return {"best_epoch": best_epoch, **test}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dmd_lite.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    d = TrainConfig()
    p.add_argument("--data", type=Path, required=True,
                   help="MMSA aligned_50.pkl / unaligned_50.pkl (only plain data is unpickled: a file that refers to "
                        "functions or other classes is refused)")
    p.add_argument("--out", type=Path, required=True, help="run directory for checkpoint, logs and plots")
    p.add_argument("--preset", default="lite", choices=list(PRESETS),
                   help="model preset; input sizes are taken from the data (default: %(default)s)")
    p.add_argument("--quirks", default=d.quirks, choices=list(QUIRKS),
                   help="objective: 'official' keeps the official code's loss quirks, 'corrected' fixes them")
    p.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="mini-batch size (default: %(default)s)")
    p.add_argument("--accumulation", type=int, default=d.accumulation,
                   help="mini-batches summed per optimizer step (default: %(default)s, as official)")
    p.add_argument("--grad-clip", type=float, default=d.grad_clip, help="clip gradients by value (default: %(default)s)")
    p.add_argument("--patience", type=int, default=d.patience,
                   help="epochs without improvement before the learning rate halves (default: %(default)s)")
    p.add_argument("--early-stop", type=int, default=d.early_stop,
                   help="epochs without improvement before training stops (default: %(default)s)")
    p.add_argument("--max-epochs", type=int, default=d.max_epochs, help="hard cap on epochs (default: %(default)s)")
    p.add_argument("--modality-dropout", type=float, default=d.modality_dropout,
                   help="masked presets only: probability of dropping each modality of a sample (default: %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="seed for torch, numpy and random (default: %(default)s)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="auto = CUDA when available (bf16 autocast there), else CPU (default: %(default)s)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch; 0 = torch's default")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (default: %(default)s)")
    p.add_argument("--bert", type=Path, metavar="DIR",
                   help="fine-tune BERT on the file's text_bert ids instead of its precomputed text features; "
                        "needs local bert-base-uncased weights in DIR (nothing is downloaded). Not available yet: "
                        "training uses the precomputed features")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if not args.data.is_file():
        p.error(f"no such data file: {args.data}")
    if args.bert is not None:
        if not (args.bert / "config.json").is_file():
            p.error(f"--bert {args.bert}: no local BERT weights there (a Hugging Face directory with config.json "
                    "and the weights of bert-base-uncased); drop --bert to train on the precomputed text features")
        p.error("--bert: fine-tuning BERT is not available yet; drop --bert to train on the precomputed text features")
    if args.modality_dropout and not preset(args.preset).use_masks:
        p.error(f"--modality-dropout needs a masked preset (lite); {args.preset} keeps the official behaviour")
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = TrainConfig(**{k: getattr(args, k) for k in asdict(TrainConfig())})
    try:
        result = train(args.data, args.out, preset(args.preset), cfg, pick_device(args.device), args.workers)
    except MMSAFileError as e:
        p.exit(2, f"{p.prog}: error: {e}\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    run_cli(main)
