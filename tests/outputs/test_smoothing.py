"""The smoother: exponential smoothing, hysteresis on the shown label, the uncertain state."""

import numpy as np
import pytest

from realtime.core.modalities import VOICE_FULL_TRUST
from realtime.smoothing import UNCERTAIN, Smoother, modality_reliability

LABELS = ("neutral", "happy", "sad")
ALL = {"visual": 1.0, "audio": 1.0, "text": 0.0}


def p(*values: float) -> np.ndarray:
    return np.array(values, np.float32)


def test_probabilities_and_valence_are_exponentially_smoothed():
    s = Smoother(LABELS, alpha=0.25)
    first = s.update(p(0.8, 0.1, 0.1), 0.6, ALL)
    np.testing.assert_allclose(first.probabilities, [0.8, 0.1, 0.1], atol=1e-6)
    second = s.update(p(0.0, 1.0, 0.0), -0.2, ALL)
    np.testing.assert_allclose(second.probabilities, [0.6, 0.325, 0.075], atol=1e-6)
    assert second.probabilities.sum() == pytest.approx(1.0)
    assert second.valence == pytest.approx(0.25 * -0.2 + 0.75 * 0.6)


def test_close_classes_do_not_flicker_and_a_clear_winner_takes_over():
    s = Smoother(LABELS, alpha=1.0, switch_margin=0.1, min_confidence=0.3)
    assert s.update(p(0.6, 0.3, 0.1), 0.0, ALL).label == "neutral"
    for _ in range(5):  # happy edges ahead, but by less than the margin: neutral stays
        assert s.update(p(0.42, 0.48, 0.1), 0.0, ALL).label == "neutral"
    d = s.update(p(0.3, 0.6, 0.1), 0.0, ALL)
    assert d.label == "happy" and d.confidence == pytest.approx(0.6)


def test_uncertain_without_enough_modalities_or_confidence():
    s = Smoother(LABELS, alpha=1.0, min_confidence=0.5, switch_margin=0.1, min_reliability=0.25)
    d = s.update(p(0.9, 0.05, 0.05), 0.0, {"visual": 0.1, "audio": 0.0, "text": 0.0})
    assert (d.label, d.reason) == (UNCERTAIN, "too little input")
    assert d.confidence == pytest.approx(0.9)  # the best class's probability is still reported
    d = s.update(p(0.4, 0.35, 0.25), 0.0, ALL)
    assert (d.label, d.reason) == (UNCERTAIN, "low confidence")
    assert s.update(p(0.55, 0.25, 0.2), 0.0, ALL).label == UNCERTAIN  # above 0.5 but not 0.5 + margin
    assert s.update(p(0.65, 0.2, 0.15), 0.0, ALL).label == "neutral"
    assert s.update(p(0.55, 0.25, 0.2), 0.0, ALL).label == "neutral"  # staying needs only 0.5
    assert s.update(p(0.45, 0.3, 0.25), 0.0, ALL).label == UNCERTAIN


def test_text_alone_counts_as_evidence_and_reset_forgets():
    s = Smoother(LABELS, alpha=0.5, min_confidence=0.3)
    assert s.update(p(0.1, 0.8, 0.1), 0.5, {"visual": 0.0, "audio": 0.0, "text": 1.0}).label == "happy"
    s.reset()
    d = s.update(p(0.1, 0.1, 0.8), -0.5, ALL)
    assert d.label == "sad" and d.valence == pytest.approx(-0.5)
    with pytest.raises(ValueError):
        s.update(p(0.5, 0.5), 0.0, ALL)


def test_valence_is_unknown_while_no_modality_is_reliable():
    s = Smoother(LABELS, alpha=1.0, min_confidence=0.3, min_reliability=0.25)
    coverage = {"visual": 0.0, "audio": 1.0, "text": 0.0}
    stranger = s.update(p(0.1, 0.8, 0.1), 0.7, modality_reliability(coverage, voice_reliability=0.05))
    assert (stranger.label, stranger.reason, stranger.valence) == (UNCERTAIN, "too little input", None)
    familiar = s.update(p(0.1, 0.8, 0.1), 0.7, modality_reliability(coverage, voice_reliability=0.3))
    assert familiar.label == "happy" and familiar.valence == pytest.approx(0.7)


def test_modality_reliability_scales_only_the_voice():
    coverage = {"visual": 0.5, "audio": 0.8, "text": 1.0}
    half = modality_reliability(coverage, VOICE_FULL_TRUST / 2)
    assert half == {"visual": 0.5, "audio": pytest.approx(0.4), "text": 1.0}
    assert modality_reliability(coverage, 1.0)["audio"] == 0.8  # a voice trusted in full counts its coverage
