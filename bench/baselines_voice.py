"""Reference point for the voice encoder: per-clip log-mel statistics + logistic regression.

    .venv/bin/python -m bench.baselines_voice [--extraction ~/.cache/dmd-realtime/default/extract/ravdess]

Each RAVDESS clip becomes the mean and standard deviation over all its steps of the 64 log-mel
features that ``realtime.extract`` wrote (128 numbers); scikit-learn's LogisticRegression on the
standardised statistics is fitted on actors 1-20 (the encoder's train + validation actors) and
scored on actors 21-24, the encoder's test actors (the held-out voices of ``dmd_lite.emotion_eval`` too). The last line is a JSON summary.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from dmd_lite.emotion_data import records
from dmd_lite.metrics import classification_metrics
from realtime.core.errors import run_cli
from realtime.core.feature_spec import LABELS
from realtime.core.resources import cache_dir
from realtime.frontends.voice import N_MELS
from realtime.offline.datasets import TEST_ACTORS, TRAIN_ACTORS, VAL_ACTORS, actor_of

DEFAULT_EXTRACTION = cache_dir("default") / "extract" / "ravdess"


def clip_statistics(extraction: Path, accept: Callable[[dict], bool],
                    columns: slice = slice(0, N_MELS)) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per labelled clip with status ok that ``accept`` takes, in ``records`` order: mean and std of the
    voice features in ``columns`` (default the log-mel values; (n, 2 * their number)), label index (n,)
    and source (the clip's path in the corpus folder)."""
    feats, labels, sources = [], [], []
    for r, streams in records(extraction, lambda r: r["status"] == "ok" and r.get("label") in LABELS and accept(r)):
        x = streams["audio"][1][:, columns]  # (steps, features)
        feats.append(np.concatenate([x.mean(0), x.std(0)]))
        labels.append(LABELS.index(r["label"]))
        sources.append(r["source"])
    return np.stack(feats), np.array(labels), sources


def held_out(record: dict) -> bool:
    return actor_of(record["speaker"]) in TEST_ACTORS


def fit_logmel(extraction: Path, c: float = 1.0) -> Pipeline:
    """StandardScaler + LogisticRegression(C=c) on the clip statistics of the train and validation actors."""
    x, y, _ = clip_statistics(extraction, lambda r: actor_of(r["speaker"]) in TRAIN_ACTORS + VAL_ACTORS)
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000)).fit(x, y)


def parser() -> argparse.ArgumentParser:
    """The command line."""
    ap = argparse.ArgumentParser(prog="python -m bench.baselines_voice", description=__doc__.split("\n")[0])
    ap.add_argument("--extraction", type=Path, default=DEFAULT_EXTRACTION, help="realtime.extract output of RAVDESS")
    return ap


def main(argv: list[str] | None = None) -> None:
    a = parser().parse_args(argv)
    clf = fit_logmel(a.extraction)
    x, y, _ = clip_statistics(a.extraction, held_out)
    m = classification_metrics(clf.predict(x), y, len(LABELS))
    print(f"log-mel mean/std + logistic regression, RAVDESS actors {TEST_ACTORS[0]}-{TEST_ACTORS[-1]} "
          f"(n={len(y)}): accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}")
    print(json.dumps({"baseline": "logmel_meanstd_logreg", "n_test": len(y),
                      **{k: round(m[k], 4) for k in ("accuracy", "macro_f1", "weighted_f1")}}))


if __name__ == "__main__":
    run_cli(main)
