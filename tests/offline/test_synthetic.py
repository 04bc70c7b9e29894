import pickle

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


def test_cli_options_reach_the_data(tmp_path, capsys):
    """Every option changes what is written: the file holds exactly make_synthetic's splits for them."""
    out = tmp_path / "synth.pkl"
    main(["--out", str(out), "--n-train", "7", "--n-valid", "3", "--n-test", "4", "--dims", "6", "3", "4",
          "--lens", "5", "6", "7", "--seed", "11", "--signal", "2.5"])
    assert "7/3/4 samples, dims (6, 3, 4), lens (5, 6, 7)" in capsys.readouterr().out
    with out.open("rb") as f:
        written = pickle.load(f)
    expected = make_synthetic(7, 3, 4, dims=(6, 3, 4), lens=(5, 6, 7), seed=11, signal=2.5)
    assert list(written) == ["train", "valid", "test"]
    for split in expected:
        assert set(written[split]) == MMSA_KEYS
        for key, value in expected[split].items():
            np.testing.assert_array_equal(written[split][key], value, err_msg=f"{split}/{key}")
    assert written["valid"]["id"][0] == "valid0000$_$0" and written["test"]["vision"].shape == (4, 7, 4)
    labels = written["train"]["regression_labels"]
    np.testing.assert_array_equal(written["train"]["classification_labels"], np.sign(labels) + 1)


def test_cli_defaults_are_mosi_sized(tmp_path):
    out = tmp_path / "synth.pkl"
    main(["--out", str(out), "--n-train", "2", "--n-valid", "1", "--n-test", "1"])
    splits = load_mmsa(out)
    train = splits["train"]
    # MOSI's BERT (768), COVAREP-subset (5) and FACET-subset (20) feature sizes, aligned to 50 steps
    assert train.text.shape == (2, 50, 768) and train.audio.shape == (2, 50, 5) and train.vision.shape == (2, 50, 20)
    with out.open("rb") as f:
        written = pickle.load(f)
    np.testing.assert_array_equal(written["test"]["text"], make_synthetic(2, 1, 1, seed=0, signal=8.0)["test"]["text"])


@pytest.mark.parametrize("args, message", [(["--n-test", "0"], "at least one sample"),
                                           (["--dims", "8", "1", "4"], ">= 2"),
                                           (["--lens", "8", "8", "1"], ">= 2")])
def test_cli_refuses_sizes_it_cannot_make_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "synth.pkl"
    with pytest.raises(ValueError, match=message):
        main(["--out", str(out), "--n-train", "4", "--n-valid", "2", "--n-test", "2", *args])
    assert not out.exists()


def test_label_distribution_is_mosi_like():
    y = make_synthetic(4000, 1, 1, dims=(2, 2, 2), lens=(2, 2, 2), seed=5)["train"]["regression_labels"]
    assert abs(float(y.mean())) < 0.1 and y.std() == pytest.approx(np.sqrt(3), rel=0.05)  # uniform on [-3, 3]
    # 4 % forced to 0 (MOSI: 96 of 2,199), plus the draws that round to 0.0 (a 0.1-wide slice of 6)
    assert (y == 0).mean() == pytest.approx(0.04 + 0.96 * 0.1 / 6, abs=0.012)
    assert y.min() == pytest.approx(-3, abs=0.1) and y.max() == pytest.approx(3, abs=0.1)
