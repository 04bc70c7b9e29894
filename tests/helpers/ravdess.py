"""A few real RAVDESS clips of the shared data (tests that use them carry ``@pytest.mark.needs_data``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from helpers.paths import DATA

from realtime.capture.audio_source import FileAudioSource

# two actors' clips, by file name without .flac: two voice sessions of different lengths and labels
SESSIONS = {"Actor_01": ["03-01-01-01-01-01-01", "03-01-02-01-01-01-01", "03-01-03-02-01-01-01",
                         "03-01-08-01-02-02-01"],
            "Actor_02": ["03-01-01-01-01-01-02", "03-01-05-02-01-01-02"]}


def ravdess_samples(path: str) -> np.ndarray:
    """16 kHz float32 samples of one RAVDESS clip (``Actor_NN/<name>.flac``)."""
    with FileAudioSource(DATA / "ravdess_speech_16k" / path) as source:
        return np.concatenate([c.samples for c in source])


def copy_sessions(dest: Path) -> None:
    """The clips of ``SESSIONS`` into ``dest``/Actor_NN/."""
    for actor, names in SESSIONS.items():
        (dest / actor).mkdir(parents=True)
        for name in names:
            shutil.copy(DATA / "ravdess_speech_16k" / actor / f"{name}.flac", dest / actor)
