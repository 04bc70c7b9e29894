"""The MulT-style transformer encoder that DMD uses everywhere.

Pre-LayerNorm layers, scaled input plus sinusoidal positions, packed q/k/v projections, an
optional causal ("future") mask, and a final LayerNorm; crossmodal layers normalise keys and
values with the query's LayerNorm. Tensors are batch-first here: (B, T, d).

Two behaviours beyond the official code, both off unless a key mask is passed:
- ``kv_mask`` (B, Tk) keeps padded steps out of attention; a query whose keys are all
  padding attends to nothing (zero attention output, no NaN), so only its residual stream
  goes on: a crossmodal transformer whose source modality is absent passes its target through.
- without a key mask, the official rule applies: a step whose input channel 0 is exactly 0
  counts as padding for the positions (it gets a zero position vector).

At batch 1 on a CPU the model is bound by per-operator overhead, not arithmetic, so inference
skips dropout outright, takes a prepared ``AttentionMask`` where the caller shares one, and runs
transformers of one shape side by side as a ``TransformerStack``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_MASKED = -1e9  # finite "minus infinity": keeps exported graphs free of inf arithmetic


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """``F.dropout``, with no operator at all at inference."""
    return F.dropout(x, p, True) if training and p > 0 else x


@functools.lru_cache(maxsize=32)
def sinusoidal_table(n_positions: int, dim: int, device: torch.device | None = None,
                     dtype: torch.dtype = torch.float) -> Tensor:
    """(n_positions, dim) table: a sin block then a cos block; row 0 (padding) is zero.

    Cached per device and dtype (so a CUDA graph replays without a host-to-device copy):
    callers must not modify it in place."""
    half = dim // 2
    freq = torch.exp(torch.arange(half, dtype=torch.float) * -(math.log(10000) / (half - 1)))
    angles = torch.arange(n_positions, dtype=torch.float).unsqueeze(1) * freq.unsqueeze(0)
    table = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    if dim % 2:
        table = torch.cat([table, torch.zeros(n_positions, 1)], dim=1)
    table[0] = 0
    return table.to(device, dtype)


@functools.lru_cache(maxsize=32)
def step_positions(n_steps: int, dim: int, device: torch.device | None, dtype: torch.dtype) -> Tensor:
    """(n_steps, dim) position vectors of steps 1..n_steps (cached, read-only)."""
    return sinusoidal_table(n_steps + 1, dim, device, dtype)[1:]


def embed(x_in: Tensor, scale: float, masked: bool) -> Tensor:
    """scale * x_in + positions, for (..., T, d); broadcast over the leading dimensions.

    ``masked``: padding is known from a mask; otherwise (official) a step whose channel 0 is exactly
    0 is padding and gets no position."""
    pos = step_positions(x_in.shape[-2], x_in.shape[-1], x_in.device, x_in.dtype)
    if not masked:
        pos = pos * (x_in[..., :1] != 0).to(x_in.dtype)
    return torch.add(pos, x_in, alpha=scale)


def future_mask(t_q: int, t_k: int, device: torch.device) -> Tensor:
    """(Tq, Tk) additive mask: MulT's triu with diagonal 1 + |Tk - Tq|."""
    ones = torch.ones(t_q, t_k, device=device, dtype=torch.bool)
    return torch.triu(ones, diagonal=1 + abs(t_k - t_q))


class AttentionMask(NamedTuple):
    """What attention needs to know about blocked keys: made once per call, or once for all the
    non-causal transformers that attend to one modality (``DMD.forward``)."""

    bias: Tensor  # (B or 1, 1, Tq or 1, Tk): 0 where allowed, -1e9 where blocked
    keep: Tensor  # (B or 1, Tq or 1, 1): 0 for a query that sees no key, else 1


def attention_mask(t_q: int, t_k: int, kv_mask: Tensor | None, causal: bool,
                   device: torch.device, dtype: torch.dtype) -> AttentionMask | None:
    """The mask of keys ``kv_mask`` (B, Tk) (True = present) and the future, or None if nothing is blocked."""
    block = future_mask(t_q, t_k, device).unsqueeze(0) if causal else None  # (1, Tq, Tk)
    if kv_mask is not None:
        pad = ~kv_mask.unsqueeze(1)  # (B, 1, Tk)
        block = pad if block is None else block | pad
    if block is None:
        return None
    return AttentionMask(block.unsqueeze(1).to(dtype) * _MASKED, (~block.all(dim=-1, keepdim=True)).to(dtype))


