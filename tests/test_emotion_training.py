"""How the default model's training draws its samples (``dmd_lite.emotion_train``, ``emotion_data``)."""

import numpy as np
import pytest

from dmd_lite.emotion_data import Pool
from dmd_lite.emotion_train import ORDER, draw_labels


def _pool(labels: list[int]) -> Pool:
    n = len(labels)
    return Pool(np.arange(n, dtype=np.float32)[:, None], np.ones((n, 1), bool), np.array(labels, np.int64),
                np.full(n, np.nan, np.float32), np.array(["g"] * n))


@pytest.fixture
def pools() -> dict[str, Pool]:
    skewed = _pool([0] * 640 + [1] * 160 + [2] * 40)  # counts 16 : 4 : 1
    return {m: skewed for m in ORDER}


def _shares(labels: np.ndarray) -> np.ndarray:
    return np.bincount(labels, minlength=3) / len(labels)


def test_a_lone_modality_draws_its_own_corpus_prior(pools):
    n = 40_000
    rng = np.random.default_rng(0)
    for k, m in enumerate(ORDER):
        present = np.zeros((n, 3), bool)
        present[:, k] = True
        shares = _shares(draw_labels(present, pools, 3, rng))
        np.testing.assert_allclose(shares, np.array([16, 4, 1]) / 21, atol=0.01, err_msg=m)


def test_paired_samples_draw_uniform_labels(pools):
    shares = _shares(draw_labels(np.ones((30_000, 3), bool), pools, 3, np.random.default_rng(1)))
    np.testing.assert_allclose(shares, np.full(3, 1 / 3), atol=0.01)
