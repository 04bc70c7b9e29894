"""The face front-end: MediaPipe FaceLandmarker (Tasks API) + the expression CNN, one vector per frame.

Feature layout (``VISUAL_FEATURE_DIM`` = 127, float32)::

    [0:52)    the 52 MediaPipe blendshape scores, in ``BLENDSHAPE_NAMES`` order, 0..1
    [52:55)   head pose yaw, pitch, roll in degrees / POSE_SCALE_DEG (about -1..1)
    [55]      face presence, 1 or 0
    [56:120)  expression-CNN embedding of the aligned face crop
    [120:127) expression-CNN class probabilities, ``LABELS`` order

With no face everything is zero (presence 0 included). Live video runs the landmarker in VIDEO
mode (tracking between frames, timestamps in ms from the first frame); ``still_images=True`` runs it
in IMAGE mode for unrelated pictures (FER2013 extraction), upscaling small ones so MediaPipe finds
the face; ``process_face_crop`` is for stills that are themselves face crops. Both use
``face_crop.align_face``, the same crop the CNN was trained on.

``Resampler`` turns per-frame observations (camera rate, irregular) into ``VISUAL_RATE_HZ`` steps
on a grid of the shared clock: each step takes the newest observation at or before it (nearest
previous) when that is at most ``max_staleness_s`` old, and is skipped otherwise, so a stalled
camera reads as missing steps, never as a frozen face.
"""

from __future__ import annotations

import contextlib
import math
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from realtime.core.errors import ModelUnavailableError, loaded_model
from realtime.core.feature_spec import LABELS
from realtime.core.resources import shipped
from realtime.nets.face_crop import EMBED_DIM, ExpressionModel, align_face, fallback_crop


class _PyplotStandIn(types.ModuleType):
    """What MediaPipe's ``drawing_utils`` gets as ``matplotlib.pyplot`` (see ``_pyplot_stand_in``)."""

    def __getattr__(self, name: str) -> object:
        raise AttributeError(f"matplotlib.pyplot.{name}: MediaPipe was imported without matplotlib "
                             "(realtime.frontends.face), so its drawing_utils.plot_landmarks cannot plot")


@contextlib.contextmanager
def _pyplot_stand_in() -> Iterator[None]:
    """Import MediaPipe without matplotlib: ``import mediapipe`` imports its ``vision.drawing_utils``,
    which imports ``matplotlib.pyplot`` at the top for ``plot_landmarks`` alone, a function this
    project never calls. The runtime install has no matplotlib (MediaPipe goes in with ``--no-deps``,
    pyproject.toml); the full install has it for the training plots, and skips the import's 0.4 s
    (2-core CPU) too. Where matplotlib is loaded already (an offline tool), MediaPipe gets the real one. The
    stand-ins leave ``sys.modules`` after the import: a later ``import matplotlib`` is a real one."""
    if "matplotlib" in sys.modules:
        yield
        return
    package, pyplot = types.ModuleType("matplotlib"), _PyplotStandIn("matplotlib.pyplot")
    package.pyplot = pyplot  # type: ignore[attr-defined]
    sys.modules.update({"matplotlib": package, "matplotlib.pyplot": pyplot})
    try:
        yield
    finally:
        for name, module in (("matplotlib", package), ("matplotlib.pyplot", pyplot)):
            if sys.modules.get(name) is module:
                del sys.modules[name]


with _pyplot_stand_in():
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision


LANDMARKER_PATH = shipped("models/face_landmarker.task")
BLENDSHAPE_NAMES = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft",
    "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft",
    "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft",
    "jawOpen", "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft",
    "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
    "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
)
POSE_NAMES = ("yaw", "pitch", "roll")
POSE_SCALE_DEG = 45.0  # pose features are degrees / this
VISUAL_RATE_HZ = 15.0  # visual feature steps per second (FeatureSpec.visual_rate_hz)
STILL_MIN_SIDE = 224  # IMAGE mode upscales (cubic) images whose short side is below this

_N_BS, _N_POSE, _N_CLS = len(BLENDSHAPE_NAMES), len(POSE_NAMES), len(LABELS)
BLENDSHAPES = slice(0, _N_BS)
POSE = slice(_N_BS, _N_BS + _N_POSE)
PRESENCE = _N_BS + _N_POSE
EMBEDDING = slice(PRESENCE + 1, PRESENCE + 1 + EMBED_DIM)
PROBABILITIES = slice(EMBEDDING.stop, EMBEDDING.stop + _N_CLS)
VISUAL_FEATURE_DIM = PROBABILITIES.stop  # 52 + 3 + 1 + 64 + 7 = 127


