"""MMSA pickles are read as plain data only: a pickle that would run code is refused before it runs,
by ``load_mmsa`` and by the train / evaluate CLIs (one stderr line, exit 2); real MMSA layouts load."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.paths import ROOT

from dmd_lite.checkpoint import save_checkpoint
from dmd_lite.config import preset
from dmd_lite.mmsa import MMSAFileError, feature_shapes, load_mmsa
from dmd_lite.model import DMD
from dmd_lite.synthetic import make_synthetic, write_synthetic



class _TouchMarker:
    """Unpickles to ``os.system("touch MARKER")``: the classic pickle code-execution payload."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.system, (f"touch '{self.marker}'",)


def _payload(tmp_path: Path) -> tuple[Path, Path]:
    """(an MMSA-shaped pickle whose train split is the payload, the marker it would create)."""
    marker = tmp_path / "MARKER"
    data = make_synthetic(4, 2, 2)
    data["train"] = _TouchMarker(marker)
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL))
    return path, marker


def test_the_payload_is_real(tmp_path):
    """The payload runs under the plain unpickler, so the refusal tests below can fail."""
    path, marker = _payload(tmp_path)
    pickle.loads(path.read_bytes())
    assert marker.exists()


def test_load_refuses_a_pickle_that_runs_code(tmp_path):
    path, marker = _payload(tmp_path)
    with pytest.raises(MMSAFileError) as e:
        load_mmsa(path)
    message = str(e.value)
    assert "\n" not in message and str(path) in message and "system, which is not allowed" in message
    assert not marker.exists()


def _run(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_train_cli_refuses_it_in_one_line(tmp_path):
    path, marker = _payload(tmp_path)
    run = _run("dmd_lite.train", "--data", str(path), "--out", str(tmp_path / "run"), "--device", "cpu")
    assert run.returncode == 2, run.stderr[-2000:]
    assert run.stderr.count("\n") == 1 and "not a plain MMSA pickle" in run.stderr, run.stderr[-2000:]
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_evaluate_cli_refuses_it_in_one_line(tmp_path):
    path, marker = _payload(tmp_path)
    good = load_mmsa(write_synthetic(tmp_path / "good.pkl", 4, 2, 2))
    checkpoint = save_checkpoint(DMD(preset("lite").with_data(**feature_shapes(good["train"]))), tmp_path / "ckpt")
    run = _run("dmd_lite.evaluate", "--checkpoint", str(checkpoint), "--data", str(path))
    assert run.returncode == 2, run.stderr[-2000:]
    assert run.stderr.count("\n") == 1 and "not a plain MMSA pickle" in run.stderr, run.stderr[-2000:]
    assert not marker.exists()


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_synthetic_pickles_load_at_every_protocol(tmp_path, protocol):
    data = make_synthetic(5, 3, 2, seed=1)
    data["train"]["annotations"] = np.array(["Neutral", None, 1.5], dtype=object)[[0, 1, 2, 0, 1]]  # object array
    data["valid"]["meta"] = {"sets": {1, 2}, "scalar": np.float64(0.5), "bytes": b"\x00\xff"}
    path = tmp_path / "synth.pkl"
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    splits = load_mmsa(path)
    np.testing.assert_array_equal(splits["train"].text, data["train"]["text"])
    assert splits["test"].ids == [str(i) for i in data["test"]["id"]]


def test_write_synthetic_output_loads(tmp_path):
    splits = load_mmsa(write_synthetic(tmp_path / "synth.pkl", 6, 3, 3))
    assert [len(splits[s]) for s in ("train", "valid", "test")] == [6, 3, 3]


def test_numpy_1_names_load(tmp_path):
    """Files written by numpy 1 (as the official MMSA downloads were) name ``numpy.core``."""
    data = make_synthetic(4, 2, 2)
    raw = pickle.dumps(data, protocol=2)  # text GLOBAL opcodes: the module names can be rewritten
    assert b"numpy._core.multiarray" in raw
    path = tmp_path / "numpy1.pkl"
    path.write_bytes(raw.replace(b"numpy._core.", b"numpy.core."))
    np.testing.assert_array_equal(load_mmsa(path)["valid"].audio, data["valid"]["audio"])


def test_a_truncated_pickle_is_a_clear_error(tmp_path):
    good = write_synthetic(tmp_path / "good.pkl", 4, 2, 2).read_bytes()
    path = tmp_path / "cut.pkl"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(MMSAFileError, match="is not a plain MMSA pickle"):
        load_mmsa(path)
