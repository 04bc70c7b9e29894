"""The shipped recognizer (realtime/data/models/default): the artifact, any subset of modalities, and real
held-out faces, voices and words through the live front-ends."""

import json

import cv2
import numpy as np
import pytest
import torch
from helpers.paths import DATA

from calibration.windows import read_windows
from dmd_lite.metrics import classification_metrics
from dmd_lite.recognizer import DEFAULT_CHECKPOINT
from realtime.capture.audio_source import FileAudioSource
from realtime.core.feature_spec import LABEL_VALENCE
from realtime.core.tokens import tokenize
from realtime.engines.base import window_batch
from realtime.engines.torch_engine import TorchEngine
from realtime.frontends.face import PRESENCE, PROBABILITIES, FaceFrontEnd
from realtime.frontends.text_frontend import TextFrontEnd
from realtime.frontends.voice import voice_features
from realtime.nets.text_encoder import own_answer
from realtime.offline.text_encoder import meld_split
from realtime.window import WindowAssembler

FER_FOLDERS = {"neutral": "neutral", "happy": "happy", "sad": "sad", "angry": "angry", "fearful": "fear",
               "disgusted": "disgust", "surprised": "surprise"}
N_UTTERANCES = 300  # the first MELD test utterances, as the corpus has them (about half neutral)
RAVDESS_CODES = {"neutral": "01", "happy": "03", "sad": "04", "angry": "05", "fearful": "06", "disgusted": "07",
                 "surprised": "08"}


@pytest.fixture(scope="module")
def engine() -> TorchEngine:
    return TorchEngine("default")


@pytest.fixture(scope="module")
def text() -> TextFrontEnd:
    return TextFrontEnd()


def said(text: TextFrontEnd, sentence: str, t0: float) -> tuple[np.ndarray, np.ndarray]:
    """The text stream of one utterance whose words start at ``t0``."""
    times, features = text.transcript(tokenize(sentence))
    return times + t0, features


def test_artifact_is_small_and_records_its_recipe():
    size = sum(p.stat().st_size for p in DEFAULT_CHECKPOINT.iterdir())
    assert size < 20 * 2**20
    meta = json.loads((DEFAULT_CHECKPOINT / "config.json").read_text())
    assert meta["recipe"] == "dmd_lite.recipes.default" and "seed" in meta["train"]
    assert set(meta["held_out"]) == {"face_fer2013_test", "face_fer2013_test_passing", "voice_ravdess_heldout",
                                     "text_meld_test", "fused_paired_test"}
    assert meta["feature_spec"]["visual_norm"] is not None and meta["model"]["n_classes"] == 7


def test_any_subset_of_modalities_gives_probabilities(engine, text):
    spec = engine.spec
    rng = np.random.default_rng(0)
    assembler = WindowAssembler(spec)
    streams = {"visual": (np.arange(60) / 15.0, rng.standard_normal((60, spec.visual_dim)).astype(np.float32)),
               "audio": (np.arange(100) / 25.0, rng.standard_normal((100, spec.audio_dim)).astype(np.float32)),
               "text": said(text, "well that is just great", 1.0)}
    for bits in range(8):
        present = {m: s for k, (m, s) in enumerate(streams.items()) if bits >> k & 1}
        window = assembler.from_streams(4.0, present)
        out = engine.infer(window)
        assert np.isfinite(out.probabilities).all() and out.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
        assert -1.0 <= out.valence <= 1.0 and out.present == tuple(present)
        assert np.isfinite(out.edges_hetero).all()


def _accuracy(engine: TorchEngine, windows: list, labels: list[str]) -> float:
    probs = engine.run(window_batch(windows))["probabilities"]
    return float(np.mean([engine.labels[i] == y for i, y in zip(probs.argmax(1), labels)]))


@pytest.mark.needs_data
def test_real_held_out_faces(engine):
    assembler = WindowAssembler(engine.spec)
    windows, labels = [], []
    with FaceFrontEnd(still_images=True) as face:
        for label, folder in FER_FOLDERS.items():
            for path in sorted((DATA / "fer2013_48" / "test" / folder).glob("*.png"))[:8]:
                features = face.process_face_crop(cv2.imread(str(path))).features
                steps = engine.spec.visual_steps
                windows.append(assembler.from_streams(4.0, {"visual": (np.arange(steps) / 15.0 + 1 / 30,
                                                                       np.tile(features, (steps, 1)))}))
                labels.append(label)
    assert _accuracy(engine, windows, labels) >= 0.45  # 56 faces; 7-class chance is 0.14


@pytest.mark.needs_data
def test_real_held_out_voices(engine):
    assembler = WindowAssembler(engine.spec)
    windows, labels = [], []
    for label, code in RAVDESS_CODES.items():
        for actor in (21, 22, 23, 24):
            path = DATA / "ravdess_speech_16k" / f"Actor_{actor}" / f"03-01-{code}-02-01-01-{actor}.flac"
            if code == "01":
                path = path.with_name(f"03-01-01-01-01-01-{actor}.flac")  # neutral has no strong intensity
            with FileAudioSource(path, start=0.0) as source:
                samples = np.concatenate([c.samples for c in source])
            times, features = voice_features(samples)
            windows.append(assembler.from_streams(float(times[-1]), {"audio": (times, features)}))
            labels.append(label)
    assert _accuracy(engine, windows, labels) >= 0.35  # 28 held-out clips; chance 0.14


