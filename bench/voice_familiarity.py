"""Which familiarity tells a speech corpus never heard from new speakers of the corpora heard.

    .venv/bin/python -m bench.voice_familiarity --data ../shared/data [--extraction DIR]

The voice's reliability is confidence x familiarity (``realtime.nets.voice_encoder``), and its
familiarity is one window's Mahalanobis distance to the training windows. This bench asks whether
another distance would mark a corpus the model never heard as unfamiliar. It uses the stand-in of
``bench.voice_features_across_corpora``: one vector per clip, the mean and deviation over the clip's
steps of the voice front-end's GE2E states, standardised on the training clips, and a logistic
regression on it. For each of the five speech corpora left out in turn, the model is fitted on the
train speakers of the other four. It is then scored on the validation speakers of the four
("seen") and of the one left out ("unseen"); test speakers are not read. Four distances to the
training clips:

- ``clip_mahalanobis``: one clip's, with the covariance ridge of ``fit_reliability`` (the shipped
  form);
- ``clip_knn``: one clip's mean Euclidean distance to its ``K`` nearest training clips;
- ``session_mahalanobis``, ``session_knn``: the same, averaged over the speaker's clips (live, a
  running mean over one user's speech would stand in for it).

Each becomes a familiarity as the shipped one does: a logistic centred at the seen speakers' 95th
percentile, scaled by a third of its distance from their median. Per left-out corpus the bench
prints:

- the read-out's UAR on the unseen speakers;
- how well each distance separates unseen from seen clips (ROC AUC; 0.5 is chance);
- the mean reliability of seen and unseen clips;
- how well each reliability ranks right answers above wrong ones over all their clips (ROC AUC).

Confidence alone is printed beside them. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

from dmd_lite.emotion_eval import extract_all
from realtime.core.errors import run_cli
from realtime.core.feature_spec import GE2E_START, LABELS
from realtime.offline.cross_corpus import VOICE_CORPORA
from realtime.offline.speech_corpora import CORPUS_FOLDERS, Clip, corpus_clips
from realtime.nets.voice_encoder import familiarity, mahalanobis
from realtime.offline.voice_encoder import distance_reference, ridged_precision

from .report import cpu_name
from .voice_features_across_corpora import clip_table, corpora_parser, run_corpora_bench, step_statistics, uar

K = 10  # neighbours of the k-NN distance
DISTANCES = ("clip_mahalanobis", "clip_knn", "session_mahalanobis", "session_knn")


def mahalanobis_to(train: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Each row of ``x``'s Mahalanobis distance to ``train``, as ``fit_reliability`` measures it."""
    mean, precision = ridged_precision(torch.from_numpy(train))
    return mahalanobis(torch.from_numpy(x) - mean, precision).numpy()


def knn_distance(train: np.ndarray, x: np.ndarray, k: int = K) -> np.ndarray:
    """Each row of ``x``'s mean Euclidean distance to its ``k`` nearest rows of ``train``."""
    d2 = (x ** 2).sum(1)[:, None] - 2 * x @ train.T + (train ** 2).sum(1)[None, :]
    return np.sqrt(np.maximum(np.sort(d2, 1)[:, :k], 0.0)).mean(1)


def session_mean(d: np.ndarray, speakers: np.ndarray) -> np.ndarray:
    """Each clip's ``d`` replaced by the mean of its speaker's clips."""
    out = d.copy()
    for s in np.unique(speakers):
        out[speakers == s] = d[speakers == s].mean()
    return out


def familiarity_of(d_seen: np.ndarray, d: np.ndarray) -> np.ndarray:
    """The shipped familiarity of distances ``d``, fitted on the seen speakers' ``d_seen``."""
    return familiarity(torch.from_numpy(d), *distance_reference(torch.from_numpy(d_seen))).numpy()


