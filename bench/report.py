"""What the benchmarks share: the machine they ran on, side-by-side timing, and their tables."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from pathlib import Path


def cpu_name() -> str:
    """The processor's model name (from /proc/cpuinfo where there is one)."""
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def time_interleaved(calls: dict[str, Callable[[], object]], repeat: int, warmup: int = 20) -> dict[str, list[float]]:
    """Seconds per call of each function, sorted, after ``warmup`` untimed rounds. The functions take
    turns call by call, so a change in the machine's load (it is shared) hits them all alike."""
    for _ in range(warmup):
        for fn in calls.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeat):
        for name, fn in calls.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: sorted(t) for name, t in times.items()}


def print_table(header: tuple[str, str], rows: list[tuple[str, str, str]]) -> None:
    """A markdown table of (name, value, note) rows, the first two columns padded."""
    width = [max(len(r[i]) for r in [(*header, ""), *rows]) for i in range(2)]
    print(f"| {header[0]:<{width[0]}} | {header[1]:<{width[1]}} | note |")
    print(f"|{'-' * (width[0] + 2)}|{'-' * (width[1] + 2)}|------|")
    for name, value, note in rows:
        print(f"| {name:<{width[0]}} | {value:<{width[1]}} | {note} |")