@pytest.mark.needs_data
def test_real_held_out_words(engine, text):
    assembler = WindowAssembler(engine.spec)
    test = meld_split(DATA / "text", "test")  # words with MELD's "?" and "!", as evaluated
    windows = []
    for words in test.words[:N_UTTERANCES]:
        times, features = text.transcript(words)
        windows.append(assembler.from_streams(float(times[-1]), {"text": (times, features)}))  # ends at the last word
    predicted = engine.run(window_batch(windows))["probabilities"].argmax(1)
    labels = test.emotion[:N_UTTERANCES]
    neutral = np.full(len(labels), engine.labels.index("neutral"))
    always_neutral = classification_metrics(neutral, labels, len(engine.labels))
    words = classification_metrics(predicted, labels, len(engine.labels))
    assert words["weighted_f1"] >= always_neutral["weighted_f1"] + 0.15, (words, always_neutral)  # 0.53 vs 0.30


def test_words_alone_get_the_text_encoders_answer(engine, text):
    assembler = WindowAssembler(engine.spec)
    words = said(text, "why would you do that to me?!", 0.5)
    face = (np.arange(60) / 15.0, np.random.default_rng(0).standard_normal((60, engine.spec.visual_dim)).astype(np.float32))
    log_probs, valence = own_answer(torch.from_numpy(words[1][-1]))  # the last word's row: the whole utterance
    expected = (log_probs / engine.model.text_temperature).softmax(-1).numpy()
    alone = engine.infer(assembler.from_streams(4.0, {"text": words}))
    assert alone.probabilities == pytest.approx(expected, abs=1e-5)
    label_valence = np.array([LABEL_VALENCE[c] for c in engine.labels])
    assert alone.valence == pytest.approx((float(valence) + float(expected @ label_valence)) / 2, abs=1e-5)
    with_face = engine.infer(assembler.from_streams(4.0, {"text": words, "visual": face}))
    assert np.abs(with_face.probabilities - expected).max() > 1e-3  # DMD answers when there is more than words


def test_a_face_alone_gets_the_expression_cnns_answer_over_its_frames(engine):
    assert PROBABILITIES == slice(engine.spec.visual_dim - len(engine.labels), engine.spec.visual_dim)  # as read
    rng = np.random.default_rng(2)
    cnn = rng.dirichlet(np.ones(len(engine.labels)), 2).astype(np.float32)  # a held expression, then a passing one
    frames = np.zeros((60, engine.spec.visual_dim), np.float32)
    frames[:, PRESENCE] = 1.0
    frames[:, PROBABILITIES] = cnn[0]
    frames[40:55, PROBABILITIES] = cnn[1]
    alone = engine.infer(WindowAssembler(engine.spec).from_streams(4.0, {"visual": ((np.arange(60) + 1) / 15.0, frames)}))
    expected = (45 * cnn[0] + 15 * cnn[1]) / 60
    assert alone.probabilities == pytest.approx(expected / expected.sum(), abs=1e-5)
    assert alone.valence == pytest.approx(float(expected @ [LABEL_VALENCE[c] for c in engine.labels]), abs=1e-5)

def test_a_voice_alone_gets_the_voice_encoders_answer(engine, text):
    assembler = WindowAssembler(engine.spec)
    audio = (np.arange(100) / 25.0, np.random.default_rng(1).standard_normal((100, engine.spec.audio_dim)).astype(np.float32))
    window = assembler.from_streams(4.0, {"audio": audio})
    voice = engine.model.voice
    x, m = (torch.from_numpy(a[None]) for a in (window.audio, window.audio_mask))
    with torch.no_grad():
        expected = (voice.classify(x, m) / voice.reliability_fit[0]).softmax(-1)[0].numpy()
    alone = engine.infer(window)
    assert alone.probabilities == pytest.approx(expected, abs=1e-5)
    assert alone.valence == pytest.approx(float(expected @ [LABEL_VALENCE[c] for c in engine.labels]), abs=1e-5)
    with_words = engine.infer(assembler.from_streams(4.0, {"audio": audio, "text": said(text, "that is great", 1.0)}))
    assert np.abs(with_words.probabilities - expected).max() > 1e-3  # DMD answers when there is more than a voice


def test_words_carry_valence(engine, text):
    assembler = WindowAssembler(engine.spec)

    def valence(sentence: str) -> float:
        return engine.infer(assembler.from_streams(4.0, {"text": said(text, sentence, 0.5)})).valence

    assert valence("i love it this is wonderful thank you so much") > valence("i hate this it is terrible and awful")



@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need an NVIDIA GPU (none here)")
def test_cuda_graph_replay_answers_as_eager_for_any_subset(engine):
    windows = read_windows(None, engine.spec, "heldout", 8).arrays
    graphs, eager = TorchEngine("default", "cuda"), TorchEngine("default", "cuda", cuda_graphs=False)
    for absent in ([], ["text_mask"], ["audio_mask", "visual_mask"], ["text_mask", "audio_mask", "visual_mask"]):
        inputs = {k: v.copy() for k, v in windows.items()}
        for name in absent:
            inputs[name][:] = False
        cpu, want, got = engine.run(inputs), eager.run(inputs), graphs.run(inputs)
        for name in want:
            np.testing.assert_allclose(got[name], want[name], atol=1e-6, err_msg=f"{name}, absent {absent}")
            # cuDNN runs the voice encoder's convolutions in TF32 (PyTorch's default): about 1e-3 off CPU
            np.testing.assert_allclose(got[name], cpu[name], atol=5e-3, err_msg=f"{name} vs CPU, absent {absent}")
        assert (got["probabilities"].argmax(1) == cpu["probabilities"].argmax(1)).all(), f"labels, absent {absent}"
    assert len(graphs._graphs) == 1  # one capture for the one batch size, replayed for every call
