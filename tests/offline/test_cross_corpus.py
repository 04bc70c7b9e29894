"""The speech corpora's readers and the cross-corpus voice evaluation (``realtime.offline.speech_corpora``,
``realtime.offline.cross_corpus``, ``python -m realtime.voice_encoder evaluate-corpora``)."""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.paths import DATA, ROOT

from dmd_lite.metrics import class_scores
from realtime.core.feature_spec import LABELS
from realtime.offline.cross_corpus import score_corpus
from realtime.offline.speech_corpora import (CORPUS_FOLDERS, MANIFEST, CorpusError, check_speakers, classes,
                                             corpus_clips, manifest_clips)
from realtime.offline.voice_encoder import main

# The class sets the shared data's README gives for each corpus.
EXPECTED_CLASSES = {
    "ravdess": LABELS,
    "nemo": ("neutral", "happy", "sad", "angry", "fearful", "surprised"),  # no disgust
    "tess": LABELS,
    "turev": ("neutral", "happy", "sad", "angry"),
    "urdu": ("neutral", "happy", "sad", "angry"),
}


@pytest.mark.needs_data("speech")
@pytest.mark.parametrize("corpus", sorted(CORPUS_FOLDERS))
def test_readers_give_speaker_disjoint_splits_and_the_corpus_classes(corpus):
    clips = corpus_clips(DATA, corpus)
    speakers = {s: {c.speaker for c in clips if c.split == s} for s in ("train", "val", "test")}
    assert all(speakers.values()), speakers
    assert not speakers["train"] & (speakers["val"] | speakers["test"])
    if corpus != "tess":  # TESS's second speaker is split by word into val and test (README)
        assert not speakers["val"] & speakers["test"]
    assert classes(clips) == EXPECTED_CLASSES[corpus]
    assert all(c.label in LABELS for c in clips)
    folder = DATA / CORPUS_FOLDERS[corpus]
    assert all((folder / c.audio).is_file() for c in clips[:50])


def test_shared_speakers_and_unknown_labels_are_refused(tmp_path):
    rows = [{"audio": "a.opus", "speaker": "s1", "label": "sad", "label_orig": "Sad", "split": "train"},
            {"audio": "b.opus", "speaker": "s1", "label": "sad", "label_orig": "Sad", "split": "test"}]
    with pytest.raises(CorpusError, match="s1"):
        check_speakers(manifest_clips_from(tmp_path / "c1", rows), "c1")
    rows[1].update(speaker="s2", label="calm")
    with pytest.raises(CorpusError, match="'calm'"):
        manifest_clips_from(tmp_path / "c2", rows)


def manifest_clips_from(folder: Path, rows: list[dict]):
    """``manifest_clips`` of a folder holding only a manifest of ``rows``."""
    write_manifest(folder, rows)
    return manifest_clips(folder)


def write_manifest(folder: Path, rows: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / MANIFEST, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_scores_over_the_corpus_own_classes():
    idx = {lab: LABELS.index(lab) for lab in LABELS}
    labels = np.array([idx["sad"]] * 2 + [idx["angry"]] * 2)
    scores = np.full((4, len(LABELS)), -5.0)
    scores[:, idx["fearful"]] = 1.0  # the raw answer: always fearful, outside the corpus
    scores[[0, 1, 2], idx["sad"]] = 0.5  # next best: sad, sad, sad, angry
    scores[3, idx["angry"]] = 0.5
    entry = score_corpus(scores, labels, ("neutral", "sad", "angry"))
    assert entry["test_classes"] == ["sad", "angry"] and entry["chance_uniform"] == pytest.approx(1 / 3, abs=1e-4)
    assert entry["raw"]["accuracy"] == 0 and entry["raw"]["answers"] == {"fearful": 1.0}
    assert entry["restricted"]["accuracy"] == 0.75 and entry["restricted"]["uar"] == 0.75
    assert entry["restricted"]["answers"] == {"sad": 0.75, "angry": 0.25}
    assert entry["chance_majority"] == 0.5
    assert class_scores(np.zeros((2, 2)), [])["uar"] != class_scores(np.zeros((2, 2)), [])["uar"]  # NaN


@pytest.mark.needs_data("speech/tess")
def test_evaluate_corpora_end_to_end_on_a_few_real_clips(tmp_path, capsys):
    """Six TESS test clips and one training clip, copied with their manifest rows: extraction with the
    live front-end, the shipped encoder's scores, a JSON last line and the confusion pictures."""
    src = DATA / CORPUS_FOLDERS["tess"]
    with open(src / MANIFEST, newline="") as f:
        rows = list(csv.DictReader(f))
    picked = [next(r for r in rows if r["split"] == "train" and r["label"] == "angry")]
    for label in ("angry", "sad", "happy"):
        picked += [r for r in rows if r["split"] == "test" and r["label"] == label][:2]
    data = tmp_path / "data"
    corpus = data / CORPUS_FOLDERS["tess"]
    for r in picked:
        (corpus / r["audio"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / r["audio"], corpus / r["audio"])
    write_manifest(corpus, picked)
    report = tmp_path / "report"
    assert main(["evaluate-corpora", "--data", str(data), "--corpora", "tess", "--extraction", str(tmp_path / "ex"),
                 "--report", str(report), "--workers", "1"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    entry = result["tess"]
    assert entry["n"] == 6 and entry["classes"] == ["happy", "sad", "angry"]
    assert entry["chance_uniform"] == pytest.approx(1 / 3, abs=1e-4)
    for kind in ("raw", "restricted"):
        assert 0 <= entry[kind]["uar"] <= 1 and sum(entry[kind]["answers"].values()) == pytest.approx(1, abs=1e-3)
        assert (report / f"confusion_voice_tess_{kind}.png").stat().st_size > 1000
    assert set(entry["restricted"]["answers"]) <= {"happy", "sad", "angry"}


def test_a_corpus_folder_without_manifest_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "speech" / "urdu").mkdir(parents=True)
    proc = subprocess.run([sys.executable, "-m", "realtime.voice_encoder", "evaluate-corpora", "--data", str(tmp_path),
                           "--corpora", "urdu", "--extraction", str(tmp_path / "ex")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "no manifest.csv" in proc.stderr and "Traceback" not in proc.stderr
