import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from dmd_lite.metrics import classification_metrics, regression_metrics, save_confusion_png


def test_regression_matches_sklearn_on_random_scores():
    rng = np.random.default_rng(0)
    t = np.round(rng.uniform(-3, 3, 500), 1)
    t[:40] = 0.0
    p = t + rng.normal(0, 1.2, 500)
    m = regression_metrics(p, t)

    assert m["Has0_acc_2"] == pytest.approx(accuracy_score(t >= 0, p >= 0))
    assert m["Has0_F1_score"] == pytest.approx(f1_score(t >= 0, p >= 0, average="weighted"))
    nz = t != 0
    assert m["Non0_acc_2"] == pytest.approx(accuracy_score(t[nz] > 0, p[nz] > 0))
    assert m["Non0_F1_score"] == pytest.approx(f1_score(t[nz] > 0, p[nz] > 0, average="weighted"))
    for k, bound in ((3, 1), (5, 2), (7, 3)):
        rounded = [np.round(np.clip(x, -bound, bound)) for x in (t, p)]
        assert m[f"Mult_acc_{k}"] == pytest.approx(accuracy_score(*rounded))
    assert m["MAE"] == pytest.approx(np.abs(p - t).mean())
    assert m["Corr"] == pytest.approx(np.corrcoef(p, t)[0, 1])
    assert m["Has0_acc_2"] != m["Non0_acc_2"]  # the exact zeros make the two flavours differ


def test_regression_hand_computed_with_zero_targets_and_half_to_even():
    t = np.array([0.0, 0.0, 1.0, -2.0])
    p = np.array([0.5, -0.5, 2.5, -1.5])
    m = regression_metrics(p, t)
    # has0: truth [T T T F], pred [T F T F]; F1(True) = 4/5 (support 3), F1(False) = 2/3 (support 1)
    assert m["Has0_acc_2"] == pytest.approx(0.75)
    assert m["Has0_F1_score"] == pytest.approx((3 * 0.8 + 2 / 3) / 4)
    # non0 keeps only the last two samples, both right
    assert m["Non0_acc_2"] == 1.0 and m["Non0_F1_score"] == 1.0
    # half to even: 0.5 -> 0, -0.5 -> -0, 2.5 -> 2, -1.5 -> -2 (half away from zero would give 1/4)
    assert m["Mult_acc_7"] == pytest.approx(0.75)
    assert m["Mult_acc_5"] == pytest.approx(0.75)  # 2.5 clips to 2, target 1
    assert m["Mult_acc_3"] == 1.0  # everything clips to [-1, 1]
    assert m["MAE"] == pytest.approx(0.75)


def test_regression_accepts_tensors_of_any_shape_and_handles_all_zero_targets():
    p = torch.tensor([[0.3], [-1.2], [2.0]])
    t = torch.tensor([[0.0], [0.0], [0.0]])
    m = regression_metrics(p, t)
    assert m == pytest.approx(regression_metrics(p.numpy().ravel(), t.numpy().ravel()), nan_ok=True)
    assert np.isnan(m["Non0_acc_2"]) and np.isnan(m["Non0_F1_score"]) and np.isnan(m["Corr"])
    with pytest.raises(ValueError, match="same non-zero size"):
        regression_metrics(np.zeros(3), np.zeros(4))


def test_classification_matches_sklearn_on_random_labels():
    rng = np.random.default_rng(1)
    n = 6
    t = rng.integers(0, n, 300)
    p = np.where(rng.random(300) < 0.6, t, rng.integers(0, n, 300))
    m = classification_metrics(p, t, n)
    assert m["accuracy"] == pytest.approx(accuracy_score(t, p))
    labels = list(range(n))
    assert m["macro_f1"] == pytest.approx(f1_score(t, p, labels=labels, average="macro", zero_division=0))
    assert m["weighted_f1"] == pytest.approx(f1_score(t, p, labels=labels, average="weighted", zero_division=0))
    assert m["confusion"] == confusion_matrix(t, p, labels=labels).tolist()


def test_classification_macro_f1_averages_over_all_classes():
    t = np.array([0, 0, 1, 1, 2])
    p = np.array([0, 1, 1, 1, 2])
    three = classification_metrics(p, t, 3)
    five = classification_metrics(torch.tensor(p), torch.tensor(t), 5)  # classes 3 and 4 never occur
    assert five["macro_f1"] == pytest.approx(three["macro_f1"] * 3 / 5)
    assert five["weighted_f1"] == pytest.approx(three["weighted_f1"])
    assert np.array(five["confusion"]).shape == (5, 5)
    assert five["confusion"][0] == [1, 1, 0, 0, 0]  # row = true class 0: one right, one called 1


def test_classification_rejects_out_of_range_labels():
    with pytest.raises(ValueError, match=r"integer labels in \[0, 3\)"):
        classification_metrics([0, 3], [0, 1], 3)
    with pytest.raises(ValueError, match="target"):
        classification_metrics([0, 1], [0, 1.5], 3)


def test_save_confusion_png(tmp_path):
    path = tmp_path / "plots" / "cm.png"
    save_confusion_png([[3, 1, 0], [0, 0, 0], [2, 0, 5]], ["neg", "neu", "pos"], path, "test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="expected"):
        save_confusion_png([[1, 2], [3, 4]], ["a", "b", "c"], tmp_path / "bad.png", "bad")
