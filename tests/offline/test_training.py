"""Training and evaluation end to end, and the objective's switches."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from helpers.paths import ROOT as REPO

from dmd_lite import evaluate, train
from dmd_lite.objective import CORRECTED, OFFICIAL, margin_loss, orthogonality
from dmd_lite.synthetic import write_synthetic



@pytest.mark.slow
def test_lite_learns_a_planted_signal(tmp_path):
    """Acceptance: Non0 Acc-2 >= 0.90 on the synthetic test split, fixed seed, a minute of CPU."""
    data = write_synthetic(tmp_path / "synth.pkl", n_train=600, n_valid=150, n_test=300,
                           dims=(32, 8, 16), lens=(24, 40, 30), seed=0)
    out = tmp_path / "run"
    run = subprocess.run([sys.executable, "-m", "dmd_lite.train", "--data", str(data), "--preset", "lite",
                          "--out", str(out), "--lr", "1e-3", "--accumulation", "1", "--batch-size", "32",
                          "--max-epochs", "8", "--early-stop", "4", "--seed", "7", "--threads", "2"],
                         capture_output=True, text=True, cwd=REPO, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["Non0_acc_2"] >= 0.90, result
    assert (out / "best" / "model.safetensors").is_file() and (out / "curves.png").stat().st_size > 0
    epochs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs] == list(range(1, len(epochs) + 1))

    ev = subprocess.run([sys.executable, "-m", "dmd_lite.evaluate", "--checkpoint", str(out / "best"),
                         "--data", str(data)], capture_output=True, text=True, cwd=REPO)
    assert ev.returncode == 0, ev.stderr
    report = json.loads(ev.stdout.strip().splitlines()[-1])
    assert report["Non0_acc_2"] == pytest.approx(result["Non0_acc_2"])
    assert len(report["gd_edges"]) == 12


@pytest.mark.parametrize("module", [train, evaluate])
def test_help_describes_every_option(module, capsys):
    with pytest.raises(SystemExit) as exit_:
        module.main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for action in module.parser()._actions:
        assert action.help, f"{action.option_strings} has no help"
        assert action.option_strings[-1] in text
    assert "only plain data is unpickled" in " ".join(text.split())  # a pickle that runs code is refused


def test_train_rejects_a_missing_file(tmp_path):
    run = subprocess.run([sys.executable, "-m", "dmd_lite.train", "--data", str(tmp_path / "no.pkl"),
                          "--out", str(tmp_path / "o")], capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 2 and "no such data file" in run.stderr


def test_bert_without_local_weights_fails_clearly(tmp_path):
    data = write_synthetic(tmp_path / "s.pkl", n_train=4, n_valid=2, n_test=2, dims=(8, 2, 2), lens=(4, 4, 4))
    with pytest.raises(SystemExit) as exit_:
        train.main(["--data", str(data), "--out", str(tmp_path / "o"), "--bert", str(tmp_path / "nobert")])
    assert exit_.value.code == 2


def test_orthogonality_modes():
    s = torch.randn(4, 6, 10)
    assert orthogonality(s, -s, "sample").item() == 0.0  # anti-aligned: nothing to push
    for mode in ("batch", "sample", "step"):
        assert orthogonality(s, s, mode).item() == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError):
        orthogonality(s, s, "nope")


def test_margin_loss_by_hand():
    # anchor 0 and positive 1 aligned, negative 2 orthogonal: hinge = max(0, 0.15*2 - 1 + 0) = 0
    v = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([1.0, 1.0, -1.0])
    valid = torch.ones(3, dtype=torch.bool)
    assert margin_loss(v, y, 0.15, "exact", valid, categorical=False).item() == 0.0
    # negative identical to the anchor: hinge = 0.3 - 1 + 1 = 0.3 for anchors 0 and 1; anchor 2 has no positive
    v2 = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    assert margin_loss(v2, y, 0.15, "exact", valid, categorical=False).item() == pytest.approx(0.3)
    assert margin_loss(v2, y, 0.15, "exact", valid, categorical=True).item() == pytest.approx(0.15)
    # rounding turns 0.9 and 1.1 into positives of each other; exact equality does not
    y3 = torch.tensor([0.9, 1.1, -1.0])
    assert margin_loss(v2, y3, 0.15, "exact", valid, categorical=False).item() == 0.0  # no positives at all
    assert margin_loss(v2, y3, 0.15, "rounded", valid, categorical=False).item() > 0


def test_quirk_switches_differ():
    assert OFFICIAL.ort == "batch" and not OFFICIAL.homo_repr_loss and OFFICIAL.hetero_repr == "min_cosine"
    assert CORRECTED.ort == "sample" and CORRECTED.homo_repr_loss and CORRECTED.hetero_repr == "max_cosine"
