"""The voice's reliability: how it is fitted, and how the recognizer leans on the other modalities by it."""

import numpy as np
import pytest
import torch

from dmd_lite.emotion_data import Pool
from dmd_lite.recognizer import load_recognizer, voice_weight
from realtime.core.modalities import VOICE_FULL_TRUST as FULL_TRUST
from realtime.core.feature_spec import LABELS, VOICE_FEATURE_DIM
from realtime.nets.voice_encoder import UNFITTED_REF, VoiceConfig, VoiceEncoder
from realtime.offline.voice_encoder import fit_reliability

torch.set_num_threads(1)


def voices(n: int, seed: int, scale: float = 1.0, shift: float = 0.0) -> Pool:
    g = np.random.default_rng(seed)
    x = (g.standard_normal((n, 100, VOICE_FEATURE_DIM)) * scale + shift).astype(np.float32)
    return Pool(x, np.ones((n, 100), bool), g.integers(0, len(LABELS), n), np.full(n, np.nan, np.float32),
                np.full(n, "s"))


def test_an_unfitted_encoder_trusts_its_confidence_alone():
    torch.manual_seed(0)
    enc = VoiceEncoder(VoiceConfig(channels=16, depth=2)).eval()
    assert enc.reliability_fit[1] == UNFITTED_REF
    pool = voices(8, 0)
    x, m = torch.from_numpy(pool.x), torch.from_numpy(pool.mask)
    with torch.inference_mode():
        top = enc.classify(x, m).softmax(1).amax(1)
        torch.testing.assert_close(enc.reliability(x, m), (top - 1 / 7) / (1 - 1 / 7))


def test_fitted_familiarity_falls_for_voices_unlike_the_training_ones():
    torch.manual_seed(0)
    enc = VoiceEncoder(VoiceConfig(channels=16, depth=2)).eval()
    fitted = fit_reliability(enc, voices(400, 1), voices(100, 2))
    assert fitted["d_ref"] > 0 and fitted["d_scale"] > 0 and 0.5 <= fitted["temperature"] <= 5
    with torch.inference_mode():
        def mean(pool: Pool) -> float:
            return float(enc.reliability(torch.from_numpy(pool.x), torch.from_numpy(pool.mask)).mean())
        familiar, louder, other = mean(voices(100, 3)), mean(voices(100, 4, scale=3.0)), mean(voices(100, 5, shift=2.0))
    assert familiar > 2 * max(louder, other)


@pytest.fixture(scope="module")
def recognizer():
    return load_recognizer()[0]


def window(recognizer, present: str, seed: int = 0) -> list[torch.Tensor]:
    """One window of random features with the modalities in ``present`` (letters v, a, l)."""
    spec, g = recognizer.spec, torch.Generator().manual_seed(seed)
    shapes = {"v": (spec.visual_steps, spec.visual_dim), "a": (spec.audio_steps, spec.audio_dim),
              "l": (spec.max_words, recognizer.dmd.cfg.dim_l)}
    out = []
    for key, shape in shapes.items():
        out += [torch.randn(1, *shape, generator=g), torch.full((1, shape[0]), key in present)]
    return out


def test_an_unreliable_voice_leaves_the_answer_to_the_others(recognizer):
    """A voice whose familiarity is forced to 0: the face-and-voice answer is the face's alone (and forced
    to 1, as an encoder never fitted: random features are far from any real voice)."""
    saved = recognizer.voice.reliability_fit.clone()
    try:
        with torch.inference_mode():
            v, vm, a, am, l, lm = window(recognizer, "va")
            recognizer.voice.reliability_fit[1] = UNFITTED_REF
            trusted = recognizer(v, vm, a, am, l, lm)
            recognizer.voice.reliability_fit[1] = -UNFITTED_REF
            distrusted = recognizer(v, vm, a, am, l, lm)
            face_only = recognizer(v, vm, a, torch.zeros_like(am), l, lm)
            voice_only = recognizer(torch.zeros_like(v), torch.zeros_like(vm), a, am, l, lm)
    finally:
        recognizer.voice.reliability_fit.copy_(saved)
    assert float(distrusted[4]) == pytest.approx(0.0, abs=1e-6) and float(trusted[4]) > 0
    for got, want in zip(distrusted[:4], face_only[:4]):
        torch.testing.assert_close(got, want)
    assert not torch.allclose(trusted[0], face_only[0])  # a trusted voice does change the answer
    assert float(voice_only[0].max()) > 0  # a voice alone keeps its own answer, whatever its reliability


def test_a_batch_answers_each_window_as_it_would_alone(recognizer):
    """The answers with and without the voice come from one DMD pass over both: in a batch of windows
    with different modalities each still gets its own."""
    windows = [window(recognizer, present, seed) for seed, present in enumerate(("va", "val", "al", "v", "a"))]
    with torch.inference_mode():
        together = recognizer(*(torch.cat(parts) for parts in zip(*windows)))
        alone = [recognizer(*w) for w in windows]
    for i, one in enumerate(alone):
        for got, want in zip(together, one):
            torch.testing.assert_close(got[i:i + 1], want, atol=1e-5, rtol=1e-5)


def test_voice_weight():
    on, off = torch.ones(3, 4, dtype=torch.bool), torch.zeros(3, 4, dtype=torch.bool)
    r = torch.tensor([0.0, FULL_TRUST / 2, 2 * FULL_TRUST])
    torch.testing.assert_close(voice_weight(r, on, on, off), torch.tensor([0.0, 0.5, 1.0]))
    torch.testing.assert_close(voice_weight(r, off, on, off), torch.ones(3))  # the voice alone
