"""DMD: decoupled multimodal distilling (Li, Wang, Cui, CVPR 2023), one implementation for the
official `paper` presets and the masked `lite` preset.

Flow per modality m in (l, v, a), shapes for B samples:
    x_m (B, T, dim_m) -> project_m (bias-free Conv1d; in patches where stride_m > 1) -> origin_m (B, d, L')
    origin_m -> private_m -> s_m (exclusive)      origin_m -> shared -> c_m (common, one encoder)
    c_m -> homo_head_m -> (repr, logit) -> HomoGD                      [training + edge weights]
    c_m -> self_attn_common_m -> read-out -> c_fusion (B, 3d)
    s_m with s_o, s_o' -> two crossmodal transformers -> memory_m -> read-out h_m (B, 2d)
    h_m -> hetero_head_m -> (repr, logit) -> HeteroGD                  [training + edge weights]
    [sigmoid(gate_m h_m) for l, v, a ; sigmoid(gate_c c_fusion)] (B, 9d) -> fusion_head -> logits

``forward`` returns the prediction and both GD-Units' edge weights; ``return_aux=True`` adds every
tensor the training objective needs (decoders and cycle included), under the official names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from realtime.core.modalities import MODEL_ORDER

from .config import DMDConfig
from .gd_unit import GDUnit
from .transformer import AttentionMask, TransformerEncoder, TransformerStack, attention_mask, dropout


@dataclass
class DMDOutput:
    logits: Tensor  # (B, n_outputs): class logits first, then the regression score if any
    edges_homo: Tensor  # (B, 6) HomoGD edge weights, order gd_unit.EDGE_NAMES
    edges_hetero: Tensor  # (B, 6) HeteroGD edge weights
    aux: dict[str, Tensor] = field(default_factory=dict)  # training-only tensors (official names)


class ResidualHead(nn.Module):
    """proj1 -> ReLU -> dropout -> proj2, plus the input, then a linear output layer."""

    def __init__(self, dim: int, hidden: int, n_out: int, dropout: float):
        super().__init__()
        self.proj1, self.proj2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        self.out = nn.Linear(dim, n_out)
        self.dropout = dropout

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x (B, dim) -> (bottleneck after ReLU (B, hidden), residual sum (B, dim), logit (B, n_out))."""
        bottleneck = F.relu(self.proj1(x))
        residual = self.proj2(dropout(bottleneck, self.dropout, self.training)) + x
        return bottleneck, residual, self.out(residual)


def step_weights(present: Tensor | None, dtype: torch.dtype) -> tuple[Tensor, Tensor] | None:
    """(B, T) presence -> (B, 1, T) weights: 1 at present steps, and those of their mean (0 when none is)."""
    if present is None:
        return None
    on = present.unsqueeze(1).to(dtype)
    return on, on / on.sum(dim=-1, keepdim=True).clamp(min=1)


def read_out(h: Tensor, weights: tuple[Tensor, Tensor] | None) -> Tensor:
    """(B, T, e) -> (B, e): the mean over present steps (``step_weights``), or the last step without masks."""
    return h[:, -1] if weights is None else torch.bmm(weights[1], h).squeeze(1)


def last_present(x: Tensor, present: Tensor) -> Tensor:
    """(B, T, e) -> (B, e): the last present step of left-aligned steps (step 0 where none is)."""
    last = (present.sum(dim=1) - 1).clamp(min=0)  # (B,)
    return x.gather(1, last.view(-1, 1, 1).expand(-1, 1, x.shape[2])).squeeze(1)


def other_modalities(m: str) -> tuple[str, str]:
    """Crossmodal sources of target m, in the official concatenation order."""
    return tuple(o for o in ("l", "a", "v") if o != m)  # type: ignore[return-value]


