"""Where things are: the repository root, and the shared data beside it (``../shared``, only on the
development machines; tests that need it carry ``@pytest.mark.needs_data``)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository root
SHARED = ROOT.parent / "shared"
DATA = SHARED / "data"
