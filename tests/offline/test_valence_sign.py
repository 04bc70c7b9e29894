"""The valence sign agreement that ``dmd_lite.evaluate`` reports per held-out set."""

import csv

import numpy as np
import pytest

from dmd_lite.emotion_data import valence_targets
from dmd_lite.emotion_eval import valence_contradictions, valence_sign_agreement
from realtime.core.feature_spec import CLEAR_VALENCE_SIGN, LABEL_VALENCE, LABELS
from realtime.offline.datasets import MELD_EMOTIONS, MELD_SENTIMENTS


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


def test_a_contradiction_is_a_confident_label_with_a_valence_of_the_other_sign():
    def answer(label: str, p: float) -> np.ndarray:
        probs = np.full(len(LABELS), (1 - p) / (len(LABELS) - 1))
        probs[LABELS.index(label)] = p
        return probs

    probs = np.stack([answer("happy", 0.9), answer("sad", 0.8), answer("angry", 0.6), answer("happy", 0.3),
                      answer("neutral", 0.9), answer("fearful", 0.7)])
    valence = np.array([-0.4, -0.5, 0.2, -0.9, -0.9, 0.0])
    # confident with a sign: happy (contradicted), sad, angry (contradicted), fearful (0: not contradicted);
    # the happy at 0.3 is not confident enough to be shown, neutral has no sign
    assert valence_contradictions(probs, valence, LABELS) == {"valence_confident_n": 4,
                                                              "valence_contradicts_label": 0.5}
    assert valence_contradictions(probs[[3, 4]], valence[[3, 4]], LABELS) == {"valence_confident_n": 0}


def test_valence_targets_take_the_words_sentiment_where_given_else_the_label_table():
    labels = labels_of("happy", "sad", "surprised", "neutral")
    targets = valence_targets(labels, np.array([np.nan, np.nan, -1.0, np.nan]))
    np.testing.assert_array_equal(targets, [1.0, -1.0, -1.0, 0.0])
    assert np.isnan(valence_targets(np.array([-1]), np.array([np.nan]))).all()  # no label, no target


@pytest.mark.needs_data("text/meld")
def test_label_valence_is_the_mean_meld_sentiment_of_each_emotion(shared_data):
    """``LABEL_VALENCE`` is what its comment says: each emotion's mean sentiment over MELD train
    (surprise, -0.02 there, taken as 0)."""
    sums: dict[str, list[float]] = {}
    with open(shared_data / "text/meld/train_sent_emo.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            label = MELD_EMOTIONS[row["Emotion"]]
            sums.setdefault(label, []).append(MELD_SENTIMENTS[row["Sentiment"]])
    means = {label: float(np.mean(v)) for label, v in sums.items()}
    assert set(means) == set(LABEL_VALENCE)
    for label, v in LABEL_VALENCE.items():
        assert means[label] == pytest.approx(v, abs=0.05), label
    assert CLEAR_VALENCE_SIGN == {"happy": 1, "sad": -1, "angry": -1, "fearful": -1, "disgusted": -1}
