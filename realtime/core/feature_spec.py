"""The FeatureSpec: what a window of features is, agreed by front-ends, training, export and runtime.

It travels inside every checkpoint and exported manifest (``to_dict``); loading compares it with
the runtime's spec (``check_compatible``) and refuses a mismatch with the first differing field.
The front-ends own their rates and dims (``face.VISUAL_*``, ...); they import the label set from here,
so the defaults below repeat their numbers and a test keeps them equal. The voice features' layout
(``N_MELS``, ``FEATURE_RATE_HZ``, ``GE2E_START``, ``VOICE_FEATURE_DIM``) is shared by the voice front-end and the voice
encoder, so it is defined here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

SPEC_VERSION = 2  # 1: the text track held hashed word ids, not the text encoder's features
LABELS = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")
# the valence target of each label where no sentiment annotation is given (faces, voices, unannotated words):
# the label's mean sentiment (negative -1, neutral 0, positive +1) over MELD's training utterances
# (Poria et al. 2019), where joy is always positive and sadness, anger, fear and disgust always negative;
# surprise averages -0.02 there and is taken as 0. The signs are the pleasure axis of Russell's circumplex
# (Russell 1980). tests/offline/test_valence_sign.py recomputes it from MELD.
LABEL_VALENCE = {"neutral": 0.0, "happy": 1.0, "sad": -1.0, "angry": -1.0, "fearful": -1.0, "disgusted": -1.0,
                 "surprised": 0.0}
# the sign of valence a label carries where it has a clear one: happy +1; sad, angry, fearful, disgusted -1
CLEAR_VALENCE_SIGN = {label: int(math.copysign(1, v)) for label, v in LABEL_VALENCE.items() if v != 0}
STREAMS = ("visual", "audio")  # the modalities sampled at a fixed rate (text is a list of words)
ALL_STREAMS = (*STREAMS, "text")
Stream = tuple[np.ndarray, np.ndarray]  # what a front-end gives: (timestamps (n,) sorted, features (n, ...))
_DERIVED = ("visual_steps", "audio_steps")  # written by to_dict for readers, checked by from_dict
_NOT_CONTRACT = ("hop_s",)  # how often windows are taken, not what one contains
_WINDOWING = ("max_words", "window_s", "text_window_s")  # what a window holds, not what a feature is
N_MELS = 64  # log-mel bands of a voice step
FEATURE_RATE_HZ = 25  # voice steps per second
GE2E_START = N_MELS + 3  # log-mel values, voice activity, pitch, periodicity; then the GE2E states
GE2E_DIM = 256  # the pretrained speech network's states, one step's mean (realtime.nets.ge2e.HIDDEN)
VOICE_FEATURE_DIM = GE2E_START + GE2E_DIM


@dataclass(frozen=True)
class NormStats:
    """Per-dimension mean and standard deviation of one stream's features."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.mean) != len(self.std):
            raise ValueError(f"NormStats: mean has {len(self.mean)} values but std has {len(self.std)}")
        if any(not s > 0 for s in self.std):
            raise ValueError("NormStats: every std must be > 0")

    @classmethod
    def fit(cls, features: np.ndarray, min_std: float = 1e-3) -> NormStats:
        """Statistics of (n, dim) features; a constant dimension gets std ``min_std``."""
        x = np.asarray(features, dtype=np.float64)
        return cls(tuple(x.mean(0).tolist()), tuple(np.maximum(x.std(0), min_std).tolist()))

    def apply(self, features: np.ndarray) -> np.ndarray:
        """(..., dim) float32 standardised features."""
        mean = np.asarray(self.mean, dtype=np.float32)
        std = np.asarray(self.std, dtype=np.float32)
        return ((features - mean) / std).astype(np.float32)


