"""The simple baselines of the default model's card, on its held-out sets, alone and fused.

    .venv/bin/python -m bench.baselines_fused [--extraction ~/.cache/dmd-realtime/default/extract] [--data ../shared/data/text]

Fits the three baselines (``baselines_face``: blendshapes + head pose, gradient boosting;
``baselines_voice``: log-mel mean/std, logistic regression; ``baselines_text``: TF-IDF word and
character n-grams of the raw utterance, logistic regression), takes their class probabilities on
the members of ``emotion_eval.pools(..., "test")`` (same members in the same order; checked
against the pools' labels) and scores:
- each modality on its whole test set (``face_fer2013_test``, ``voice_ravdess_heldout``,
  ``text_meld_test``);
- each modality alone and the late fusion of all three (sum of log-probabilities) on the
  label-paired triplets of ``fused_paired_test`` (``emotion_eval.paired_test_picks``).
Prints a table; the last line is the JSON of all figures, also written to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from threadpoolctl import threadpool_limits

from dmd_lite.emotion_data import records
from dmd_lite.emotion_eval import N_PAIRED, paired_test_picks, pools
from dmd_lite.metrics import classification_metrics
from realtime.core.errors import run_cli
from realtime.core.feature_spec import LABELS, FeatureSpec
from realtime.core.resources import cache_dir

from .baselines_face import blendshape_pose, fit_boosting
from .baselines_text import DEFAULT_DATA, fit_tfidf, meld_texts
from .baselines_voice import clip_statistics, fit_logmel, held_out

SETS = {"visual": ("face", "face_fer2013_test"), "audio": ("voice", "voice_ravdess_heldout"),
        "text": ("text", "text_meld_test")}  # pool -> (modality, held-out set)
LOG_FLOOR = 1e-12  # probabilities are floored here before the log


def class_probs(clf: ClassifierMixin, x: object) -> np.ndarray:
    """(n, len(LABELS)) probabilities; refuses a model that never saw some label."""
    if list(clf.classes_) != list(range(len(LABELS))):
        raise ValueError(f"the model knows classes {list(clf.classes_)}, not all of {len(LABELS)} labels")
    return clf.predict_proba(x)


def face_probs(extraction: Path) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and labels of every FER2013 test image."""
    x, y, _ = blendshape_pose(extraction, "test")
    return class_probs(fit_boosting(extraction), x), y


def voice_probs(extraction: Path) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and labels of every held-out RAVDESS clip."""
    x, y, _ = clip_statistics(extraction, held_out)
    return class_probs(fit_logmel(extraction), x), y


def text_probs(extraction: Path, data: Path) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and labels of every extracted MELD test utterance with status ok, from the
    raw text of the CSV row its record names (``meld/test_sent_emo.csv#ROW``)."""
    texts, labels = meld_texts(data, "test", tokenized=False)
    prefix = "meld/test_sent_emo.csv#"
    rows = []
    for r, _ in records(extraction, lambda r: r.get("corpus") == "meld" and r.get("split") == "test"
                        and r["status"] == "ok"):
        if not r["source"].startswith(prefix):
            raise ValueError(f"a MELD test record from {r['source']!r}, not {prefix}ROW")
        rows.append(int(r["source"][len(prefix):]))
    probs = class_probs(fit_tfidf(data, tokenized=False), [texts[i] for i in rows])
    return probs, np.array([labels[i] for i in rows])


def test_pool_labels(extraction: Path) -> dict[str, np.ndarray]:
    """The label arrays of ``emotion_eval.pools(..., "test")``; its encoders are bypassed (only
    the labels are read)."""
    test = pools(lambda x, m: x, extraction, FeatureSpec(), "test")  # type: ignore[arg-type]
    return {m: p.labels for m, p in test.items()}


