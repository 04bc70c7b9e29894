"""The recognizer's weights packed once for the fused kernels (``kernels``).

Folded where the arithmetic allows: BatchNorm into the voice convolutions, DMD's patch projection
into its shared and private 1x1 convs (the common and specific steps come from the raw patches in
one product each). Matrices are stored transposed and zero-padded to the kernels' block sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from dmd_lite.config import PRESETS
from dmd_lite.model import DMD, ResidualHead, other_modalities
from dmd_lite.recognizer import Recognizer
from dmd_lite.transformer import STACKED_LAYER, TransformerEncoder, sinusoidal_table
from realtime.core.feature_spec import GE2E_DIM
from realtime.core.modalities import MODEL_ORDER
from realtime.engines.fused import kernels
from realtime.nets.voice_encoder import VoiceConfig

DOT_MODES = {"float32": 0, "tf32": 1, "float16": 2, "bfloat16": 3}  # --precision -> the kernels' DOT
STORAGE = {"float32": torch.float32, "tf32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
CP, PATCH, NOUT, IN_PAD, NP = 128, 256, 8, 128, 32  # kernels' padded sizes
SHAPE_KEYS = ("dim_l", "dim_a", "dim_v", "len_l", "len_a", "len_v", "kernel_l", "kernel_a", "kernel_v",
              "stride_l", "stride_a", "stride_v", "d_model", "num_heads", "nlevels", "min_mem_layers",
              "gd_size_homo", "gd_size_hetero", "use_masks", "causal", "input_heads", "text_last_step")


class UnsupportedModel(ValueError):
    """The checkpoint is not shaped as the kernels are built (the lite preset, 7 classes + valence)."""


def check_supported(model: Recognizer) -> None:
    """Raise ``UnsupportedModel`` (one line) unless the kernels' sizes fit the model."""
    cfg, lite = model.dmd.cfg, PRESETS["lite"]
    wrong = [k for k in SHAPE_KEYS if getattr(cfg, k) != getattr(lite, k)]
    if cfg.n_classes != 7 or not cfg.regression or cfg.gd_normalize != "joint":
        wrong.append("n_classes/regression/gd_normalize")
    if model.voice.cfg != VoiceConfig():
        wrong.append("voice_encoder")
    if wrong:
        raise UnsupportedModel(f"the fused back-end is built for the lite preset's shapes and this checkpoint differs in "
                               f"{', '.join(wrong)}; run it with --backend torch or onnx")


def _layer_blob(encoder: TransformerEncoder) -> Tensor:
    """One single-layer encoder's parameters flat, in the order ``transformer_kernel`` reads them:
    LN1 w, b; W_q^T, W_k^T, W_v^T; b_q, b_k, b_v; W_o^T, b_o; LN2 w, b; W_1^T, b_1; W_2^T, b_2; final LN w, b."""
    layer = encoder.get_submodule("layers.0")
    params = dict(layer.named_parameters())
    parts = []
    for name, kind in STACKED_LAYER:
        p = params[name]
        if name == "self_attn.in_proj_weight":  # (3d, d): each of q, k, v transposed
            parts += [block.t() for block in p.chunk(3)]
        else:
            parts.append(p.t() if kind == "matrix" else p)
    parts += [encoder.layer_norm.weight, encoder.layer_norm.bias]
    return torch.cat([t.reshape(-1) for t in parts])


def _patch_matrix(dmd: DMD, m: str, conv: torch.nn.Conv1d) -> Tensor:
    """(PATCH, d): patch (k steps x f features, step-major) -> conv(project_m(patch)), transposed, padded."""
    w = dmd.project[m].weight  # (d, f, k)
    flat = w.permute(0, 2, 1).reshape(w.shape[0], -1)  # (d, k*f), step-major like a window's rows
    folded = conv.weight[:, :, 0] @ flat  # (d, k*f)
    return F.pad(folded.t(), (0, 0, 0, PATCH - folded.shape[1]))