@dataclass(frozen=True)
class FeatureSpec:
    version: int = SPEC_VERSION
    visual_rate_hz: float = 15.0  # face.VISUAL_RATE_HZ
    audio_rate_hz: float = 25.0  # voice.FEATURE_RATE_HZ
    visual_dim: int = 127  # face.VISUAL_FEATURE_DIM: blendshapes, head pose, expression CNN
    audio_dim: int = 323  # voice.VOICE_FEATURE_DIM: log-mel energies, voice activity, pitch, periodicity, GE2E states
    text_dim: int = 40  # text_encoder.TEXT_FEATURE_DIM: the text front-end's features per word
    max_words: int = 24  # words per window at most
    window_s: float = 4.0  # a window is the last window_s seconds of face and voice
    text_window_s: float = 10.0  # and the words of the last text_window_s seconds (about 25 at 2.5 words/s)
    hop_s: float = 0.5  # a new window every hop_s seconds
    labels: tuple[str, ...] = LABELS
    visual_norm: NormStats | None = None  # applied by the WindowAssembler to present steps
    audio_norm: NormStats | None = None

    def __post_init__(self) -> None:
        if self.version > SPEC_VERSION:
            raise ValueError(f"FeatureSpec version {self.version} is newer than this code's {SPEC_VERSION}")
        if not (self.window_s > 0 and self.text_window_s > 0 and self.hop_s > 0):
            raise ValueError("FeatureSpec: window_s, text_window_s and hop_s must be > 0")
        for m in STREAMS:
            steps = self.window_s * self.rate_hz(m)
            if self.rate_hz(m) <= 0 or not math.isclose(steps, round(steps), abs_tol=1e-6):
                raise ValueError(f"FeatureSpec: window_s * {m}_rate_hz = {steps} must be a positive whole number of steps")
            norm = self.norm(m)
            if norm is not None and len(norm.mean) != self.dim(m):
                raise ValueError(f"FeatureSpec: {m}_norm has {len(norm.mean)} values but {m}_dim is {self.dim(m)}")
        if not self.labels or len(set(self.labels)) != len(self.labels):
            raise ValueError(f"FeatureSpec: labels must be non-empty and unique, got {self.labels}")

    def rate_hz(self, stream: str) -> float:
        return getattr(self, f"{stream}_rate_hz")

    def dim(self, stream: str) -> int:
        return getattr(self, f"{stream}_dim")

    def norm(self, stream: str) -> NormStats | None:
        return getattr(self, f"{stream}_norm")

    def steps(self, stream: str) -> int:
        """Steps of one stream in a window (60 visual, 100 audio by default)."""
        return round(self.window_s * self.rate_hz(stream))

    @property
    def visual_steps(self) -> int:
        return self.steps("visual")

    @property
    def audio_steps(self) -> int:
        return self.steps("audio")

    def to_dict(self) -> dict:
        """JSON-friendly; derived step counts are included for readers of manifests."""
        return {**asdict(self), **{k: getattr(self, k) for k in _DERIVED}}

    @classmethod
    def from_dict(cls, d: dict) -> FeatureSpec:
        d = dict(d)
        if d.get("version", SPEC_VERSION) < SPEC_VERSION:
            raise ValueError(f"FeatureSpec version {d['version']} was written when the text track held hashed word ids; "
                             "this code's holds the text front-end's features: re-extract, re-train or re-export with it")
        d.setdefault("text_window_s", d.get("window_s", cls.window_s))  # written before words had their own window
        derived = {k: d.pop(k) for k in _DERIVED if k in d}
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown FeatureSpec keys {sorted(unknown)}; was it written by a newer version?")
        for k in ("visual_norm", "audio_norm"):
            if d.get(k) is not None:
                d[k] = NormStats(tuple(d[k]["mean"]), tuple(d[k]["std"]))
        if "labels" in d:
            d["labels"] = tuple(d["labels"])
        spec = cls(**d)
        for k, v in derived.items():
            if getattr(spec, k) != v:
                raise ValueError(f"FeatureSpec: {k} is {v} in the dict but its rate and window give {getattr(spec, k)}")
        return spec

    def check_compatible(self, other: FeatureSpec, windows: bool = True,
                         streams: tuple[str, ...] = ALL_STREAMS) -> None:
        """Raise ValueError naming the first field where windows built under ``other`` would not
        mean what they mean under this spec. ``hop_s`` may differ; normalisation statistics are
        compared only when both specs carry them (a runtime spec usually takes the checkpoint's).
        ``windows=False`` compares the features only (extracted streams, before any windowing);
        ``streams``: only those streams' fields (``visual_*``, ``audio_*``, ``text_*``) and the shared ones."""
        skip = _NOT_CONTRACT if windows else _NOT_CONTRACT + _WINDOWING
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            stream = f.name.split("_")[0]
            if (f.name in skip or (stream in ALL_STREAMS and stream not in streams)
                    or (f.name.endswith("_norm") and (a is None or b is None))):
                continue
            same = (np.allclose(a.mean, b.mean) and np.allclose(a.std, b.std)) if isinstance(a, NormStats) else a == b
            if not same:
                shown = (a, b) if not isinstance(a, NormStats) else ("<statistics>", "<other statistics>")
                raise ValueError(f"feature spec mismatch on {f.name}: {shown[0]!r} here, {shown[1]!r} in the other "
                                 "spec; the model and the front-ends must agree (re-extract or re-train)")