@dataclass(frozen=True)
class FaceObservation:
    """What the front-end saw in one frame; ``box`` and ``landmarks`` are in the input's pixels."""

    t: float
    features: np.ndarray  # (VISUAL_FEATURE_DIM,) float32
    present: bool
    box: tuple[int, int, int, int] | None = None  # x0, y0, x1, y1
    landmarks: np.ndarray | None = None  # (478, 2) float32

    @property
    def blendshapes(self) -> dict[str, float]:
        return dict(zip(BLENDSHAPE_NAMES, self.features[BLENDSHAPES].tolist()))

    @property
    def pose_deg(self) -> tuple[float, float, float]:
        """Yaw, pitch, roll in degrees."""
        yaw, pitch, roll = (self.features[POSE] * POSE_SCALE_DEG).tolist()
        return yaw, pitch, roll

    @property
    def probabilities(self) -> dict[str, float]:
        return dict(zip(LABELS, self.features[PROBABILITIES].tolist()))


def head_pose_deg(matrix: np.ndarray) -> tuple[float, float, float]:
    """Yaw, pitch, roll in degrees from MediaPipe's 4x4 facial transformation matrix, whose
    rotation is taken as R = Rz(roll) Ry(yaw) Rx(pitch) in MediaPipe's face frame (x image-right,
    y up, z toward the camera). A frontal face gives about (0, 0, 0); roll > 0 when the face is
    turned counter-clockwise in the image; a mirrored image flips the signs of yaw and roll."""
    r = np.asarray(matrix, dtype=np.float64)[:3, :3]
    r = r / np.linalg.norm(r, axis=0, keepdims=True)  # drop any scale
    yaw = math.atan2(-r[2, 0], math.hypot(r[2, 1], r[2, 2]))
    pitch = math.atan2(r[2, 1], r[2, 2])
    roll = math.atan2(r[1, 0], r[0, 0])
    return math.degrees(yaw), math.degrees(pitch), math.degrees(roll)


