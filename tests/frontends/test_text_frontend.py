"""The text front-end: one utterance's words -> the text track's rows, live and offline alike."""

import numpy as np
import pytest
import torch

from realtime.core.feature_spec import LABELS
from realtime.core.tokens import tokenize, transcript_times
from realtime.frontends.asr import Word
from realtime.frontends.text_frontend import TextFrontEnd
from realtime.nets.text_encoder import TEXT_FEATURE_DIM, own_answer


@pytest.fixture(scope="module")
def text() -> TextFrontEnd:
    return TextFrontEnd()


def test_a_row_per_word_holding_an_embedding_a_distribution_and_a_valence(text):
    tokens = tokenize("Why would you do that to me?!")
    assert tokens == ["why", "would", "you", "do", "that", "to", "me!"]
    rows = text.features(tokens)
    assert rows.shape == (7, 32 + 7 + 1) == (len(tokens), TEXT_FEATURE_DIM) and rows.dtype == np.float32
    assert np.isfinite(rows).all()
    log_probs, valence = own_answer(torch.from_numpy(rows))
    np.testing.assert_allclose(log_probs.exp().sum(-1), 1.0, atol=1e-5)  # every row: 7 emotion probabilities
    assert ((valence >= -1) & (valence <= 1)).all()
    assert len({r.tobytes() for r in rows}) == len(rows)  # each word adds to what the rows know
    np.testing.assert_array_equal(text.features(tokens), rows)  # nothing carried from one utterance to the next
    assert text.features([]).shape == (0, TEXT_FEATURE_DIM)


# Utterances whose emotion a person names at once; the encoder's answer at the last word must agree.
CLEAR = [("I love it, thank you so much!", "happy", 1), ("I hate you, get out!", "angry", -1),
         ("I am so sad, I miss her", "sad", -1), ("I am scared", "fearful", -1),
         ("that is disgusting", "disgusted", -1), ("what? really?", "surprised", 0), ("okay", "neutral", 0)]


@pytest.mark.parametrize("sentence, label, sign", CLEAR, ids=[c[1] for c in CLEAR])
def test_clear_utterances_get_their_emotion_and_the_sign_of_their_valence(text, sentence, label, sign):
    log_probs, valence = own_answer(torch.from_numpy(text.features(tokenize(sentence))[-1]))
    assert LABELS[int(log_probs.argmax())] == label, dict(zip(LABELS, log_probs.exp().numpy().round(2)))
    if sign:
        assert float(valence) * sign > 0.3
    else:
        assert abs(float(valence)) < 0.5


def test_case_and_apostrophes_do_not_matter_but_marks_do(text):
    np.testing.assert_array_equal(text.features(tokenize("I DON'T KNOW")), text.features(tokenize("i dont know")))
    assert not np.allclose(text.features(tokenize("really?"))[-1], text.features(tokenize("really"))[-1])


def test_the_context_is_the_whole_utterance(text):
    calm, upset = text.features(tokenize("you are here thank you")), text.features(tokenize("you are here i hate you"))
    assert not np.allclose(calm[0], upset[0])  # the first word's row already knows how the utterance ends
    same_start = text.features(tokenize("you are here thank you so much"))
    np.testing.assert_allclose(same_start[:5, :32], calm[:, :32], atol=1e-5)  # its bag embedding does not


def test_live_words_and_a_transcript_give_the_same_rows(text):
    words = [Word("I", 1.0, 1.2, 0.9), Word("love", 1.3, 1.6, 0.9), Word("it", 1.7, 1.9, 0.9)]
    times, rows = text.timed_words(words)
    np.testing.assert_allclose(times, [1.1, 1.45, 1.8])
    offline_times, offline_rows = text.transcript(["i", "love", "it"])
    np.testing.assert_allclose(offline_times, transcript_times(3))
    np.testing.assert_array_equal(rows, offline_rows)
    log_probs, valence = own_answer(torch.from_numpy(rows[-1]))
    assert valence > 0.3 and log_probs.exp().sum() == pytest.approx(1.0, abs=1e-5)
