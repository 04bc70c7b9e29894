"""Evaluation metrics: MMSA's sentiment-regression set and plain classification scores.

`regression_metrics` follows MMSA's `MetricsTop` (the code DMD reports its numbers with):
scores are clipped and rounded with numpy's half-to-even rounding, binary scores come in a
"has0" (negative vs non-negative, all samples) and a "non0" (negative vs positive, exact-zero
targets dropped) flavour, and binary F1 is support-weighted. MMSA rounds its outputs to four
decimals for display; here they are returned at full precision.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor | Sequence[float]


def _flat(x: ArrayLike) -> np.ndarray:
    """Any array or tensor as a flat float64 numpy vector."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64).reshape(-1)


def _f1_per_class(confusion: np.ndarray) -> np.ndarray:
    """F1 of every class of a confusion matrix (rows = true); 0 where it is undefined."""
    tp = np.diag(confusion).astype(np.float64)
    fp = confusion.sum(axis=0) - tp
    fn = confusion.sum(axis=1) - tp
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)


def _weighted_f1(confusion: np.ndarray) -> float:
    """Support-weighted mean of per-class F1 (scikit-learn's average='weighted')."""
    support = confusion.sum(axis=1)
    if support.sum() == 0:
        return float("nan")
    return float((_f1_per_class(confusion) * support).sum() / support.sum())


def _confusion(pred: np.ndarray, target: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) int64 counts, rows = true class, columns = predicted class."""
    flat = target.astype(np.int64) * n_classes + pred.astype(np.int64)
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _binary_scores(pred: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """Accuracy and weighted F1 of two boolean vectors; NaN for empty input."""
    if target.size == 0:
        return float("nan"), float("nan")
    confusion = _confusion(pred, target, 2)
    return float(np.mean(pred == target)), _weighted_f1(confusion)


def _multiclass_acc(pred: np.ndarray, target: np.ndarray, bound: float) -> float:
    """Share of samples whose clipped, rounded (half to even) score equals the target's."""
    rp = np.round(np.clip(pred, -bound, bound))
    rt = np.round(np.clip(target, -bound, bound))
    return float(np.mean(rp == rt))


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; NaN when either side is constant (as numpy's corrcoef gives)."""
    xc, yc = x - x.mean(), y - y.mean()
    denom = np.sqrt((xc * xc).sum() * (yc * yc).sum())
    return float((xc * yc).sum() / denom) if denom > 0 else float("nan")


def regression_metrics(pred: ArrayLike, target: ArrayLike) -> dict[str, float]:
    """MMSA regression metrics of sentiment scores in [-3, 3]; inputs of any shape are flattened.

    Keys: Has0_acc_2, Has0_F1_score (p >= 0 vs t >= 0 on all samples), Non0_acc_2,
    Non0_F1_score (p > 0 vs t > 0 after dropping t == 0; NaN if every target is 0),
    Mult_acc_3/5/7 (clip to +-1/2/3, round half to even), MAE and Corr (Pearson).
    DMD's paper "Acc-2"/"F1" are the Non0 ones.
    """
    p, t = _flat(pred), _flat(target)
    if p.shape != t.shape or p.size == 0:
        raise ValueError(f"pred and target need the same non-zero size, got {p.size} and {t.size}")
    has0_acc, has0_f1 = _binary_scores(p >= 0, t >= 0)
    nonzero = t != 0
    non0_acc, non0_f1 = _binary_scores(p[nonzero] > 0, t[nonzero] > 0)
    return {
        "Has0_acc_2": has0_acc,
        "Has0_F1_score": has0_f1,
        "Non0_acc_2": non0_acc,
        "Non0_F1_score": non0_f1,
        "Mult_acc_3": _multiclass_acc(p, t, 1.0),
        "Mult_acc_5": _multiclass_acc(p, t, 2.0),
        "Mult_acc_7": _multiclass_acc(p, t, 3.0),
        "MAE": float(np.mean(np.abs(p - t))),
        "Corr": _pearson(p, t),
    }


def classification_metrics(pred_labels: ArrayLike, target: ArrayLike, n_classes: int) -> dict:
    """Accuracy, macro and weighted F1 and the confusion matrix of integer class labels.

    Macro F1 averages over all `n_classes` classes; a class absent from both predictions and
    targets counts as F1 = 0 (scikit-learn's f1_score with labels=range(n_classes),
    zero_division=0). This keeps scores comparable across evaluation sets but penalises a
    test set that lacks a class. `confusion` is a list of lists, rows = true class.
    """
    p, t = _flat(pred_labels), _flat(target)
    if p.shape != t.shape or p.size == 0:
        raise ValueError(f"pred and target need the same non-zero size, got {p.size} and {t.size}")
    for name, v in (("pred_labels", p), ("target", t)):
        if np.any(v != np.round(v)) or v.min() < 0 or v.max() >= n_classes:
            raise ValueError(f"{name} must hold integer labels in [0, {n_classes}), got {np.unique(v)[:10]}")
    confusion = _confusion(p, t, n_classes)
    return {
        "accuracy": float(np.trace(confusion) / confusion.sum()),
        "macro_f1": float(_f1_per_class(confusion).mean()),
        "weighted_f1": _weighted_f1(confusion),
        "confusion": confusion.tolist(),
    }


def class_scores(confusion: Sequence[Sequence[int]] | np.ndarray, classes: Sequence[int]) -> dict[str, float]:
    """Unweighted average recall and macro F1 over ``classes`` (indices) of a confusion matrix (rows =
    true); answers outside ``classes`` count as errors. NaN when none of ``classes`` has a sample."""
    counts = np.asarray(confusion, dtype=np.int64)
    idx = np.asarray(classes, dtype=np.int64)
    if idx.size == 0:
        return {"uar": float("nan"), "macro_f1": float("nan")}
    support = counts.sum(axis=1)[idx]
    recall = np.divide(np.diag(counts)[idx], support, out=np.zeros(idx.size), where=support > 0)
    return {"uar": float(recall.mean()), "macro_f1": float(_f1_per_class(counts)[idx].mean())}


def save_confusion_png(
    confusion: Sequence[Sequence[int]] | np.ndarray, labels: Sequence[str], path: str | Path, title: str
) -> None:
    """Write a confusion matrix as a PNG: colours are row-normalised rates, cells show counts."""
    # matplotlib is only needed here; the object API with the Agg canvas leaves global state alone.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    counts = np.asarray(confusion, dtype=np.int64)
    n = len(labels)
    if counts.shape != (n, n):
        raise ValueError(f"confusion has shape {counts.shape}, expected ({n}, {n}) for {n} labels")
    rows = counts.sum(axis=1, keepdims=True)
    rates = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)

    size = 1.5 + 0.6 * n
    fig = Figure(figsize=(size + 1.0, size))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, label="share of true class")
    for i in range(n):
        for j in range(n):
            colour = "white" if rates[i, j] > 0.5 else "black"
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", color=colour, fontsize=8)
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The softmax temperature minimising the negative log-likelihood (grid search, 0.5..5)."""
    grid = torch.linspace(0.5, 5.0, 91)
    nll = torch.stack([torch.nn.functional.cross_entropy(logits / t, labels) for t in grid])
    return float(grid[nll.argmin()])
