"""The graph-distillation unit (GD-Unit) exactly as the official DMD code computes it.

Each modality m in [l, v, a] is embedded as z_m = [W_logit(logit_m) ; W_repr(repr_m)]. Every
directed edge teacher i -> student j gets a score W_edge([z_j ; z_i]); edges are enumerated
``for j in students: for i in teachers: i != j``, which fixes the order

    0: V->L   1: A->L   2: L->V   3: A->V   4: L->A   5: V->A

DMD takes one softmax over all six edges per sample (temperature 1/alpha = 8). The original
graph distillation (Luo et al., ECCV 2018) normalises per student instead; ``per_target`` gives
that. Nothing is detached in the edge network, so the backbone gets gradients from it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from realtime.core.modalities import EDGES

_MASKED = -1e9  # score of an edge that touches an absent modality



def edge_softmax(scores: Tensor, normalize: str) -> Tensor:
    """(B, 6) scores -> (B, 6) weights; 'joint' sums to 1, 'per_target' to 1 per student."""
    if normalize == "joint":
        return scores.softmax(dim=-1)
    if normalize == "per_target":  # edges 2j and 2j+1 share student j
        return scores.view(-1, 3, 2).softmax(dim=-1).reshape(-1, 6)
    raise ValueError(f"gd_normalize must be 'joint' or 'per_target', not {normalize!r}")


class GDUnit(nn.Module):
    def __init__(self, n_logits: int, hidden: int, gd_size: int, prior_logits: tuple[float, ...],
                 prior_temperature: float, alpha: float, normalize: str):
        super().__init__()
        self.W_logit = nn.Linear(n_logits, gd_size)
        self.W_repr = nn.Linear(hidden, gd_size)
        self.W_edge = nn.Linear(4 * gd_size, 1)
        self.alpha, self.normalize = alpha, normalize
        prior = edge_softmax(torch.tensor([prior_logits], dtype=torch.float) / prior_temperature, normalize)
        self.register_buffer("prior", prior[0], persistent=False)  # (6,)
        self.register_buffer("teacher", torch.tensor([i for i, _ in EDGES]), persistent=False)  # (6,) per edge
        self.register_buffer("student", torch.tensor([j for _, j in EDGES]), persistent=False)

    def forward(self, logits: Tensor, reprs: Tensor, present: Tensor | None = None) -> Tensor:
        """logits (3, B, n), reprs (3, B, hidden) in [l, v, a] order -> edge weights (B, 6).

        ``present`` (B, 3) bool: an edge touching an absent modality gets weight 0 and the
        others are renormalised (all zero when no edge is left)."""
        z = torch.cat([self.W_logit(logits), self.W_repr(reprs)], dim=-1)  # (3, B, 2g)
        pairs = torch.cat([z.index_select(0, self.student), z.index_select(0, self.teacher)], dim=-1)  # (6, B, 4g)
        scores = self.W_edge(pairs).squeeze(-1).transpose(0, 1) * self.alpha  # (B, 6)
        if present is None:
            return edge_softmax(scores, self.normalize)
        valid = present.index_select(1, self.teacher) & present.index_select(1, self.student)  # (B, 6)
        return edge_softmax(scores.masked_fill(~valid, _MASKED), self.normalize) * valid.to(scores.dtype)

    def regulariser(self, edges: Tensor) -> Tensor:
        """Sum over edges of (batch-mean edge weight - prior)^2; multiply by gd_reg outside."""
        return (edges.mean(dim=0) - self.prior).pow(2).sum()

    def distill(self, edges: Tensor, student: Tensor, teacher: Tensor, kind: str,
                valid: Tensor | None = None) -> Tensor:
        """Weighted distillation over the six edges; ``student``/``teacher`` are (3, B, n).

        kind 'l1': mean_b (edge + prior) * ||s_j - t_i||_1, summed over edges.
        kind 'min_cosine': mean_b(edge + prior) * mean_b max(0, cos(s_j, t_i)) (official hetero
        representation term, which pushes student and teacher apart).
        kind 'max_cosine': the same weighting of (1 - cos), which pulls them together.
        Teachers are detached: each edge teaches its student only. ``valid`` (B, 6) zeroes the
        weight of edges that touch an absent modality."""
        total = edges.new_zeros(())
        for x, (i, j) in enumerate(EDGES):
            w = edges[:, x] + self.prior[x]  # (B,)
            if valid is not None:
                w = w * valid[:, x]
            s, t = student[j], teacher[i].detach()
            if kind == "l1":
                total = total + (w * (s - t).abs().sum(dim=-1)).mean()
            elif kind == "min_cosine":
                total = total + w.mean() * F.cosine_similarity(s, t, dim=-1).clamp(min=0).mean()
            elif kind == "max_cosine":
                total = total + w.mean() * (1 - F.cosine_similarity(s, t, dim=-1)).mean()
            else:
                raise ValueError(f"unknown distillation kind {kind!r}")
        return total
