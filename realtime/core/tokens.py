"""Words -> tokens and integer ids for the text encoder: hashed subword pieces.

Each word becomes up to ``PIECES_PER_WORD`` bucket ids: the whole word, then its character
3-grams with boundary markers (``<ok>`` -> ``<ok>``, ``<ok``, ``ok>``), each hashed with CRC-32
into ``TEXT_BUCKETS`` buckets; id 0 is padding. The text encoder (``realtime.nets.text_encoder``) owns
tables over the buckets and sums a word's pieces, ignoring 0.

A word may carry a mark, "?" or "!": the last one in the punctuation right after it ("really?!" ->
"really!"). ``tokenize`` appends it to the word ("really!"), and the mark is one more piece (the
mark itself) after the word's own; a word that would fill all ``PIECES_PER_WORD`` slots gives up a
middle 3-gram for it, so a marked word's pieces are its unmarked pieces, at most one 3-gram fewer,
plus the mark. Unmarked words, as the ASR gives them, get exactly the ids they always had.

Why hashed pieces, beside the pretrained sentence encoder's context (``realtime.nets.sentence_encoder``):
- robust to ASR errors: a misrecognised word ("happpy", "dont" for "don't") still shares most of
  its 3-grams with the right one, so it lands near it instead of on an unknown-word token;
- fast: a few CRC-32s per word in Python, and one gather plus a sum in the text encoder;
- no vocabulary: any language the ASR speaks gets pieces.
CRC-32 (not Python's ``hash()``, which is salted per process) keeps ids identical across
processes, machines and the training and live runs.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections.abc import Iterable, Sequence
from typing import Protocol

import numpy as np

from realtime.core.wordpiece import piece_batch, sentence_pieces

TEXT_BUCKETS = 2**15  # hash buckets, id 0 included (padding)
PIECES_PER_WORD = 8  # the word itself + up to 7 of its 3-grams
NGRAM = 3
PAD_ID = 0
WORDS_PER_SECOND = 2.5  # conversational speaking rate, to time transcripts that carry no timing

MARKS = "?!"  # punctuation a word may carry
UTTERANCE_INPUTS = ("word_ids", "piece_ids", "piece_mask")  # the text front-end model's (``utterance_inputs``)
UTTERANCE_OUTPUTS = ("features",)

_APOSTROPHES = re.compile(r"['\u2018\u2019\u02bc`\u00b4]")
_WORD = re.compile(r"([^\W_]+)([^\w\s]*)")  # a word, then the punctuation right after it


class TimedWord(Protocol):
    """What the ASR emits for one recognised word (``realtime.frontends.asr.Word`` fits)."""

    text: str
    start: float
    end: float


def tokenize(text: str, marks: bool = True) -> list[str]:
    """Lower-cased words, each with its mark appended when ``marks`` ("Really?!" -> "really!"), other
    punctuation dropped; apostrophes are dropped ("Don't" -> "dont") so transcripts with and without
    them (MELD vs MOSI vs the ASR) agree."""
    text = _APOSTROPHES.sub("", unicodedata.normalize("NFKC", text).lower())
    tokens = []
    for word, punct in _WORD.findall(text):
        found = [c for c in punct if c in MARKS] if marks else []
        tokens.append(word + "".join(found[-1:]))
    return tokens


def split_mark(token: str) -> tuple[str, str]:
    """A token -> (word, mark): "it?" -> ("it", "?"), "it" -> ("it", "")."""
    if token and token[-1] in MARKS:
        return token[:-1], token[-1]
    return token, ""


def strip_marks(tokens: Iterable[str]) -> list[str]:
    """The tokens without their marks (what a transcript without punctuation gives)."""
    return [split_mark(t)[0] for t in tokens]


def _bucket(piece: str) -> int:
    """Stable id in [1, TEXT_BUCKETS) for one piece (PAD_ID = 0 stays free)."""
    return 1 + zlib.crc32(piece.encode("utf-8")) % (TEXT_BUCKETS - 1)


MARK_IDS = tuple(_bucket(m) for m in MARKS)  # the mark pieces' ids, in MARKS order


def word_pieces(token: str) -> list[str]:
    """The word with boundary markers, then its 3-grams, then its mark if any, at most
    ``PIECES_PER_WORD`` in all.

    A word with more 3-grams than fit keeps evenly spaced ones, always the first and the last
    (prefix and suffix carry the stem and the inflection); a mark takes the place of the middle one.
    """
    word, mark = split_mark(token)
    if not word:
        return []
    marked = f"<{word}>"
    grams = [marked[i:i + NGRAM] for i in range(len(marked) - NGRAM + 1)]
    grams = [g for g in grams if g != marked]  # a one-letter word's only 3-gram is the word
    room = PIECES_PER_WORD - 1
    if len(grams) > room:
        keep = np.linspace(0, len(grams) - 1, room).round().astype(int)
        grams = [grams[i] for i in keep]
    pieces = [marked, *grams]
    if mark:
        if len(pieces) == PIECES_PER_WORD:
            del pieces[PIECES_PER_WORD // 2]
        pieces.append(mark)
    return pieces


def encode_word(token: str) -> np.ndarray:
    """(PIECES_PER_WORD,) int64 bucket ids of one token (a word of ``tokenize``, maybe marked), 0-padded."""
    ids = np.full(PIECES_PER_WORD, PAD_ID, dtype=np.int64)
    pieces = word_pieces(token)
    ids[: len(pieces)] = [_bucket(p) for p in pieces]
    return ids


def encode_words(words: Iterable[str]) -> np.ndarray:
    """(n, PIECES_PER_WORD) int64 ids, one row per token."""
    rows = [encode_word(w) for w in words]
    return np.stack(rows) if rows else np.zeros((0, PIECES_PER_WORD), dtype=np.int64)


def utterance_inputs(tokens: Sequence[str], vocab: dict[str, int]) -> dict[str, np.ndarray]:
    """One utterance's tokens -> the text front-end model's named inputs (``UTTERANCE_INPUTS``): its
    words' piece ids (1, n, ``PIECES_PER_WORD``) int64, and the sentence encoder's word pieces
    (``realtime.core.wordpiece``, with ``vocab``) as ids (1, L) int64 and mask (1, L) bool."""
    pieces, mask = piece_batch([sentence_pieces(tokens, vocab)])
    return {"word_ids": encode_words(tokens)[None], "piece_ids": pieces, "piece_mask": mask}


def encode_text(text: str) -> np.ndarray:
    """(n, PIECES_PER_WORD) ids of a transcript: ``encode_words(tokenize(text))``."""
    return encode_words(tokenize(text))


def transcript_times(n_words: int, t0: float = 0.0) -> np.ndarray:
    """(n,) word times for a transcript without timing: word centres at ``WORDS_PER_SECOND``."""
    return t0 + (np.arange(n_words, dtype=np.float64) + 0.5) / WORDS_PER_SECOND


def timed_tokens(words: Sequence[TimedWord]) -> tuple[np.ndarray, list[str]]:
    """ASR words -> (times (n,) float64, tokens) for the text front-end.

    A word's time is its centre, where its sound sits in the audio track. An ASR word that
    tokenizes into several (rare) gives each the same time; one that tokenizes into none is dropped.
    ASR words carry no mark.
    """
    times: list[float] = []
    tokens: list[str] = []
    for w in words:
        for tok in tokenize(w.text, marks=False):
            times.append(0.5 * (w.start + w.end))
            tokens.append(tok)
    return np.asarray(times, dtype=np.float64), tokens
