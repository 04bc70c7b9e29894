"""Real face crops for the expression CNN's calibration and parity: FER2013 images when the shared
data is on this machine (``test`` for held-out, ``train`` for calibration), else faces of the
bundled demo clip. Crops are what the app feeds the CNN: ``FaceFrontEnd.aligned_crop`` of the
image, or (FER2013 only, where MediaPipe finds no face) the whole image resized, as in training.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from realtime.core.feature_spec import LABELS
from realtime.core.resources import REPO_ROOT
from realtime.nets.face_crop import fallback_crop
from realtime.offline.datasets import FER_TO_LABEL

from .windows import DEMO_CLIP, SEED

FER_ROOT = REPO_ROOT.parent / "shared" / "data" / "fer2013_48"
DEMO_FRAME_STEP = 5  # every 5th frame of the 30 fps clip


def fer_crops(root: Path, part: str, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 64, 64) uint8 crops and (n,) labels of ``limit`` random FER2013 images of the part's split."""
    from realtime.frontends.face import FaceFrontEnd

    split = "test" if part == "heldout" else "train"
    files = sorted(p for p in (root / split).glob("*/*.png") if p.parent.name in FER_TO_LABEL)
    if not files:
        raise FileNotFoundError(f"no FER2013 images under {root / split}/<emotion>/*.png")
    picks = np.sort(np.random.default_rng(SEED).choice(len(files), min(limit, len(files)), replace=False))
    crops, labels = [], []
    with FaceFrontEnd(encoder=None, still_images=True) as front:
        for i in picks:
            gray = cv2.imread(str(files[i]), cv2.IMREAD_GRAYSCALE)
            crop = front.aligned_crop(gray)
            crops.append(fallback_crop(gray) if crop is None else crop)
            labels.append(LABELS.index(FER_TO_LABEL[files[i].parent.name]))
    return np.stack(crops), np.array(labels, np.int64)


def clip_crops(clip: Path, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Aligned crops of the faces in a video (every ``DEMO_FRAME_STEP``-th frame), labels unknown (-1)."""
    import av

    from realtime.frontends.face import FaceFrontEnd

    crops = []
    with av.open(str(clip)) as container, FaceFrontEnd(encoder=None) as front:
        stream = container.streams.video[0]
        for i, frame in enumerate(container.decode(stream)):
            if i % DEMO_FRAME_STEP:
                continue
            crop = front.aligned_crop(frame.to_ndarray(format="bgr24"), float(frame.time or 0.0))
            if crop is not None:
                crops.append(crop)
            if len(crops) >= limit:
                break
    if not crops:
        raise ValueError(f"{clip}: no face found")
    return np.stack(crops), np.full(len(crops), -1, np.int64)


def face_crops(part: str = "heldout", limit: int = 256) -> tuple[np.ndarray, np.ndarray, str]:
    """(crops, labels, origin): FER2013 when present, else the demo clip."""
    if FER_ROOT.is_dir():
        return (*fer_crops(FER_ROOT, part, limit), str(FER_ROOT))
    return (*clip_crops(DEMO_CLIP, limit), str(DEMO_CLIP))
