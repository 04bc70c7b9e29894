"""``python -m realtime.extract`` end to end, on real RAVDESS clips, FER images and transcript CSVs."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.paths import DATA, ROOT
from helpers.ravdess import SESSIONS, copy_sessions, ravdess_samples

from realtime.core.feature_spec import FeatureSpec
from realtime.core.resources import shipped
from realtime.core.tokens import tokenize, transcript_times
from realtime.extract import extract, load_shard
from realtime.frontends.voice import VoiceNorm, voice_features
from realtime.frontends.text_frontend import TextFrontEnd
from realtime.window import WindowAssembler

needs_expression_cnn = pytest.mark.skipif(
    not shipped("models/expression_cnn.safetensors").is_file(),
    reason="models/expression_cnn.safetensors is absent: train it with `python -m realtime.expression train`")


def run_extract(kind: str, src: Path, out: Path, workers: int = 1, *options: str) -> tuple[dict, str]:
    """(the JSON on the last stdout line, stderr) of one CLI run, which must exit 0."""
    proc = subprocess.run([sys.executable, "-m", "realtime.extract", "--kind", kind, "--input", str(src),
                           "--out", str(out), "--workers", str(workers), *options],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def read_index(out: Path) -> dict[str, dict]:
    return {r["source"]: r for r in map(json.loads, (out / "index.jsonl").read_text().splitlines())}


@pytest.mark.needs_data
def test_audio_clips_in_speaker_sessions_resume_and_survive_a_corrupt_file(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    copy_sessions(src)
    (src / "Actor_01" / "03-01-05-01-01-01-01.flac").write_bytes(b"fLaC" + bytes(range(256)) * 8)

    summary, err = run_extract("audio", src, out, workers=2)
    assert summary == {"processed": 6, "skipped_existing": 0, "failed": 1, "out": str(out)}
    assert "03-01-05-01-01-01-01.flac" in err
    index = read_index(out)
    assert index["Actor_01/03-01-05-01-01-01-01.flac"]["status"] == "failed"
    happy = index["Actor_01/03-01-03-02-01-01-01.flac"]
    assert (happy["label"], happy["speaker"], happy["shard"]) == ("happy", "ravdess_01", "sessions/ravdess_01.npz")
    calm = index["Actor_01/03-01-02-01-01-01-01.flac"]
    assert (calm["label"], calm["source_label"]) == ("neutral", "calm")
    assert index["Actor_01/03-01-08-01-02-02-01.flac"]["label"] == "surprised"
    sessions = {r["shard"] for r in index.values() if r["status"] == "ok"}
    assert sessions == {"sessions/ravdess_01.npz", "sessions/ravdess_02.npz"}

    # one voice session per speaker: each clip is normalised by what the session heard before it
    session, norm = load_shard(out / "shards" / happy["shard"]), VoiceNorm()
    for n, (record, streams) in enumerate(session):
        expected = voice_features(ravdess_samples(record["source"]), norm=norm)[1]
        np.testing.assert_allclose(streams["audio"][1], expected, atol=1e-5)
        alone = voice_features(ravdess_samples(record["source"]))[1]
        assert (np.abs(streams["audio"][1] - alone).max() < 1e-5) == (n == 0)
    streams = {r["source"]: st for r, st in session}[happy["source"]]
    ts, x = streams["audio"]
    assert x.shape == (happy["n_steps"]["audio"], 323) and x.dtype == np.float32
    assert 70 < len(ts) < 140 and np.allclose(np.diff(ts), 1 / 25)
    assert FeatureSpec.from_dict(json.loads((out / "feature_spec.json").read_text())) == FeatureSpec()
    windows = list(WindowAssembler(FeatureSpec()).recording_windows(streams))
    assert windows and all(w.modalities_present == ("audio",) for w in windows)
    assert windows[-1].audio_mask[-len(ts):].all() if len(ts) < 100 else windows[-1].audio_mask.all()

    # an interrupted run: one session's shard never renamed into place, a temporary file left behind
    shard = out / "shards" / "sessions" / "ravdess_02.npz"
    shard.rename(shard.with_name(f".{shard.name}.123.tmp"))
    summary, _ = run_extract("audio", src, out)
    assert summary == {"processed": 2, "skipped_existing": 5, "failed": 0, "out": str(out)}
    summary, _ = run_extract("audio", src, out)
    assert summary == {"processed": 0, "skipped_existing": 7, "failed": 0, "out": str(out)}
    assert len(read_index(out)) == 7


@pytest.mark.needs_data
def test_clips_alone_are_cold_starts_and_a_folder_of_sessions_is_not_mixed_with_them(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    (src / "Actor_01").mkdir(parents=True)
    for name in SESSIONS["Actor_01"]:
        shutil.copy(DATA / "ravdess_speech_16k" / "Actor_01" / f"{name}.flac", src / "Actor_01")
    summary, _ = run_extract("audio", src, out, 1, "--clips-alone")
    assert summary["processed"] == 4 and summary["failed"] == 0
    index = read_index(out)
    assert {r["shard"] for r in index.values()} == {f"Actor_01/{n}.npz" for n in SESSIONS["Actor_01"]}
    for record in index.values():  # each clip normalised by itself alone, as a live session starts
        [(_, streams)] = load_shard(out / "shards" / record["shard"])
        np.testing.assert_allclose(streams["audio"][1], voice_features(ravdess_samples(record["source"]))[1], atol=1e-5)
    assert json.loads((out / "voice_sessions.json").read_text()) == {"voice_sessions": "clip"}
    with pytest.raises(ValueError, match="one session per clip: add --clips-alone, or choose another --out"):
        extract("audio", src, out, workers=1)
    sessions = tmp_path / "sessions"
    run_extract("audio", src, sessions)
    with pytest.raises(ValueError, match="one session per speaker: drop --clips-alone"):
        extract("audio", src, sessions, workers=1, clips_alone=True)


@pytest.mark.needs_data
@needs_expression_cnn
def test_face_images_are_batched_into_folder_shards(tmp_path):
    src, out = tmp_path / "fer" / "test", tmp_path / "out"
    for emotion in ("happy", "surprise", "disgust", "sad"):
        (src / emotion).mkdir(parents=True)
        for p in sorted((DATA / "fer2013_48" / "test" / emotion).glob("*.png"))[:5]:
            shutil.copy(p, src / emotion)
    (src / "sad" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)

    summary, err = run_extract("image", tmp_path / "fer", out)
    assert summary == {"processed": 20, "skipped_existing": 0, "failed": 1, "out": str(out)}
    assert "broken.png" in err
    index = read_index(out)
    assert len(index) == 21 and index["test/sad/broken.png"]["status"] == "failed"
    shards = sorted(p.relative_to(out / "shards").as_posix() for p in (out / "shards").rglob("*.npz"))
    assert shards == [f"test/{e}/image_0000.npz" for e in ("disgust", "happy", "sad", "surprise")]
    items = load_shard(out / "shards" / "test/surprise/image_0000.npz")
    assert len(items) == 5
    for record, streams in items:
        assert (record["label"], record["split"]) == ("surprised", "test")
        ts, x = streams["visual"]
        assert x.shape == (1, 127) and x[0, 120:].sum() == pytest.approx(1.0, abs=1e-4)  # CNN probabilities
    found = [r for r in index.values() if r["status"] == "ok"]
    assert len(found) >= 15, "MediaPipe should find most FER faces"

    summary, _ = run_extract("image", tmp_path / "fer", out)
    assert summary == {"processed": 0, "skipped_existing": 21, "failed": 0, "out": str(out)}


def test_transcript_csvs_by_schema(tmp_path):
    src, out = tmp_path / "text", tmp_path / "out"
    src.mkdir()
    (src / "test_sent_emo.csv").write_text(
        "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID\n"
        '1,"Oh. That’s so Monica, isn\'t it?!",Rachel,joy,positive,0,0\n'
        "2,,Ross,anger,negative,0,1\n"
        "3,Whatever.,Joey,neutral,neutral,0,2\n", encoding="utf-8")
    (src / "label.csv").write_text("id,text,label,mode\nabc_1,it was really good,2.4,valid\n")
    (src / "notes.csv").write_text("a,b\n1,2\n")

    summary, err = run_extract("text", src, out)
    assert summary == {"processed": 4, "skipped_existing": 0, "failed": 1, "out": str(out)}
    assert "notes.csv" in err and "unknown transcript columns" in err
    index = read_index(out)
    joy = index["test_sent_emo.csv#0"]
    assert (joy["label"], joy["source_label"], joy["speaker"], joy["split"]) == ("happy", "joy", "Rachel", "test")
    assert (joy["valence"], index["test_sent_emo.csv#1"]["valence"]) == (1.0, -1.0)  # MELD sentiment
    mosi = index["label.csv#0"]
    assert (mosi["label"], mosi["valence"], mosi["split"], mosi["speaker"]) == (None, pytest.approx(0.8), "val", "abc")

    items = load_shard(out / "shards" / joy["shard"])
    assert [r["n_steps"]["text"] for r, _ in items] == [6, 0, 1]
    ts, feats = items[0][1]["text"]
    tokens = tokenize("Oh. That\u2019s so Monica, isn't it?!")
    assert tokens == ["oh", "thats", "so", "monica", "isnt", "it!"]  # the word keeps its mark
    expected = TextFrontEnd().features(tokens)
    np.testing.assert_allclose(feats, expected, atol=1e-6)
    np.testing.assert_allclose(ts, transcript_times(6))
    w = WindowAssembler(FeatureSpec()).from_streams(float(ts[-1]), {"text": (ts, feats)})
    np.testing.assert_array_equal(w.text[:6], feats)
    assert w.text_mask.sum() == 6 and w.modalities_present == ("text",)

    summary, _ = run_extract("text", src, out)
    assert summary == {"processed": 0, "skipped_existing": 4, "failed": 1, "out": str(out)}

    # features of other front-end models (a retrained text encoder) are refused, not mixed with new ones
    models = json.loads((out / "front_end_models.json").read_text())
    assert set(models) == {"sentence_encoder.safetensors", "text_encoder.safetensors"}
    (out / "front_end_models.json").write_text(json.dumps(models | {"text_encoder.safetensors": "0" * 64}))
    proc = subprocess.run([sys.executable, "-m", "realtime.extract", "--kind", "text", "--input", str(src),
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].endswith(
        "holds features of other front-end models (text_encoder.safetensors): delete it to extract them "
        "again with the shipped ones"), proc.stderr


@pytest.mark.needs_data
@needs_expression_cnn
def test_video_with_sound_gives_both_streams_on_media_time(tmp_path):
    import av
    import cv2

    faces = sorted((DATA / "fer2013_48" / "test" / "happy").glob("*.png"))[:4]
    sound = ravdess_samples("Actor_01/03-01-03-02-01-01-01.flac")
    src, out = tmp_path / "videos", tmp_path / "out"
    src.mkdir()
    with av.open(str(src / "clip.mp4"), "w") as f:
        video = f.add_stream("mpeg4", rate=30)
        video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        audio = f.add_stream("aac", rate=16000, layout="mono")
        for i in range(60):  # 2 s, a new face every half second
            frame = np.full((240, 320, 3), 90, np.uint8)
            frame[24:216, 64:256] = cv2.resize(cv2.imread(str(faces[i // 15])), (192, 192), interpolation=cv2.INTER_CUBIC)
            f.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")))
        f.mux(video.encode(None))
        block = av.AudioFrame.from_ndarray(sound[None, :32000], format="flt", layout="mono")
        block.sample_rate, block.pts = 16000, 0
        f.mux(audio.encode(block))
        f.mux(audio.encode(None))

    summary, _ = run_extract("video", src, out)
    assert summary == {"processed": 1, "skipped_existing": 0, "failed": 0, "out": str(out)}
    [(record, streams)] = load_shard(out / "shards" / "clip.npz")
    (vt, vx), (at, ax) = streams["visual"], streams["audio"]
    assert vx.shape == (record["n_steps"]["visual"], 127) and ax.shape == (record["n_steps"]["audio"], 323)
    assert 25 <= len(vt) <= 30 and np.allclose(vt * 15, np.round(vt * 15))  # faces found, on the 15 Hz grid
    assert 45 <= len(at) <= 55 and abs(at[0] - vt[0]) < 0.2  # one time base for both
    w = WindowAssembler(FeatureSpec()).from_streams(float(vt[-1]), streams)
    assert w.modalities_present == ("visual", "audio")


def test_a_folder_of_features_from_another_front_end_is_refused(tmp_path):
    """Voice steps of 65 values (before the pitch): the rerun says to delete the folder, and writes nothing."""
    out, src = tmp_path / "out", tmp_path / "in"
    out.mkdir(), src.mkdir()
    old = {**FeatureSpec().to_dict(), "audio_dim": 65}
    (out / "feature_spec.json").write_text(json.dumps(old))
    with pytest.raises(ValueError, match=r"holds features of another front-end \(.*audio_dim.*\): delete it"):
        extract("audio", src, out, workers=1)
    assert sorted(p.name for p in out.iterdir()) == ["feature_spec.json"]


def test_a_folder_of_faces_stays_valid_when_the_voice_features_change(tmp_path):
    """Faces extracted when voice steps had 67 values: the voice's change does not touch them, so a rerun
    goes on and records the current spec; a change to the faces' own features is refused."""
    out, src = tmp_path / "out", tmp_path / "in"
    out.mkdir(), src.mkdir()
    (out / "feature_spec.json").write_text(json.dumps({**FeatureSpec().to_dict(), "audio_dim": 67}))
    extract("image", src, out, workers=1)
    assert json.loads((out / "feature_spec.json").read_text())["audio_dim"] == FeatureSpec().audio_dim
    (out / "feature_spec.json").write_text(json.dumps({**FeatureSpec().to_dict(), "visual_dim": 65}))
    with pytest.raises(ValueError, match=r"holds features of another front-end \(.*visual_dim.*\): delete it"):
        extract("image", src, out, workers=1)
