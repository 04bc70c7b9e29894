"""The runtime install against the full one, side by side on this machine, printed as a table.

    .venv/bin/python -m bench.runtime [--runtime .venv-runtime] [--engine DIR] [--runs 3]

Rows: each venv's size on disk; the live demo's (paced, as a user runs it, no speech recognition,
``--max-seconds`` of it) peak resident memory and time from launch to the first answer in the event
log, ``--backend torch`` from this interpreter's venv and ``--backend onnx`` from the runtime venv,
run in turns; and the demo's labels from both, as fast as possible (every window compared). The
runtime venv is made by ``bash scripts/venv.sh runtime``; the ONNX export by ``python -m export onnx``
(here, into a temporary folder, unless ``--engine`` names one).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.report import cpu_name, print_table
from realtime.core.errors import run_cli
from realtime.core.resources import REPO_ROOT

ARGS = ["-m", "realtime", "--demo", "--headless", "--no-asr", "--log-level", "WARNING"]


MIB = 1 << 20


def size_mib(folder: Path) -> float:
    """Bytes of the files under ``folder`` (links not followed), in MiB."""
    return sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) / MIB


def launch(python: Path, extra: list[str], events: Path, cwd: Path) -> tuple[float, float]:
    """Run the app once: (peak resident memory MiB, seconds from launch to the first answer)."""
    start = time.time()
    proc = subprocess.Popen([str(python), *ARGS, *extra, "--events", str(events)], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{python} {' '.join(extra)} failed ({proc.returncode}): {proc.stderr.read().decode()[-500:]}")
    first = next(json.loads(line)["wall_time"] for line in events.read_text().splitlines()
                 if json.loads(line)["type"] == "inference")
    return usage.ru_maxrss * 1024 / MIB, first - start  # ru_maxrss: KiB on Linux


def labels(events: Path) -> list[tuple[float, str, dict[str, float]]]:
    return [(e["t_end"], e["label"], e["probabilities"]) for e in map(json.loads, events.read_text().splitlines())
            if e["type"] == "inference"]


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench.runtime", description=__doc__.split("\n\n")[0])
    ap.add_argument("--runtime", type=Path, default=REPO_ROOT / ".venv-runtime", help="the runtime venv")
    ap.add_argument("--engine", type=Path, help="an ONNX export (default: made now, into a temporary folder)")
    ap.add_argument("--runs", type=int, default=3, help="paced runs per install (default: %(default)s)")
    ap.add_argument("--max-seconds", type=float, default=6.0, help="of the demo, per paced run (default: %(default)s)")
    return ap


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    runtime_python = a.runtime / "bin" / "python"
    if not runtime_python.is_file():
        raise FileNotFoundError(f"no runtime venv at {a.runtime}: make it with `bash scripts/venv.sh runtime {a.runtime}`")
    full_venv = Path(sys.prefix)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        engine = a.engine
        if engine is None:
            engine = work / "export"
            subprocess.run([sys.executable, "-m", "export", "onnx", "--limit", "16", "--out", str(engine)],
                           cwd=REPO_ROOT, check=True, capture_output=True)
        installs = {"torch (full venv)": (Path(sys.executable), ["--backend", "torch"]),
                    "onnx (runtime venv)": (runtime_python, ["--backend", "onnx", "--engine", str(engine)])}
        paced = {name: [] for name in installs}
        for i in range(a.runs):
            for name, (python, extra) in installs.items():
                paced[name].append(launch(python, [*extra, "--max-seconds", str(a.max_seconds)],
                                          work / f"paced_{i}.jsonl", work))
        fast = {}
        for j, (name, (python, extra)) in enumerate(installs.items()):
            launch(python, [*extra, "--as-fast-as-possible"], work / f"fast_{j}.jsonl", work)
            fast[name] = labels(work / f"fast_{j}.jsonl")
    torch_labels, onnx_labels = fast.values()
    same = sum(t[1] == o[1] for t, o in zip(torch_labels, onnx_labels))
    diff = max(abs(t[2][k] - o[2][k]) for t, o in zip(torch_labels, onnx_labels) for k in t[2])
    rows = [("venv size, full (torch)", f"{size_mib(full_venv):.0f} MiB", str(full_venv)),
            ("venv size, runtime", f"{size_mib(a.runtime):.0f} MiB", str(a.runtime))]
    result = {"machine": f"{cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}",
              "venv_mib": {"full": round(size_mib(full_venv)), "runtime": round(size_mib(a.runtime))}}
    for name, runs in paced.items():
        rss, first = [r[0] for r in runs], [r[1] for r in runs]
        rows.append((f"peak RSS, {name}", f"{statistics.median(rss):.0f} MiB", f"median of {len(runs)}; "
                     f"{min(rss):.0f}-{max(rss):.0f}"))
        rows.append((f"first answer, {name}", f"{statistics.median(first):.2f} s", f"median of {len(runs)}; "
                     f"{min(first):.2f}-{max(first):.2f}; from launch, demo paced"))
        result[name] = {"peak_rss_mib": [round(x) for x in rss], "first_answer_s": [round(x, 2) for x in first]}
    rows.append(("demo labels, onnx = torch", f"{same} / {len(torch_labels)}",
                 f"{len(onnx_labels)} windows on onnx; max |probability difference| {diff:.1e}"))
    result["demo"] = {"windows": len(torch_labels), "labels_equal": same, "max_prob_diff": diff}
    print(f"machine: {result['machine']}")
    print_table(("what", "measured"), rows)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    run_cli(main)