def _voice_tensors(model: Recognizer) -> dict[str, Tensor]:
    """The voice encoder with BatchNorm folded: conv weights (taps, CP in, CP out), biases (4, CP), the
    embedding (CP + G, 32) on [trunk ; GE2E states] and the classifier (NOUT, 2 (CP + G)) with the GE2E
    branch's BatchNorm in it, its columns in blocks of CB channels: their means', then their deviations'."""
    convs, biases = [], []
    for block in model.voice.blocks:
        bn = block.bn
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        w = block.conv.weight * scale[:, None, None]  # (out, in, taps)
        convs.append(F.pad(w.permute(2, 1, 0), (0, CP - w.shape[0], 0, CP - w.shape[1])))
        biases.append(F.pad(bn.bias - bn.running_mean * scale, (0, CP - w.shape[0])))
    c, g = model.voice.cfg.channels, GE2E_DIM
    head, norm = model.voice.head[1], model.voice.ge2e_norm
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    w_ge2e = head.weight[:, 2 * c:] * scale  # (classes, 2 G): the pooled GE2E states before their BatchNorm
    bias = head.bias + head.weight[:, 2 * c:] @ (norm.bias - norm.running_mean * scale)
    mean_w, std_w = torch.zeros(2, NOUT, CP + g)
    k = head.out_features
    mean_w[:k, :c], std_w[:k, :c] = head.weight[:, :c], head.weight[:, c:2 * c]
    mean_w[:k, CP:], std_w[:k, CP:] = w_ge2e[:, :g], w_ge2e[:, g:]
    blocks = (CP + g) // kernels.CB
    cls_w = torch.stack([mean_w.reshape(NOUT, blocks, -1), std_w.reshape(NOUT, blocks, -1)], 2).reshape(NOUT, -1)
    embed = model.voice.embed.weight[:, :, 0].t()  # (c + G, VE)
    embed_w = torch.cat([F.pad(embed[:c], (0, 0, 0, CP - c)), embed[c:]])
    return {"conv_first": convs[0], "conv_rest": torch.stack(convs[1:]), "conv_bias": torch.stack(biases),
            "embed_w": embed_w, "embed_b": model.voice.embed.bias, "cls_w": cls_w, "cls_b": F.pad(bias, (0, NOUT - k))}


def head_parameters(dmd: DMD) -> list[Tensor]:
    """The head kernel's parameters in its index order (``kernels.HOMO_HEADS`` ... ``GD_HETERO``)."""
    def residual(h: ResidualHead) -> list[Tensor]:
        return [h.proj1.weight, h.proj1.bias, h.proj2.weight, h.proj2.bias, h.out.weight, h.out.bias]

    def gd(unit: torch.nn.Module) -> list[Tensor]:
        return [unit.W_logit.weight, unit.W_logit.bias, unit.W_repr.weight, unit.W_repr.bias,
                unit.W_edge.weight, unit.W_edge.bias]

    gates = [p for g in (*MODEL_ORDER, "c") for p in (dmd.gate[g].weight, dmd.gate[g].bias)]
    return ([p for m in MODEL_ORDER for p in residual(dmd.homo_head[m])]
            + [p for m in MODEL_ORDER for p in residual(dmd.hetero_head[m])]
            + gates + residual(dmd.fusion_head) + gd(dmd.gd_homo) + gd(dmd.gd_hetero))


def cross_pairs() -> list[tuple[int, int]]:
    """(target, source) model indices of the 6 crossmodal transformers, in ``DMD.cross`` order."""
    return [(MODEL_ORDER.index(m), MODEL_ORDER.index(o)) for m in MODEL_ORDER for o in other_modalities(m)]


