"""The text front-end: one utterance's words -> the text track's rows, live and offline alike."""

import numpy as np
import pytest
import torch

from realtime.core.tokens import encode_words, tokenize, transcript_times
from realtime.frontends.asr import Word
from realtime.frontends.text_frontend import TextFrontEnd
from realtime.nets.text_encoder import TEXT_FEATURE_DIM, contexts, own_answer


@pytest.fixture(scope="module")
def text() -> TextFrontEnd:
    return TextFrontEnd()


def test_rows_are_the_text_encoder_over_the_utterance_with_its_context(text):
    tokens = tokenize("Why would you do that to me?!")
    rows = text.features(tokens)
    assert rows.shape == (len(tokens), TEXT_FEATURE_DIM) and rows.dtype == np.float32
    context = contexts(text.sentences, [tokens])
    with torch.inference_mode():
        expected = text.encoder(torch.from_numpy(encode_words(tokens))[None], context)[0].numpy()
    np.testing.assert_allclose(rows, expected, atol=1e-6)
    assert text.features([]).shape == (0, TEXT_FEATURE_DIM)


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
