"""The overlay window (OpenCV HighGUI; the pip wheel's backend is Qt 5 on X11) under a private virtual
X server: q, Esc and closing the window each end ``main.py`` within a moment, with exit status 0, a
playable recording and a complete event log. A screenshot of the live window is saved as
window.png in the ``artifacts_dir`` fixture's folder ($DMD_TEST_ARTIFACTS, else under tmp_path).

Needs the apt packages xvfb, xdotool and x11-apps (xwd). Closing a window is a request that a window
manager delivers (WM_DELETE_WINDOW), so that test also runs matchbox-window-manager and asks it to
close the window with wmctrl, as a desktop's close button does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.display import xvfb
from helpers.mainrun import (CLIP, MAIN, ROOT, TIMEOUT_S, check_inferences, inference_events, read_events, streams,
                     wait_for_inferences)

from realtime.app.config import JOIN_S, WINDOW_TITLE

EXIT_S = 6.0  # from the key (or the close) to the process gone, teardown included (about 1 s alone; the rest is room for a loaded machine, far below a hang)
WM_STARTS = 3


def _need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (scripts/setup.sh installs them as root)")


@pytest.fixture
def display() -> Iterator[dict[str, str]]:
    """A private Xvfb on a free display number (it picks one with -displayfd); the environment of its clients."""
    _need("Xvfb", "xdotool", "xwd")
    with xvfb() as number:
        yield {**os.environ, "DISPLAY": number}


def _start_window_manager(env: dict[str, str]) -> subprocess.Popen:
    """matchbox-window-manager, once wmctrl sees it. Now and then it exits at once with "can't open
    display" although the server is up and the next start works (seen under load), so it gets
    ``WM_STARTS`` tries."""
    errors = []
    for _ in range(WM_STARTS):
        wm = subprocess.Popen(["matchbox-window-manager", "-use_titlebar", "no"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        while wm.poll() is None and time.monotonic() < deadline:
            if subprocess.run(["wmctrl", "-m"], env=env, capture_output=True).returncode == 0:
                return wm
            time.sleep(0.1)
        wm.kill()
        errors.append(wm.communicate()[1].strip() or "no window manager after 10 s")
    raise AssertionError(f"the window manager did not start: {errors}")


@pytest.fixture
def window_manager(display: dict[str, str]) -> Iterator[dict[str, str]]:
    """matchbox-window-manager on ``display``."""
    _need("matchbox-window-manager", "wmctrl")
    wm = _start_window_manager(display)
    try:
        yield display
    finally:
        wm.terminate()
        wm.wait(timeout=10)


def _x(env: dict[str, str], *args: str) -> str:
    return subprocess.run(args, env=env, capture_output=True, text=True, check=True, timeout=30).stdout


def _screenshot(env: dict[str, str], window: str) -> np.ndarray:
    """The window's pixels (BGR), from ``xwd``'s dump: a header, a colour map, then 24-bit colour in
    32-bit pixels."""
    dump = subprocess.run(["xwd", "-id", window, "-silent"], env=env, capture_output=True, check=True,
                          timeout=30).stdout
    header = np.frombuffer(dump, ">u4", 25)
    size, width, height, order, bpp, ncolors = (int(header[i]) for i in (0, 4, 5, 7, 11, 19))
    assert bpp == 32 and tuple(header[14:17]) == (0xFF0000, 0xFF00, 0xFF), "unexpected pixel format"
    pixels = np.frombuffer(dump, "<u4" if order == 0 else ">u4", height * width, size + 12 * ncolors)
    return np.stack([(pixels.reshape(height, width) >> shift) & 0xFF for shift in (0, 8, 16)], -1).astype(np.uint8)


def _run_and_end(env: dict[str, str], tmp_path: Path, korean: Path | None, end: Callable[[str], None], reason: str,
                 screenshot: Path | None = None) -> None:
    """Run main.py with its window on the demo clip, ``end`` it once its window shows results, then check
    how soon and how it ended, the recording and the event log (``screenshot``: save the window there)."""
    record, events = tmp_path / "run.mp4", tmp_path / "events.jsonl"
    asr = ["--vosk-model", str(korean)] if korean is not None else ["--no-asr"]  # the ASR thread must stop too
    process = subprocess.Popen([*MAIN, "--video", str(CLIP), "--record", str(record), "--events", str(events), *asr],
                               cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_inferences(events, 2, process)
        windows = _x(env, "xdotool", "search", "--name", f"^{WINDOW_TITLE.split(' (')[0]}").split()
        assert len(windows) == 1, f"expected one window named {WINDOW_TITLE!r}, found {windows}"
        if screenshot is not None:
            deadline = time.monotonic() + 5  # Qt paints asynchronously: a capture may come between paints
            while (picture := _screenshot(env, windows[0])).std() <= 20 and time.monotonic() < deadline:
                time.sleep(0.2)
            cv2.imwrite(str(screenshot), picture)
            assert picture.shape[:2] == (480, 640), "the window should show the clip's frames at their size"
            assert picture.std() > 20, "the window shows no picture"
        end(windows[0])
        t0 = time.monotonic()
        assert process.wait(timeout=TIMEOUT_S) == 0, process.stderr.read()[-2000:]
        seconds = time.monotonic() - t0
    finally:
        process.kill()
    print(f"{reason}: the process ended {seconds:.2f} s after it")
    assert seconds < EXIT_S

    log = read_events(events)
    assert log[0]["type"] == "start" and log[-1]["type"] == "end" and log[-1]["reason"] == reason
    assert log[-1]["threads_joined_s"] < JOIN_S
    check_inferences(inference_events(log))
    got = streams(record)
    assert got["frames"] > 10 and got["audio"] == pytest.approx(got["video"], abs=1.0)


@pytest.mark.parametrize("key", ["q", "Escape"])
def test_a_key_in_the_window_ends_the_run_cleanly(display, tmp_path, korean_model, artifacts_dir, key):
    def press(window: str) -> None:
        _x(display, "xdotool", "windowfocus", "--sync", window, "key", key)

    _run_and_end(display, tmp_path, korean_model, press, "key",
                 screenshot=artifacts_dir / "window.png" if key == "q" else None)


def test_closing_the_window_ends_the_run_cleanly(window_manager, tmp_path, korean_model):
    def close(window: str) -> None:
        _x(window_manager, "wmctrl", "-i", "-c", window)

    _run_and_end(window_manager, tmp_path, korean_model, close, "window closed")
