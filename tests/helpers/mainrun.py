"""Running ``main.py`` as a user does, and checking what a run leaves behind: the event log (one
complete JSON object a line) and the recording (video and audio streams that decode)."""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np

from realtime.core.feature_spec import LABELS
from realtime.core.resources import shipped

from helpers.paths import ROOT

CLIP = shipped("media/demo.mp4")
CLIP_S = 11.3
MAIN = [sys.executable, str(ROOT / "main.py"), "--log-level", "WARNING"]
TIMEOUT_S = 120  # generous: the machine that runs the tests may be busy


def read_events(path: Path) -> list[dict]:
    lines = path.read_text().splitlines()
    assert lines, "the event log is empty"
    return [json.loads(line) for line in lines]  # every line is one complete JSON object


def inference_events(events: list[dict]) -> list[dict]:
    return [e for e in events if e["type"] == "inference"]


def check_inferences(inferences: list[dict], realtime: bool = True) -> None:
    assert inferences
    t_end = [e["t_end"] for e in inferences]
    assert all(b > a for a, b in zip(t_end, t_end[1:])), "window ends must increase"
    for e in inferences:
        assert e["t_result"] >= e["t_end"] or not realtime  # as fast as possible, file time runs ahead
        assert set(e["probabilities"]) == set(LABELS)
        assert math.isclose(sum(e["probabilities"].values()), 1.0, abs_tol=1e-4)
        assert math.isclose(sum(e["smoothed"].values()), 1.0, abs_tol=1e-4)
        assert e["label"] in (*LABELS, "uncertain")
        assert -1.0 <= e["valence"] <= 1.0
        assert len(e["edges_hetero"]) == len(e["edges_homo"]) == 6
        assert e["latency_ms"]["model"] > 0
        # window end -> result is a wall-clock figure: measured live, null as fast as possible
        assert (e["latency_ms"]["update"] >= 0) if realtime else (e["latency_ms"]["update"] is None)


def streams(path: Path) -> dict[str, float]:
    """Seconds of decoded video and audio in a recording."""
    with av.open(str(path)) as container:
        assert {s.type for s in container.streams} == {"video", "audio"}
        video = [f.time for f in container.decode(video=0)]
    with av.open(str(path)) as container:
        audio = [f for f in container.decode(audio=0)]
    return {"video": video[-1] - video[0] + 1 / 30, "frames": len(video),
            "audio": sum(f.samples for f in audio) / audio[0].sample_rate,
            "audio_rms": float(np.sqrt(np.mean(np.concatenate([f.to_ndarray().ravel() for f in audio]) ** 2)))}


def wait_for_inferences(events: Path, n: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        if events.exists() and events.read_text().count('"type":"inference"') >= n:
            return
        time.sleep(0.2)
    raise AssertionError(f"no {n} inferences before the deadline (exit {process.poll()})")


# A camera stand-in: the demo clip's picture as a paced MPEG-TS stream on a TCP port (PyAV listens
# for one client), which the test can cut and bring back.
STREAM_SERVER = """
import sys, time, av
port, clip = int(sys.argv[1]), sys.argv[2]
print("listening", flush=True)
out = av.open(f"tcp://127.0.0.1:{port}?listen=1", "w", format="mpegts")
stream = out.add_stream("mpeg4", rate=30)
stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
t0, n = time.monotonic(), 0
while True:
    with av.open(clip) as src:
        for decoded in src.decode(video=0):
            frame = av.VideoFrame.from_ndarray(decoded.to_ndarray(format="rgb24"), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
            n += 1
            time.sleep(max(0.0, t0 + n / 30 - time.monotonic()))
"""


def serve_stream(port: int) -> subprocess.Popen:
    """The stand-in camera on ``port``, listening once this returns; kill it to cut the stream."""
    server = subprocess.Popen([sys.executable, "-c", STREAM_SERVER, str(port), str(CLIP)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert server.stdout.readline().strip() == "listening"
    time.sleep(0.5)  # from the print to the listening socket
    return server


def free_port() -> int:
    """A TCP port on the loopback that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_main(*args: str, env: dict[str, str] | None = None, timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess:
    """``main.py --headless ARGS`` to its end, as a user runs it."""
    return subprocess.run([*MAIN, "--headless", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env=env)


def check_exit(done: subprocess.CompletedProcess, code: int) -> str:
    """Assert the promised exit: ``code``, no traceback, and a last stderr line that reads as one
    sentence (for 2: ``main.py: error: ...``); return that line."""
    assert done.returncode == code, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    last = lines[-1] if lines else ""
    if code == 2:
        assert last.startswith("main.py: error: ") and 30 < len(last) < 400, last
    return last


def check_finalised(events: Path, recording: Path | None = None) -> list[dict]:
    """Every event line parses and the log ends with ``end``; the recording (if any) decodes."""
    log = read_events(events)
    assert log[0]["type"] == "start" and log[-1]["type"] == "end", log[-1]
    if recording is not None:
        with av.open(str(recording)) as container:
            assert sum(1 for _ in container.decode(video=0)) > 0
    return log
