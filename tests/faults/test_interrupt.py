"""Ctrl-C in an offline tool: exit status 130 and one line on stderr, no traceback, no process left.

A terminal's Ctrl-C sends SIGINT to the whole foreground process group, worker processes
included; the tests do the same to the tool's own group.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers.offline_tools import ROOT, tool_files

from realtime.core.errors import interrupts_left_to_parent, run_cli
from realtime.core.resources import shipped

CLIP = shipped("media/demo.mp4")
TIMEOUT_S = 120  # generous: the machine that runs the tests may be busy
# A traceback, the parent's or a worker's (multiprocessing heads it "Process NAME:").
NOISE = re.compile(r"Traceback|KeyboardInterrupt|^Process \S+:$", re.MULTILINE)


@pytest.fixture
def start() -> Iterator[Callable[[list[str]], subprocess.Popen]]:
    """Starts ``python -m ARGS`` in its own process group, SIGINT not ignored even where the test runner
    ignores it (a child inherits an ignored signal, not a handler); what is left of a group is killed after."""
    groups = []

    def run(args: list[str]) -> subprocess.Popen:
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            proc = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, start_new_session=True)
        finally:
            signal.signal(signal.SIGINT, previous)
        groups.append(proc)
        return proc

    yield run
    for proc in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()


def wait_for(proc: subprocess.Popen, text: str) -> bytes:
    """The tool's stderr up to and including the first ``text`` (it has started working then)."""
    seen, deadline = b"", time.monotonic() + TIMEOUT_S
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stderr, selectors.EVENT_READ)
        while text.encode() not in seen:
            assert sel.select(deadline - time.monotonic()), f"no {text!r} on stderr in {TIMEOUT_S} s"
            chunk = os.read(proc.stderr.fileno(), 65536)
            assert chunk, f"the tool ended before {text!r}: {seen.decode(errors='replace')}"
            seen += chunk
    return seen


def interrupt(proc: subprocess.Popen, stderr_so_far: bytes) -> str:
    """Ctrl-C to the tool's process group; its whole stderr once it has exited and its group is gone."""
    assert proc.poll() is None, "the tool ended before it was interrupted"
    os.killpg(proc.pid, signal.SIGINT)
    _, rest = proc.communicate(timeout=TIMEOUT_S)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the group is empty once every worker has gone
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("processes of the interrupted tool are still running")
    return (stderr_so_far + rest).decode(errors="replace")


def ignores_sigint(pid: int) -> bool:
    """Whether process ``pid`` ignores SIGINT, from its mask of ignored signals (Linux)."""
    mask = re.search(r"^SigIgn:\s*([0-9a-f]+)$", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE).group(1)
    return bool(int(mask, 16) >> (signal.SIGINT - 1) & 1)


def assert_interrupted(proc: subprocess.Popen, stderr: str) -> None:
    assert proc.returncode == 130, stderr
    assert not NOISE.search(stderr), stderr
    assert stderr.rstrip().splitlines()[-1] == "interrupted"


def test_run_cli_exits_with_main_status_or_130_on_ctrl_c(capsys):
    with pytest.raises(SystemExit) as exit_:
        run_cli(lambda: 3)
    assert exit_.value.code == 3

    def interrupted() -> int:
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as exit_:
        run_cli(interrupted)
    assert exit_.value.code == 130 and capsys.readouterr().err == "interrupted\n"


def test_processes_started_under_interrupts_left_to_parent_ignore_ctrl_c():
    before = signal.getsignal(signal.SIGINT)
    with interrupts_left_to_parent():
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert signal.getsignal(signal.SIGINT) is before and ignores_sigint(child.pid)
    finally:
        child.kill()
        child.wait()


@pytest.mark.parametrize("path", tool_files(), ids=lambda p: p.as_posix())
def test_every_entry_point_runs_through_run_cli(path: Path):
    module = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    guard = next(node for node in module.body if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test))
    assert [ast.unparse(s) for s in guard.body] == ["run_cli(main)"]


def test_ctrl_c_stops_an_extraction_in_process(start, tmp_path):
    proc = start(["realtime.extract", "--kind", "video", "--input", str(CLIP), "--out", str(tmp_path / "out"),
                  "--workers", "1"])
    seen = wait_for(proc, "extract video")
    time.sleep(1.0)  # into the front-ends' work
    assert_interrupted(proc, interrupt(proc, seen))


@pytest.mark.slow
def test_ctrl_c_stops_an_extraction_and_its_worker_processes(start, tmp_path):
    (tmp_path / "in").mkdir()
    for i in range(4):  # more videos than workers: work is still queued when Ctrl-C comes
        shutil.copy(CLIP, tmp_path / "in" / f"clip{i}.mp4")
    proc = start(["realtime.extract", "--kind", "video", "--input", str(tmp_path / "in"), "--out",
                  str(tmp_path / "out"), "--workers", "2"])
    seen = wait_for(proc, "extract video")
    time.sleep(4.0)  # the workers have started and are loading or running the front-ends
    children = [int(pid) for pid in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
    assert len(children) >= 2 and all(map(ignores_sigint, children))  # Ctrl-C is the parent's: no worker traceback
    assert_interrupted(proc, interrupt(proc, seen))