def left_out(table: dict[str, tuple[np.ndarray, list[Clip]]], left: str) -> dict:
    """The module docstring's figures for ``left`` out; ``table``: per corpus, clip vectors and clips."""
    def part(corpora: list[str], split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = [(table[name][0][i], LABELS.index(c.label), f"{name}/{c.speaker}") for name in corpora
                for i, c in enumerate(table[name][1]) if c.split == split]
        vectors, labels, speakers = zip(*rows)
        return np.stack(vectors), np.array(labels), np.array(speakers)

    seen = [c for c in table if c != left]
    x_train, y_train, s_train = part(seen, "train")
    corpus_of = np.array([s.split("/")[0] for s in s_train])
    weight = np.array([(corpus_of == c).sum() ** -0.5 for c in corpus_of])  # as the voice encoder draws them
    scaler = StandardScaler().fit(x_train)
    train = scaler.transform(x_train)
    clf = LogisticRegression(C=0.1, max_iter=3000).fit(train, y_train, sample_weight=weight * len(weight) / weight.sum())
    sets = {"seen": part(seen, "val"), "unseen": part([left], "val")}
    out: dict = {}
    for name, (x, y, speakers) in sets.items():
        x = scaler.transform(x)
        p = np.zeros((len(x), len(LABELS)))
        p[:, clf.classes_] = clf.predict_proba(x)
        clip = {"mahalanobis": mahalanobis_to(train, x), "knn": knn_distance(train, x)}
        out[name] = {"y": y, "pred": p.argmax(1),
                     "confidence": (p.max(1) - 1 / len(LABELS)) / (1 - 1 / len(LABELS)),
                     **{f"clip_{k}": d for k, d in clip.items()},
                     **{f"session_{k}": session_mean(d, speakers) for k, d in clip.items()}}
    seen, unseen = out["seen"], out["unseen"]
    right = np.concatenate([seen["pred"] == seen["y"], unseen["pred"] == unseen["y"]])
    unseen_first = np.r_[np.zeros(len(seen["y"])), np.ones(len(unseen["y"]))]
    result = {"unseen_uar": round(uar(unseen["pred"], unseen["y"]), 4),
              "confidence": {"mean_seen": round(float(seen["confidence"].mean()), 4),
                             "mean_unseen": round(float(unseen["confidence"].mean()), 4),
                             "auc_right": round(float(roc_auc_score(right, np.r_[seen["confidence"], unseen["confidence"]])), 4)}}
    for k in DISTANCES:
        r_seen = seen["confidence"] * familiarity_of(seen[k], seen[k])
        r_unseen = unseen["confidence"] * familiarity_of(seen[k], unseen[k])
        result[k] = {"auc_unseen": round(float(roc_auc_score(unseen_first, np.r_[seen[k], unseen[k]])), 4),
                     "mean_seen": round(float(r_seen.mean()), 4), "mean_unseen": round(float(r_unseen.mean()), 4),
                     "auc_right": round(float(roc_auc_score(right, np.r_[r_seen, r_unseen])), 4)}
    return result


def measure(data: Path, extraction: Path) -> dict:
    """Print the table and the JSON line; returns the JSON."""
    clips = {c: corpus_clips(data, c) for c in VOICE_CORPORA}
    extract_all(data, extraction, 2, {c: ("audio", CORPUS_FOLDERS[c]) for c in VOICE_CORPORA})  # what is missing
    table = {c: clip_table(step_statistics(extraction, c, clips[c], slice(GE2E_START, None)), clips[c])
             for c in VOICE_CORPORA}
    result = {"machine": f"{cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}",
              "left_out": {c: left_out(table, c) for c in VOICE_CORPORA}}
    rows = [[c, f"{r['unseen_uar']:.3f}", *(f"{r[k]['auc_unseen']:.2f}" for k in DISTANCES),
             f"{r['session_knn']['mean_seen']:.2f} / {r['session_knn']['mean_unseen']:.2f}",
             f"{r['confidence']['auc_right']:.2f}", *(f"{r[k]['auc_right']:.2f}" for k in DISTANCES)]
            for c, r in result["left_out"].items()]
    header = ["left out", "UAR unseen", *(f"AUC unseen, {k}" for k in DISTANCES), "reliability seen / unseen, session_knn",
              "AUC right, confidence", *(f"AUC right, {k}" for k in DISTANCES)]
    for row in (header, ["---"] * len(header), *rows):
        print("| " + " | ".join(row) + " |")
    print(json.dumps(result))
    return result


def parser() -> argparse.ArgumentParser:
    """The command line."""
    return corpora_parser("python -m bench.voice_familiarity", __doc__)


def main(argv: list[str] | None = None) -> None:
    run_corpora_bench(parser(), measure, argv)


if __name__ == "__main__":
    run_cli(main)
