"""The import contract in pyproject.toml (``[tool.importlinter]``) holds: nothing imports upward, the
runtime imports no offline code, and there is no import cycle between any two modules; parsing
``main.py --help`` imports nothing heavy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp
from helpers.imports import modules_after
from helpers.paths import ROOT
PACKAGES = ("realtime", "dmd_lite", "export", "calibration", "bench")
HEAVY = ("torch", "torchaudio", "matplotlib", "sklearn", "mediapipe", "onnxruntime", "dmd_lite", "export",
         "calibration", "bench", "realtime.extract", "realtime.offline", "realtime.engines", "realtime.app")


def test_the_import_contract_holds():
    lint = Path(sys.executable).with_name("lint-imports")
    run = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """The groups of two or more modules that import each other, directly or through others (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while (w := stack.pop()) != v:
                group.append(w)
            if group:
                groups.append(sorted([v, *group]))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return groups


def test_no_import_cycles_between_modules():
    sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph(*PACKAGES, include_external_packages=False, cache_dir=None)  # no cache in the checkout
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    assert strongly_connected(edges) == []


def test_the_cycle_finder_finds_a_cycle():
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_main_help_imports_nothing_heavy():
    loaded = modules_after("import contextlib, io\n"
                           "import main\n"
                           "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
                           "    main.parse_args(['--help'])\n")
    assert [m for m in loaded if m.split(".")[0] in HEAVY or m.startswith(HEAVY)] == []
