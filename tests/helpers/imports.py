"""What a fresh interpreter has imported after running some code."""

from __future__ import annotations

import json
import subprocess
import sys

from helpers.paths import ROOT


def modules_after(code: str) -> list[str]:
    """The sorted names in ``sys.modules`` after ``code`` ran in a new interpreter at the repository root."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.splitlines()[-1])
