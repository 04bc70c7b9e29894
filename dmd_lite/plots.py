"""Training curves as a PNG (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_curves(history: list[dict], path: str | Path) -> None:
    """Loss (train and validation), the validation metrics and the learning rate per epoch."""
    if not history:
        return
    epochs = [row["epoch"] for row in history]
    fig, (ax_loss, ax_metric, ax_lr) = plt.subplots(1, 3, figsize=(15, 4))
    ax_loss.plot(epochs, [row["train_total"] for row in history], label="train objective")
    ax_loss.plot(epochs, [row["train_task"] for row in history], label="train task loss")
    ax_loss.plot(epochs, [row["valid_loss"] for row in history], label="valid task loss")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="losses", yscale="log")
    metrics = [k for k in history[0] if k.startswith("valid_") and k != "valid_loss"
               and ("acc" in k.lower() or "f1" in k.lower())]
    for k in metrics:
        ax_metric.plot(epochs, [row[k] for row in history], label=k.removeprefix("valid_"))
    ax_metric.set(xlabel="epoch", title="validation metrics", ylim=(0, 1))
    ax_lr.plot(epochs, [row["lr"] for row in history])
    ax_lr.set(xlabel="epoch", title="learning rate", yscale="log")
    for ax in (ax_loss, ax_metric):
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


CORPUS_NAMES = {"ravdess": "RAVDESS", "nemo": "nEMO", "tess": "TESS", "turev": "TurEV-DB", "urdu": "URDU"}


def plot_cross_corpus(result: dict, path: str | Path) -> bool:
    """The voice on each speech corpus (held-out speakers in a session and under live conditions, the
    corpus left out, its chance and 1.5 x chance) and the fusion on voices of a corpus never heard (face
    alone, voice alone, fused), from ``dmd_lite.evaluate``'s result; False, and no file, when the result
    holds neither."""
    views = result.get("voice_live_conditions", {})
    left_out = result.get("voice_cross_corpus", {})
    fused = result.get("fused_cross_corpus_paired", {})
    voice_corpora = [c for c in CORPUS_NAMES if c in views or c in left_out]
    fused_corpora = [c for c in CORPUS_NAMES if c in fused]
    if not voice_corpora and not fused_corpora:
        return False
    fig, (ax_voice, ax_fused) = plt.subplots(1, 2, figsize=(13, 4.5))
    x = range(len(voice_corpora))
    bars = (("held-out speakers, session", lambda c: views.get(c, {}).get("session_uar")),
            ("held-out speakers, live conditions", lambda c: views.get(c, {}).get("live_uar")),
            ("corpus left out", lambda c: left_out.get(c, {}).get("uar")))
    for i, (label, value) in enumerate(bars):
        ax_voice.bar([j + (i - 1) * 0.27 for j in x], [value(c) or 0.0 for c in voice_corpora], 0.27, label=label)
    for j, c in enumerate(voice_corpora):
        if left_out.get(c, {}).get("x_chance"):
            chance = left_out[c]["uar"] / left_out[c]["x_chance"]
            ax_voice.hlines(chance, j - 0.45, j + 0.45, colors="black", linestyles="dotted",
                            label="chance" if j == 0 else None)
            ax_voice.hlines(1.5 * chance, j - 0.45, j + 0.45, colors="red", linestyles="dashed",
                            label="1.5 x chance" if j == 0 else None)
    ax_voice.set_xticks(list(x), [CORPUS_NAMES[c] for c in voice_corpora])
    ax_voice.set(ylabel="unweighted average recall", ylim=(0, 1), title="voice alone, 7-way answers")
    ax_voice.legend(fontsize=8)
    x = range(len(fused_corpora))
    bars = (("face alone", lambda e: e["alone_accuracy"]["visual"]), ("voice alone", lambda e: e["alone_accuracy"]["audio"]),
            ("fused", lambda e: e["accuracy"]))
    for i, (label, value) in enumerate(bars):
        ax_fused.bar([j + (i - 1) * 0.27 for j in x], [value(fused[c]) for c in fused_corpora], 0.27, label=label)
    ax_fused.set_xticks(list(x), [CORPUS_NAMES[c] for c in fused_corpora])
    ax_fused.set(ylabel="accuracy", ylim=(0, 1), title="faces with voices of a corpus never heard")
    ax_fused.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
