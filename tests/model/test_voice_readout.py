"""The GE2E read-out folded into the voice encoder's classifier (``fit_readout``)."""

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from dmd_lite.emotion_data import Pool
from realtime.core.feature_spec import GE2E_DIM, GE2E_START, LABELS, VOICE_FEATURE_DIM
from realtime.nets.voice_encoder import VoiceConfig, VoiceEncoder
from realtime.offline.voice_encoder import READOUT_C, fit_readout, pooled_features

torch.set_num_threads(1)


def voices(n: int, seed: int, classes: tuple[int, ...]) -> Pool:
    """Windows whose GE2E states lean toward a direction of their label; the other features are noise."""
    g = np.random.default_rng(seed)
    labels = g.choice(classes, n)
    directions = np.random.default_rng(99).standard_normal((len(LABELS), VOICE_FEATURE_DIM - GE2E_START))
    x = g.standard_normal((n, 100, VOICE_FEATURE_DIM)).astype(np.float32)
    x[:, :, GE2E_START:] += 0.3 * directions[labels][:, None, :]
    return Pool(x, np.ones((n, 100), bool), labels, np.full(n, np.nan, np.float32), np.full(n, "s"))


def accuracy(enc: VoiceEncoder, pool: Pool) -> float:
    with torch.inference_mode():
        pred = enc.classify(torch.from_numpy(pool.x), torch.from_numpy(pool.mask)).argmax(1).numpy()
    return float((pred == pool.labels).mean())


def test_the_readout_learns_the_states_and_leaves_the_trunk_columns_alone():
    torch.manual_seed(0)
    enc = VoiceEncoder(VoiceConfig(channels=16, depth=2)).eval()
    trunk_columns = enc.head[-1].weight[:, :32].clone()
    train, test = voices(700, 1, tuple(range(len(LABELS)))), voices(300, 2, tuple(range(len(LABELS))))
    before = accuracy(enc, test)
    fitted = fit_readout(enc, train, np.ones(len(train)))
    assert fitted["windows"] == 700 and fitted["train_loss"] < np.log(len(LABELS))
    assert before < 0.35 < 0.9 < accuracy(enc, test)
    torch.testing.assert_close(enc.head[-1].weight[:, :32], trunk_columns)


def test_the_readout_is_scikit_learns_weighted_logistic_regression():
    """The same penalty and sample weights as ``LogisticRegression(C=READOUT_C)`` on the pooled states,
    so the bench's read-outs and the shipped one are one model; a class no window has is pushed down."""
    torch.manual_seed(0)
    enc = VoiceEncoder(VoiceConfig(channels=16, depth=2)).eval()
    train = voices(500, 3, tuple(range(len(LABELS))))
    weights = np.random.default_rng(4).uniform(0.5, 2.0, len(train))
    states = pooled_features(enc, train)[:, -2 * GE2E_DIM:].double().numpy()
    w0, b0 = enc.head[-1].weight.detach().clone(), enc.head[-1].bias.detach().clone()
    fit_readout(enc, train, weights)
    reference = LogisticRegression(C=READOUT_C, max_iter=5000, tol=1e-10).fit(
        states, train.labels, sample_weight=weights * len(weights) / weights.sum())
    w, b = (enc.head[-1].weight.detach() - w0)[:, -2 * GE2E_DIM:], enc.head[-1].bias.detach() - b0
    np.testing.assert_allclose(w.numpy(), reference.coef_, atol=1e-5)
    np.testing.assert_allclose((b - b.mean()).numpy(), reference.intercept_ - reference.intercept_.mean(), atol=1e-4)
    b0 = enc.head[-1].bias.detach().clone()
    fit_readout(enc, voices(500, 5, (0, 1, 2, 3, 4, 5)), np.ones(500))  # no "surprised"
    b = enc.head[-1].bias.detach() - b0
    assert b[6] < b[:6].min() - 1
