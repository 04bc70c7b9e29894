"""bench.voice_familiarity's distances and its left-out figures, on planted data."""

from __future__ import annotations

import numpy as np

from bench.voice_familiarity import DISTANCES, familiarity_of, knn_distance, left_out, mahalanobis_to, session_mean
from realtime.core.feature_spec import LABELS
from realtime.offline.speech_corpora import Clip


def test_distances_agree_with_their_definitions():
    rng = np.random.default_rng(0)
    train, x = rng.normal(size=(300, 5)), rng.normal(size=(20, 5))
    brute = np.sort(np.linalg.norm(x[:, None] - train[None], axis=2), 1)[:, :10].mean(1)
    assert np.allclose(knn_distance(train, x), brute)
    cov = np.cov(train, rowvar=False)
    cov += 1e-3 * cov.diagonal().mean() * np.eye(5)
    z = x - train.mean(0)
    assert np.allclose(mahalanobis_to(train, x), np.sqrt(np.einsum("ij,jk,ik->i", z, np.linalg.inv(cov), z)))
    assert np.array_equal(session_mean(np.array([1.0, 3.0, 10.0]), np.array(["a", "a", "b"])), [2.0, 2.0, 10.0])
    seen = rng.normal(size=1000)
    f = familiarity_of(seen, np.percentile(seen, [50, 95]))
    assert f[0] > 0.95 and abs(f[1] - 0.5) < 1e-9  # familiar at the median, half at the 95th percentile


def planted_table(shifted: str, shift: float) -> dict:
    """Five corpora of 2-D clip vectors whose label sits on the first axis; ``shifted`` moved along the second."""
    rng = np.random.default_rng(1)
    table = {}
    for corpus in ("a", "b", "c", "d", "e"):
        clips, rows = [], []
        for speaker in range(9):
            split = ("train", "train", "train", "train", "train", "val", "val", "test", "test")[speaker]
            for i in range(30):
                label = i % 2
                clips.append(Clip(f"{corpus}{speaker}_{i}.wav", str(speaker), LABELS[label + 1], "x", split))
                rows.append([2.0 * label + rng.normal(0, 0.5), rng.normal(0, 0.5) + (shift if corpus == shifted else 0)])
        table[corpus] = (np.array(rows), clips)
    return table


def test_a_corpus_far_from_the_others_is_found_unfamiliar_and_a_near_one_is_not():
    far = left_out(planted_table("c", 6.0), "c")
    near = left_out(planted_table("c", 0.0), "c")
    for k in DISTANCES:
        assert far[k]["auc_unseen"] > 0.95 and far[k]["mean_unseen"] < 0.1 < far[k]["mean_seen"]
        assert 0.3 < near[k]["auc_unseen"] < 0.75
    assert near["unseen_uar"] > 0.9  # the label axis carries over when nothing moved
