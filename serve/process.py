"""A ``python -m serve`` server as a child process, for the load test and the tests: start it on free
loopback ports, wait until its model is ready, read its metrics and CPU time, kill it (the whole
process tree: ``tritonserver``, which pytriton starts in a session of its own, and its Python backend
stubs with it)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from realtime.core.backends import SERVED_MODEL
from realtime.core.resources import REPO_ROOT
from serve.triton import ServeConfig

SERVE_PYTHON = REPO_ROOT / ".venv-serve" / "bin" / "python"  # made by scripts/venv.sh serve
READY_TIMEOUT_S = 120.0


def free_port() -> int:
    """A TCP port nothing listens on now, on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServerProcess:
    """A running server and its ports; ``url`` is what ``--server`` takes."""

    engine: Path
    python: Path = SERVE_PYTHON
    grpc_port: int = 0
    http_port: int = 0
    metrics_port: int = 0
    instances: int = 2
    queue_delay_us: int = ServeConfig.queue_delay_us
    log: Path | None = None
    proc: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        self.grpc_port = self.grpc_port or free_port()
        self.http_port = self.http_port or free_port()
        self.metrics_port = self.metrics_port or free_port()

    @property
    def url(self) -> str:
        return f"grpc://127.0.0.1:{self.grpc_port}"

    def start(self, timeout_s: float = READY_TIMEOUT_S) -> ServerProcess:
        """Start the server (same ports every time) and wait until its model answers; a ``RuntimeError``
        with the end of its log when it exits or is not ready in ``timeout_s``."""
        if not self.python.is_file():
            raise FileNotFoundError(f"no server venv at {self.python.parents[1]}: make it with `bash scripts/venv.sh serve`")
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [str(self.python), "-m", "serve", "--engine", str(self.engine), "--port", str(self.grpc_port),
             "--http-port", str(self.http_port), "--metrics-port", str(self.metrics_port),
             "--instances", str(self.instances), "--queue-delay-us", str(self.queue_delay_us)],
            stdout=out, stderr=subprocess.STDOUT, cwd=self.engine.parent)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited ({self.proc.returncode}): {self._log_tail()}")
            if self.ready():
                return self
            time.sleep(0.5)
        self.kill()
        raise RuntimeError(f"the server was not ready in {timeout_s:.0f} s: {self._log_tail()}")

    def ready(self) -> bool:
        """Whether the model answers ``/v2/models/<model>/ready``."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/v2/models/{SERVED_MODEL}/ready",
                                        timeout=1.0) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def metrics(self) -> dict[str, float]:
        """The model's Prometheus counters, summed over its instances: name -> value."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2.0) as r:
            text = r.read().decode()
        found: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("nv_") and f'model="{SERVED_MODEL}"' in line:
                name, value = line.split("{", 1)[0], float(line.rsplit(" ", 1)[1])
                found[name] = found.get(name, 0.0) + value
        return found

    def _tree(self) -> list[int]:
        """The server's process and all its descendants, from /proc."""
        if self.proc is None:
            return []
        children: dict[int, list[int]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        tree, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo += children.get(pid, [])
        return tree

    def cpu_seconds(self) -> float:
        """User + system CPU seconds so far of the server's live processes (tritonserver and its stubs)."""
        tick, total = os.sysconf("SC_CLK_TCK"), 0.0
        for pid in self._tree():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick
        return total

    def kill(self) -> None:
        """SIGKILL every process of the server at once, as a crash would, and reap it."""
        if self.proc is None or self.proc.poll() is not None:
            return
        for pid in self._tree():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait()

    def _log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-1500:] if self.log and self.log.is_file() else "(no log)"
