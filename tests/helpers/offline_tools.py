"""The offline tools: every module of the project with an ``if __name__ == "__main__":`` entry point,
except ``main.py`` (the live app, with its own shutdown and tests)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

from helpers.paths import ROOT

SOURCE_FOLDERS = ("realtime", "dmd_lite", "export", "calibration", "bench", "scripts")


def tool_files() -> list[Path]:
    """The tools' source files, relative to the repository root, sorted."""
    return sorted(p.relative_to(ROOT) for folder in SOURCE_FOLDERS for p in (ROOT / folder).rglob("*.py")
                  if 'if __name__ == "__main__":' in p.read_text(encoding="utf-8"))


def import_tool(path: Path) -> ModuleType:
    """Import a tool by its file (``bench`` and ``scripts`` are folders of the repository, not installed)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module(".".join(path.with_suffix("").parts))
