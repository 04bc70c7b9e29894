"""A Jetson's own load figures for the overlay's footer: ``tegrastats`` run as a subprocess, its lines parsed.

``parse_line`` reads one line of ``tegrastats`` (JetPack 4 to 6 layouts: ``CPU [a%@f,...,off]``,
``GR3D_FREQ p%``, ``p%@f`` or ``p%@[f,f]``, rails as ``NAME cur/avg`` with or without ``mW``) into
``TegraStats``; ``footer`` turns it into one short line. ``TegraStatsReader.start_if_present`` starts
``tegrastats --interval MS`` only where the binary is on ``PATH`` and returns None (nothing started)
elsewhere; a thread keeps the newest parsed line, ``latest`` hands it out while it is fresh.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass

from realtime.core.clock import now

log = logging.getLogger("realtime.outputs.tegrastats")

TOTAL_RAILS = ("VDD_IN", "POM_5V_IN")  # the module's input rail where the board has one (Orin Nano / NX, older)
_RAM = re.compile(r"\bRAM (\d+)/(\d+)MB")
_CPU = re.compile(r"\bCPU \[([^\]]*)\]")
_CORE = re.compile(r"(\d+)%")
_GPU = re.compile(r"\bGR3D_FREQ (\d+)%")
_RAIL = re.compile(r"\b([A-Z][A-Z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?(?=\s|$)")
_NOT_RAILS = {"RAM", "SWAP", "NC"}


@dataclass(frozen=True)
class TegraStats:
    """One ``tegrastats`` line: loads in percent, power in watts, memory in MB; None where the line lacks it."""

    gpu_pct: float | None = None  # GR3D_FREQ: the integrated GPU's load
    cpu_pct: float | None = None  # mean load of the cores that are on
    power_w: float | None = None  # the input rail's present draw, else the sum of the rails shown
    power_rail: str | None = None  # which rail power_w is ("VDD_IN", ...), or "rails" for a sum
    ram_used_mb: int | None = None
    ram_total_mb: int | None = None


def parse_line(line: str) -> TegraStats | None:
    """The figures in one ``tegrastats`` line; None when it holds none of them."""
    gpu = _GPU.search(line)
    cpu_pct = None
    cpu = _CPU.search(line)
    if cpu is not None:
        loads = [int(m.group(1)) for core in cpu.group(1).split(",") if (m := _CORE.search(core))]
        cpu_pct = sum(loads) / len(loads) if loads else None
    rails = {name: int(cur) for name, cur, _avg in _RAIL.findall(line) if name not in _NOT_RAILS}
    power_w, power_rail = None, None
    total = next((r for r in TOTAL_RAILS if r in rails), None)
    if total is not None:
        power_w, power_rail = rails[total] / 1000, total
    elif rails:  # AGX Orin: no input rail, the module's rails add up
        power_w, power_rail = sum(rails.values()) / 1000, "rails"
    ram = _RAM.search(line)
    stats = TegraStats(float(gpu.group(1)) if gpu else None, cpu_pct, power_w, power_rail,
                       int(ram.group(1)) if ram else None, int(ram.group(2)) if ram else None)
    return None if stats == TegraStats() else stats


def footer(stats: TegraStats) -> str:
    """The overlay's line: 'Jetson GPU 26% | CPU 12% | 4.9 W (VDD_IN) | RAM 3.2/6.3 GB'."""
    parts = []
    if stats.gpu_pct is not None:
        parts.append(f"GPU {stats.gpu_pct:.0f}%")
    if stats.cpu_pct is not None:
        parts.append(f"CPU {stats.cpu_pct:.0f}%")
    if stats.power_w is not None:
        parts.append(f"{stats.power_w:.1f} W ({stats.power_rail})")
    if stats.ram_used_mb is not None and stats.ram_total_mb is not None:
        parts.append(f"RAM {stats.ram_used_mb / 1000:.1f}/{stats.ram_total_mb / 1000:.1f} GB")
    return "Jetson " + " | ".join(parts)


class TegraStatsReader:
    """Runs ``BINARY --interval MS`` and keeps its newest parsed line; ``stop`` ends the process and thread."""

    def __init__(self, binary: str, interval_ms: int = 1000) -> None:
        self.binary = binary
        self.interval_ms = interval_ms
        self._latest: tuple[float, TegraStats, str] | None = None  # (clock time, figures, footer), swapped whole
        self._proc: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def start_if_present(cls, name: str = "tegrastats", interval_ms: int = 1000) -> TegraStatsReader | None:
        """A started reader where ``name`` is on PATH; None, with nothing started, where it is not or fails."""
        path = shutil.which(name)
        if path is None:
            return None
        reader = cls(path, interval_ms)
        try:
            reader.start()
        except OSError as e:
            log.warning("tegrastats not started (%s): no Jetson figures in the footer", e)
            return None
        return reader

    def start(self) -> None:
        """Start the subprocess and the thread that reads its lines."""
        self._proc = subprocess.Popen([self.binary, "--interval", str(self.interval_ms)], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self._thread = threading.Thread(target=self._read, name="tegrastats", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        for line in proc.stdout:
            stats = parse_line(line)
            if stats is not None:
                self._latest = (now(), stats, footer(stats))  # formatted once here, not every frame

    def _fresh(self) -> tuple[float, TegraStats, str] | None:
        """The newest reading, or None when none came within three intervals."""
        latest = self._latest
        return None if latest is None or now() - latest[0] > 3 * self.interval_ms / 1000 else latest

    @property
    def latest(self) -> TegraStats | None:
        """The newest figures, or None when none came within three intervals."""
        fresh = self._fresh()
        return None if fresh is None else fresh[1]

    def footer(self) -> str:
        """The overlay's line for the newest figures (read every frame); '' when there are none."""
        fresh = self._fresh()
        return "" if fresh is None else fresh[2]

    def stop(self, timeout: float = 1.0) -> None:
        """End the subprocess (terminate, then kill) and join the reading thread."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        if self._thread is not None:
            self._thread.join(timeout)
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
