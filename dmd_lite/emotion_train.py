"""Training DMD-lite on label-paired triplets of real emotion data (see ``emotion_data``).

Every step draws a random subset of present modalities, labels (``draw_labels``), and a face, a
voice window and an utterance of each label from the training pools (features already encoded by
the frozen front-end encoders), then takes one step on the full DMD objective (7-way emotion
classification plus valence: the words' sentiment where they carry one, else the label's
``LABEL_VALENCE``, so face and voice teach the valence head too).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from realtime.core.modalities import MODALITIES

from .checkpoint import save_checkpoint
from .emotion_data import Jitter, Pool, Triplets, draw_triplets, index_by_label
from .metrics import classification_metrics
from .model import DMD, DMDOutput
from .objective import QUIRKS, dmd_loss
from .plots import plot_curves


@dataclass(frozen=True)
class TripletTraining:
    steps_per_epoch: int = 200
    epochs: int = 16
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    grad_clip: float = 0.6  # clip_grad_value_, as the official schedule
    patience: int = 3  # halve the learning rate after this many epochs without improvement
    early_stop: int = 6
    p_all: float = 0.4  # probability that a sample has all three modalities
    p_single: float = 0.4  # ... exactly one (the rest: exactly two)
    seed: int = 1234
    quirks: str = "corrected"


def draw_presence(n: int, p_all: float, p_single: float, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) bool: all three, one, or two modalities present, each choice uniform within its kind."""
    kind = rng.choice(3, size=n, p=[p_all, p_single, 1 - p_all - p_single])
    present = np.ones((n, 3), bool)
    single = rng.integers(0, 3, n)
    present[kind == 1] = np.eye(3, dtype=bool)[single[kind == 1]]
    present[kind == 2] = ~np.eye(3, dtype=bool)[single[kind == 2]]
    return present


def draw_labels(present: np.ndarray, pools: dict[str, Pool], n_labels: int, rng: np.random.Generator) -> np.ndarray:
    """A label per row: uniform where two or three modalities are present (they are paired by
    label), and as the modality's own corpus has them where it is alone (natural frequencies, so a
    lone modality learns its corpus's prior: mostly neutral words, mostly happy faces)."""
    labels = rng.integers(0, n_labels, len(present))
    alone = present.sum(1) == 1
    for k, m in enumerate(MODALITIES):
        rows = np.flatnonzero(alone & present[:, k])
        labels[rows] = pools[m].labels[rng.integers(0, len(pools[m]), len(rows))]
    return labels


def to_tensors(batch: Triplets, device: torch.device) -> tuple[list[torch.Tensor], dict[str, torch.Tensor], torch.Tensor]:
    """Model inputs (text, audio, vision), masks and the (B, 2) target [label, valence]."""
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
    inputs = [t(batch.text), t(batch.audio), t(batch.visual)]
    masks = {"mask_l": t(batch.text_mask), "mask_a": t(batch.audio_mask), "mask_v": t(batch.visual_mask)}
    target = torch.stack([t(batch.labels).float(), t(batch.valence)], dim=1)
    return inputs, masks, target


class TripletSampler:
    """Draws training or (fixed) evaluation batches of triplets from encoded pools."""

    def __init__(self, pools: dict[str, Pool], n_labels: int, visual_steps: int, labels: Sequence[int] | None = None):
        """``labels``: the labels ``fixed_set`` draws (default: all; each needs a sample in every pool)."""
        self.pools, self.n_labels, self.visual_steps = pools, n_labels, visual_steps
        self.labels = np.arange(n_labels) if labels is None else np.asarray(labels)
        self.by_label = {m: index_by_label(pools[m], n_labels, self.labels) for m in MODALITIES}
        self.face_spread = pools["visual"].x.std(axis=0).astype(np.float32)

    def draw(self, labels: np.ndarray, present: np.ndarray, rng: np.random.Generator,
             jitter: Jitter | None) -> Triplets:
        return draw_triplets(self.pools, labels, present, rng, self.face_spread, self.visual_steps, jitter,
                             self.by_label)

    def fixed_set(self, n: int, present: tuple[bool, bool, bool], seed: int, jitter: Jitter | None = Jitter()) -> Triplets:
        """n triplets with labels drawn uniformly from ``labels`` and the given modalities, reproducible by seed."""
        rng = np.random.default_rng(seed)
        labels = self.labels[rng.integers(0, len(self.labels), n)]
        return self.draw(labels, np.tile(np.array(present), (n, 1)), rng, jitter)


