"""The text front-end: the words of an utterance -> the text track's features, one row per word.

An utterance is a transcript's row, or the words the ASR finalises together (Vosk gives a whole
utterance at its end). It is encoded once, when it comes, as the face front-end embeds a frame
once: the sentence encoder (``realtime.nets.sentence_encoder``, 3 layers of MiniLM) gives the
utterance's context, and word t gets the text encoder's features (``realtime.nets.text_encoder``) of
the utterance's words up to t (its cumulative bag) with that context. The window then only
gathers rows, so the recognizer's graph holds no text model, and a live utterance and the same
transcript offline give the same rows. Nearly all of its cost is the sentence encoder (``bench.frontends``
measures it; the figure is in MODEL_CARD.md).

The two encoders run as one model (``TextModel``): the shipped PyTorch weights
(``realtime.nets.text_encoder.ShippedTextModel``, loaded only when asked for) or an export's ONNX
file (``Engine.text_model``), so the runtime needs no PyTorch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

import numpy as np

from realtime.core.errors import loaded_model
from realtime.core.feature_spec import FeatureSpec, Stream
from realtime.core.tokens import TimedWord, timed_tokens, transcript_times

TEXT_DIM = FeatureSpec().text_dim  # features per word


class TextModel(Protocol):
    """What the text front-end runs: an utterance's tokens (at least one) -> (n, ``TEXT_DIM``) float32."""

    def __call__(self, tokens: Sequence[str]) -> np.ndarray: ...


class TextFrontEnd:
    """Tokens of one utterance -> (n, ``TEXT_DIM``) float32 features. ``model="shipped"`` loads the
    PyTorch encoders (PyTorch is imported then, and only then); weights that do not load are a
    ``ModelUnavailableError``, as the face front-end's."""

    def __init__(self, model: TextModel | Literal["shipped"] = "shipped") -> None:
        if model == "shipped":
            from realtime.nets.text_encoder import ShippedTextModel  # PyTorch, a plug-in as the engines are

            model = loaded_model(ShippedTextModel)
        self.model = model

    def features(self, tokens: Sequence[str]) -> np.ndarray:
        """Row t: the features of the utterance's tokens 0..t (``realtime.core.tokens.tokenize`` tokens)."""
        if not tokens:
            return np.zeros((0, TEXT_DIM), np.float32)
        return self.model(list(tokens))

    def transcript(self, tokens: Sequence[str]) -> Stream:
        """A transcript without timing, timed by ``transcript_times`` from 0."""
        return transcript_times(len(tokens)), self.features(tokens)

    def timed_words(self, words: Sequence[TimedWord]) -> Stream:
        """The words the ASR finalised together, each at its centre (``realtime.core.tokens.timed_tokens``)."""
        times, tokens = timed_tokens(words)
        return times, self.features(tokens)