class DMD(nn.Module):
    def __init__(self, cfg: DMDConfig):
        super().__init__()
        self.cfg = cfg
        d, n_out = cfg.d_model, cfg.n_outputs
        drop = {"l": cfg.attn_dropout, "a": cfg.attn_dropout_a, "v": cfg.attn_dropout_v}

        def transformer(dim: int, layers: int, attn_dropout: float) -> TransformerEncoder:
            return TransformerEncoder(dim, cfg.num_heads, layers, attn_dropout, cfg.relu_dropout,
                                      cfg.res_dropout, cfg.embed_dropout, cfg.causal)

        def pooled_dim(m: str) -> int:  # flattened (L' * d) officially, masked mean (d) with masks
            return d if cfg.use_masks else d * cfg.projected_length(m)

        self.project = nn.ModuleDict({m: nn.Conv1d(cfg.dim(m), d, cfg.kernel(m), cfg.stride(m), cfg.padding(m), bias=False)
                                      for m in MODEL_ORDER})
        self.private = nn.ModuleDict({m: nn.Conv1d(d, d, 1, bias=False) for m in MODEL_ORDER})
        self.shared = nn.Conv1d(d, d, 1, bias=False)
        self.decoder = nn.ModuleDict({m: nn.Conv1d(2 * d, d, 1, bias=False) for m in MODEL_ORDER})
        if cfg.keep_unused:
            self.proj_cosine = nn.ModuleDict({m: nn.Linear(pooled_dim(m), d) for m in MODEL_ORDER})
        self.align_c = nn.ModuleDict({m: nn.Linear(pooled_dim(m), d) for m in MODEL_ORDER})
        self.homo_head = nn.ModuleDict(
            {m: ResidualHead(pooled_dim(m), d, n_out, cfg.output_dropout) for m in MODEL_ORDER})
        self.self_attn_common = nn.ModuleDict({m: transformer(d, cfg.nlevels, drop[m]) for m in MODEL_ORDER})
        self.common_head = ResidualHead(3 * d, 3 * d, n_out, cfg.output_dropout)
        self.cross = nn.ModuleDict({f"{m}_with_{o}": transformer(d, cfg.nlevels, drop[o])
                                    for m in MODEL_ORDER for o in other_modalities(m)})
        self.memory = nn.ModuleDict({m: transformer(2 * d, cfg.mem_layers, cfg.attn_dropout) for m in MODEL_ORDER})
        self.hetero_head = nn.ModuleDict(
            {m: ResidualHead(2 * d, 2 * d, n_out, cfg.output_dropout) for m in MODEL_ORDER})
        self.gate = nn.ModuleDict({**{m: nn.Linear(2 * d, 2 * d) for m in MODEL_ORDER}, "c": nn.Linear(3 * d, 3 * d)})
        self.fusion_head = ResidualHead(9 * d, 9 * d, n_out, cfg.output_dropout)
        if cfg.input_heads:  # late fusion of the inputs beside the crossmodal path
            self.input_head = nn.ModuleDict({m: nn.Linear(cfg.dim(m), n_out) for m in MODEL_ORDER})
        # lite (masked, non-causal): at inference each kind's transformers run as one stack (same outputs, fewer operators)
        stackable = cfg.use_masks and not cfg.causal
        self.stacks = tuple(TransformerStack(list(group.values())) for group in
                            (self.self_attn_common, self.cross, self.memory)) if stackable else None
        self.register_load_state_dict_post_hook(lambda module, _: module.forget_stacked())
        cross = [(MODEL_ORDER.index(m), MODEL_ORDER.index(o)) for m in MODEL_ORDER for o in other_modalities(m)]
        self.register_buffer("cross_targets", torch.tensor([m for m, _ in cross]), persistent=False)
        self.register_buffer("cross_sources", torch.tensor([o for _, o in cross]), persistent=False)
        gd = dict(prior_temperature=cfg.gd_prior_temperature, alpha=cfg.gd_alpha, normalize=cfg.gd_normalize)
        self.gd_homo = GDUnit(n_out, d, cfg.gd_size_homo, cfg.gd_prior_homo, **gd)
        self.gd_hetero = GDUnit(n_out, 2 * d, cfg.gd_size_hetero, cfg.gd_prior_hetero, **gd)

    def forget_stacked(self) -> None:
        """The stacks re-read the weights on their next inference call. Called on ``train``/``eval``,
        ``to``/``half`` and ``load_state_dict``; call it yourself after changing weights in place in eval mode."""
        for stack in self.stacks or ():
            stack.forget()

    def train(self, mode: bool = True) -> DMD:
        self.forget_stacked()  # weights change while training
        return super().train(mode)

    def _apply(self, fn, recurse=True):  # noqa: ANN001, ANN202  (to, half, cuda, ...: new weight tensors)
        self.forget_stacked()
        return super()._apply(fn, recurse)

    def projected_mask(self, present: Tensor | None, m: str) -> Tensor | None:
        """(B, L') presence of the projected steps: a strided step is present where any input step under it is."""
        if present is None or self.cfg.stride(m) == 1:
            return present
        pooled = F.max_pool1d(present.unsqueeze(1).to(torch.float32), self.cfg.kernel(m), self.cfg.stride(m))
        return pooled.squeeze(1) > 0

    def attend(self, c_t: dict[str, Tensor], s_t: dict[str, Tensor], mask: dict[str, Tensor | None],
               w: dict[str, tuple[Tensor, Tensor] | None]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """The twelve transformers, one call each: common (B, L', d) and specific (B, L', d) steps per
        modality -> the read-outs of the common self-attention (B, d) and of the memory (B, 2d)."""
        cfg, common, last_h = self.cfg, {}, {}
        # the keys of the four transformers that attend to m share one attention mask (made here unless causal)
        keys = {m: mask[m] if mask[m] is None or cfg.causal else
                attention_mask(1, mask[m].shape[1], mask[m], False, s_t[m].device, s_t[m].dtype) for m in MODEL_ORDER}
        for m in MODEL_ORDER:
            common[m] = read_out(self.self_attn_common[m](c_t[m], q_mask=mask[m], kv_mask=keys[m]), w[m])
        for m in MODEL_ORDER:
            crossed = [self.cross[f"{m}_with_{o}"](s_t[m], s_t[o], q_mask=mask[m], kv_mask=keys[o])
                       for o in other_modalities(m)]
            h = self.memory[m](torch.cat(crossed, dim=-1), q_mask=mask[m], kv_mask=keys[m])  # (B, L', 2d)
            last_h[m] = read_out(h, w[m])
        return common, last_h

    def attend_stacked(self, c_t: dict[str, Tensor], s_t: dict[str, Tensor],
                       mask: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """``attend`` at inference with the ``stacks``: the modalities' steps zero-padded to the longest
        and stacked, three calls instead of twelve."""
        n = max(t.shape[1] for t in s_t.values())
        pad = lambda t: torch.stack([F.pad(t[m], (0, 0, 0, n - t[m].shape[1])) for m in MODEL_ORDER])  # noqa: E731
        present = torch.stack([F.pad(mask[m], (0, n - mask[m].shape[1])) for m in MODEL_ORDER])  # (3, B, n)
        keys = attention_mask(1, n, present.flatten(0, 1), False, present.device, s_t["l"].dtype)  # per (modality, sample)
        sources = AttentionMask(*(t.unflatten(0, (len(MODEL_ORDER), -1)).index_select(0, self.cross_sources)
                                  .flatten(0, 1) for t in keys))
        common_stack, cross_stack, memory_stack = self.stacks
        s = pad(s_t)  # (3, B, n, d)
        crossed = cross_stack(s.index_select(0, self.cross_targets), s.index_select(0, self.cross_sources), sources)
        paired = crossed.unflatten(0, (len(MODEL_ORDER), 2)).permute(0, 2, 3, 1, 4).flatten(3)  # (3, B, n, 2d)
        h = memory_stack(paired, None, keys)  # (3, B, n, 2d)
        weights = step_weights(present.flatten(0, 1), s.dtype)  # per (modality, sample)

        def mean(t: Tensor) -> dict[str, Tensor]:  # (3, B, n, e) -> each modality's masked mean (B, e)
            return dict(zip(MODEL_ORDER, read_out(t.flatten(0, 1), weights).unflatten(0, (len(MODEL_ORDER), -1))))

        return mean(common_stack(pad(c_t), None, keys)), mean(h)

    def forward(self, text: Tensor, audio: Tensor, vision: Tensor, mask_l: Tensor | None = None,
                mask_a: Tensor | None = None, mask_v: Tensor | None = None,
                return_aux: bool = False) -> DMDOutput:
        """text (B, len_l, dim_l), audio (B, len_a, dim_a), vision (B, len_v, dim_v), float.

        Masks (B, len_m) bool, True where the step is present; only with ``use_masks`` (all
        present when omitted). Official argument order: text, audio, vision."""
        cfg = self.cfg
        x = {"l": dropout(text, cfg.text_dropout, self.training), "a": audio, "v": vision}
        steps: dict[str, Tensor | None] = {"l": mask_l, "a": mask_a, "v": mask_v}  # input steps present
        if cfg.use_masks:
            steps = {m: torch.ones(x[m].shape[:2], dtype=torch.bool, device=x[m].device) if steps[m] is None
                     else steps[m] for m in MODEL_ORDER}
        elif any(v is not None for v in steps.values()):
            raise ValueError(f"preset {cfg.name!r} takes no masks (use_masks=False); use the lite preset")
        mask = {m: self.projected_mask(steps[m], m) for m in MODEL_ORDER}  # projected steps present
        w_in = {m: step_weights(steps[m], x[m].dtype) for m in MODEL_ORDER}  # made once: used many times
        w = {m: step_weights(mask[m], x[m].dtype) for m in MODEL_ORDER}

        def keep(t: Tensor, weights: tuple[Tensor, Tensor] | None) -> Tensor:  # zero the absent steps of (B, d, T)
            return t if weights is None else t * weights[0]

        def input_summary(m: str) -> Tensor:  # (B, T, dim_m) -> (B, dim_m) for the input head
            if w_in[m] is None:
                return x[m].mean(1)
            return last_present(x[m], steps[m]) if m == "l" and cfg.text_last_step else read_out(x[m], w_in[m])

        def pool(c: Tensor, m: str, time_major: bool) -> Tensor:  # (B, d, L') -> (B, pooled_dim)
            if w[m] is not None:
                return read_out(c.transpose(1, 2), w[m])
            return (c.transpose(1, 2) if time_major else c).reshape(c.shape[0], -1)

        aux: dict[str, Tensor] = {}
        origin, s, c, s_t, homo_logit, homo_repr = {}, {}, {}, {}, {}, {}
        for m in MODEL_ORDER:
            origin[m] = keep(self.project[m](keep(x[m].transpose(1, 2), w_in[m])), w[m])  # (B, d, L')
            s[m] = self.private[m](origin[m])  # (B, d, L')
            c[m] = self.shared(origin[m])  # (B, d, L')
            s_t[m] = s[m].transpose(1, 2)  # (B, L', d)
            homo_repr[m], _, homo_logit[m] = self.homo_head[m](pool(c[m], m, time_major=True))
        c_t = {m: c[m].transpose(1, 2) for m in MODEL_ORDER}
        if self.stacks is not None and not self.training:
            common, last_h = self.attend_stacked(c_t, s_t, mask)
        else:
            common, last_h = self.attend(c_t, s_t, mask, w)
        c_fusion = torch.cat([common[m] for m in MODEL_ORDER], dim=-1)  # (B, 3d)

        hetero_logit, hetero_repr = {}, {}
        for m in MODEL_ORDER:
            _, hetero_repr[m], hetero_logit[m] = self.hetero_head[m](last_h[m])

        gated = [torch.sigmoid(self.gate[m](last_h[m])) for m in MODEL_ORDER]
        fused = torch.cat([*gated, torch.sigmoid(self.gate["c"](c_fusion))], dim=-1)  # (B, 9d)
        logits = self.fusion_head(fused)[2]
        if cfg.input_heads:
            logits = logits + sum(self.input_head[m](input_summary(m)) for m in MODEL_ORDER)

        present = None if mask["l"] is None else torch.stack([mask[m].any(dim=1) for m in MODEL_ORDER], dim=1)
        stack = lambda t: torch.stack([t[m] for m in MODEL_ORDER])  # noqa: E731  (3, B, ...) in l, v, a order
        edges_homo = self.gd_homo(stack(homo_logit), stack(homo_repr), present)
        edges_hetero = self.gd_hetero(stack(hetero_logit), stack(hetero_repr), present)

        if return_aux:
            for m in MODEL_ORDER:
                recon = self.decoder[m](torch.cat([s[m], c[m]], dim=1))  # (B, d, L')
                aux |= {f"origin_{m}": origin[m], f"s_{m}": s[m], f"c_{m}": c[m], f"recon_{m}": keep(recon, w[m]),
                        f"s_{m}_r": keep(self.private[m](recon), w[m]),
                        f"c_{m}_sim": self.align_c[m](pool(c[m], m, time_major=False)),
                        f"logits_{m}_homo": homo_logit[m], f"repr_{m}_homo": homo_repr[m],
                        f"logits_{m}_hetero": hetero_logit[m], f"repr_{m}_hetero": hetero_repr[m],
                        f"last_h_{m}": last_h[m]}
                if cfg.keep_unused:
                    aux[f"proj_s_{m}"] = self.proj_cosine[m](pool(s[m], m, time_major=True))
                if mask[m] is not None:
                    aux[f"mask_{m}"] = mask[m]
            aux["logits_c"] = self.common_head(c_fusion)[2]
            aux["output_logit"] = logits
        return DMDOutput(logits, edges_homo, edges_hetero, aux)
