"""Voice across corpora: a voice model scored on the held-out (test) speakers of every speech corpus.

Corpora and their splits: ``realtime.offline.speech_corpora`` (RAVDESS actors 21-24; nEMO, TESS,
TurEV-DB and URDU by their manifests). Features come from ``realtime.extract`` (the live voice
front-end), cached in the user cache; each test clip is scored on the window ending at its last
step, as ``python -m realtime.voice_encoder evaluate`` scores RAVDESS. Per corpus:

- ``n``; ``classes``: the corpus's own labels; ``test_classes``: those its test split has;
- ``raw``: the 7-way answer; ``restricted``: the best of the corpus's own classes only. Each has
  ``accuracy``, ``uar`` (unweighted average recall over ``test_classes``), ``macro_f1`` (over
  ``test_classes``; answers outside them count as errors) and ``answers`` (share of answers per
  predicted label: a voice that collapses onto one label shows it here);
- ``chance_uniform`` (1 / number of ``classes``) and ``chance_majority`` (largest test class's share).

Confusion matrices (rows true, columns predicted, ``LABELS`` order) go to ``report`` as
``confusion_voice_<corpus>_{raw,restricted}.png``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from dmd_lite.emotion_data import Pool, sequence_pool
from dmd_lite.emotion_eval import extract_all
from dmd_lite.metrics import class_scores, classification_metrics
from realtime.core.feature_spec import LABELS, FeatureSpec
from realtime.nets.voice_encoder import VoiceEncoder
from realtime.offline.cli import report_confusion
from realtime.offline.speech_corpora import CORPUS_FOLDERS, Clip, classes, corpus_clips

VOICE_CORPORA = tuple(CORPUS_FOLDERS)
Answer = Callable[[Pool], np.ndarray]  # raw voice windows -> (N, 7) scores (logits or log-probabilities)
LIVE_SEED = 1  # of the live conditions of a corpus's "live" view (``offline.live_conditions``)
# how a corpus's clips are heard, and the suffix of their extraction (``extraction``/<corpus><suffix>):
# in speaker sessions; each alone (a cold start); in speaker sessions under live conditions
VIEWS = {"session": "", "alone": "_cold", "live": "_live"}


def extract_view(data: Path, extraction: Path, workers: int, corpus: str, view: str) -> Path:
    """The folder of a corpus's features as heard in ``view`` (one of ``VIEWS``), extracted first where missing."""
    name = corpus + VIEWS[view]
    extract_all(data, extraction, workers, {name: ("audio", CORPUS_FOLDERS[corpus])},
                clips_alone=view == "alone", live_seed=LIVE_SEED if view == "live" else None)
    return extraction / name


@torch.inference_mode()
def window_logits(model: VoiceEncoder, pool: Pool, batch: int = 512) -> np.ndarray:
    """(N, 7) emotion logits of each voice window of ``pool``."""
    model.eval()
    x, m = torch.from_numpy(pool.x), torch.from_numpy(pool.mask)
    return torch.cat([model.classify(x[i:i + batch], m[i:i + batch]) for i in range(0, len(x), batch)]).numpy()


def split_pool(extraction: Path, clips: list[Clip], split: str, last: int = 1, limit: int | None = None) -> Pool:
    """The windows of each extracted clip of a corpus's ``split``: the ``last`` latest of those taken
    every hop back from its last step (1: the one ending there); ``limit``: that many clips, spread
    evenly over the split's list."""
    chosen = [c.audio for c in clips if c.split == split]
    if limit:
        chosen = chosen[::max(1, len(chosen) // limit)][:limit]
    wanted = set(chosen)
    try:
        return sequence_pool(extraction, "audio", lambda r: r["status"] == "ok" and r["source"] in wanted,
                             FeatureSpec(), every_hop=last > 1, last=last)
    except ValueError:  # nothing to stack
        raise ValueError(f"{extraction}: no extracted {split} clip of the corpus") from None


def test_pool(extraction: Path, clips: list[Clip]) -> Pool:
    """The windows ending at the last step of each extracted test clip of a corpus."""
    return split_pool(extraction, clips, "test")


def answer_scores(pred: np.ndarray, labels: np.ndarray, own: list[int]) -> dict:
    """Accuracy, UAR and macro F1 over ``own`` (label indices) and the share of answers per label."""
    m = classification_metrics(pred, labels, len(LABELS))
    shares = np.bincount(pred, minlength=len(LABELS)) / len(pred)
    return {"accuracy": round(m["accuracy"], 4), **{k: round(v, 4) for k, v in class_scores(m["confusion"], own).items()},
            "answers": {lab: round(float(s), 4) for lab, s in zip(LABELS, shares) if s > 0},
            "confusion": m["confusion"]}


def score_corpus(scores: np.ndarray, labels: np.ndarray, corpus_classes: tuple[str, ...]) -> dict:
    """The entry of one corpus (module docstring) from its test windows' (N, 7) scores and labels."""
    allowed = np.array([lab in corpus_classes for lab in LABELS])
    counts = np.bincount(labels, minlength=len(LABELS))
    present = [i for i in range(len(LABELS)) if counts[i] > 0]
    raw = answer_scores(scores.argmax(1), labels, present)
    restricted = answer_scores(np.where(allowed, scores, -np.inf).argmax(1), labels, present)
    return {"n": int(len(labels)), "classes": list(corpus_classes), "test_classes": [LABELS[i] for i in present],
            "raw": raw, "restricted": restricted, "chance_uniform": round(1.0 / len(corpus_classes), 4),
            "chance_majority": round(float(counts.max() / counts.sum()), 4)}


def evaluate_corpora(answer: Answer, data: Path, extraction: Path, report: Path, workers: int,
                     corpora: tuple[str, ...] = VOICE_CORPORA, what: str = "voice",
                     view: str = "session") -> dict[str, dict]:
    """``{corpus: entry}`` of ``answer`` on each corpus's test speakers as heard in ``view`` (features
    extracted first, skipping what is there); prints and saves each confusion matrix (a view other than
    the sessions' names its files). ``what`` names the model in what is printed."""
    clips = {c: corpus_clips(data, c) for c in corpora}  # every folder and manifest is checked before any work
    folders = {c: extract_view(data, extraction, workers, c, view) for c in corpora}
    suffix = "" if view == "session" else f"_{view}"
    results = {}
    for corpus, corpus_clip_list in clips.items():
        pool = test_pool(folders[corpus], corpus_clip_list)
        entry = score_corpus(answer(pool), pool.labels, classes(corpus_clip_list))
        for kind in ("raw", "restricted"):
            r = entry[kind]
            print(f"{corpus} test speakers, {what}, {kind} answers:")
            report_confusion(np.array(r.pop("confusion")), report / f"confusion_voice_{corpus}_{kind}{suffix}.png",
                             f"{corpus} test, {kind}: acc {r['accuracy']:.3f}, UAR {r['uar']:.3f}")
        results[corpus] = entry
    return results
