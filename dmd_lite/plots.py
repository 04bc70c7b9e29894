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
