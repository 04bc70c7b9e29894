"""The face appearance model: a small CNN on the landmark-aligned face crop (``realtime.nets.face_crop``).

The CNN gives a 64-d embedding and 7 class probabilities (``LABELS`` order), deployed as the mean
over the crop and its mirror image (``MirrorAveraged``). Weights ship as
``realtime/data/models/expression_cnn.safetensors`` with a JSON sidecar (labels, input size, alignment
parameters, metrics); loading checks both and refuses a mismatch.

Training, evaluation and the CLI: ``realtime.offline.expression``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from realtime.core.feature_spec import LABELS
from realtime.core.resources import shipped
from realtime.nets.face_crop import ALIGNMENT, EMBED_DIM, standardise
from realtime.nets.weights import checked_sidecar, load_weights

WEIGHTS_PATH = shipped("models/expression_cnn.safetensors")


# ---------------------------------------------------------------- input

def crops_to_tensor(crops: np.ndarray) -> torch.Tensor:
    """(n, S, S) uint8 crops -> (n, 1, S, S) float32 standardised (``face_crop.standardise``)."""
    return torch.from_numpy(standardise(crops))


# ---------------------------------------------------------------- model

def _conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class ExpressionCNN(nn.Module):
    """VGG-style, sized for a 2-core CPU: 64 -> 32 -> 16 -> 8 -> global pool -> embedding -> logits
    (~1.2 M parameters, ~0.18 G multiply-adds per crop)."""

    def __init__(self, n_classes: int = len(LABELS), embed_dim: int = EMBED_DIM,
                 widths: tuple[int, int, int, int] = (48, 64, 128, 256)) -> None:
        super().__init__()
        a, b, c, d = widths
        self.features = nn.Sequential(
            _conv(1, a), nn.MaxPool2d(2),  # (B, a, 32, 32)
            _conv(a, b), _conv(b, b), nn.MaxPool2d(2),  # (B, b, 16, 16)
            _conv(b, c), _conv(c, c), nn.MaxPool2d(2),  # (B, c, 8, 8)
            _conv(c, d), _conv(d, d), nn.AdaptiveAvgPool2d(1), nn.Flatten(),  # (B, d)
        )
        self.embed = nn.Sequential(nn.Dropout(0.2), nn.Linear(d, embed_dim), nn.BatchNorm1d(embed_dim), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(embed_dim, n_classes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, 1, 64, 64) standardised crops -> embedding (B, E), logits (B, C)."""
        e = self.embed(self.features(x))
        return e, self.head(e)


class MirrorAveraged(nn.Module):
    """The CNN as deployed: standardised crops (B, 1, S, S) -> embedding (B, E) and probabilities
    (B, 7), each the mean of the crop's and its mirror image's (one batch of 2B through the CNN).

    Faces are near-symmetric and the CNN was trained with random flips, so the two views are two
    draws of the same answer (MODEL_CARD.md, "Expression CNN", has what averaging them gains)."""

    def __init__(self, cnn: ExpressionCNN) -> None:
        super().__init__()
        self.cnn = cnn

    def forward(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding, logits = self.cnn(torch.cat([crops, crops.flip(-1)]))
        # (2B, D) -> (2, B, D) -> (B, D), with D a constant so the exported graph needs no shape arithmetic
        views = lambda t: t.reshape(2, -1, int(t.shape[1])).mean(0)  # noqa: E731
        return views(embedding), views(logits.softmax(-1))


class ExpressionEncoder:
    """Shipped CNN for inference: aligned crops in, (embedding, class probabilities) out."""

    def __init__(self, path: Path | str = WEIGHTS_PATH) -> None:
        path = Path(path)
        self.meta = checked_sidecar(path, {"labels": list(LABELS), "alignment": ALIGNMENT}, "expression",
                                    "python -m realtime.expression train --data <fer2013_48>")
        self.model = MirrorAveraged(load_weights(ExpressionCNN(), path)).eval()

    @torch.inference_mode()
    def __call__(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """crops (S, S) or (n, S, S) uint8 -> embedding (.., EMBED_DIM), probabilities (.., 7), float32."""
        single = crops.ndim == 2
        e, p = (t.numpy() for t in self.model(crops_to_tensor(crops[None] if single else crops)))
        return (e[0], p[0]) if single else (e, p)


# ---------------------------------------------------------------- data
