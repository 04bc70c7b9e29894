"""``main.py`` given the inputs and faults users meet: each run ends with the promised exit status
(0 after a run, 2 with one line for an unusable argument or input), no traceback, and whatever was
written so far decodes (recording) and parses (event log, with its ``end`` line)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import numpy as np
import pytest
from helpers.mainrun import CLIP, MAIN, ROOT, check_exit, check_finalised, free_port, run_main, serve_stream, streams
from safetensors.numpy import load_file, save_file

from realtime.core.files import sha256
from realtime.core.resources import shipped
from realtime.nets.model_files import SHA256_KEY

NO_MIC = {**os.environ, "PULSE_SERVER": "unix:/nonexistent/pulse"}  # no sound server: no microphone


@pytest.fixture
def asr(korean_model: Path | None) -> list[str]:
    """The flags of a speech recogniser that loads while the app starts (start-up errors must meet one)."""
    return ["--vosk-model", str(korean_model)] if korean_model is not None else []


@contextlib.contextmanager
def tmpfs(path: Path, size: str, read_only: bool = False) -> Iterator[Path]:
    """A small RAM file system at ``path`` (a real full disk, a real read-only folder); skips where
    mounting is not allowed (not root, no mount namespace)."""
    path.mkdir()
    options = f"size={size}" + (",ro" if read_only else "")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def silent_copy(path: Path) -> Path:
    """The demo clip's picture without its audio track."""
    with av.open(str(CLIP)) as src, av.open(str(path), "w") as dst:
        video = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(video=0):
            if packet.dts is not None:
                packet.stream = video
                dst.mux(packet)
    return path


@pytest.mark.slow
def test_a_video_without_sound_runs_with_voice_off(tmp_path, asr):
    events, record = tmp_path / "e.jsonl", tmp_path / "r.mp4"
    done = run_main("--video", str(silent_copy(tmp_path / "silent.mp4")), *asr, "--events", str(events),
                    "--record", str(record))
    check_exit(done, 0)
    log = check_finalised(events, record)
    assert "no audio track" in log[0]["off"]["audio"] and log[-1]["reason"] == "end of input"
    assert any(e["type"] == "inference" and e["present"]["visual"] for e in log)


@pytest.mark.slow
def test_a_live_source_without_a_microphone_runs_with_voice_off(tmp_path):
    port, events = free_port(), tmp_path / "e.jsonl"
    server = serve_stream(port)
    try:
        done = run_main("--video", f"tcp://127.0.0.1:{port}", "--events", str(events), "--max-seconds", "6",
                        env=NO_MIC)
    finally:
        server.kill()
        server.wait()
    check_exit(done, 0)
    log = check_finalised(events)
    assert log[0]["audio"] is None and "microphone" in log[0]["off"]["audio"]
    assert any(e["type"] == "inference" and e["present"]["visual"] for e in log)


@pytest.mark.parametrize("case", ["empty checkpoint", "missing checkpoint", "corrupt checkpoint", "cuda",
                                  "missing engine", "unwritable events", "events folder that cannot be made"])
def test_start_up_errors_exit_2_while_the_speech_model_loads(tmp_path, case, asr):
    args = {"empty checkpoint": ["--checkpoint", str(tmp_path)],
            "missing checkpoint": ["--checkpoint", str(tmp_path / "nowhere")],
            "corrupt checkpoint": ["--checkpoint", str(corrupt_checkpoint(tmp_path))],
            "cuda": ["--device", "cuda"],
            "missing engine": ["--backend", "onnx", "--engine", str(tmp_path / "missing.onnx")],
            "unwritable events": ["--events", "/proc/version/events.jsonl"],
            "events folder that cannot be made": ["--events", "/proc/nowhere/events.jsonl"]}[case]
    if case == "cuda" and _has_cuda():
        pytest.skip("this machine has CUDA")
    done = run_main("--video", str(CLIP), *asr, *args)
    check_exit(done, 2)
    if case.startswith("events folder"):
        assert "--events /proc/nowhere/events.jsonl: cannot write" in done.stderr  # up front, or when opened


def corrupt_checkpoint(tmp_path: Path) -> Path:
    folder = tmp_path / "corrupt"
    folder.mkdir()
    (folder / "config.json").write_text((shipped("models/default") / "config.json").read_text())
    (folder / "model.safetensors").write_bytes(b"\xff" * 64)
    return folder


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.parametrize("args", [["--camera", "-1"], ["--max-seconds", "-1"], ["--max-seconds", "nan"],
                                  ["--max-seconds", "inf"], ["--threads", "1000"], ["--threads", "0"],
                                  ["--engine", "model.onnx"], ["--record", "."], ["--events", "."],
                                  ["--record", "/proc/nope/r.mp4"]],  # /proc: no file can be made, even by root
                         ids=" ".join)
def test_unusable_arguments_exit_2_with_one_line(args):
    done = subprocess.run([*MAIN, "--headless", *args], capture_output=True, text=True, timeout=60, cwd=ROOT)
    check_exit(done, 2)


def test_recording_into_a_read_only_folder_exits_2(tmp_path):
    with tmpfs(tmp_path / "ro", "1m", read_only=True) as folder:
        done = run_main("--video", str(CLIP), "--record", str(folder / "r.mp4"))
    assert "cannot write in" in check_exit(done, 2)


