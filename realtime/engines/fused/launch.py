"""One batch of windows through the four fused kernels (``kernels``), with the buffers they share."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from realtime.engines.fused import kernels
from realtime.engines.fused.weights import NP, PackedRecognizer

WARPS = {"front": 8, "first": 4, "memory": 8, "head": 4}  # warps per program of each kernel


def scales(width: int) -> dict[str, float]:
    """A transformer's embedding scale sqrt(d) and attention scale 1 / sqrt(head width)."""
    return {"SCALE": math.sqrt(width), "SM_SCALE": 1.0 / math.sqrt(width // kernels.HEADS)}


class FusedCall:
    """The buffers of one batch size on one device; ``__call__`` runs the window's four launches."""

    def __init__(self, packed: PackedRecognizer, batch: int, device: torch.device | str) -> None:
        self.packed, self.batch = packed, batch
        f32 = dict(device=device, dtype=torch.float32)
        self.scratch = torch.empty(batch, 2, kernels.TP, kernels.CP, **f32)  # the voice trunk's steps, in and out
        self.voice = torch.zeros(batch, kernels.T_A, kernels.VF, **f32)
        self.cs = torch.empty(batch, 6, NP, kernels.D, **f32)  # common then specific steps per modality
        self.pm = torch.empty(batch, 3, NP, **f32)  # projected presence
        self.vec = torch.zeros(batch, kernels.VEC, **f32)  # per-window vectors between stages
        self.seq = torch.empty(batch, 3, NP, kernels.D2, **f32)  # the memory transformers' inputs
        self.probabilities = torch.empty(batch, kernels.NCLS, **f32)
        self.valence = torch.empty(batch, **f32)
        self.edges_homo = torch.empty(batch, 6, **f32)
        self.edges_hetero = torch.empty(batch, 6, **f32)

    def __call__(self, visual: Tensor, visual_mask: Tensor, audio: Tensor, audio_mask: Tensor, text: Tensor,
                 text_mask: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The named inputs (contiguous, on this call's device; masks bool) -> probabilities, valence,
        edges_homo, edges_hetero (this call's buffers, overwritten by the next call)."""
        p, b, v, dot = self.packed, self.batch, self.packed.voice, self.packed.dot
        kernels.front_kernel[(b,)](
            visual, visual_mask, audio, audio_mask, text, text_mask,
            v["conv_first"], v["conv_rest"], v["conv_bias"], v["embed_w"], v["embed_b"], v["cls_w"], v["cls_b"],
            p.project_w, p.input_w, p.input_b, self.scratch, self.voice, self.cs, self.pm, self.vec,
            DOT=dot, num_warps=WARPS["front"])
        first, memory = p.first_index, p.memory_index
        kernels.transformer_kernel[(9, b)](
            self.cs, self.pm, p.first_stage, p.positions, first[0], first[1], first[2], first[3], self.vec, self.seq,
            WIDTH=kernels.D, NSRC=6, SEQ_W=kernels.D2, **scales(kernels.D), DOT=dot, num_warps=WARPS["first"])
        kernels.transformer_kernel[(3, b)](
            self.seq, self.pm, p.memory, p.positions_memory, memory[0], memory[1], memory[2], memory[3], self.vec,
            self.seq, WIDTH=kernels.D2, NSRC=3, SEQ_W=kernels.D2, **scales(kernels.D2), DOT=dot, num_warps=WARPS["memory"])
        kernels.head_kernel[(b,)](
            self.vec, p.head_table, p.head_offsets, p.label_valence, self.probabilities, self.valence,
            self.edges_homo, self.edges_hetero, p.alpha, p.temperature, p.text_temperature, num_warps=WARPS["head"])
        return self.probabilities, self.valence, self.edges_homo, self.edges_hetero
