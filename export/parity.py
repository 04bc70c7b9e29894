"""The parity gate: an exported model must answer held-out real inputs as PyTorch does.

Tolerances, on the class probabilities:
- FP32 (and any engine of an FP32 export): max absolute difference at most ``FP32_MAX_ABS_DIFF``;
- quantized (INT8, FP16): argmax agreement with PyTorch at least ``MIN_AGREEMENT`` and accuracy
  (on the windows whose label is known) at most ``MAX_METRIC_DROP`` below PyTorch's.
- the expression CNN quantized: the same accuracy drop, agreement at least
  ``CNN_MIN_AGREEMENT``. Its 7-way output is a per-frame input feature of the recognizer, not the
  label shown, and FER2013 faces are often ambiguous: 6.9 % of test crops have their two best
  classes within 0.05, and INT8's noise (p95 of the largest probability change 0.047) flips about
  2 % of labels while accuracy stays within a quarter point. Even one layer quantized alone flips
  0.3-1.8 %, so 0.99 would need quantization-aware training, not post-training calibration.

The result is the manifest's ``parity`` block (``Parity.to_dict``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import numpy as np

FP32_MAX_ABS_DIFF = 1e-4
MIN_AGREEMENT = 0.99
CNN_MIN_AGREEMENT = 0.97
MAX_METRIC_DROP = 0.01  # accuracy, as a fraction (1 point)
QUANTIZED = ("int8", "fp16")


class ParityError(RuntimeError):
    """An export drifted past its tolerance; the message says by how much."""


@dataclass(frozen=True)
class Parity:
    reference: str  # what the candidate is compared with
    precision: str  # the candidate's
    n_windows: int
    max_abs_diff: float  # on probabilities
    label_agreement: float  # fraction of windows with the same argmax
    metric: str  # what metric_drop measures
    n_labelled: int  # windows with a known label
    reference_metric: float | None
    candidate_metric: float | None
    metric_drop: float | None  # reference - candidate; None without labels
    tolerance: dict
    passed: bool
    origin: str  # where the windows came from

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        drop = "n/a (no labels)" if self.metric_drop is None else f"{self.metric_drop * 100:+.2f} points"
        verdict = "passed" if self.passed else "FAILED"
        return (f"parity {verdict} ({self.precision} vs {self.reference}, {self.n_windows} windows): max |diff| "
                f"{self.max_abs_diff:.2e}, label agreement {self.label_agreement:.4f}, accuracy drop {drop}; "
                f"tolerance {self.tolerance}")


def tolerance(precision: str, min_agreement: float = MIN_AGREEMENT) -> dict:
    if precision in QUANTIZED:
        return {"min_label_agreement": min_agreement, "max_metric_drop": MAX_METRIC_DROP}
    return {"max_abs_diff": FP32_MAX_ABS_DIFF}


def compare(reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray, precision: str, origin: str,
            reference_name: str = "torch", min_agreement: float = MIN_AGREEMENT) -> Parity:
    """Parity of candidate probabilities (N, K) with the reference's; labels (N,) with -1 = unknown;
    ``min_agreement`` for quantized candidates."""
    if reference.shape != candidate.shape:
        raise ValueError(f"parity: reference shape {reference.shape} != candidate shape {candidate.shape}")
    if not len(reference):
        raise ValueError("parity: no windows to compare on")
    diff = float(np.abs(reference.astype(np.float64) - candidate).max())
    ref_label, cand_label = reference.argmax(1), candidate.argmax(1)
    agreement = float((ref_label == cand_label).mean())
    known = labels >= 0
    ref_acc = cand_acc = drop = None
    if known.any():  # from counts, so that 2 of 200 is a drop of exactly 0.01, not 0.01 + 1e-17
        n = int(known.sum())
        ref_right, cand_right = int((ref_label == labels)[known].sum()), int((cand_label == labels)[known].sum())
        ref_acc, cand_acc, drop = ref_right / n, cand_right / n, (ref_right - cand_right) / n
    tol = tolerance(precision, min_agreement)
    if precision in QUANTIZED:
        passed = agreement >= tol["min_label_agreement"] and (drop is None or drop <= tol["max_metric_drop"])
    else:
        passed = diff <= tol["max_abs_diff"]
    return Parity(reference_name, precision, len(reference), diff, agreement, "accuracy", int(known.sum()),
                  ref_acc, cand_acc, drop, tol, bool(passed and np.isfinite(candidate).all()), origin)


def probabilities(run: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]],
                  batches: Iterable[dict[str, np.ndarray]], output: str = "probabilities") -> np.ndarray:
    """One output of ``run`` over all batches, concatenated."""
    return np.concatenate([run(batch)[output] for batch in batches])

