"""The sentence encoder's tokenizer without PyTorch: uncased BERT tokenization and greedy WordPiece.

The words (``realtime.core.tokens.tokenize``'s tokens, joined by spaces) are cleaned (control
characters dropped, CJK characters split, accents stripped, lower case), split on whitespace and
punctuation, and each word becomes the longest pieces of the vocabulary from its start
("unbelievably" -> "un", "##bel", ...), or [UNK] when some part has no piece. An utterance is
``[CLS] pieces [SEP]``, at most ``MAX_TOKENS`` (a longer one keeps its last pieces). Used by the
sentence encoder (``realtime.nets.sentence_encoder``) and by its export alike.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np

MAX_TOKENS = 64  # [CLS] + at most 62 word pieces + [SEP]
VOCAB_SIZE = 30522
CLS_ID, SEP_ID, UNK = 101, 102, "[UNK]"
MAX_WORD_CHARS = 100  # longer words become [UNK]
CONVERT = "convert with `python -m realtime.sentence_encoder convert --source <folder>`"


def _is_cjk(cp: int) -> bool:
    """A CJK ideograph, which BERT splits off as its own word."""
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def _is_punct(ch: str) -> bool:
    """BERT's punctuation: any ASCII non-alphanumeric printable, or a Unicode P* character."""
    cp = ord(ch)
    return 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126 or unicodedata.category(ch)[0] == "P"


def basic_words(text: str) -> list[str]:
    """Uncased BERT's basic tokenization: control characters dropped, CJK characters spaced out,
    accents stripped (NFD, combining marks dropped), lower case, split on whitespace and punctuation."""
    chars = []
    for ch in text:
        if ord(ch) in (0, 0xFFFD) or (unicodedata.category(ch)[0] == "C" and ch not in "\t\n\r"):
            continue
        chars.append(" " if ch.isspace() else f" {ch} " if _is_cjk(ord(ch)) else ch)
    text = "".join(c for c in unicodedata.normalize("NFD", "".join(chars)) if unicodedata.category(c) != "Mn").lower()
    words: list[str] = []
    for chunk in text.split():
        start = 0
        for i, ch in enumerate(chunk):
            if _is_punct(ch):
                words += [chunk[start:i], ch] if i > start else [ch]
                start = i + 1
        if start < len(chunk):
            words.append(chunk[start:])
    return words


def _pieces(word: str, vocab: dict[str, int]) -> list[int]:
    """Greedy longest-first WordPiece ids of one word; [UNK] alone if any part has no piece."""
    if len(word) > MAX_WORD_CHARS:
        return [vocab[UNK]]
    ids, start = [], 0
    while start < len(word):
        for end in range(len(word), start, -1):
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                ids.append(vocab[piece])
                start = end
                break
        else:
            return [vocab[UNK]]
    return ids


def wordpiece_ids(tokens: Sequence[str], vocab: dict[str, int]) -> list[int]:
    """WordPiece ids (no [CLS]/[SEP]) of ``" ".join(tokens)``: "really!" -> the pieces of "really", then "!"."""
    return [i for word in basic_words(" ".join(tokens)) for i in _pieces(word, vocab)]


def vocab_path(path: Path) -> Path:
    """The vocabulary file that travels with the weights at ``path``."""
    return path.with_suffix(".vocab.txt")


def read_vocab(path: Path) -> dict[str, int]:
    """piece -> id from a BERT vocab file (one piece a line, in id order)."""
    if not path.is_file():
        raise FileNotFoundError(f"sentence encoder vocabulary not found at {path}; {CONVERT}")
    pieces = path.read_text(encoding="utf-8").split("\n")[:VOCAB_SIZE]
    if len(pieces) != VOCAB_SIZE or len(set(pieces)) != VOCAB_SIZE:
        raise ValueError(f"{path}: expected {VOCAB_SIZE} distinct pieces, one a line; re-convert")
    return {p: i for i, p in enumerate(pieces)}


def sentence_pieces(tokens: Sequence[str], vocab: dict[str, int]) -> list[int]:
    """[CLS] + the last ``MAX_TOKENS`` - 2 word pieces of ``tokens`` + [SEP]."""
    return [CLS_ID, *wordpiece_ids(tokens, vocab)[-(MAX_TOKENS - 2):], SEP_ID]


def piece_batch(rows: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Piece-id rows -> ids (B, L) int64, right-padded with 0, and mask (B, L) bool (False = padding);
    L is the longest row."""
    width = max([len(r) for r in rows] + [1])
    ids = np.zeros((len(rows), width), np.int64)
    mask = np.zeros((len(rows), width), np.bool_)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = r
        mask[i, :len(r)] = True
    return ids, mask
