"""Running ``main.py`` as a user does, and checking what a run leaves behind: the event log (one
complete JSON object a line) and the recording (video and audio streams that decode)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np

from realtime.feature_spec import LABELS

ROOT = Path(__file__).resolve().parent.parent
CLIP = ROOT / "media" / "demo.mp4"
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
