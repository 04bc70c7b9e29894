"""The voice encoder's training and evaluation on RAVDESS.

Data: RAVDESS speech (24 actors, 1,440 clips, "calm" counted as neutral). Actors 1-16 train,
17-20 validate (model selection only), 21-24 test (``evaluate``). Training windows are the ones
the live app takes: one every hop (0.5 s) back from the end of each clip, so they hold the whole
sentence or only its start; validation and test score the window ending at each clip's last step.

Training: AdamW (weight decay 1e-2), one-cycle learning rate up to 2e-3, 25 epochs of batches of
64, label smoothing 0.1. Augmentation per window: a random shift of up to 1 s (the window ends
earlier in the clip), a random gain and spectral tilt of the log-mel values, 2 frequency masks of
up to 8 bins and 2 time masks of up to 10 steps (SpecAugment). The last epoch's weights ship.

Trained on RAVDESS (CC BY-NC-SA 4.0): the weights are for non-commercial use.

CLI::

    python -m realtime.voice_encoder train --extraction runs/default/extract/ravdess  # -> realtime/data/models/
    python -m realtime.voice_encoder evaluate --extraction runs/default/extract/ravdess
    python -m realtime.voice_encoder evaluate-corpora --data ../shared/data  # every speech corpus's test speakers

``evaluate-corpora``: ``realtime.offline.cross_corpus`` (RAVDESS, nEMO, TESS, TurEV-DB, URDU).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dmd_lite.emotion_data import Pool, sequence_pool
from dmd_lite.metrics import classification_metrics
from realtime.core.feature_spec import LABELS, N_MELS, FeatureSpec
from realtime.nets.voice_encoder import WEIGHTS_PATH, VoiceConfig, VoiceEncoder, _meta_contract, load_voice_encoder
from realtime.nets.model_files import write_model_files
from realtime.core.errors import SourceError, one_line
from realtime.core.resources import cache_dir
from realtime.offline.cli import add_command, report_confusion, train_evaluate_parser
from realtime.offline.cross_corpus import VOICE_CORPORA, evaluate_corpora, window_logits
from realtime.offline.datasets import TEST_ACTORS, TRAIN_ACTORS, VAL_ACTORS, actor_of


def load_windows(extraction: Path, actors: tuple[int, ...], every_hop: bool) -> Pool:
    """Labelled RAVDESS windows of ``actors``: one every hop back along each clip, or the final one."""
    def accept(r: dict) -> bool:
        return r["status"] == "ok" and r.get("label") in LABELS and actor_of(r["speaker"]) in actors

    return sequence_pool(extraction, "audio", accept, FeatureSpec(), every_hop)


@dataclass(frozen=True)
class Augment:
    shift: int = 25  # steps: the window ends up to 1 s earlier in the clip
    gain: float = 0.3  # std of a random offset and of a random tilt across bins of the log-mel values
    freq_masks: int = 2
    freq_width: int = 8  # bins, at most
    time_masks: int = 2
    time_width: int = 10  # steps, at most
    min_steps: int = 10  # a shift that leaves fewer present steps is not applied


def augment(x: torch.Tensor, m: torch.Tensor, a: Augment, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Randomly shifted, coloured and masked copies of windows x (B, T, 65), masks m (B, T)."""
    B, T, D = x.shape
    steps = torch.arange(T)
    src = steps - torch.randint(0, a.shift + 1, (B, 1), generator=gen)  # (B, T) step each one takes
    x_shift = torch.gather(x, 1, src.clamp_min(0).unsqueeze(2).expand(B, T, D))
    m_shift = torch.gather(m, 1, src.clamp_min(0)) & (src >= 0)
    ok = m_shift.sum(1, keepdim=True) >= a.min_steps  # (B, 1)
    x, m = torch.where(ok.unsqueeze(2), x_shift, x), torch.where(ok, m_shift, m)
    bins = torch.arange(N_MELS)
    mel = (x[..., :N_MELS] + torch.randn(B, 1, 1, generator=gen) * a.gain
           + torch.randn(B, 1, 1, generator=gen) * a.gain * torch.linspace(-1, 1, N_MELS))
    for _ in range(a.freq_masks):
        width = torch.randint(0, a.freq_width + 1, (B, 1, 1), generator=gen)
        first = torch.randint(0, N_MELS, (B, 1, 1), generator=gen)
        mel = mel.masked_fill((bins >= first) & (bins < first + width), 0.0)
    for _ in range(a.time_masks):
        width = torch.randint(0, a.time_width + 1, (B, 1), generator=gen)
        first = torch.randint(0, T, (B, 1), generator=gen)
        m = m & ~((steps >= first) & (steps < first + width))
    x = torch.cat([mel, x[..., N_MELS:]], 2)
    return x * m.unsqueeze(2), m


