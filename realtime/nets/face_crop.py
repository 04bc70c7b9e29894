"""What the expression CNN takes and gives, without PyTorch: the landmark-aligned face crop, its
standardisation, and the ``ExpressionModel`` contract that the shipped CNN
(``realtime.nets.expression``) and an exported one (``realtime.engines.onnx_engine``) both meet.

The crop is made by ``align_face`` from the eye landmarks (eyes level, fixed inter-ocular distance,
64x64 grayscale) and that one function serves training images and live frames alike. Its framing
constants are the median eye geometry MediaPipe finds on FER2013's own 48x48 crops, so an aligned
crop and the fallback crop (the whole FER image resized, used when no face is found) look alike.
"""

from __future__ import annotations

import math
from typing import Protocol

import cv2
import numpy as np

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


def standardise(crops: np.ndarray) -> np.ndarray:
    """(n, S, S) uint8 crops -> (n, 1, S, S) float32, each standardised to zero mean, unit std (the
    sample std, n - 1) plus one (removes lighting and contrast differences between cameras and data sets)."""
    x = np.asarray(crops, np.float32)[:, None]  # (n, 1, S, S)
    mean = x.mean(axis=(2, 3), keepdims=True, dtype=np.float64)
    std = x.std(axis=(2, 3), keepdims=True, ddof=1, dtype=np.float64)
    return ((x - mean) / (std + 1.0)).astype(np.float32)


class ExpressionModel(Protocol):
    """What the face front-end runs on aligned crops: ``ExpressionEncoder`` or an exported CNN."""

    def __call__(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """crops (S, S) or (n, S, S) uint8 -> embedding (.., EMBED_DIM), probabilities (.., 7), float32."""
