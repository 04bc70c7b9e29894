"""Reference point for the text encoder: TF-IDF word 1-2-grams + char 2-5-grams + logistic regression.

    .venv/bin/python -m bench.baselines_text [--data ../shared/data/text]

Fitted on MELD train, scored on MELD test, twice: on the raw utterances (punctuation included, the
usual text-classification baseline) and on the words ``realtime.core.tokens.tokenize`` keeps without marks
(lower case, no punctuation: what the encoder gets from the ASR). The gap between the two is what "?" and "!"
are worth. The last line is a JSON summary.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline, make_union

from dmd_lite.metrics import classification_metrics
from realtime.core.errors import run_cli
from realtime.core.feature_spec import LABELS
from realtime.core.tokens import tokenize
from realtime.offline.datasets import MELD_EMOTIONS

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "text"


def meld_texts(data: Path, split: str, tokenized: bool) -> tuple[list[str], list[int]]:
    """Utterances of a MELD split in CSV row order (row i is ``realtime.extract``'s
    ``meld/<split>_sent_emo.csv#i``) and their label indices."""
    with (data / "meld" / f"{split}_sent_emo.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    texts = [" ".join(tokenize(r["Utterance"], marks=False)) if tokenized else r["Utterance"] for r in rows]
    return texts, [LABELS.index(MELD_EMOTIONS[r["Emotion"]]) for r in rows]


def fit_tfidf(data: Path, tokenized: bool, c: float = 1.0) -> Pipeline:
    """TF-IDF (sublinear tf; word 1-2-grams, char_wb 2-5-grams seen in >= 2 utterances) +
    LogisticRegression(C=c), fitted on MELD train."""
    clf = make_pipeline(
        make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                   TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)),
        LogisticRegression(C=c, max_iter=2000))
    return clf.fit(*meld_texts(data, "train", tokenized))


def tfidf_baseline(data: Path, tokenized: bool, c: float = 1.0) -> dict[str, float]:
    """MELD test accuracy, weighted and macro F1 of ``fit_tfidf``."""
    texts, target = meld_texts(data, "test", tokenized)
    m = classification_metrics(fit_tfidf(data, tokenized, c).predict(texts), target, len(LABELS))
    return {k: m[k] for k in ("accuracy", "weighted_f1", "macro_f1")}


def parser() -> argparse.ArgumentParser:
    """The command line."""
    ap = argparse.ArgumentParser(prog="python -m bench.baselines_text", description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with meld/")
    return ap


def main(argv: list[str] | None = None) -> None:
    a = parser().parse_args(argv)
    summary = {}
    for name, tokenized in (("raw_text", False), ("tokenized_words", True)):
        m = summary[name] = {k: round(v, 4) for k, v in tfidf_baseline(a.data, tokenized).items()}
        print(f"TF-IDF + logistic regression, MELD test, {name:>15}: accuracy {m['accuracy']:.4f}  "
              f"weighted-F1 {m['weighted_f1']:.4f}  macro-F1 {m['macro_f1']:.4f}", flush=True)
    print(json.dumps({"baseline": "tfidf_word12_char25_logreg", "train": "meld train", "test": "meld test", **summary}))


if __name__ == "__main__":
    run_cli(main)
