"""DMD's training objective, with switches for the documented quirks of the official code.

    L = L_task
      + 0.05 (L_logit_homo + L_reg_homo [+ L_repr_homo])
      + 0.05 (L_logit_hetero + L_repr_hetero + L_reg_hetero)
      + 0.1  (L_cyc + L_rec + 0.1 (L_margin + L_ort))

Orthogonality (``ort``). The official call ``CosineEmbeddingLoss(s, c, target=-1)`` on (L', B, d)
tensors only ran on PyTorch <= 1.9, where the cosine was taken over the *batch* axis; newer
PyTorch raises. Choices: ``batch`` reproduces the old semantics (per time step and channel, the
cosine between the batch columns of s and c), ``sample`` is the author's suggested fix (per
sample, the cosine of the flattened L'*d vectors; our default: it states the intent, s and c
of one sample orthogonal, and is layout-independent), ``step`` the community fix (per sample and
time step, the cosine over the d channels). All are mean(max(0, cos)).

Other quirks, each a switch: the HomoGD representation loss is computed but not added
(``homo_repr_loss=False``); the HeteroGD representation loss minimises cosine, pushing student
and teacher apart (``hetero_repr='min_cosine'``); the margin loss takes only exactly equal
continuous labels as positives (``margin_positives='exact'``). ``OFFICIAL`` keeps them all,
``CORRECTED`` fixes them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from realtime.core.modalities import MODEL_ORDER

from .gd_unit import EDGES
from .model import DMD, DMDOutput


@dataclass(frozen=True)
class ObjectiveConfig:
    w_homo: float = 0.05
    w_hetero: float = 0.05
    w_decouple: float = 0.1  # cycle + reconstruction + the margin/orthogonality pair
    w_margin_ort: float = 0.1  # inside w_decouple
    gd_reg: float = 10.0
    gd_w_logit: float = 1.0
    gd_w_repr: float = 10.0
    ort: str = "sample"  # "batch" (PyTorch <= 1.9 official) | "sample" | "step"
    homo_repr_loss: bool = True
    hetero_repr: str = "max_cosine"  # "min_cosine" (official, pushes apart) | "max_cosine" (pulls together)
    margin: float = 0.15  # margin per unit of label distance
    margin_positives: str = "rounded"  # "exact" (official) | "rounded": equal after rounding to integers

    def to_dict(self) -> dict:
        return asdict(self)


OFFICIAL = ObjectiveConfig(ort="batch", homo_repr_loss=False, hetero_repr="min_cosine", margin_positives="exact")
CORRECTED = ObjectiveConfig()
QUIRKS = {"official": OFFICIAL, "corrected": CORRECTED}


def task_loss(logits: Tensor, target: Tensor, n_classes: int, weight: Tensor | None = None) -> Tensor:
    """Cross-entropy on the class logits and/or L1 on the regression score, mean over samples.

    target (B, 1 or 2): class index first when classifying (-1: unknown), then the regression
    label (NaN: unknown); unknown parts add nothing. weight (B,) zeroes samples a head could not
    see (an absent modality)."""
    per_sample = logits.new_zeros(logits.shape[0])
    if n_classes:
        cls = target[:, 0].long()
        ce = F.cross_entropy(logits[:, :n_classes], cls.clamp(min=0), reduction="none")
        per_sample = per_sample + ce * (cls >= 0)
    if logits.shape[1] > n_classes:
        y = target[:, -1]
        per_sample = per_sample + (logits[:, n_classes] - y.nan_to_num()).abs() * ~y.isnan()
    if weight is None:
        return per_sample.mean()
    return (per_sample * weight).sum() / weight.sum().clamp(min=1)


def orthogonality(s: Tensor, c: Tensor, mode: str) -> Tensor:
    """mean max(0, cos) between exclusive s and common c, both (B, d, L')."""
    if mode == "batch":  # (L', B, d) with the cosine over B
        cos = F.cosine_similarity(s.permute(2, 0, 1), c.permute(2, 0, 1), dim=1)
    elif mode == "sample":
        cos = F.cosine_similarity(s.flatten(1), c.flatten(1), dim=1)
    elif mode == "step":
        cos = F.cosine_similarity(s, c, dim=1)  # over d, per (B, L')
    else:
        raise ValueError(f"ort must be 'batch', 'sample' or 'step', not {mode!r}")
    return cos.clamp(min=0).mean()


def margin_loss(vectors: Tensor, labels: Tensor, margin: float, positives: str, valid: Tensor,
                categorical: bool) -> Tensor:
    """Triplet hinge over all (anchor, positive, negative) triples of the 3B common vectors.

    vectors (N, d), labels (N,), valid (N,) bool. For anchor i: mean over (p, n) of
    max(0, margin * |y_i - y_n| - cos(i, p) + cos(i, n)); averaged over anchors that have both.
    With ``categorical`` labels (class indices) the margin is ``margin`` for every negative."""
    z = F.normalize(vectors[valid], dim=-1, eps=1e-8)
    y = labels[valid]
    key = y.round() if positives == "rounded" and not categorical else y
    same = key[:, None] == key[None, :]
    pos = same & ~torch.eye(len(y), dtype=torch.bool, device=y.device)  # (N, N)
    neg = ~same
    cos = z @ z.T  # (N, N)
    distance = neg.to(z.dtype) if categorical else (y[:, None] - y[None, :]).abs()
    m = margin * distance  # (N, N): anchor i, negative n
    hinge = (m[:, None, :] - cos[:, :, None] + cos[:, None, :]).clamp(min=0)  # (i, p, n)
    pairs = pos[:, :, None] & neg[:, None, :]
    count = pairs.sum(dim=(1, 2))
    per_anchor = (hinge * pairs).sum(dim=(1, 2)) / count.clamp(min=1)
    has_both = count > 0
    return per_anchor[has_both].mean() if has_both.any() else vectors.new_zeros(())


def dmd_loss(model: DMD, out: DMDOutput, target: Tensor, cfg: ObjectiveConfig) -> dict[str, Tensor]:
    """All terms of the objective (and ``total``) from a forward with ``return_aux=True``."""
    aux, n_classes = out.aux, model.cfg.n_classes
    masked = "mask_l" in aux
    present = torch.stack([aux[f"mask_{m}"].any(dim=1) for m in MODEL_ORDER], dim=1) if masked else None
    seen = {m: None if present is None else present[:, k].float() for k, m in enumerate(MODEL_ORDER)}

    heads = [aux["output_logit"], aux["logits_c"]]
    task = sum(task_loss(h, target, n_classes) for h in heads)
    task = task + sum(task_loss(aux[f"logits_{m}_{kind}"], target, n_classes, seen[m])
                      for m in MODEL_ORDER for kind in ("homo", "hetero"))

    def stack(name: str) -> Tensor:  # (3, B, ...) in l, v, a order
        return torch.stack([aux[name.format(m=m)] for m in MODEL_ORDER])

    edges_valid = None if present is None else torch.stack(
        [present[:, i] & present[:, j] for i, j in EDGES], dim=1).float()
    gd_terms = {}
    for kind, unit, edges, repr_kind in (("homo", model.gd_homo, out.edges_homo, "l1"),
                                         ("hetero", model.gd_hetero, out.edges_hetero, cfg.hetero_repr)):
        logits, reprs = stack(f"logits_{{m}}_{kind}"), stack(f"repr_{{m}}_{kind}")
        gd_terms[f"logit_{kind}"] = cfg.gd_w_logit * unit.distill(edges, logits, logits, "l1", edges_valid)
        gd_terms[f"repr_{kind}"] = cfg.gd_w_repr * unit.distill(edges, reprs, reprs, repr_kind, edges_valid)
        gd_terms[f"reg_{kind}"] = cfg.gd_reg * unit.regulariser(edges)
    homo = gd_terms["logit_homo"] + gd_terms["reg_homo"] + (gd_terms["repr_homo"] if cfg.homo_repr_loss else 0)
    hetero = gd_terms["logit_hetero"] + gd_terms["repr_hetero"] + gd_terms["reg_hetero"]

    rec = sum(F.mse_loss(aux[f"recon_{m}"], aux[f"origin_{m}"]) for m in MODEL_ORDER)
    cyc = sum(F.mse_loss(aux[f"s_{m}_r"], aux[f"s_{m}"]) for m in MODEL_ORDER)
    ort = sum(orthogonality(aux[f"s_{m}"], aux[f"c_{m}"], cfg.ort) for m in MODEL_ORDER)
    B = target.shape[0]
    vectors = stack("c_{m}_sim").transpose(0, 1).reshape(3 * B, -1)  # (3B, d), per sample l, v, a
    labels = target[:, 0].repeat_interleave(3)
    valid = (present if present is not None else torch.ones(B, 3, dtype=torch.bool, device=target.device)).reshape(-1)
    margin = margin_loss(vectors, labels, cfg.margin, cfg.margin_positives, valid, categorical=n_classes > 0)

    total = (task + cfg.w_homo * homo + cfg.w_hetero * hetero
             + cfg.w_decouple * (cyc + rec + cfg.w_margin_ort * (margin + ort)))
    return {"total": total, "task": task, "rec": rec, "cyc": cyc, "ort": ort, "margin": margin, **gd_terms}
