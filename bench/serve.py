"""Load test of the Triton server on loopback, printed as a table.

    .venv/bin/python -m bench.serve [--streams 64,128,256] [--seconds 20] [--kill-after S]

Starts ``python -m serve`` (its venv: ``bash scripts/venv.sh serve``) on an ONNX export made now (or
``--engine DIR``), then for each stream count N runs N simulated cameras, each a thread with its own
client (``RemoteEngine``, as ``main.py --server`` uses, its local engine behind it) sending real
held-out windows (``calibration.windows``) at the app's rate, one every 0.5 s from a random phase.
Per N: windows/s, round-trip latency p50 / p95 / p99 of the server's answers, the mean batch the
server formed (its Prometheus counters), the server's CPU, windows answered locally (the server
failed them: must be 0) and windows behind schedule. ``--kill-after S`` kills the server S seconds into
each run and starts it again: the clients answer locally meanwhile and go back to it (counted).
Server and clients share this machine; bounded by ``--seconds`` per N.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from bench.report import cpu_name
from calibration.windows import read_windows
from realtime.core.errors import run_cli
from realtime.core.resources import REPO_ROOT
from realtime.engines import make_engine
from realtime.engines.remote_engine import RemoteEngine
from serve.process import ServerProcess
from serve.triton import ServeConfig

HOP_S = 0.5  # the app's: one window a stream every half second
WARMUP_S = 3.0
TARGET_P95_MS = 100.0


class Stream(threading.Thread):
    """One camera: a client sending a window every ``HOP_S`` from ``phase`` until ``stop``."""

    def __init__(self, url: str, local, windows: list[dict[str, np.ndarray]], phase: float, t0: float,
                 stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.engine = RemoteEngine(url, local)
        self.windows, self.phase, self.t0, self.stop = windows, phase, t0, stop
        self.rtt_ms: list[tuple[float, float, str]] = []  # (sent at, round trip ms, who answered)
        self.behind = 0  # windows sent more than a hop late
        self.failed = 0  # windows nobody answered

    def run(self) -> None:
        k = 0
        while not self.stop.is_set():
            due = self.t0 + self.phase + k * HOP_S
            wait = due - time.monotonic()
            if wait > 0:
                if self.stop.wait(wait):
                    break
            elif wait < -HOP_S:
                self.behind += 1
            served = self.engine.answered["server"]
            start = time.monotonic()
            try:
                self.engine.run(self.windows[k % len(self.windows)])
            except Exception:  # noqa: BLE001  (counted: the load test's "failed")
                self.failed += 1
            else:
                who = "server" if self.engine.answered["server"] > served else "local"
                self.rtt_ms.append((start - self.t0, (time.monotonic() - start) * 1e3, who))
            k += 1
        self.engine.close()


def run_load(server: ServerProcess, local, windows: list[dict[str, np.ndarray]], n: int, seconds: float,
             kill_after: float | None, seed: int = 0) -> dict:
    """``n`` streams for ``seconds`` (after ``WARMUP_S``); the measured figures."""
    rng = np.random.default_rng(seed)
    stop, t0 = threading.Event(), time.monotonic() + 0.5
    streams = [Stream(server.url, local, windows, float(rng.uniform(0, HOP_S)), t0, stop) for _ in range(n)]
    for s in streams:
        s.start()
    time.sleep(max(0.0, t0 + WARMUP_S - time.monotonic()))
    before, cpu0, wall0 = server.metrics(), server.cpu_seconds(), time.monotonic()
    if kill_after is not None:  # the figures then add up the killed server's share and the new one's
        time.sleep(kill_after)
        cpu0 -= server.cpu_seconds()
        server.kill()
        server.start()
        before = {}
    time.sleep(max(0.0, wall0 + seconds - time.monotonic()))
    after, cpu1, wall1 = server.metrics(), server.cpu_seconds(), time.monotonic()
    stop.set()
    for s in streams:
        s.join(timeout=5.0)
    measured = [(t, ms, who) for s in streams for t, ms, who in s.rtt_ms if WARMUP_S <= t <= wall1 - t0]
    served = np.array([ms for _, ms, who in measured if who == "server"])
    requests = after.get("nv_inference_request_success", 0.0) - before.get("nv_inference_request_success", 0.0)
    batches = after.get("nv_inference_exec_count", 0.0) - before.get("nv_inference_exec_count", 0.0)
    pct = (lambda q: float(np.percentile(served, q))) if len(served) else (lambda q: float("nan"))
    return {"streams": n, "seconds": round(wall1 - wall0, 1), "windows_per_s": round(len(measured) / (wall1 - wall0), 1),
            "p50_ms": round(pct(50), 1), "p95_ms": round(pct(95), 1), "p99_ms": round(pct(99), 1),
            "mean_batch": round(requests / batches, 1) if batches else None,
            "server_cpu_cores": round((cpu1 - cpu0) / (wall1 - wall0), 2),
            "answered_locally": sum(who == "local" for _, _, who in measured),
            "behind_schedule": sum(s.behind for s in streams), "failed": sum(s.failed for s in streams),
            "streams_last_answered_by_server": sum(bool(s.rtt_ms) and s.rtt_ms[-1][2] == "server" for s in streams)}


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench.serve", description=__doc__.split("\n\n")[0])
    ap.add_argument("--streams", default="128,256,320,384", help="stream counts, comma-separated (default: %(default)s)")
    ap.add_argument("--seconds", type=float, default=20.0, help="measured seconds per count (default: %(default)s)")
    ap.add_argument("--engine", type=Path, help="an ONNX export (default: made now, into a temporary folder)")
    ap.add_argument("--instances", type=int, default=2, help="server model instances (default: %(default)s)")
    ap.add_argument("--queue-delay-us", type=int, default=ServeConfig.queue_delay_us,
                    help="the server's longest wait to fill a batch (default: %(default)s)")
    ap.add_argument("--kill-after", type=float, help="kill and restart the server this many seconds into each run")
    ap.add_argument("--windows", type=int, default=64, help="held-out windows cycled through (default: %(default)s)")
    return ap


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    counts = [int(x) for x in a.streams.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        engine = a.engine
        if engine is None:
            engine = Path(tmp) / "export"
            subprocess.run([sys.executable, "-m", "export", "onnx", "--limit", "16", "--out", str(engine)],
                           cwd=REPO_ROOT, check=True, capture_output=True)
        local = make_engine("onnx", engine_file=engine, threads=1)
        held = read_windows(None, local.spec, "heldout", a.windows)
        windows = [{k: v[i:i + 1] for k, v in held.arrays.items()} for i in range(min(a.windows, len(held)))]
        server = ServerProcess(engine, instances=a.instances, queue_delay_us=a.queue_delay_us,
                               log=Path(tmp) / "server.log").start()
        try:
            results = [run_load(server, local, windows, n, a.seconds, a.kill_after) for n in counts]
        finally:
            server.kill()
    held_up = [r["streams"] for r in results if r["p95_ms"] <= TARGET_P95_MS and not r["answered_locally"]
               and not r["behind_schedule"] and not r["failed"]]
    machine = f"{cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}; server and clients on it"
    print(f"machine: {machine}; {a.instances} model instances, queue delay {a.queue_delay_us} us; "
          f"windows from {held.origin}")
    header = ("streams", "windows/s", "p50 ms", "p95 ms", "p99 ms", "mean batch", "server CPU (cores)",
              "answered locally", "behind schedule", "failed")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in results:
        print("| " + " | ".join(str(r[k]) for k in ("streams", "windows_per_s", "p50_ms", "p95_ms", "p99_ms", "mean_batch",
                                                     "server_cpu_cores", "answered_locally", "behind_schedule", "failed")) + " |")
    if a.kill_after is None:
        print(f"largest stream count with p95 <= {TARGET_P95_MS:.0f} ms, nothing answered locally or behind: "
              f"{max(held_up) if held_up else 'none'}")
    else:
        print("server killed and restarted: " + "; ".join(
            f"{r['streams']} streams: {r['answered_locally']} windows answered locally, "
            f"{r['streams_last_answered_by_server']} back on the server at the end" for r in results))
    print(json.dumps({"machine": machine, "instances": a.instances, "queue_delay_us": a.queue_delay_us,
                      "kill_after": a.kill_after, "results": results}))
    return 0


if __name__ == "__main__":
    run_cli(main)
