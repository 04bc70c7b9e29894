"""``main.py`` end to end, as a user runs it: the demo clip headless, a camera that is not there,
Ctrl-C mid-run, a stream that is cut and comes back, and a live microphone (a private PulseAudio
null sink, see helpers/pulse.py) that then disappears."""

import json
import signal
import subprocess
import time
from pathlib import Path

import av
import numpy as np
import pytest
from helpers.mainrun import (CLIP, CLIP_S, MAIN as MAIN_PY, ROOT, TIMEOUT_S, check_inferences, free_port, inference_events,
                     read_events, serve_stream, streams, wait_for_inferences)
from helpers.pulse import speak

MAIN = [*MAIN_PY, "--headless"]


@pytest.mark.slow
def test_demo_clip_headless_writes_events_recording_and_windows(tmp_path, korean_model):
    record, events, windows = tmp_path / "run.mp4", tmp_path / "events.jsonl", tmp_path / "windows"
    cmd = [*MAIN, "--video", str(CLIP), "--record", str(record), "--events", str(events),
           "--save-windows", str(windows)]
    if korean_model is not None:  # any model exercises the words path; the English one may be absent
        cmd += ["--vosk-model", str(korean_model)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]

    log = read_events(events)
    assert log[0]["type"] == "start" and log[-1]["type"] == "end" and log[-1]["reason"] == "end of input"
    # what real time dropped; on a busy machine a live ASR may drop some, so only the record is checked
    assert set(log[-1]["dropped"]) == {"capture_frames", "display_frames", "asr_chunks"}
    inferences = inference_events(log)
    check_inferences(inferences)
    # in real time a hop that is late by more than a hop is skipped (a cold start on a busy 2-core
    # machine skips several); test_as_fast_as_possible_drops_nothing checks that none is lost
    assert len(inferences) >= 5
    assert any(e["present"]["visual"] for e in inferences) and any(e["present"]["audio"] for e in inferences)
    assert inferences[-1]["t_end"] == pytest.approx(CLIP_S, abs=1.0)
    if korean_model is not None:
        assert not any(e["type"] == "status" and e["modality"] == "text" for e in log), "ASR should have run"

    got = streams(record)
    assert got["video"] == pytest.approx(CLIP_S, abs=0.5) and got["audio"] == pytest.approx(CLIP_S, abs=0.5)
    assert got["audio_rms"] > 0.01  # the clip's speech, not silence

    files = sorted(windows.glob("windows_*.npz"))
    assert [f.name for f in files] == ["windows_00000.npz"]
    with np.load(files[0]) as saved:
        assert set(saved.files) == {"visual", "visual_mask", "audio", "audio_mask", "text", "text_mask", "t_end"}
        assert len(saved["t_end"]) == len(inferences) == saved["visual"].shape[0]
        assert saved["visual_mask"].any() and saved["audio"].dtype == saved["text"].dtype == np.float32


