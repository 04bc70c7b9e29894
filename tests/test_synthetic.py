import numpy as np
import pytest

from dmd_lite.metrics import regression_metrics
from dmd_lite.mmsa import load_mmsa
from dmd_lite.synthetic import main, make_synthetic

MMSA_KEYS = {
    "raw_text", "audio", "vision", "id", "text", "text_bert", "audio_lengths", "vision_lengths",
    "annotations", "classification_labels", "regression_labels",
}


def test_layout_and_labels():
    data = make_synthetic(300, 20, 30, dims=(8, 5, 6), lens=(7, 9, 11), seed=3)
    assert list(data) == ["train", "valid", "test"]
    split = data["train"]
    assert set(split) == MMSA_KEYS
    assert split["text"].shape == (300, 7, 8) and split["text"].dtype == np.float32
    assert split["audio"].shape == (300, 9, 5) and split["vision"].shape == (300, 11, 6)
    assert (split["audio_lengths"] == 9).all() and (split["vision_lengths"] == 11).all()
    y = split["regression_labels"]
    assert y.dtype == np.float32 and y.min() >= -3 and y.max() <= 3
    np.testing.assert_allclose(y, np.round(y, 1), atol=1e-6)
    assert 0 < (y == 0).sum() < 0.15 * len(y)
    assert ((split["annotations"] == "Neutral") == (y == 0)).all()
    assert ((split["annotations"] == "Positive") == (y > 0)).all()
    bert = split["text_bert"]
    assert bert.shape == (300, 3, 7)
    assert (bert[:, 0, 0] == 101).all()  # [CLS]
    assert (bert[:, 1].sum(1) >= 2).all() and set(np.unique(bert[:, 1])) <= {0.0, 1.0}
    assert len(set(split["id"])) == 300


def test_seeded_and_splits_independent():
    a = make_synthetic(10, 4, 5, dims=(4, 3, 2), lens=(3, 3, 3), seed=7)
    b = make_synthetic(20, 4, 5, dims=(4, 3, 2), lens=(3, 3, 3), seed=7)
    c = make_synthetic(10, 4, 5, dims=(4, 3, 2), lens=(3, 3, 3), seed=8)
    np.testing.assert_array_equal(a["test"]["text"], b["test"]["text"])
    assert not np.array_equal(a["test"]["text"], c["test"]["text"])
    with pytest.raises(ValueError, match=">= 2"):
        make_synthetic(10, 4, 5, dims=(4, 1, 2))


def _ridge_non0_acc(data: dict, modalities: list[str]) -> float:
    """Non0 Acc-2 of ridge regression on time-averaged features of the given modalities."""
    def features(split):
        x = np.concatenate([split[m].mean(axis=1) for m in modalities], axis=1)
        return np.c_[x, np.ones(len(x))]

    x, y = features(data["train"]), data["train"]["regression_labels"]
    w = np.linalg.solve(x.T @ x + 10.0 * np.eye(x.shape[1]), x.T @ y)
    return regression_metrics(features(data["test"]) @ w, data["test"]["regression_labels"])["Non0_acc_2"]


def test_planted_signal_needs_fusion():
    data = make_synthetic(800, 10, 800, dims=(32, 5, 20), seed=0)
    fused = _ridge_non0_acc(data, ["text", "audio", "vision"])
    singles = [_ridge_non0_acc(data, [m]) for m in ("text", "audio", "vision")]
    assert fused >= 0.95
    assert max(singles) <= fused - 0.05
    assert min(singles) >= 0.75  # every modality is informative on its own
    weak = make_synthetic(800, 10, 800, dims=(32, 5, 20), seed=0, signal=0.0)
    assert _ridge_non0_acc(weak, ["text", "audio", "vision"]) < 0.65  # no signal, no skill


def test_cli_writes_a_loadable_file(tmp_path, capsys):
    out = tmp_path / "synth.pkl"
    main(["--out", str(out), "--n-train", "6", "--n-valid", "2", "--n-test", "3",
          "--dims", "12", "5", "20", "--lens", "8", "8", "8", "--seed", "1"])
    assert "wrote" in capsys.readouterr().out
    splits = load_mmsa(out)
    assert splits["train"].text.shape == (6, 8, 12) and len(splits["test"]) == 3


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--out", "--n-train", "--n-valid", "--n-test", "--dims", "--lens", "--seed", "--signal"):
        assert option in text
