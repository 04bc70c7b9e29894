"""The face appearance model: a small CNN on the landmark-aligned face crop.

The crop is made
by ``align_face`` from the eye landmarks (eyes level, fixed inter-ocular distance, 64x64
grayscale) and that one function serves training images and live frames alike. Its framing
constants are the median eye geometry MediaPipe finds on FER2013's own 48x48 crops, so an aligned
crop and the fallback crop (the whole FER image resized, used when no face is found) look alike.

The CNN gives a 64-d embedding and 7 class probabilities (``LABELS`` order), deployed as the mean
over the crop and its mirror image (``MirrorAveraged``). Weights ship as
``realtime/data/models/expression_cnn.safetensors`` with a JSON sidecar (labels, input size, alignment
parameters, metrics); loading checks both and refuses a mismatch.

Training, evaluation and the CLI: ``realtime.offline.expression``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch
from torch import nn

from realtime.core.feature_spec import LABELS
from realtime.core.resources import shipped
from realtime.nets.weights import checked_sidecar, load_weights

WEIGHTS_PATH = shipped("models/expression_cnn.safetensors")

CROP_SIZE = 64  # aligned crop side, pixels
EMBED_DIM = 64  # expression embedding length
INTEROCULAR_FRAC = 0.36  # eye-centre distance as a fraction of the crop side (FER2013 median)
EYE_LINE_Y_FRAC = 0.40  # height of the eye line as a fraction of the crop side (FER2013 median)
EYE_LANDMARKS = ((33, 133), (362, 263))  # MediaPipe corners of the eye on the image's left, right
ALIGNMENT = {"crop_size": CROP_SIZE, "interocular_frac": INTEROCULAR_FRAC,
             "eye_line_y_frac": EYE_LINE_Y_FRAC, "eye_landmarks": [list(e) for e in EYE_LANDMARKS]}


# ---------------------------------------------------------------- alignment

def align_face(gray: np.ndarray, landmarks_px: np.ndarray) -> np.ndarray:
    """(CROP_SIZE, CROP_SIZE) uint8 crop of a grayscale image, rotated so the eyes are level and
    scaled to a fixed inter-ocular distance. ``landmarks_px``: (478, 2) MediaPipe landmarks in
    pixels of ``gray``."""
    eyes = np.stack([landmarks_px[list(e)].mean(0) for e in EYE_LANDMARKS]).astype(np.float64)  # (2, 2)
    dx, dy = eyes[1] - eyes[0]
    scale = INTEROCULAR_FRAC * CROP_SIZE / max(math.hypot(dx, dy), 1e-6)
    if scale < 0.75:  # shrink with area averaging first: a bilinear warp alone would alias
        h, w = gray.shape
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        eyes = eyes * (size[0] / w, size[1] / h)
        scale = INTEROCULAR_FRAC * CROP_SIZE / max(float(np.linalg.norm(eyes[1] - eyes[0])), 1e-6)
    mid = eyes.mean(0)
    m = cv2.getRotationMatrix2D((float(mid[0]), float(mid[1])), math.degrees(math.atan2(dy, dx)), scale)
    m[:, 2] += (CROP_SIZE / 2 - mid[0], EYE_LINE_Y_FRAC * CROP_SIZE - mid[1])
    return cv2.warpAffine(gray, m, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def fallback_crop(gray: np.ndarray) -> np.ndarray:
    """The whole image resized to the crop size: for images that are already face crops (FER2013)
    when MediaPipe finds no face in them."""
    return cv2.resize(gray, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_CUBIC)


def crops_to_tensor(crops: np.ndarray) -> torch.Tensor:
    """(n, S, S) uint8 crops -> (n, 1, S, S) float32, each standardised to zero mean, unit std
    (removes lighting and contrast differences between cameras and data sets)."""
    x = torch.from_numpy(np.ascontiguousarray(crops)).float().unsqueeze(1)  # (n, 1, S, S)
    mean = x.mean(dim=(2, 3), keepdim=True)
    std = x.std(dim=(2, 3), keepdim=True)
    return (x - mean) / (std + 1.0)


# ---------------------------------------------------------------- model

def _conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class ExpressionCNN(nn.Module):
    """VGG-style, sized for a 2-core CPU: 64 -> 32 -> 16 -> 8 -> global pool -> embedding -> logits
    (~0.3 M parameters, ~40 M multiply-adds per crop)."""

    def __init__(self, n_classes: int = len(LABELS), embed_dim: int = EMBED_DIM) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _conv(1, 32), nn.MaxPool2d(2),  # (B, 32, 32, 32)
            _conv(32, 32), nn.MaxPool2d(2),  # (B, 32, 16, 16)
            _conv(32, 64), _conv(64, 64), nn.MaxPool2d(2),  # (B, 64, 8, 8)
            _conv(64, 128), _conv(128, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten(),  # (B, 128)
        )
        self.embed = nn.Sequential(nn.Dropout(0.2), nn.Linear(128, embed_dim), nn.BatchNorm1d(embed_dim), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(embed_dim, n_classes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, 1, 64, 64) standardised crops -> embedding (B, E), logits (B, C)."""
        e = self.embed(self.features(x))
        return e, self.head(e)


class MirrorAveraged(nn.Module):
    """The CNN as deployed: standardised crops (B, 1, S, S) -> embedding (B, E) and probabilities
    (B, 7), each the mean of the crop's and its mirror image's (one batch of 2B through the CNN).

    Faces are near-symmetric and the CNN was trained with random flips, so the two views are two
    draws of the same answer: on FER2013 val, averaging them lifts accuracy from 0.672 to 0.675 and
    lowers the negative log-likelihood from 0.936 to 0.922 (the mirror alone: 0.661)."""

    def __init__(self, cnn: ExpressionCNN) -> None:
        super().__init__()
        self.cnn = cnn

    def forward(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding, logits = self.cnn(torch.cat([crops, crops.flip(-1)]))
        # (2B, D) -> (2, B, D) -> (B, D), with D a constant so the exported graph needs no shape arithmetic
        views = lambda t: t.reshape(2, -1, int(t.shape[1])).mean(0)  # noqa: E731
        return views(embedding), views(logits.softmax(-1))


class ExpressionModel(Protocol):
    """What the face front-end runs on aligned crops: ``ExpressionEncoder`` or an exported CNN."""

    def __call__(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """crops (S, S) or (n, S, S) uint8 -> embedding (.., EMBED_DIM), probabilities (.., 7), float32."""


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
