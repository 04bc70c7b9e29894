"""The cross-corpus figure that ``dmd_lite.evaluate`` writes beside its JSON line."""

from __future__ import annotations

import cv2
import numpy as np

from dmd_lite.plots import plot_cross_corpus


def evaluate_result(scale: float = 1.0) -> dict:
    """The fields the figure reads, in the shape ``dmd_lite.evaluate`` gives them."""
    views = {c: {"n": 100, "session_uar": 0.6 * scale, "live_uar": 0.5 * scale} for c in ("ravdess", "nemo", "turev")}
    left_out = {"ravdess": {"uar": 0.33 * scale, "x_chance": 2.3 * scale}, "turev": {"uar": 0.28, "x_chance": 1.1},
                "mean_uar": 0.3}
    fused = {c: {"accuracy": 0.7, "alone_accuracy": {"visual": 0.66, "audio": 0.4 * scale}} for c in ("ravdess", "nemo")}
    return {"voice_live_conditions": views | {"mean": {"session_uar": 0.6}}, "voice_cross_corpus": left_out,
            "fused_cross_corpus_paired": fused | {"mean": {"accuracy": 0.7}}}


def test_the_figure_shows_the_result_it_is_given(tmp_path):
    assert plot_cross_corpus(evaluate_result(), tmp_path / "a" / "cross_corpus.png")
    assert plot_cross_corpus(evaluate_result(0.5), tmp_path / "b.png")
    a, b = cv2.imread(str(tmp_path / "a" / "cross_corpus.png")), cv2.imread(str(tmp_path / "b.png"))
    assert a.shape == b.shape == (450, 1300, 3)
    assert np.abs(a.astype(int) - b).sum() > 0  # other figures, another picture


def test_missing_cross_corpus_results_draw_what_is_there_or_nothing(tmp_path):
    partial = evaluate_result() | {"voice_cross_corpus": {"missing": "run loco first"}, "fused_cross_corpus_paired":
                                   {"missing": "no recognizers"}}
    assert plot_cross_corpus(partial, tmp_path / "partial.png")
    assert cv2.imread(str(tmp_path / "partial.png")) is not None
    assert not plot_cross_corpus({"face_fer2013_test": {"accuracy": 0.68}}, tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()
