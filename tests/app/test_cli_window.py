"""An OpenCV without a window (opencv-python-headless, the runtime install's): a run that would open the
overlay window stops at once with a one-line usage error, and the demo goes headless by itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from realtime import cli


@pytest.fixture
def headless_opencv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.cv2, "currentUIFramework", lambda: "")  # what the headless wheel answers
    monkeypatch.setenv("DISPLAY", ":99")


def test_a_window_needs_an_opencv_with_one(headless_opencv: None, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli.parse_args(["--camera", "0"])
    assert stopped.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "this OpenCV has no window" in last and "--headless" in last and "venv.sh runtime --window" in last
    assert cli.parse_args(["--camera", "0", "--headless"]).headless


def test_the_demo_goes_headless_by_itself(headless_opencv: None, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.parse_args(["--demo"]).headless


def test_the_full_install_has_a_window() -> None:
    assert cli.cv2.currentUIFramework()  # Qt: the window tests (test_display.py) need it