def _gray_and_rgb(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if image.ndim == 2:
        return image, cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    raise ValueError(f"FaceFrontEnd expects a BGR (H, W, 3) or grayscale (H, W) uint8 image, got {image.shape}")


class FaceFrontEnd:
    """Per-frame face features. One instance per video stream (VIDEO mode tracks across frames);
    not thread-safe: call it from one thread. ``encoder="shipped"`` loads the PyTorch CNN from
    ``realtime/data/models/expression_cnn.safetensors`` (PyTorch is imported then, and only then: an
    exported CNN, ``Engine.expression_encoder``, needs none); ``None`` leaves the expression part zero."""

    def __init__(self, encoder: ExpressionModel | Literal["shipped"] | None = "shipped",
                 model_path: Path | str = LANDMARKER_PATH, still_images: bool = False) -> None:
        if not Path(model_path).is_file():
            raise ModelUnavailableError(f"face landmarker model missing at {model_path}: restore "
                                        "it by reinstalling the package (or from the repository: realtime/data/models/face_landmarker.task)")
        if encoder == "shipped":
            from realtime.nets.expression import ExpressionEncoder  # the PyTorch CNN, a plug-in as the engines are

            encoder = loaded_model(ExpressionEncoder)
        self.encoder = encoder
        self.still_images = still_images
        mode = vision.RunningMode.IMAGE if still_images else vision.RunningMode.VIDEO
        self._landmarker = vision.FaceLandmarker.create_from_options(vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(model_path)), running_mode=mode, num_faces=1,
            output_face_blendshapes=True, output_facial_transformation_matrixes=True))
        self._last_ms = -1
        self._t0: float | None = None  # the first frame's time: MediaPipe's timestamps count from it

    def close(self) -> None:
        self._landmarker.close()

    def __enter__(self) -> FaceFrontEnd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _detect(self, image: np.ndarray, t: float | None) -> tuple[vision.FaceLandmarkerResult, np.ndarray, float]:
        """(result, gray image the landmarks refer to, factor from input pixels to those pixels)."""
        gray, rgb = _gray_and_rgb(image)
        factor = 1.0
        if self.still_images:
            factor = max(1.0, STILL_MIN_SIDE / min(gray.shape))
            if factor > 1.0:
                size = (round(gray.shape[1] * factor), round(gray.shape[0] * factor))
                gray = cv2.resize(gray, size, interpolation=cv2.INTER_CUBIC)
                rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC)
        mp_image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        if self.still_images:
            return self._landmarker.detect(mp_image), gray, factor
        if t is None:
            raise ValueError("a VIDEO-mode FaceFrontEnd needs the frame's timestamp t")
        if self._t0 is None:
            self._t0 = t
        # Relative to the first frame, so that a file gives MediaPipe the same timestamps (and its
        # tracking the same landmarks) whenever it is run; MediaPipe wants them strictly increasing.
        ms = max(round((t - self._t0) * 1000.0), self._last_ms + 1)
        self._last_ms = ms
        return self._landmarker.detect_for_video(mp_image, ms), gray, factor

    @staticmethod
    def _landmarks_px(result: vision.FaceLandmarkerResult, gray: np.ndarray) -> np.ndarray | None:
        if not result.face_landmarks:
            return None
        h, w = gray.shape
        return np.array([(p.x * w, p.y * h) for p in result.face_landmarks[0]], dtype=np.float32)  # (478, 2)

    def aligned_crop(self, image: np.ndarray, t: float | None = None) -> np.ndarray | None:
        """The expression CNN's (64, 64) uint8 input for this image, or None when no face is found."""
        result, gray, _ = self._detect(image, t)
        lm = self._landmarks_px(result, gray)
        return None if lm is None else align_face(gray, lm)

    def process(self, image: np.ndarray, t: float | None = None) -> FaceObservation:
        """Features of one BGR (or grayscale) frame taken at ``t`` (shared clock, seconds; needed in
        VIDEO mode, optional for still images)."""
        t_obs = math.nan if t is None else t
        result, gray, factor = self._detect(image, t)
        lm = self._landmarks_px(result, gray)
        features = np.zeros(VISUAL_FEATURE_DIM, dtype=np.float32)
        if lm is None:
            return FaceObservation(t_obs, features, False)
        for c in result.face_blendshapes[0]:
            features[c.index] = c.score
        if result.facial_transformation_matrixes:
            features[POSE] = np.array(head_pose_deg(result.facial_transformation_matrixes[0])) / POSE_SCALE_DEG
        features[PRESENCE] = 1.0
        if self.encoder is not None:
            features[EMBEDDING], features[PROBABILITIES] = self.encoder(align_face(gray, lm))
        lm_in = lm / factor
        h, w = image.shape[:2]
        x0, y0 = np.floor(lm_in.min(0)).astype(int)
        x1, y1 = np.ceil(lm_in.max(0)).astype(int)
        box = (max(0, int(x0)), max(0, int(y0)), min(w, int(x1)), min(h, int(y1)))
        return FaceObservation(t_obs, features, True, box, lm_in)


    def process_face_crop(self, image: np.ndarray) -> FaceObservation:
        """``process`` for a still that is itself a face crop (FER2013): where MediaPipe finds no face,
        the expression CNN still sees the whole image (``fallback_crop``, as in its training);
        blendshapes, pose and presence stay 0 and ``present`` is False."""
        obs = self.process(image)
        if obs.present or self.encoder is None:
            return obs
        features = obs.features.copy()
        features[EMBEDDING], features[PROBABILITIES] = self.encoder(fallback_crop(_gray_and_rgb(image)[0]))
        return FaceObservation(obs.t, features, False)


class Resampler:
    """Irregular observations -> steps at ``rate_hz`` on the grid k / rate_hz of the shared clock
    (nearest previous observation, at most ``max_staleness_s`` old; older ones give no step)."""

    def __init__(self, rate_hz: float = VISUAL_RATE_HZ, max_staleness_s: float = 0.2) -> None:
        self.rate_hz, self.max_staleness_s = rate_hz, max_staleness_s
        self.reset()

    def reset(self) -> None:
        self._prev: tuple[float, np.ndarray] | None = None
        self._next_k: int | None = None  # index of the next grid step to emit

    def push(self, t: float, features: np.ndarray) -> list[tuple[float, np.ndarray]]:
        """Add the observation at ``t``; return the grid steps (time, features) now decided, oldest
        first. Observations older than the previous one are ignored."""
        if self._prev is not None and t < self._prev[0]:
            return []
        eps, r = 1e-9, self.rate_hz
        k_now = math.floor(t * r + eps)  # last grid step at or before t
        start = k_now if self._next_k is None else self._next_k
        steps = []
        if self._prev is not None:  # steps before t take the previous observation while it is fresh
            t_prev, f_prev = self._prev
            lo = max(start, math.ceil(t_prev * r - eps))
            hi = min(k_now, math.floor((t_prev + self.max_staleness_s) * r + eps))
            steps += [(k / r, f_prev) for k in range(lo, hi + 1) if k / r < t - eps]
        if k_now >= start and abs(k_now / r - t) <= eps:  # a step exactly at t takes this one
            steps.append((k_now / r, features))
        self._next_k = max(start, k_now + 1)
        self._prev = (t, features)
        return steps