def test_as_fast_as_possible_drops_nothing(tmp_path):
    record, events = tmp_path / "run.mp4", tmp_path / "events.jsonl"
    done = subprocess.run([*MAIN, "--video", str(CLIP), "--as-fast-as-possible", "--no-asr", "--record", str(record),
                           "--events", str(events)], capture_output=True, text=True, timeout=TIMEOUT_S, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    inferences = inference_events(read_events(events))
    check_inferences(inferences, realtime=False)
    assert [e["t_end"] for e in inferences] == pytest.approx([0.5 * (k + 1) for k in range(len(inferences))])
    assert inferences[-1]["t_end"] == pytest.approx(CLIP_S, abs=0.5)  # windows follow the data to its end
    full = [e for e in inferences if 4.5 <= e["t_end"] <= CLIP_S]  # whole windows: every face and voice step
    assert full and all(e["coverage"]["visual"] > 0.95 and e["coverage"]["audio"] > 0.95 for e in full)
    with av.open(str(record)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 340  # every frame of the clip


def test_missing_camera_exits_2_with_one_line(tmp_path):
    done = subprocess.run([*MAIN, "--camera", "97", "--events", str(tmp_path / "e.jsonl")],
                          capture_output=True, text=True, timeout=TIMEOUT_S, cwd=ROOT)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "camera 97" in lines[0], done.stderr


def test_sigint_mid_run_leaves_a_playable_recording_and_a_complete_log(tmp_path):
    record, events = tmp_path / "run.mp4", tmp_path / "events.jsonl"
    process = subprocess.Popen([*MAIN, "--video", str(CLIP), "--no-asr", "--record", str(record),
                                "--events", str(events)], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_inferences(events, 4, process)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0, process.stderr.read()[-2000:]
    finally:
        process.kill()
    log = read_events(events)
    assert log[-1]["type"] == "end" and log[-1]["reason"] == "SIGINT"
    check_inferences(inference_events(log))
    got = streams(record)
    assert 1.0 < got["video"] < CLIP_S - 1.0 and got["frames"] > 10
    assert got["audio"] == pytest.approx(got["video"], abs=1.0)


def _wait_for(events: Path, process: subprocess.Popen, condition) -> list[dict]:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        log = [json.loads(line) for line in events.read_text().splitlines()] if events.exists() else []
        if condition(log):
            return log
        time.sleep(0.2)
    raise AssertionError(f"the app did not get there before the deadline (exit {process.poll()})")


@pytest.mark.slow
def test_a_lost_stream_is_reconnected_and_sigterm_ends_cleanly(tmp_path):
    port = free_port()
    events = tmp_path / "events.jsonl"
    server = serve_stream(port)
    process = subprocess.Popen([*MAIN, "--video", f"tcp://127.0.0.1:{port}", "--no-audio", "--events", str(events)],
                               cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        def visual_windows(log, after=-1.0):
            return sum(e["type"] == "inference" and e["present"]["visual"] and e["t_end"] > after for e in log)

        _wait_for(events, process, lambda log: visual_windows(log) >= 2)
        server.kill()
        server.wait()
        log = _wait_for(events, process, lambda log: any(e["type"] == "status" and e["modality"] == "visual"
                                                         and e["state"] == "off" for e in log))
        server = serve_stream(port)
        log = _wait_for(events, process, lambda log: any(e["type"] == "status" and e["modality"] == "visual"
                                                         and e["state"] == "on" for e in log))
        back = next(e["t"] for e in log if e["type"] == "status" and e["state"] == "on")
        _wait_for(events, process, lambda log: visual_windows(log, after=back) >= 2)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, process.stderr.read()[-2000:]
    finally:
        process.kill()
        server.kill()
        server.wait()
    log = read_events(events)
    assert log[-1]["type"] == "end" and log[-1]["reason"] == "SIGTERM"
    check_inferences(inference_events(log))


@pytest.mark.slow
def test_live_microphone_reaches_the_model_and_its_loss_is_survived(pulse_server, tmp_path):
    speech = speak("Hello there, I am talking into the microphone.", tmp_path / "s.wav")
    record, events = tmp_path / "run.mp4", tmp_path / "events.jsonl"
    process = subprocess.Popen([*MAIN, "--video", str(CLIP), "--mic", "pulse", "--no-asr", "--record", str(record),
                                "--events", str(events)], cwd=ROOT, env=pulse_server.client_env,
                               stderr=subprocess.PIPE, text=True)
    try:
        wait_for_inferences(events, 1, process)
        player = pulse_server.play(speech)
        assert player.wait(timeout=30) == 0
        pulse_server.process.kill()  # the microphone disappears mid-run
        assert process.wait(timeout=TIMEOUT_S) == 0, process.stderr.read()[-2000:]
    finally:
        process.kill()
    log = read_events(events)
    assert log[0]["audio"] == "MicrophoneSource" and log[-1]["reason"] == "end of input"
    inferences = inference_events(log)
    check_inferences(inferences)
    assert sum(e["present"]["audio"] and e["coverage"]["audio"] > 0.5 for e in inferences) >= 3
    assert streams(record)["audio_rms"] > 0.01  # the played speech came through the microphone
    lost = [e for e in log if e["type"] == "status" and e["modality"] == "audio" and e["state"] == "off"]
    assert lost, "losing the microphone should turn the audio off, and say so"
    after = [e for e in inferences if e["t_end"] > lost[0]["t"] + 4.5]  # a whole window later
    assert after and all(not e["present"]["audio"] and e["present"]["visual"] for e in after)