@torch.inference_mode()
def predict(model: VoiceEncoder, pool: Pool, batch: int = 512) -> np.ndarray:
    """(N,) predicted label index of each window of ``pool``."""
    return window_logits(model, pool, batch).argmax(1)


def scores(model: VoiceEncoder, pool: Pool) -> dict:
    """Accuracy, macro and weighted F1 and confusion matrix of the model on a labelled pool."""
    return classification_metrics(predict(model, pool), pool.labels, len(LABELS))


def train(extraction: Path, out: Path, cfg: VoiceConfig, aug: Augment, epochs: int, lr: float, weight_decay: float,
          label_smoothing: float, batch_size: int, seed: int) -> dict:
    """Train on actors 1-16 (every-hop windows), report actors 17-20 after every epoch, write the last
    epoch's float32 weights and a JSON sidecar."""
    from tqdm import tqdm

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    train_pool = load_windows(extraction, TRAIN_ACTORS, every_hop=True)
    val_pool = load_windows(extraction, VAL_ACTORS, every_hop=False)
    if not len(train_pool) or not len(val_pool):
        raise ValueError(f"{extraction}: no labelled RAVDESS windows for the train or validation actors")
    print(f"training windows: {len(train_pool)} (actors {TRAIN_ACTORS[0]}-{TRAIN_ACTORS[-1]}); "
          f"validation clips: {len(val_pool)} (actors {VAL_ACTORS[0]}-{VAL_ACTORS[-1]})", flush=True)
    x, m, y = (torch.from_numpy(a) for a in (train_pool.x, train_pool.mask, train_pool.labels))
    model = VoiceEncoder(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    per_epoch = len(y) // batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * per_epoch, pct_start=0.15)
    log: list[dict] = []
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(y), generator=gen)
        total = 0.0
        for i in tqdm(range(per_epoch), desc=f"epoch {epoch}/{epochs}", leave=False, unit="batch"):
            idx = order[i * batch_size:(i + 1) * batch_size]
            xb, mb = augment(x[idx], m[idx], aug, gen)
            loss = F.cross_entropy(model.classify(xb, mb), y[idx], label_smoothing=label_smoothing)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
        val = scores(model, val_pool)
        log.append({"epoch": epoch, "loss": total / per_epoch, "val_accuracy": val["accuracy"],
                    "val_macro_f1": val["macro_f1"]})
        print(f"epoch {epoch:2d}  loss {total / per_epoch:.4f}  val acc {val['accuracy']:.4f}  "
              f"mF1 {val['macro_f1']:.4f}", flush=True)
    val = scores(model, val_pool)
    meta = {**_meta_contract(), "config": asdict(cfg), "out_dim": model.out_dim,
            "metrics": {"val_actors_17_20": {k: val[k] for k in ("accuracy", "macro_f1", "weighted_f1")}},
            "training": {"data": "RAVDESS speech actors 1-16, windows every hop along each clip; model selection on "
                                 "actors 17-20; RAVDESS is CC BY-NC-SA 4.0, non-commercial use only",
                         "extraction": str(extraction), "seed": seed, "epochs": epochs, "lr": lr,
                         "weight_decay": weight_decay, "label_smoothing": label_smoothing, "batch_size": batch_size,
                         "augment": asdict(aug), "seconds": round(time.perf_counter() - t0, 1), "log": log}}
    meta = write_model_files({k: v.float() for k, v in model.state_dict().items()}, out, out.with_suffix(".json"), meta)
    print(f"wrote {out} ({out.stat().st_size / 2**20:.2f} MiB) and {out.with_suffix('.json').name}", flush=True)
    return meta


