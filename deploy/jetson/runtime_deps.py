"""Prints the project's [project] dependencies (and, with --extra NAME, that extra's), one a line.

The base dependencies are the runtime install's (no PyTorch). Used by setup_jetson.sh, the Dockerfile
and scripts/venv.sh runtime: pip installs these (markers included, pip applies them for the Python it
runs on). Runs on Python 3.10 (no tomllib there).
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

def _array(text: str, key: str) -> list[str]:
    """The TOML string array ``key = [...]`` (one line, or its ``]`` ending a line), without tomllib."""
    block = re.search(rf"^{re.escape(key)} = (\[.*?\])[ \t]*$", text, re.S | re.M)
    if block is None:
        raise SystemExit(f"pyproject.toml: no {key} list")
    return list(ast.literal_eval(block.group(1)))  # TOML's strings and # comments read as Python's


def dependencies(pyproject: Path, extras: tuple[str, ...] = ()) -> list[str]:
    """The requirement strings of ``[project] dependencies`` and of the named optional extras."""
    text = pyproject.read_text()
    try:
        import tomllib  # Python 3.11+
    except ModuleNotFoundError:
        return _array(text, "dependencies") + [r for extra in extras for r in _array(text, extra)]
    project = tomllib.loads(text)["project"]
    return list(project["dependencies"]) + [r for extra in extras for r in project["optional-dependencies"][extra]]


def main(argv: list[str]) -> int:
    """``runtime_deps.py [--extra NAME]... [ROOT]``: ROOT defaults to this repository."""
    extras = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--extra"]
    rest = [a for i, a in enumerate(argv[1:], 1) if a != "--extra" and argv[i - 1] != "--extra"]
    root = Path(rest[0]) if rest else Path(__file__).resolve().parents[2]
    for requirement in dependencies(root / "pyproject.toml", tuple(extras)):
        print(requirement)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