@torch.no_grad()
def predict(model: DMD, batch: Triplets, device: torch.device, chunk: int = 256) -> DMDOutput:
    """Logits and edge weights for every triplet of ``batch``, in chunks."""
    model.eval()
    outs = []
    for i in range(0, len(batch.labels), chunk):
        part = Triplets(**{k: None if v is None else v[i:i + chunk] for k, v in asdict(batch).items()})
        inputs, masks, _ = to_tensors(part, device)
        outs.append(model(*inputs, **masks))
    return DMDOutput(*(torch.cat([getattr(o, k) for o in outs]).cpu() for k in ("logits", "edges_homo", "edges_hetero")))


def train_on_triplets(model: DMD, train: TripletSampler, valid: dict[str, Triplets], cfg: TripletTraining,
                      out: Path, device: torch.device, meta: dict) -> dict:
    """Train with the DMD objective; keeps the checkpoint with the best mean validation accuracy
    over ``valid`` (e.g. fused and each modality alone). Returns the best row of the log."""
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    model.to(device)
    objective = QUIRKS[cfg.quirks]
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.5, patience=cfg.patience)
    n_classes = model.cfg.n_classes
    history, best, best_row, since = [], -1.0, {}, 0
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "metrics.jsonl"
    log_path.write_text("")  # this run's epochs only
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        sums: dict[str, float] = {}
        for _ in tqdm(range(cfg.steps_per_epoch), desc=f"epoch {epoch}", leave=False, disable=None):
            present = draw_presence(cfg.batch_size, cfg.p_all, cfg.p_single, rng)
            labels = draw_labels(present, train.pools, train.n_labels, rng)
            inputs, masks, target = to_tensors(train.draw(labels, present, rng, Jitter()), device)
            losses = dmd_loss(model, model(*inputs, **masks, return_aux=True), target, objective)
            opt.zero_grad(set_to_none=True)
            losses["total"].backward()
            torch.nn.utils.clip_grad_value_(model.parameters(), cfg.grad_clip)
            opt.step()
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v.item()
        scores = {name: classification_metrics(predict(model, batch, device).logits[:, :n_classes].argmax(1),
                                               batch.labels, n_classes) for name, batch in valid.items()}
        accuracy = {name: s["accuracy"] for name, s in scores.items()}
        score = float(np.mean(list(accuracy.values())))
        sched.step(score)
        row = {"epoch": epoch, "lr": opt.param_groups[0]["lr"], "valid_loss": 1 - score,
               **{f"train_{k}": v / cfg.steps_per_epoch for k, v in sums.items()},
               **{f"valid_acc_{k}": v for k, v in accuracy.items()},
               **{f"valid_{f}_{k}": s[f] for k, s in scores.items() for f in ("weighted_f1", "macro_f1")}}
        history.append(row)
        with log_path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"epoch {epoch}: objective {row['train_total']:.3f}  valid accuracy / weighted F1 / macro F1 "
              + "  ".join(f"{k} {s['accuracy']:.3f}/{s['weighted_f1']:.3f}/{s['macro_f1']:.3f}"
                          for k, s in scores.items()), flush=True)
        if score > best + 1e-6:
            best, best_row, since = score, row, 0
            save_checkpoint(model, out / "best", **meta, train=asdict(cfg), epoch=epoch, valid=accuracy)
        else:
            since += 1
            if since >= cfg.early_stop:
                break
    plot_curves(history, out / "curves.png")
    return best_row