def evaluate(extraction: Path, weights: Path, png: Path) -> dict:
    """Actors 21-24 scores of the shipped weights on each clip's final window; saves the confusion
    matrix; the last line printed is JSON."""
    model = load_voice_encoder(weights)
    test = load_windows(extraction, TEST_ACTORS, every_hop=False)
    if not len(test):
        raise ValueError(f"{extraction}: no labelled RAVDESS clips of actors {TEST_ACTORS[0]}-{TEST_ACTORS[-1]}")
    m = scores(model, test)
    report_confusion(m["confusion"], png,
                     f"RAVDESS actors 21-24 (voice): acc {m['accuracy']:.3f}, mF1 {m['macro_f1']:.3f}")
    result = {"split": f"ravdess_actors_{TEST_ACTORS[0]}_{TEST_ACTORS[-1]}", "n": len(test),
              **{k: round(m[k], 4) for k in ("accuracy", "macro_f1", "weighted_f1")}}
    print(json.dumps(result))
    return result


def parser() -> argparse.ArgumentParser:
    """The command line: ``train`` and ``evaluate`` sub-commands."""
    ap, t = train_evaluate_parser(
        "python -m realtime.voice_encoder", __doc__, "voice_encoder",
        ("train on RAVDESS actors 1-16, report actors 17-20 after every epoch",
         "score weights on RAVDESS actors 21-24 and save a confusion matrix"),
        lambda p, _: p.add_argument("--extraction", type=Path, required=True,
                                    help="`python -m realtime.extract --kind audio` output of RAVDESS"),
        WEIGHTS_PATH)
    t.add_argument("--epochs", type=int, default=25, help="training epochs (default: %(default)s)")
    t.add_argument("--lr", type=float, default=2e-3, help="peak of the one-cycle schedule")
    t.add_argument("--weight-decay", type=float, default=1e-2, help="AdamW weight decay (default: %(default)s)")
    t.add_argument("--label-smoothing", type=float, default=0.1,
                   help="label smoothing of the cross-entropy (default: %(default)s)")
    t.add_argument("--batch-size", type=int, default=64, help="mini-batch size (default: %(default)s)")
    t.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    c = add_command(ap, "evaluate-corpora", "score weights on the test speakers of every speech corpus")
    c.add_argument("--data", type=Path, required=True, help="the shared data folder (ravdess_speech_16k, speech/)")
    c.add_argument("--corpora", nargs="+", choices=VOICE_CORPORA, default=list(VOICE_CORPORA),
                   help="which corpora (default: all)")
    c.add_argument("--weights", type=Path, default=WEIGHTS_PATH, help="the weights to score (default: %(default)s)")
    c.add_argument("--extraction", type=Path, default=cache_dir("default") / "extract",
                   help="where the corpora's voice features are (or will be) extracted (default: %(default)s)")
    c.add_argument("--report", type=Path, default=cache_dir("voice_encoder") / "corpora",
                   help="where the confusion matrices are saved (default: %(default)s)")
    c.add_argument("--workers", type=int, default=2, help="extraction worker processes (default: %(default)s)")
    return ap


def evaluate_on_corpora(a: argparse.Namespace) -> dict:
    """``evaluate-corpora``: the weights' own answer on every corpus's test speakers; the last line printed is JSON."""
    model = load_voice_encoder(a.weights)
    result = evaluate_corpora(lambda pool: window_logits(model, pool), a.data, a.extraction, a.report, a.workers,
                              tuple(a.corpora), what=f"voice encoder {a.weights.name}")
    print(json.dumps(result))
    return result


def main(argv: list[str] | None = None) -> int:
    p = parser()
    a = p.parse_args(argv)
    torch.set_num_threads(1)  # a small model: one thread leaves the other cores to the live app or other jobs
    if a.cmd == "train":
        train(a.extraction, a.out, VoiceConfig(), Augment(), a.epochs, a.lr, a.weight_decay, a.label_smoothing,
              a.batch_size, a.seed)
    elif a.cmd == "evaluate":
        evaluate(a.extraction, a.weights, a.png)
    else:
        try:
            evaluate_on_corpora(a)
        except (FileNotFoundError, ValueError, SourceError) as e:
            p.exit(2, f"{p.prog} evaluate-corpora: {one_line(e)}\n")
    return 0
