"""The text front-end: the words of an utterance -> the text track's features, one row per word.

An utterance is a transcript's row, or the words the ASR finalises together (Vosk gives a whole
utterance at its end). It is encoded once, when it comes, as the face front-end embeds a frame
once: the sentence encoder (``realtime.nets.sentence_encoder``, 3 layers of MiniLM) gives the
utterance's context, and word t gets the text encoder's features (``realtime.nets.text_encoder``) of
the utterance's words up to t (its cumulative bag) with that context. The window then only
gathers rows, so the recognizer's graph holds no text model, and a live utterance and the same
transcript offline give the same rows. Cost: about 5-6 ms an utterance on one CPU thread, nearly
all of it the sentence encoder.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from realtime.core.feature_spec import Stream
from realtime.core.tokens import TimedWord, encode_words, timed_tokens, transcript_times
from realtime.nets.sentence_encoder import SentenceEncoder, load_sentence_encoder
from realtime.nets.text_encoder import TEXT_FEATURE_DIM, TextEncoder, contexts, load_text_encoder


class TextFrontEnd:
    """Tokens of one utterance -> (n, ``TEXT_FEATURE_DIM``) float32 features."""

    def __init__(self, encoder: TextEncoder | None = None, sentences: SentenceEncoder | None = None) -> None:
        self.encoder = encoder if encoder is not None else load_text_encoder()
        self.sentences = sentences if sentences is not None else load_sentence_encoder()

    def features(self, tokens: Sequence[str]) -> np.ndarray:
        """Row t: the features of the utterance's tokens 0..t (``realtime.core.tokens.tokenize`` tokens)."""
        if not tokens:
            return np.zeros((0, TEXT_FEATURE_DIM), np.float32)
        ids = torch.from_numpy(encode_words(tokens))[None]  # (1, n, P)
        context = contexts(self.sentences, [tokens])  # (1, CONTEXT_DIM)
        with torch.inference_mode():
            return self.encoder(ids, context)[0].numpy()

    def transcript(self, tokens: Sequence[str]) -> Stream:
        """A transcript without timing, timed by ``transcript_times`` from 0."""
        return transcript_times(len(tokens)), self.features(tokens)

    def timed_words(self, words: Sequence[TimedWord]) -> Stream:
        """The words the ASR finalised together, each at its centre (``realtime.core.tokens.timed_tokens``)."""
        times, tokens = timed_tokens(words)
        return times, self.features(tokens)
