"""What a set of windows covers: labels, modality combinations and kinds of source, as counts."""

from __future__ import annotations

from collections import Counter

from realtime.core.modalities import MODALITIES

from .windows import WindowSet


def coverage(windows: WindowSet, labels: tuple[str, ...]) -> dict:
    """Counts per label (``unknown`` where none is known), per combination of modalities present
    (``visual+audio``, ``none``, ...) and per kind of source."""
    names = [labels[i] if i >= 0 else "unknown" for i in windows.labels]
    combos = ["+".join(m for m, p in zip(MODALITIES, row) if p) or "none" for row in windows.present()]
    return {"origin": windows.origin, "n_windows": len(windows),
            "labels": {name: Counter(names)[name] for name in (*labels, "unknown") if name in names},
            "modalities": dict(sorted(Counter(combos).items())),
            "kinds": dict(sorted(Counter(map(str, windows.kinds)).items()))}


def format_coverage(report: dict) -> str:
    """The report as a few aligned lines, for the terminal."""
    lines = [f"{report['n_windows']} windows from {report['origin']}"]
    for key in ("labels", "modalities", "kinds"):
        cells = "  ".join(f"{name} {count}" for name, count in report[key].items())
        lines.append(f"  {key + ':':<12}{cells}")
    return "\n".join(lines)
