"""The runtime install's requirements (no PyTorch): pyproject.toml's [project] dependencies with the changes its
[tool.dmd-realtime.runtime] table names, one a line.

    runtime_deps.py [--extra NAME]... [--window] [ROOT]
                                               # for pip install: the base list (and the extras'), with the
                                               # runtime's OpenCV (headless; --window: the window build), its
                                               # additions, without the --no-deps ones
    runtime_deps.py --no-deps [ROOT]           # for pip install --no-deps (MediaPipe: its own requirements
                                               # would bring opencv-contrib-python and matplotlib)
    runtime_deps.py --prune [SITE_PACKAGES]    # delete the files the runtime never loads (default: this
                                               # interpreter's site-packages), print each with its size
    runtime_deps.py --other-opencv [--window]  # the OpenCV distributions in this interpreter's own site-packages
                                               # other than the runtime's (two share the cv2 folder): a venv
                                               # made with the other choice; nothing when there is none

Used by scripts/venv.sh runtime, setup_jetson.sh and the Dockerfile: pip installs these (markers included,
pip applies them for the Python it runs on). Runs on Python 3.10 (no tomllib there).
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import sysconfig
from pathlib import Path

TABLE = ("tool", "dmd-realtime", "runtime")
KEYS = ("no-deps", "adds", "opencv", "opencv-window", "prune")


def _array(text: str, key: str) -> list[str]:
    """The TOML string array ``key = [...]`` (one line, or its ``]`` ending a line), without tomllib."""
    block = re.search(rf"^{re.escape(key)} = (\[.*?\])[ \t]*$", text, re.S | re.M)
    if block is None:
        raise SystemExit(f"pyproject.toml: no {key} list")
    return list(ast.literal_eval(block.group(1)))  # TOML's strings and # comments read as Python's


def _read(pyproject: Path, extras: tuple[str, ...]) -> tuple[list[str], dict[str, list[str]]]:
    """([project] dependencies and the named extras', the runtime table's lists)."""
    text = pyproject.read_text()
    try:
        import tomllib  # Python 3.11+
    except ModuleNotFoundError:
        deps = _array(text, "dependencies") + [r for extra in extras for r in _array(text, extra)]
        return deps, {key: _array(text, key) for key in KEYS}
    data = tomllib.loads(text)
    project, table = data["project"], data
    for key in TABLE:
        table = table[key]
    deps = list(project["dependencies"]) + [r for extra in extras for r in project["optional-dependencies"][extra]]
    return deps, {key: list(table[key]) for key in KEYS}


def _split(requirement: str) -> tuple[str, str]:
    """(the distribution name, the rest: version specifier, marker) of a requirement string."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)(.*)", requirement, re.S)
    if match is None:
        raise SystemExit(f"pyproject.toml: not a requirement: {requirement!r}")
    return match.group(1), match.group(2)


def name(requirement: str) -> str:
    """The distribution name of a requirement string, normalised (PEP 503)."""
    return re.sub(r"[-_.]+", "-", _split(requirement)[0]).lower()


def runtime(pyproject: Path, extras: tuple[str, ...] = (), window: bool = False) -> tuple[list[str], list[str]]:
    """(the requirements pip resolves, those it installs with --no-deps) of the runtime install; ``window``:
    with the table's ``opencv-window`` in place of its headless ``opencv``."""
    deps, table = _read(pyproject, extras)
    no_deps = {name(r) for r in table["no-deps"]}
    opencv = [r for r in deps if name(r).startswith("opencv-")]
    key = "opencv-window" if window else "opencv"
    if len(opencv) != 1 or len(table[key]) != 1:
        raise SystemExit(f"pyproject.toml: one OpenCV distribution in [project] and in the runtime table's {key}, "
                         f"not {opencv}")
    resolved, without = [], []
    for r in deps:
        if name(r) in no_deps:
            without.append(r)
        elif r == opencv[0]:  # the runtime's OpenCV: its own pin if the table gives one, else [project]'s
            resolved.append(table[key][0] if _split(table[key][0])[1].strip() else table[key][0] + _split(r)[1])
        else:
            resolved.append(r)
    return resolved + table["adds"], without


def prune(pyproject: Path, site: Path) -> list[tuple[Path, int]]:
    """Delete the files of the runtime table's ``prune`` patterns under ``site``: (path, bytes) of each."""
    gone = []
    for pattern in _read(pyproject, ())[1]["prune"]:
        for path in sorted(site.glob(pattern)):
            if path.is_file() and not path.is_symlink():
                gone.append((path, path.stat().st_size))
                path.unlink()
    return gone


def other_opencv(pyproject: Path, window: bool) -> list[str]:
    """The OpenCV distributions installed in this interpreter's own site-packages (a venv's, not the system's
    it may see) other than the one the runtime list names."""
    wanted = {name(r) for r in runtime(pyproject, window=window)[0] if name(r).startswith("opencv-")}
    site = sorted({sysconfig.get_paths()[k] for k in ("purelib", "platlib")})
    found = {name(d.metadata["Name"]) for d in importlib.metadata.distributions(path=site)}
    return sorted(n for n in found if n.startswith("opencv-") and n not in wanted)


def main(argv: list[str]) -> int:
    """See the module's docstring; ROOT defaults to this repository."""
    extras = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--extra"]
    flags = {a for a in argv[1:] if a in ("--no-deps", "--prune", "--window", "--other-opencv")}
    rest = [a for i, a in enumerate(argv[1:], 1) if a not in ("--extra", *flags) and argv[i - 1] != "--extra"]
    root = Path(__file__).resolve().parents[2]
    if "--prune" in flags:
        site = Path(rest[0]) if rest else Path(sysconfig.get_paths()["platlib"])
        for path, size in prune(root / "pyproject.toml", site):
            print(f"pruned {path} ({size / 2**20:.1f} MiB)")
        return 0
    if rest:
        root = Path(rest[0])
    if "--other-opencv" in flags:
        print(*other_opencv(root / "pyproject.toml", "--window" in flags))
        return 0
    resolved, without = runtime(root / "pyproject.toml", tuple(extras), "--window" in flags)
    for requirement in without if "--no-deps" in flags else resolved:
        print(requirement)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
