"""What the benchmarks' reports share: the machine they ran on, and their tables."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_name() -> str:
    """The processor's model name (from /proc/cpuinfo where there is one)."""
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def print_table(header: tuple[str, str], rows: list[tuple[str, str, str]]) -> None:
    """A markdown table of (name, value, note) rows, the first two columns padded."""
    width = [max(len(r[i]) for r in [(*header, ""), *rows]) for i in range(2)]
    print(f"| {header[0]:<{width[0]}} | {header[1]:<{width[1]}} | note |")
    print(f"|{'-' * (width[0] + 2)}|{'-' * (width[1] + 2)}|------|")
    for name, value, note in rows:
        print(f"| {name:<{width[0]}} | {value:<{width[1]}} | {note} |")
