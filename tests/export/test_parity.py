"""The quantized-export gate's arithmetic (export.parity.compare): its tolerances are what they say."""

from __future__ import annotations

import numpy as np

from export.parity import CNN_MIN_AGREEMENT, MAX_METRIC_DROP, compare


def _flipped(n_wrong: int, n: int = 200) -> bool:
    """Whether the INT8 gate passes a candidate that gets ``n_wrong`` of the reference's right answers wrong."""
    labels = np.arange(n) % 7
    reference = np.eye(7)[labels] * 0.9 + 0.1 / 7  # right on every one
    candidate = reference.copy()
    candidate[:n_wrong] = np.eye(7)[(labels[:n_wrong] + 1) % 7] * 0.9 + 0.1 / 7
    parity = compare(reference, candidate, labels, "int8", "test", min_agreement=CNN_MIN_AGREEMENT)
    assert parity.metric_drop == n_wrong / n
    return parity.passed


def test_a_drop_of_exactly_the_tolerance_passes_and_one_more_fails():
    assert MAX_METRIC_DROP == 0.01
    assert _flipped(2)  # 2 of 200: exactly 1 point (as a difference of accuracies, 0.01 + 1e-17)
    assert not _flipped(3)
