"""The text front-end's model: emotion and valence of an utterance's words, from their hashed subword
pieces and the utterance's context.

Inputs (``realtime.frontends.text_frontend`` makes them, once per utterance): what ``realtime.core.tokens`` makes of
its words, ids (B, T, 8), T word slots, most recent word last, 0 = padding; and its context
(B, ``CONTEXT_DIM``), from the first layers of a pretrained MiniLM (``realtime.nets.sentence_encoder``).
For every slot t the encoder gives ``TEXT_FEATURE_DIM`` features of the words up to and including t
(a cumulative bag, beside the utterance's context)::

    [ EMBED_DIM bag embedding ; 7 emotion log-probabilities (LABELS order) ; 1 valence in [-1, 1] ]

What it is: a TF-IDF-style linear model with a linear head on the context.
- Bag: every piece of every word (the word, weight ``WORD_SCALE``; its 3-grams, ``GRAM_SCALE``; its
  "?" or "!" mark if any, ``MARK_SCALE`` x ``GRAM_SCALE``, folded into the idf) plus a hashed bigram
  of each word with the one before it (``BIGRAM_SCALE``), each times its inverse document frequency,
  summed up to slot t and divided by the root of the summed squared weights (the L2 norm of the
  bag when no piece repeats, and a running sum, so it streams).
- Heads: one table row per feature (pieces, then ``BIGRAM_BUCKETS`` bigrams) with 7 emotion logits
  and 3 sentiment logits, plus a linear map of the standardised context (times ``CONTEXT_SCALE``);
  valence = P(positive) - P(negative). Trained full-batch with L-BFGS and L2 penalties, emotion
  classes weighted by (mean count / count) ** ``class_weight_power``.
- Embedding: a ``EMBED_DIM``-d table over the word pieces, trained with Adam on both tasks through
  throw-away linear heads, epoch chosen on MELD dev. It gives the fusion model more than 8
  numbers; the class and valence outputs do not depend on it.

Marks: a transcript with punctuation (typed text, a punctuating ASR, MELD) gives words their "?"
or "!" (``realtime.core.tokens``); the live Vosk words carry none. Training sees every utterance four
times, its bag and its context each with and without its marks, so that the model works both ways
and neither part leans on the other's marks; without marks, the question and exclamation cue is in
the voice's prosody, which the fused model sees.

Training, data and the CLI: ``realtime.offline.text_encoder``; results: MODEL_CARD.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from realtime.core.feature_spec import LABELS
from realtime.core.resources import shipped
from realtime.core.tokens import MARKS, PIECES_PER_WORD, TEXT_BUCKETS, UTTERANCE_INPUTS, encode_words, utterance_inputs
from realtime.nets.sentence_encoder import CONTEXT_DIM, SentenceEncoder, load_sentence_encoder
from realtime.nets.weights import checked_sidecar, load_weights

WEIGHTS_PATH = shipped("models/text_encoder.safetensors")

EMBED_DIM = 32  # bag embedding length
SENTIMENTS = ("negative", "neutral", "positive")
SENTIMENT_VALUES = (-1.0, 0.0, 1.0)  # valence of each sentiment class
TEXT_FEATURE_DIM = EMBED_DIM + len(LABELS) + 1  # embedding, emotion log-probs, valence
BIGRAM_BUCKETS = 2**14  # hashed word bigrams
BIGRAM_MULT = 40_503  # Knuth's 16-bit golden-ratio multiplier: > TEXT_BUCKETS, so previous * BIGRAM_MULT + word
# is one-to-one, and odd but not 1 modulo BIGRAM_BUCKETS, so the bucket depends on the word order
N_FEATURES = TEXT_BUCKETS + BIGRAM_BUCKETS  # rows of the head table: pieces, then bigrams
WORD_SCALE, GRAM_SCALE, BIGRAM_SCALE = 2.0, 1.0, 2.0  # weight of a whole word, a 3-gram, a bigram
MARK_SCALE = 2.0  # weight of a "?" or "!" piece relative to a 3-gram, folded into its idf
NORM_EPS = 1e-6  # an empty bag has norm 0: its features are the biases alone
CONTEXT_SCALE = 0.05  # the standardised context's weight beside the unit-norm bag (dev: 0.02 and 0.05 alike)


# ---------------------------------------------------------------- data


def encode_batch(utterances: Sequence[Sequence[str]], max_words: int | None = None) -> torch.Tensor:
    """(B, T, PIECES_PER_WORD) int64 ids, left-padded so the last word sits in the last slot; T is the
    longest utterance, or ``max_words`` (longer ones keep their last words)."""
    rows = [encode_words(list(u)[-max_words:] if max_words else u) for u in utterances]
    t = max_words or max([len(r) for r in rows] + [1])
    ids = np.zeros((len(rows), t, PIECES_PER_WORD), np.int64)
    for i, r in enumerate(rows):
        if len(r):
            ids[i, t - len(r):] = r
    return torch.from_numpy(ids)


# ---------------------------------------------------------------- model

def word_bigrams(ids: torch.Tensor) -> torch.Tensor:
    """(B, T, P) piece ids -> (B, T) id of (previous word, word) in [TEXT_BUCKETS, N_FEATURES), 0 where
    either slot is padding. Uses the whole-word piece (column 0) of each slot."""
    word = ids[..., 0]  # (B, T)
    prev = F.pad(word, (1, 0))[..., :-1]  # (B, T) the slot before; 0 before the first
    bigram = TEXT_BUCKETS + (prev * BIGRAM_MULT + word) % BIGRAM_BUCKETS
    return torch.where((word > 0) & (prev > 0), bigram, torch.zeros_like(bigram))


class TextPrediction(NamedTuple):
    """Utterance-level output of ``TextEncoder.predict``."""

    probs: torch.Tensor  # (B, len(LABELS)) emotion probabilities
    valence: torch.Tensor  # (B,) in [-1, 1]


class TextEncoder(nn.Module):
    """Cumulative weighted bag of pieces and bigrams -> per-slot [embedding ; emotion log-probs ; valence]."""

    def __init__(self) -> None:
        super().__init__()
        n_out = len(LABELS) + len(SENTIMENTS)
        self.head_table = nn.Parameter(torch.zeros(N_FEATURES, n_out))  # logits per unit of feature weight
        self.head_bias = nn.Parameter(torch.zeros(n_out))
        self.embed_table = nn.Parameter(torch.zeros(TEXT_BUCKETS, EMBED_DIM))
        self.context_head = nn.Parameter(torch.zeros(CONTEXT_DIM, n_out))  # logits per standardised context unit
        self.register_buffer("context_mean", torch.zeros(CONTEXT_DIM))
        self.register_buffer("context_std", torch.ones(CONTEXT_DIM))
        self.register_buffer("idf", torch.zeros(N_FEATURES))  # 0 for padding (id 0) and unseen rows
        scale = [WORD_SCALE] + [GRAM_SCALE] * (PIECES_PER_WORD - 1) + [BIGRAM_SCALE]
        self.register_buffer("scale", torch.tensor(scale), persistent=False)  # (P + 1,)
        self.register_buffer("sentiment_values", torch.tensor(SENTIMENT_VALUES), persistent=False)

    def weighted_features(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ids (B, T, P) -> feature ids (B, T, P + 1) (pieces, then the bigram) and their weights."""
        feats = torch.cat([ids, word_bigrams(ids).unsqueeze(-1)], dim=-1)  # (B, T, P + 1)
        return feats, self.idf[feats] * self.scale

    def context_logits(self, context: torch.Tensor) -> torch.Tensor:
        """(B, CONTEXT_DIM) utterance contexts -> (B, n_out) their share of the head logits."""
        return ((context - self.context_mean) / self.context_std * CONTEXT_SCALE) @ self.context_head

    def forward(self, ids: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """ids (B, T, P) int64 and the utterances' contexts (B, CONTEXT_DIM) -> (B, T, TEXT_FEATURE_DIM)
        features of the words up to each slot."""
        feats, w = self.weighted_features(ids)
        norm = w.square().sum(-1).cumsum(1).sqrt().clamp_min(NORM_EPS).unsqueeze(-1)  # (B, T, 1)
        head = (w.unsqueeze(-1) * F.embedding(feats, self.head_table)).sum(2)  # (B, T, n_out)
        head = head.cumsum(1) / norm + self.head_bias + self.context_logits(context).unsqueeze(1)
        emb = (w[..., :PIECES_PER_WORD, None] * F.embedding(ids, self.embed_table)).sum(2)  # (B, T, E)
        emb = emb.cumsum(1) / norm
        emotion, sentiment = head.split([len(LABELS), len(SENTIMENTS)], dim=-1)
        valence = (sentiment.softmax(-1) * self.sentiment_values).sum(-1, keepdim=True)  # (B, T, 1)
        return torch.cat([emb, emotion.log_softmax(-1), valence], dim=-1)

    def predict(self, ids: torch.Tensor, context: torch.Tensor) -> TextPrediction:
        """Utterance level: the last slot of each row (ids (B, T, P), the utterance right-aligned)."""
        log_probs, valence = own_answer(self.forward(ids, context)[:, -1])
        return TextPrediction(log_probs.exp(), valence)


def own_answer(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The encoder's answer inside its features: (..., TEXT_FEATURE_DIM) -> emotion log-probabilities
    (..., len(LABELS)) and valence (...)."""
    return features[..., EMBED_DIM:EMBED_DIM + len(LABELS)], features[..., -1]


class UtteranceEncoder(nn.Module):
    """The text front-end's whole model, one graph: the sentence encoder's context of an utterance and
    the text encoder's features of its words (exported as one ONNX file, ``python -m export onnx``)."""

    def __init__(self, text: TextEncoder, sentences: SentenceEncoder) -> None:
        super().__init__()
        self.text, self.sentences = text, sentences

    def forward(self, word_ids: torch.Tensor, piece_ids: torch.Tensor, piece_mask: torch.Tensor) -> torch.Tensor:
        """``realtime.core.tokens.utterance_inputs`` (B = 1, or utterances of one length) -> (B, T, TEXT_FEATURE_DIM)."""
        return self.text(word_ids, self.sentences(piece_ids, piece_mask))


class ShippedTextModel:
    """The shipped text and sentence encoders in PyTorch, as the text front-end calls them: tokens -> rows."""

    def __init__(self, text: TextEncoder | None = None, sentences: SentenceEncoder | None = None) -> None:
        sentences = sentences if sentences is not None else load_sentence_encoder()
        self.vocab = sentences.vocab
        self.model = UtteranceEncoder(text if text is not None else load_text_encoder(), sentences).eval()

    @torch.inference_mode()
    def __call__(self, tokens: Sequence[str]) -> np.ndarray:
        """An utterance's tokens (at least one) -> (n, TEXT_FEATURE_DIM) float32, row t: words 0..t."""
        inputs = utterance_inputs(tokens, self.vocab)
        return self.model(*(torch.from_numpy(inputs[n]) for n in UTTERANCE_INPUTS))[0].numpy()


def _meta_contract() -> dict:
    """What the weights were made for; loading refuses anything else."""
    return {"labels": list(LABELS), "sentiments": list(SENTIMENTS), "text_feature_dim": TEXT_FEATURE_DIM,
            "embed_dim": EMBED_DIM, "text_buckets": TEXT_BUCKETS, "pieces_per_word": PIECES_PER_WORD,
            "bigram_buckets": BIGRAM_BUCKETS, "bigram_mult": BIGRAM_MULT, "marks": MARKS,
            "scales": {"word": WORD_SCALE, "gram": GRAM_SCALE, "bigram": BIGRAM_SCALE, "mark": MARK_SCALE},
            "context_dim": CONTEXT_DIM, "context_scale": CONTEXT_SCALE}


def load_text_encoder(path: Path | str = WEIGHTS_PATH) -> TextEncoder:
    """The shipped encoder in eval mode (float32), checked against its JSON sidecar."""
    path = Path(path)
    checked_sidecar(path, _meta_contract(), "text encoder", "python -m realtime.text_encoder train --data <shared/data/text>")
    return load_weights(TextEncoder(), path)


# ---------------------------------------------------------------- training


def contexts(sentences: SentenceEncoder, utterances: Sequence[Sequence[str]]) -> torch.Tensor:
    """(n, CONTEXT_DIM) the context of each tokenized utterance."""
    return torch.from_numpy(sentences.encode(utterances))
