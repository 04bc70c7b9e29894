"""Real utterances for the text model's parity gate: MELD's dev split when the shared data is on this
machine (labels known), else a few sentences written for this gate (labels unknown)."""

from __future__ import annotations

import numpy as np

from realtime.core.resources import REPO_ROOT
from realtime.core.tokens import tokenize
from realtime.offline.text_encoder import read_meld

from .windows import SEED

MELD_DEV = REPO_ROOT.parent / "shared" / "data" / "text" / "meld" / "dev_sent_emo.csv"
SENTENCES = ("I can't believe you did that to me!", "Thank you so much, this is wonderful.",
             "What are you doing here?", "I miss her every day", "Get out of my room right now!",
             "okay see you tomorrow", "that smell is making me sick", "I'm scared, don't leave",
             "Oh wow, really? You got the job?", "fine whatever", "we lost everything in the fire",
             "Haha that was the best party ever", "please just leave me alone",
             "Could you pass the salt, please?", "no no no no no")


def utterances(limit: int = 200) -> tuple[list[list[str]], np.ndarray, str]:
    """(tokens per utterance, labels (n,) with -1 = unknown, origin): ``limit`` random non-empty MELD
    dev utterances when present, else ``SENTENCES``."""
    if MELD_DEV.is_file():
        meld = read_meld(MELD_DEV)
        keep = np.array([i for i, t in enumerate(meld.words) if t])
        picks = np.sort(np.random.default_rng(SEED).choice(keep, min(limit, len(keep)), replace=False))
        return [meld.words[i] for i in picks], meld.emotion[picks], str(MELD_DEV)
    return [tokenize(s) for s in SENTENCES], np.full(len(SENTENCES), -1, np.int64), "sentences in calibration.utterances"