@dataclass
class PackedRecognizer:
    """Everything the kernels read, on one device, in one storage dtype."""

    precision: str
    voice: dict[str, Tensor]
    project_w: Tensor  # (3, 2, PATCH, d): common, specific
    input_w: Tensor  # (3, NOUT, IN_PAD)
    input_b: Tensor  # (NOUT,) the three input heads' biases summed
    first_stage: Tensor  # (9, layer size d): 3 common self-attention, 6 crossmodal
    memory: Tensor  # (3, layer size 2d)
    positions: Tensor  # (NP, d) float32: steps 1..NP
    positions_memory: Tensor  # (NP, 2d)
    first_index: Tensor  # (4, 9) int32: query source, key source, read-out offset (or -1), sequence slot
    memory_index: Tensor  # (4, 3) int32
    head_table: Tensor  # the head's parameters, flat
    head_offsets: Tensor  # (62,) int64: where each starts
    label_valence: Tensor  # (NCLS,) float32: each label's valence (words alone, Recognizer.decide)
    alpha: float
    temperature: float
    text_temperature: float

    @property
    def dot(self) -> int:
        return DOT_MODES[self.precision]


def pack(model: Recognizer, device: torch.device | str, precision: str = "float32") -> PackedRecognizer:
    """Pack ``model`` (eval mode) for the kernels; ``precision`` one of ``DOT_MODES``."""
    if precision not in DOT_MODES:
        raise ValueError(f"precision must be one of {', '.join(DOT_MODES)}, not {precision!r}")
    check_supported(model)
    dmd, store = model.dmd, STORAGE[precision]
    with torch.no_grad():
        to = lambda t: t.detach().to(device, store).contiguous()  # noqa: E731
        project_w = torch.stack([torch.stack([_patch_matrix(dmd, m, dmd.shared), _patch_matrix(dmd, m, dmd.private[m])])
                                 for m in MODEL_ORDER])
        input_w = torch.stack([F.pad(dmd.input_head[m].weight, (0, IN_PAD - dmd.input_head[m].in_features))
                               for m in MODEL_ORDER])
        input_b = sum(dmd.input_head[m].bias for m in MODEL_ORDER)
        first = [dmd.self_attn_common[m] for m in MODEL_ORDER] + [dmd.cross[f"{m}_with_{o}"] for m in MODEL_ORDER
                                                                   for o in other_modalities(m)]
        pairs = cross_pairs()
        first_index = [list(range(3)) + [3 + t for t, _ in pairs], list(range(3)) + [3 + s for _, s in pairs],
                       [kernels.COMMON + i * dmd.cfg.d_model for i in range(3)] + [-1] * 6,
                       [-1] * 3 + [2 * t + (i % 2) for i, (t, _) in enumerate(pairs)]]
        memory_index = [[0, 1, 2], [0, 1, 2], [kernels.LASTH + i * 2 * dmd.cfg.d_model for i in range(3)], [-1] * 3]
        params = head_parameters(dmd)
        sizes = torch.tensor([p.numel() for p in params])
        d = dmd.cfg.d_model
        return PackedRecognizer(
            precision=precision,
            voice={k: to(v) for k, v in _voice_tensors(model).items()},
            project_w=to(project_w), input_w=to(input_w), input_b=to(input_b),
            first_stage=to(torch.stack([_layer_blob(e) for e in first])),
            memory=to(torch.stack([_layer_blob(dmd.memory[m]) for m in MODEL_ORDER])),
            positions=sinusoidal_table(NP + 1, d)[1:].to(device).contiguous(),
            positions_memory=sinusoidal_table(NP + 1, 2 * d)[1:].to(device).contiguous(),
            first_index=torch.tensor(first_index, dtype=torch.int32, device=device),
            memory_index=torch.tensor(memory_index, dtype=torch.int32, device=device),
            head_table=to(torch.cat([p.reshape(-1) for p in params])),
            head_offsets=(torch.cumsum(sizes, 0) - sizes).to(device),
            label_valence=model.label_valence.to(device, torch.float32).contiguous(),
            alpha=float(dmd.gd_homo.alpha), temperature=float(model.temperature),
            text_temperature=float(model.text_temperature))