class MultiheadAttention(nn.Module):
    """Multi-head attention with one packed (3d, d) q/k/v projection (official layout)."""

    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        assert d % heads == 0, f"d_model {d} is not divisible by {heads} heads"
        self.heads, self.dropout = heads, dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d, d))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * d))
        self.out_proj = nn.Linear(d, d)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.xavier_uniform_(self.out_proj.weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, q: Tensor, k: Tensor, v: Tensor, mask: AttentionMask | None) -> Tensor:
        """q (B, Tq, d), k and v (B, Tk, d) -> (B, Tq, d).

        The same tensor passed twice (self-attention, or keys = values) is projected in one product."""
        (B, Tq, d), Tk = q.shape, k.shape[1]
        if q is k and k is v:
            q, k, v = F.linear(q, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        elif k is v:
            q = F.linear(q, self.in_proj_weight[:d], self.in_proj_bias[:d])
            k, v = F.linear(k, self.in_proj_weight[d:], self.in_proj_bias[d:]).chunk(2, dim=-1)
        else:
            w, b = self.in_proj_weight.chunk(3), self.in_proj_bias.chunk(3)
            q, k, v = F.linear(q, w[0], b[0]), F.linear(k, w[1], b[1]), F.linear(v, w[2], b[2])
        split = lambda x, t: x.view(B, t, self.heads, d // self.heads).transpose(1, 2)  # noqa: E731  (B, h, T, d/h)
        out = F.scaled_dot_product_attention(split(q, Tq), split(k, Tk), split(v, Tk),
                                             None if mask is None else mask.bias, self.dropout if self.training else 0.0)
        out = out.transpose(1, 2).reshape(B, Tq, d)
        if mask is not None:  # a query that sees no key attends to nothing
            out = out * mask.keep
        return self.out_proj(out)


class EncoderLayer(nn.Module):
    """Pre-LN: x + Attn(LN x, LN k, LN v), then x + FFN(LN x)."""

    def __init__(self, d: int, heads: int, attn_dropout: float, relu_dropout: float, res_dropout: float):
        super().__init__()
        self.self_attn = MultiheadAttention(d, heads, attn_dropout)
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.layer_norms = nn.ModuleList([nn.LayerNorm(d), nn.LayerNorm(d)])
        self.relu_dropout, self.res_dropout = relu_dropout, res_dropout

    def forward(self, x: Tensor, kv: tuple[Tensor, Tensor] | None, mask: AttentionMask | None) -> Tensor:
        ln = self.layer_norms[0]
        h = ln(x)
        if kv is None:
            k = v = h
        elif kv[0] is kv[1]:  # one embedding of the source (no dropout): normalise it once
            k = v = ln(kv[0])
        else:
            k, v = ln(kv[0]), ln(kv[1])
        x = x + dropout(self.self_attn(h, k, v, mask), self.res_dropout, self.training)
        h = dropout(F.relu(self.fc1(self.layer_norms[1](x))), self.relu_dropout, self.training)
        return x + dropout(self.fc2(h), self.res_dropout, self.training)


class TransformerEncoder(nn.Module):
    """A stack of encoder layers; self-attention, or crossmodal when keys/values are given."""

    def __init__(self, d: int, heads: int, layers: int, attn_dropout: float, relu_dropout: float,
                 res_dropout: float, embed_dropout: float, causal: bool):
        super().__init__()
        self.scale, self.embed_dropout, self.causal = math.sqrt(d), embed_dropout, causal
        self.layers = nn.ModuleList(
            EncoderLayer(d, heads, attn_dropout, relu_dropout, res_dropout) for _ in range(layers)
        )
        self.layer_norm = nn.LayerNorm(d)

    def _embed(self, x_in: Tensor, mask: Tensor | None) -> Tensor:
        return dropout(embed(x_in, self.scale, mask is not None), self.embed_dropout, self.training)

    def forward(self, x: Tensor, kv: Tensor | None = None, q_mask: Tensor | None = None,
                kv_mask: Tensor | AttentionMask | None = None) -> Tensor:
        """x (B, Tq, d) queries; kv (B, Tk, d) keys = values, or None for self-attention.

        Masks (B, T) bool, True = present; ``kv_mask`` may instead be the keys' ``attention_mask``,
        made once for all the (non-causal) transformers that attend to one modality. Returns (B, Tq, d)."""
        if kv is None:
            kv, kv_mask = x, q_mask if kv_mask is None else kv_mask
        if isinstance(kv_mask, AttentionMask):
            mask = kv_mask
        else:
            mask = attention_mask(x.shape[1], kv.shape[1], kv_mask, self.causal, x.device, x.dtype)
        h = self._embed(x, q_mask)
        if kv is x:
            kv_pair = None
        elif self.training and self.embed_dropout > 0:  # keys and values get their own dropout (official)
            kv_pair = (self._embed(kv, kv_mask), self._embed(kv, kv_mask))
        else:
            embedded = self._embed(kv, kv_mask)
            kv_pair = (embedded, embedded)
        for layer in self.layers:
            h = layer(h, kv_pair, mask)
        return self.layer_norm(h)


def _layer_norm(x: Tensor, weight: Tensor, bias: Tensor, norm: nn.LayerNorm) -> Tensor:
    """``norm`` (one member's LayerNorm: shape and eps) with per-member affine parameters (broadcast from the front)."""
    return torch.addcmul(bias, F.layer_norm(x, norm.normalized_shape, eps=norm.eps), weight)


STACKED_LAYER = (  # an EncoderLayer's parameters in the order ``TransformerStack`` reads them, and their kind
    ("layer_norms.0.weight", "norm"), ("layer_norms.0.bias", "norm"),
    ("self_attn.in_proj_weight", "matrix"), ("self_attn.in_proj_bias", "bias"),
    ("self_attn.out_proj.weight", "matrix"), ("self_attn.out_proj.bias", "bias"),
    ("layer_norms.1.weight", "norm"), ("layer_norms.1.bias", "norm"),
    ("fc1.weight", "matrix"), ("fc1.bias", "bias"), ("fc2.weight", "matrix"), ("fc2.bias", "bias"),
)


class TransformerStack:
    """n non-causal transformers of one shape run at once, for inference.

    Their weights are stacked along a new leading dimension (once, then reused while the weights
    stay the same) and every product is a batched one, so n transformers cost the operators of
    one: at batch 1 on a CPU a transformer is about 20 operators whatever its size. Same outputs
    as calling each member (up to float rounding; ``tests/model/test_dmd_model.py`` checks it). No
    dropout and no gradients to the members' weights through the cache: training calls the members.

    The members stay owned (and saved) by whoever made them; this holds references only, and the
    owner calls ``forget`` when their weights may change (``DMD`` does on ``train``/``eval``,
    ``to``/``half`` and ``load_state_dict``)."""

    def __init__(self, members: Sequence[TransformerEncoder]) -> None:
        first = members[0]
        self.members = tuple(members)
        self.heads = first.layers[0].self_attn.heads
        self.scale, self.norm = first.scale, first.layer_norm
        self._cache: list[Tensor] | None = None

    def _weights(self) -> list[Tensor]:
        """``STACKED_LAYER`` of every layer, then the final LayerNorm's weight and bias, each stacked over
        the members: matrices (n, in, out), biases (n, 1, out) and LayerNorm parameters (n, 1, 1, d),
        so they broadcast over (n, B*T, out) and (n, B, T, d)."""
        def stack(name: str, kind: str) -> Tensor:
            t = torch.stack([m.get_parameter(name) for m in self.members])  # (n, out, in) or (n, out)
            return t.transpose(1, 2) if kind == "matrix" else t.unsqueeze(1) if kind == "bias" else t[:, None, None]
        layers = range(len(self.members[0].layers))
        return ([stack(f"layers.{i}.{name}", kind) for i in layers for name, kind in STACKED_LAYER]
                + [stack("layer_norm.weight", "norm"), stack("layer_norm.bias", "norm")])

    def weights(self) -> list[Tensor]:
        """The stacked weights: made once for inference and kept until ``forget``; made anew on every
        call where autograd is on (so gradients reach the members) or while compiling."""
        if torch.is_grad_enabled() or torch.compiler.is_compiling():
            return self._weights()
        if self._cache is None:
            self._cache = self._weights()
        return self._cache

    def forget(self) -> None:
        """Drop the stacked weights; the owner calls this whenever the members' weights may change."""
        self._cache = None

    def __call__(self, x: Tensor, kv: Tensor | None, mask: AttentionMask) -> Tensor:
        """x (n, B, Tq, d) queries of each member; kv (n, B, Tk, d) keys = values, or None for self-attention;
        ``mask`` the keys' ``attention_mask`` with the n members' batches flattened: bias (n*B, 1, 1, Tk),
        keep (n*B, 1, 1). Returns (n, B, Tq, d)."""
        n, _, Tq, d = x.shape  # (the batch size is left to -1: exported graphs keep it dynamic)
        Tk, dh = Tq if kv is None else kv.shape[2], d // self.heads
        heads = lambda t, T, k: t.view(-1, T, k, self.heads, dh).permute(2, 0, 3, 1, 4)  # noqa: E731  (k, n*B, h, T, dh)
        product = lambda t, w, b: torch.baddbmm(b, t.reshape(n, -1, t.shape[-1]), w)  # noqa: E731  (n, B*T, out)
        weights = self.weights()
        h = embed(x, self.scale, masked=True)
        source = None if kv is None else embed(kv, self.scale, masked=True)
        per_layer = len(STACKED_LAYER)
        for i in range(0, len(weights) - 2, per_layer):
            ln1_w, ln1_b, w_in, b_in, w_out, b_out, ln2_w, ln2_b, w1, b1, w2, b2 = weights[i:i + per_layer]
            q = _layer_norm(h, ln1_w, ln1_b, self.norm)
            if source is None:
                q, k, v = heads(product(q, w_in, b_in), Tq, 3).unbind(0)
            else:
                k = _layer_norm(source, ln1_w, ln1_b, self.norm)
                q = heads(product(q, w_in[..., :d], b_in[..., :d]), Tq, 1)[0]
                k, v = heads(product(k, w_in[..., d:], b_in[..., d:]), Tk, 2).unbind(0)
            out = F.scaled_dot_product_attention(q, k, v, mask.bias).transpose(1, 2).reshape(-1, Tq, d)
            h = h + product(out * mask.keep, w_out, b_out).view(n, -1, Tq, d)  # a query that sees no key: zero
            ff = F.relu(product(_layer_norm(h, ln2_w, ln2_b, self.norm), w1, b1))
            h = h + product(ff, w2, b2).view(n, -1, Tq, d)
        return _layer_norm(h, weights[-2], weights[-1], self.norm)