def scores(pred: np.ndarray, labels: np.ndarray) -> dict:
    """n, accuracy, macro and weighted F1 over the labelled members."""
    keep = labels >= 0
    m = classification_metrics(pred[keep], labels[keep], len(LABELS))
    return {"n": int(keep.sum()), **{k: round(m[k], 4) for k in ("accuracy", "macro_f1", "weighted_f1")}}


def evaluate(probs: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> dict:
    """Whole-set scores per modality, and per modality and fused on the paired triplets."""
    out = {SETS[m][1]: scores(probs[m].argmax(1), labels[m]) for m in SETS}
    paired_labels, picks = paired_test_picks(labels, len(LABELS))
    log_p = {m: np.log(np.maximum(probs[m][picks[m]], LOG_FLOOR)) for m in SETS}
    out["fused_paired_test"] = {**{SETS[m][0]: scores(log_p[m].argmax(1), paired_labels) for m in SETS},
                                "fused": scores(sum(log_p.values()).argmax(1), paired_labels)}
    return out


def _row(name: str, s: dict) -> str:
    return f"{name:<34}{s['n']:>6}{s['accuracy']:>10.4f}{s['macro_f1']:>10.4f}{s['weighted_f1']:>13.4f}"


def table(result: dict) -> str:
    """``evaluate``'s figures, one row per set and per paired-set entry."""
    rows = [f"{'set':<34}{'n':>6}{'accuracy':>10}{'macro-F1':>10}{'weighted-F1':>13}"]
    rows += [_row(f"{mod} ({name})", result[name]) for mod, name in SETS.values()]
    rows.append(f"fused_paired_test ({N_PAIRED} label-paired triplets, labels uniform):")
    rows += [_row(f"  {k}" + (" (sum of log-probabilities)" if k == "fused" else " alone"), s)
             for k, s in result["fused_paired_test"].items()]
    return "\n".join(rows)


def parser() -> argparse.ArgumentParser:
    """The command line."""
    ap = argparse.ArgumentParser(prog="python -m bench.baselines_fused", description=__doc__.split("\n")[0])
    ap.add_argument("--extraction", type=Path, default=cache_dir("default") / "extract",
                    help="folder with the fer2013, ravdess and text extractions")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with meld/")
    ap.add_argument("--out", type=Path, default=cache_dir("default") / "report" / "baselines.json",
                    help="where the JSON summary is written (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=1, help="torch, OpenMP and BLAS threads")
    return ap


def main(argv: list[str] | None = None) -> None:
    a = parser().parse_args(argv)
    torch.set_num_threads(a.threads)
    seconds, probs, labels = {}, {}, {}
    with threadpool_limits(a.threads):
        for m, run in (("visual", lambda: face_probs(a.extraction / "fer2013")),
                       ("audio", lambda: voice_probs(a.extraction / "ravdess")),
                       ("text", lambda: text_probs(a.extraction / "text", a.data))):
            start = time.perf_counter()
            probs[m], labels[m] = run()
            seconds[SETS[m][0]] = round(time.perf_counter() - start, 1)
            print(f"{SETS[m][0]}: fitted and predicted {len(labels[m])} in {seconds[SETS[m][0]]} s", flush=True)
        start = time.perf_counter()
        pool_labels = test_pool_labels(a.extraction)
        for m in SETS:
            if not np.array_equal(labels[m], pool_labels[m]):
                raise RuntimeError(f"the {SETS[m][0]} baseline's test members are not the {m} test pool's")
        result = evaluate(probs, labels)
        seconds["pools_and_scoring"] = round(time.perf_counter() - start, 1)
    print(table(result))
    summary = {"baselines": {"face": "blendshapes + head pose, HistGradientBoosting (bench.baselines_face)",
                             "voice": "log-mel mean/std, logistic regression (bench.baselines_voice)",
                             "text": "TF-IDF word 1-2 + char 2-5 grams of raw text, logistic regression "
                                     "(bench.baselines_text)",
                             "fused": "sum of the three log-probabilities"},
               **result, "seconds": seconds}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    run_cli(main)
