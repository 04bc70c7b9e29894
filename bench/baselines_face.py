"""Reference point for the face features: MediaPipe blendshapes + head pose -> gradient boosting.

    .venv/bin/python -m bench.baselines_face [--extraction ~/.cache/dmd-realtime/default/extract/fer2013] [--threads 1]

Each FER2013 image becomes the 52 blendshape scores and 3 head-pose numbers that ``realtime.extract``
wrote (55 numbers; zeros where MediaPipe found no face: those images stay in, so the model answers
for every image). scikit-learn's HistGradientBoostingClassifier is fitted on FER2013 train, with
FER2013 val only deciding when boosting stops, and scored on every FER2013 test image, in the order
of ``emotion_eval.pools(..., "test")``. The last line is a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from dmd_lite.emotion_data import records
from dmd_lite.metrics import classification_metrics
from realtime.core.errors import run_cli
from realtime.core.feature_spec import LABELS
from realtime.core.resources import cache_dir
from realtime.frontends.face import BLENDSHAPES, POSE, PRESENCE

DEFAULT_EXTRACTION = cache_dir("default") / "extract" / "fer2013"


def blendshape_pose(extraction: Path, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every image of ``split`` (status not failed, in ``records`` order, as ``face_pool`` reads
    them): blendshapes + head pose (n, 55), label index (n,), face found (n,) bool."""
    feats, labels, found = [], [], []
    for r, streams in records(extraction, lambda r: r.get("split") == split and r["status"] != "failed"):
        f = streams["visual"][1][0]  # the still's one feature vector
        feats.append(np.concatenate([f[BLENDSHAPES], f[POSE]]))
        labels.append(LABELS.index(r["label"]))
        found.append(f[PRESENCE] > 0.5)
    return np.stack(feats).astype(np.float32), np.array(labels), np.array(found)


def fit_boosting(extraction: Path, max_iter: int = 1000, seed: int = 0) -> HistGradientBoostingClassifier:
    """Gradient boosting on FER2013 train; stops when the FER2013 val loss has not improved for 20 rounds."""
    x, y, _ = blendshape_pose(extraction, "train")
    x_val, y_val, _ = blendshape_pose(extraction, "val")
    clf = HistGradientBoostingClassifier(learning_rate=0.1, max_iter=max_iter, max_leaf_nodes=31,
                                         early_stopping=True, n_iter_no_change=20, random_state=seed)
    return clf.fit(x, y, X_val=x_val, y_val=y_val)


def parser() -> argparse.ArgumentParser:
    """The command line."""
    ap = argparse.ArgumentParser(prog="python -m bench.baselines_face", description=__doc__.split("\n")[0])
    ap.add_argument("--extraction", type=Path, default=DEFAULT_EXTRACTION, help="realtime.extract output of FER2013")
    ap.add_argument("--threads", type=int, default=1, help="OpenMP / BLAS threads")
    return ap


def main(argv: list[str] | None = None) -> None:
    a = parser().parse_args(argv)
    start = time.perf_counter()
    with threadpool_limits(a.threads):
        clf = fit_boosting(a.extraction)
        x, y, found = blendshape_pose(a.extraction, "test")
        pred = clf.predict(x)
    m = classification_metrics(pred, y, len(LABELS))
    face = classification_metrics(pred[found], y[found], len(LABELS))
    print(f"blendshapes + head pose + gradient boosting ({clf.n_iter_} rounds), FER2013 test (n={len(y)}, "
          f"{int(found.sum())} with a face): accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}  "
          f"weighted-F1 {m['weighted_f1']:.4f}; images with a face: accuracy {face['accuracy']:.4f}")
    print(json.dumps({"baseline": "blendshapes_pose_hgb", "train": "fer2013 train (val: early stopping)",
                      "n_test": len(y), "n_test_face_found": int(found.sum()), "rounds": clf.n_iter_,
                      **{k: round(m[k], 4) for k in ("accuracy", "macro_f1", "weighted_f1")},
                      "accuracy_face_found": round(face["accuracy"], 4),
                      "seconds": round(time.perf_counter() - start, 1)}))


if __name__ == "__main__":
    run_cli(main)
