"""From a stream of model answers to what the user is shown: smoothed, steady, honest about doubt.

- Exponential smoothing of the probabilities and the valence (``alpha`` is the weight of the new
  answer: 0.5 at a 0.5 s hop halves an old answer's say every 0.5 s).
- Hysteresis on the shown label: another class takes over only when its smoothed probability
  beats the shown one's by ``switch_margin``, so two close classes do not flicker.
- An "uncertain" state: when no modality is reliable enough (``min_reliability``; see
  ``modality_reliability``), or when the best smoothed probability is below ``min_confidence``.
  Leaving it needs ``min_confidence + switch_margin``: hysteresis again.
- Valence is shown only while some modality is reliable enough: without one, ``Decision.valence``
  is None (the overlay and the event log say it is unknown) rather than a number nobody supports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from realtime.core.modalities import voice_trust

UNCERTAIN = "uncertain"
MIN_CONFIDENCE = 0.35  # a shown label's smoothed probability may not fall below this
SWITCH_MARGIN = 0.1  # what another class (or leaving "uncertain") must win by
SHOW_CONFIDENCE = MIN_CONFIDENCE + SWITCH_MARGIN  # the probability a label needs to be shown from "uncertain"


@dataclass(frozen=True)
class Decision:
    """What to show after one answer."""

    label: str  # a class label, or UNCERTAIN
    confidence: float  # smoothed probability of the shown class (of the best class when uncertain)
    probabilities: np.ndarray  # (K,) smoothed, sums to 1
    valence: float | None  # smoothed, -1 .. 1; None while no modality is reliable enough
    reason: str  # why uncertain ("" when not): "too little input" (no modality reliable enough, as
    # in a run's first seconds or with a voice unlike any trained on) or "low confidence"


def modality_reliability(coverage: Mapping[str, float], voice_reliability: float) -> dict[str, float]:
    """Per modality, 0 .. 1: the share of the window's steps present (text: 1 with any word), times,
    for the voice, how much a voice of its reliability counts (``voice_trust``)."""
    return {m: c * voice_trust(voice_reliability) if m == "audio" else c for m, c in coverage.items()}


class Smoother:
    """Turns successive (probabilities, valence, reliability) into ``Decision``s; ``reset`` forgets."""

    def __init__(self, labels: Sequence[str], alpha: float = 0.5, switch_margin: float = SWITCH_MARGIN,
                 min_confidence: float = MIN_CONFIDENCE, min_reliability: float = 0.25) -> None:
        if not 0 < alpha <= 1:
            raise ValueError(f"Smoother alpha must be in (0, 1], got {alpha}")
        self.labels = tuple(labels)
        self.alpha, self.switch_margin = alpha, switch_margin
        self.min_confidence, self.min_reliability = min_confidence, min_reliability
        self.reset()

    def reset(self) -> None:
        self._p: np.ndarray | None = None
        self._valence = 0.0
        self._shown: int | None = None  # index of the shown class; None while uncertain

    def update(self, probabilities: np.ndarray, valence: float, reliability: Mapping[str, float]) -> Decision:
        """``reliability``: per modality, 0 .. 1 (``modality_reliability``)."""
        p = np.asarray(probabilities, dtype=np.float64)
        if p.shape != (len(self.labels),):
            raise ValueError(f"Smoother expects {len(self.labels)} probabilities, got shape {p.shape}")
        a, first = self.alpha, self._p is None
        self._p = p.copy() if first else a * p + (1 - a) * self._p
        self._valence = float(valence) if first else a * valence + (1 - a) * self._valence
        smoothed = self._p / self._p.sum()
        best = int(smoothed.argmax())

        reliable = any(r >= self.min_reliability for r in reliability.values())
        if not reliable:
            self._shown, reason = None, "too little input"
        elif self._shown is None:
            enter = self.min_confidence + self.switch_margin
            self._shown, reason = (best, "") if smoothed[best] >= enter else (None, "low confidence")
        elif smoothed[best] < self.min_confidence:
            self._shown, reason = None, "low confidence"
        else:
            if smoothed[best] >= smoothed[self._shown] + self.switch_margin:
                self._shown = best
            reason = ""
        shown = best if self._shown is None else self._shown
        return Decision(self.labels[self._shown] if self._shown is not None else UNCERTAIN,
                        float(smoothed[shown]), smoothed.astype(np.float32), float(self._valence) if reliable else None,
                        reason)
