"""How the default model's training draws its samples and logs its epochs (``dmd_lite.emotion_train``)."""

import json

import numpy as np
import pytest
import torch

from dmd_lite.config import preset
from dmd_lite.emotion_data import Jitter, Pool, face_windows
from dmd_lite.emotion_train import TripletSampler, TripletTraining, draw_labels, train_on_triplets
from dmd_lite.model import DMD
from dmd_lite.recipes.default import dmd_config
from realtime.core.feature_spec import LABELS, FeatureSpec
from realtime.core.modalities import MODALITIES


def _pool(labels: list[int]) -> Pool:
    n = len(labels)
    return Pool(np.arange(n, dtype=np.float32)[:, None], np.ones((n, 1), bool), np.array(labels, np.int64),
                np.full(n, np.nan, np.float32), np.array(["g"] * n))


@pytest.fixture
def pools() -> dict[str, Pool]:
    skewed = _pool([0] * 640 + [1] * 160 + [2] * 40)  # counts 16 : 4 : 1
    return {m: skewed for m in MODALITIES}


def _shares(labels: np.ndarray) -> np.ndarray:
    return np.bincount(labels, minlength=3) / len(labels)


def test_a_lone_modality_draws_its_own_corpus_prior(pools):
    n = 40_000
    rng = np.random.default_rng(0)
    for k, m in enumerate(MODALITIES):
        present = np.zeros((n, 3), bool)
        present[:, k] = True
        shares = _shares(draw_labels(present, pools, 3, rng))
        np.testing.assert_allclose(shares, np.array([16, 4, 1]) / 21, atol=0.01, err_msg=m)


def test_paired_samples_draw_uniform_labels(pools):
    shares = _shares(draw_labels(np.ones((30_000, 3), bool), pools, 3, np.random.default_rng(1)))
    np.testing.assert_allclose(shares, np.full(3, 1 / 3), atol=0.01)


def test_a_passing_expression_covers_one_span_of_at_most_a_third():
    steps, n = 60, 4000
    stills, passers = np.zeros((n, 2), np.float32), np.ones((n, 2), np.float32)
    jitter = Jitter(noise=0.0, drop=0.0, late_start=0.0, passing=0.3)
    x, mask = face_windows(stills, steps, np.random.default_rng(0), np.ones(2, np.float32), jitter, passers)
    over = x[..., 0] == 1.0  # (n, steps): where the passing face shows
    shown = over.sum(1)
    assert mask.all() and shown.max() <= steps // 3
    assert abs((shown > 0).mean() - 0.3) < 0.03
    first = over.argmax(1)
    spans = [over[i, first[i]:first[i] + shown[i]].all() for i in np.flatnonzero(shown)]
    assert all(spans)  # one contiguous span each
    held, _ = face_windows(stills, steps, np.random.default_rng(0), np.ones(2, np.float32), None, passers)
    assert not held.any()  # without jitter (evaluation) the still is held throughout


def _random_pools(n: int, spec: FeatureSpec, voice_dim: int, text_dim: int,
                  rng: np.random.Generator) -> dict[str, Pool]:
    """n windows per modality with every label present; features are noise (this checks bookkeeping)."""
    labels = np.arange(n) % len(LABELS)
    valence = rng.uniform(-1, 1, n).astype(np.float32)
    shapes = {"visual": (n, spec.visual_dim), "audio": (n, spec.audio_steps, voice_dim),
              "text": (n, spec.max_words, text_dim)}
    masks = {"visual": np.ones((n, 1), bool), "audio": np.ones((n, spec.audio_steps), bool),
             "text": np.ones((n, spec.max_words), bool)}
    return {m: Pool(rng.standard_normal(shapes[m]).astype(np.float32), masks[m], labels, valence,
                    np.array(["g"] * n)) for m in MODALITIES}


def test_each_run_logs_only_its_own_epochs(tmp_path):
    spec, lite = FeatureSpec(), preset("lite")
    pools = _random_pools(21, spec, lite.dim_a, lite.dim_l, np.random.default_rng(0))
    sampler = TripletSampler(pools, len(LABELS), spec.visual_steps)
    valid = {"fused": sampler.fixed_set(14, (True, True, True), 0, jitter=None)}
    cfg = TripletTraining(steps_per_epoch=2, epochs=2, batch_size=8)
    for _ in range(2):  # a second run into the same folder replaces the first one's log
        train_on_triplets(DMD(dmd_config(lite.dim_a, lite.dim_l)), sampler, valid, cfg, tmp_path,
                          torch.device("cpu"), {})
        epochs = [json.loads(line)["epoch"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
        assert epochs == [1, 2]
    assert (tmp_path / "best").is_dir() and (tmp_path / "curves.png").is_file()
