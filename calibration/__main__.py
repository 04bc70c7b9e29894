"""Build a calibration set of windows and report its coverage.

    python -m calibration --source SRC [--part calibration] [--limit 200] [--checkpoint default] --out DIR

SRC: saved windows (``main.py --save-windows``), an extraction folder, clips, or (omitted) the
shared data's extraction when it holds faces, voices and words, else the demo clip; see ``calibration.windows``. DIR gets
``windows_NNNNN.npz`` files (which ``python -m export quantize --calibration DIR`` reads) and
``coverage.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from realtime.core.errors import run_cli

from .coverage import coverage, format_coverage
from .windows import PARTS, read_windows


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m calibration", description=__doc__.split("\n\n")[0])
    p.add_argument("--source", type=Path, help="where windows come from (default: shared data, else demo clip)")
    p.add_argument("--part", choices=PARTS, default="calibration", help="which half of labelled data")
    p.add_argument("--limit", type=int, default=200, help="items drawn per extraction (default: %(default)s)")
    p.add_argument("--checkpoint", default="default", help="model whose FeatureSpec builds the windows")
    p.add_argument("--out", type=Path, required=True, help="output folder: windows_NNNNN.npz files and coverage.json")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from dmd_lite.recognizer import load_recognizer

    try:
        spec = load_recognizer(args.checkpoint)[0].spec
        windows = read_windows(args.source, spec, args.part, args.limit)
    except (FileNotFoundError, ValueError) as e:
        print(f"calibration: {e}", file=sys.stderr)
        return 2
    windows.save(args.out)
    report = coverage(windows, spec.labels)
    (args.out / "coverage.json").write_text(json.dumps(report, indent=1))
    print(format_coverage(report))
    return 0


if __name__ == "__main__":
    run_cli(main)
