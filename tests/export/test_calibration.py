"""Calibration sets: the readers (saved windows, extractions, clips), fused pairing, the coverage
report and the feed the INT8 quantizer reads. Real windows: the shared data's extraction when
present, else the demo clip."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers.paths import ROOT

from calibration.coverage import coverage, format_coverage
from calibration.windows import DEMO_CLIP, WindowSet, default_source, fuse, read_extraction, read_windows
from dmd_lite.recognizer import load_recognizer
from export.quantize import FeedReader
from realtime.core.backends import INPUTS



@pytest.fixture(scope="module")
def spec():
    return load_recognizer("default")[0].spec


@pytest.fixture(scope="module")
def windows(spec) -> WindowSet:
    return read_windows(None, spec, "heldout", 16)


def test_windows_have_the_engine_layout(windows, spec):
    assert len(windows) > 0 and set(windows.arrays) == set(INPUTS)
    assert windows.arrays["visual"].shape[1:] == (spec.visual_steps, spec.visual_dim)
    assert windows.arrays["audio_mask"].dtype == bool and windows.arrays["text"].dtype == np.float32
    assert windows.present().any(axis=0).sum() >= 2  # at least two modalities appear somewhere
    assert len(windows.labels) == len(windows.kinds) == len(windows)


def test_saved_windows_as_the_app_writes_them_are_read_back(windows, tmp_path):
    n = min(len(windows), 10)
    arrays = {k: v[:n] for k, v in windows.arrays.items()}
    np.savez(tmp_path / "windows_00000.npz", **arrays, t_end=np.arange(n, dtype=np.float64))  # main.py --save-windows
    back = read_windows(tmp_path, None)
    assert len(back) == n and (back.labels == -1).all() and set(back.kinds) == {"saved"}
    for k in INPUTS:
        np.testing.assert_array_equal(back.arrays[k], arrays[k])


def test_a_saved_set_keeps_labels_and_kinds(windows, tmp_path):
    windows.save(tmp_path, per_file=7)
    back = read_windows(tmp_path, None)
    assert len(list(tmp_path.glob("windows_*.npz"))) == -(-len(windows) // 7)
    np.testing.assert_array_equal(back.labels, windows.labels)
    assert list(back.kinds) == list(windows.kinds)


def test_a_file_that_is_not_windows_is_refused(tmp_path):
    np.savez(tmp_path / "windows_00000.npz", visual=np.zeros((1, 2)))
    with pytest.raises(ValueError, match="missing"):
        read_windows(tmp_path, None)


def test_demo_clip_gives_face_and_voice_windows_along_it(spec):
    clip = read_windows(DEMO_CLIP, spec, "heldout", None)
    assert len(clip) >= 10 and set(clip.kinds) == {"clip"} and (clip.labels == -1).all()
    present = clip.present()
    assert present[:, 0].mean() > 0.8 and present[:, 1].mean() > 0.8  # a face and a voice in most windows


def test_fused_windows_pair_one_of_each_modality_per_label(spec):
    n = 6

    def single(kind: str, modality: str, labels: list[int]) -> WindowSet:
        arrays = {"visual": np.zeros((n, spec.visual_steps, spec.visual_dim), np.float32),
                  "audio": np.zeros((n, spec.audio_steps, spec.audio_dim), np.float32),
                  "text": np.zeros((n, spec.max_words, spec.text_dim), np.float32)}
        arrays |= {f"{m}_mask": np.zeros(arrays[m].shape[:2], bool) for m in ("visual", "audio", "text")}
        arrays[f"{modality}_mask"][:] = True
        arrays[modality][:] = np.array(labels).reshape(-1, *[1] * (arrays[modality].ndim - 1)) + 1
        return WindowSet(arrays, np.array(labels), np.full(n, kind, dtype=object), "synthetic")

    parts = [single("face", "visual", [0, 1, 1, 2, 2, 2]), single("voice", "audio", [2, 1, 0, 2, 1, 2]),
             single("words", "text", [1, 2, 2, 0, 2, 1])]
    merged = WindowSet({k: np.concatenate([p.arrays[k] for p in parts]) for k in INPUTS},
                       np.concatenate([p.labels for p in parts]), np.concatenate([p.kinds for p in parts]), "synthetic")
    fused = fuse(merged, None)
    assert fused is not None and fused.present().all()
    assert sorted(fused.labels.tolist()) == [0, 1, 1, 2, 2, 2]  # per label: the fewest of the three pools
    for m in ("visual", "audio", "text"):  # each window's parts carry its label
        np.testing.assert_array_equal(fused.arrays[m].reshape(len(fused), -1)[:, 0], fused.labels + 1)


def test_coverage_counts_labels_modalities_and_kinds(windows, spec):
    report = coverage(windows, spec.labels)
    for key in ("labels", "modalities", "kinds"):
        assert sum(report[key].values()) == len(windows)
    assert set(report["labels"]) <= {*spec.labels, "unknown"}
    assert "windows from" in format_coverage(report)


def test_feed_reader_gives_equal_batches_covering_every_window(windows):
    data = {k: v[:11] for k, v in windows.arrays.items()}
    reader = FeedReader(data, {"visual": np.float32}, batch=4)
    batches = list(iter(reader.get_next, None))
    assert [len(b["visual"]) for b in batches] == [4, 4, 4]
    seen = np.concatenate([b["visual"] for b in batches])[:11]
    np.testing.assert_array_equal(seen, data["visual"])


@pytest.mark.slow
def test_cli_writes_a_set_and_its_coverage(windows, tmp_path, out_dir):
    windows.save(tmp_path / "src")
    result = subprocess.run([sys.executable, "-m", "calibration", "--source", str(tmp_path / "src"), "--out",
                             str(out_dir)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads((out_dir / "coverage.json").read_text())
    assert report["n_windows"] == len(windows) and "windows from" in result.stdout
    bad = subprocess.run([sys.executable, "-m", "calibration", "--source", str(tmp_path / "nope"), "--out",
                          str(tmp_path / "o2")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("calibration: ") and bad.stderr.count("\n") == 1


def test_default_source_is_the_shared_extraction_or_the_demo_clip():
    source = default_source()
    assert source == DEMO_CLIP or all((source / name / "index.jsonl").is_file() for name in ("fer2013", "ravdess", "text"))


def test_an_extraction_of_some_sets_only_is_not_the_default_source(tmp_path, monkeypatch):
    """Voices alone (an extraction made for the voice benches) would calibrate and gate the export on
    one modality: the demo clip's windows are taken instead, until faces, voices and words are there."""
    monkeypatch.setattr("calibration.windows.DEFAULT_EXTRACTION", tmp_path)
    for name in ("nemo", "ravdess"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "index.jsonl").write_text("")
    assert default_source() == DEMO_CLIP
    for name in ("fer2013", "text"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "index.jsonl").write_text("")
    assert default_source() == tmp_path


def test_an_extraction_of_faces_is_read_whatever_the_voice_features_were(spec, tmp_path):
    """Faces extracted under a spec whose voice steps differed are read (their features are the same);
    a spec whose face features differ is refused, naming the field."""
    from realtime.extract import extract

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    shutil.copy(ROOT / "media" / "astronaut.png", src / "astronaut.png")
    extract("image", src, out, workers=1)
    recorded = json.loads((out / "feature_spec.json").read_text())
    (out / "feature_spec.json").write_text(json.dumps({**recorded, "audio_dim": 67}))
    faces = read_extraction(out, spec, "calibration", None)
    assert len(faces) == 1 and set(faces.kinds) == {"face"}
    (out / "feature_spec.json").write_text(json.dumps({**recorded, "visual_dim": 65}))
    with pytest.raises(ValueError, match="visual_dim"):
        read_extraction(out, spec, "calibration", None)
