"""The valence sign agreement that ``dmd_lite.evaluate`` reports per held-out set."""

import numpy as np

from dmd_lite.emotion_eval import valence_sign_agreement
from realtime.core.feature_spec import LABELS


def labels_of(*names: str) -> np.ndarray:
    return np.array([LABELS.index(n) for n in names])


def test_only_labels_with_a_clear_sign_count():
    labels = labels_of("happy", "sad", "neutral", "surprised", "angry", "fearful", "disgusted")
    valence = np.array([0.5, -0.2, 0.9, -0.9, 0.1, -0.3, 0.0])
    # happy +, sad -, angry + (wrong), fearful -, disgusted 0 (no sign: wrong); neutral and surprised not counted
    assert valence_sign_agreement(valence, labels, LABELS) == {"valence_sign_n": 5, "valence_sign_agreement": 0.6}


def test_a_set_without_clear_labels_reports_no_share():
    assert valence_sign_agreement(np.array([0.3, -0.3]), labels_of("neutral", "surprised"), LABELS) == {
        "valence_sign_n": 0}