@pytest.mark.parametrize("source", ["missing", "empty", "text", "truncated"])
def test_unusable_video_files_exit_2(tmp_path, source):
    path = tmp_path / f"{source}.mp4"
    if source == "empty":
        path.write_bytes(b"")
    elif source == "text":
        path.write_text("not a video\n")
    elif source == "truncated":
        path.write_bytes(CLIP.read_bytes()[:2000])
    done = run_main("--video", str(path), "--no-asr")
    check_exit(done, 2)


@pytest.mark.slow
def test_a_full_disk_turns_the_recording_off_and_nothing_is_lost(tmp_path):
    events = tmp_path / "e.jsonl"
    with tmpfs(tmp_path / "disk", "400k") as disk:
        record = disk / "r.mp4"
        done = run_main("--video", str(CLIP), "--no-asr", "--record", str(record), "--events", str(events))
        check_exit(done, 0)
        assert "recording (off early: " in done.stdout
        log = check_finalised(events, record)  # the recording decodes up to the failure
        got = streams(record)
        assert 0.5 < got["video"] < 11.0  # some of the clip, not all of it
    off = [e for e in log if e["type"] == "status" and e["modality"] == "recording"]
    assert off and "No space left" in off[0]["why"]
    assert log[-1]["recording"].startswith("off: ") and log[-1]["reason"] == "end of input"
    after = [e for e in log if e["type"] == "inference" and e["t_end"] > off[0]["t"] + 1]
    assert after, "the recognizer goes on after the recording stops"


class _CountingHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # quiet; the server counts instead
        self.server.requests += 1  # type: ignore[attr-defined]


@pytest.mark.slow
def test_a_stream_that_opens_but_yields_almost_nothing_is_retried_ever_slower(tmp_path):
    """An HTTP "camera" that serves one frame a connection: without growing waits the app would
    reconnect every ~0.6 s (about 20 times in 12 s); with them it waits 0.5, 1, 2, 4, 8 s."""
    one_frame = tmp_path / "one.mkv"
    with av.open(str(CLIP)) as src, av.open(str(one_frame), "w") as dst:
        stream = dst.add_stream("mjpeg", rate=30)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuvj420p"
        frame = next(src.decode(video=0)).reformat(320, 240)
        dst.mux(stream.encode(frame))
        dst.mux(stream.encode(None))
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_CountingHandler, directory=str(tmp_path)))
    server.requests = 0  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    events = tmp_path / "e.jsonl"
    try:
        done = run_main("--video", f"http://127.0.0.1:{server.server_port}/one.mkv", "--no-audio",
                        "--events", str(events), "--max-seconds", "12")
    finally:
        server.shutdown()
    check_exit(done, 0)
    log = check_finalised(events)
    visual = [e for e in log if e["type"] == "status" and e["modality"] == "visual"]
    assert 2 <= server.requests <= 7, f"{server.requests} connections in 12 s"
    assert [e["state"] for e in visual] == ["off"], visual  # never "back on": no frames flowed


def nan_checkpoint(tmp_path: Path) -> Path:
    """The shipped checkpoint with one layer's weights set to NaN, its config's sha256 updated: a
    file that passes every check and answers NaN."""
    folder = tmp_path / "nan"
    folder.mkdir()
    weights = load_file(shipped("models/default") / "model.safetensors")
    weights["dmd.fusion_head.out.weight"] = np.full_like(weights["dmd.fusion_head.out.weight"], np.nan)
    save_file(weights, folder / "model.safetensors", metadata={"format": "dmd_lite"})
    config = json.loads((shipped("models/default") / "config.json").read_text())
    config[SHA256_KEY] = sha256(folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.slow
def test_a_model_answering_nan_is_reported_per_window_and_the_app_goes_on(tmp_path):
    events, record = tmp_path / "e.jsonl", tmp_path / "r.mp4"
    done = run_main("--video", str(CLIP), "--no-asr", "--checkpoint", str(nan_checkpoint(tmp_path)),
                    "--events", str(events), "--record", str(record), "--max-seconds", "4")
    check_exit(done, 0)
    log = check_finalised(events, record)
    failed = [e for e in log if e["type"] == "failed"]
    assert failed and all("NaN" in e["why"] or "finite" in e["why"] for e in failed)
    assert log[-1]["failed_windows"] == len(failed) and log[-1]["reason"] == "max-seconds"
    assert any(e["type"] == "status" and e["modality"] == "model" and e["state"] == "off" for e in log)


def test_ctrl_c_during_start_up_exits_0_without_a_traceback(tmp_path, asr):
    process = subprocess.Popen([*MAIN, "--headless", "--video", str(CLIP), *asr], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2.0)  # inside the imports or the model loads
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]


@pytest.mark.slow
def test_native_libraries_stay_quiet_below_debug(tmp_path):
    done = run_main("--video", str(CLIP), "--no-asr", "--max-seconds", "3")
    check_exit(done, 0)
    native = [line for line in done.stderr.splitlines()
              if line.startswith(("W0000", "I0000", "E0000", "INFO: Created TensorFlow", "WARNING: Logging before"))]
    assert not native, native
    loud = subprocess.run([*MAIN, "--headless", "--video", str(CLIP), "--no-asr", "--max-seconds", "3",
                           "--log-level", "DEBUG"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert "TensorFlow Lite" in loud.stderr or "W0000" in loud.stderr  # the same run shows them at DEBUG


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
