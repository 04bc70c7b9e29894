"""The one engine interface the app (and the export parity gates) use to run the recognizer.

An engine maps a batch of named input arrays (``realtime.core.backends.INPUTS``) to named output
arrays (``OUTPUTS``); ``infer`` wraps that for one live ``Window``. Back-ends implement ``run``:
PyTorch (``torch_engine``), onnxruntime (``onnx_engine``), TensorRT (``trt_engine``), the fused Triton
kernels (``fused_engine``), a Triton server (``remote_engine``); those that run an export also bring
its expression CNN and text model (``expression_encoder``, ``text_model``).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from realtime.core.backends import INPUTS, OUTPUTS
from realtime.core.errors import NonFiniteOutputError
from realtime.core.feature_spec import FeatureSpec
from realtime.window import Window

if TYPE_CHECKING:
    from realtime.frontends.text_frontend import TextModel
    from realtime.nets.face_crop import ExpressionModel


@dataclass(frozen=True)
class Inference:
    """The model's answer for one window."""

    t_end: float  # the window's end on the shared clock
    probabilities: np.ndarray  # (K,) in the spec's label order, sums to 1
    valence: float  # -1 (negative) .. 1 (positive)
    edges_homo: np.ndarray  # (6,) GD-Unit edge weights, gd_unit.EDGE_NAMES order
    edges_hetero: np.ndarray  # (6,)
    present: tuple[str, ...]  # modalities with at least one present step
    model_ms: float  # time spent in ``run``
    voice_reliability: float = 0.0  # 0 .. 1: how far the voice's answer is to be trusted (0 without voice)


def window_batch(windows: Sequence[Window]) -> dict[str, np.ndarray]:
    """Stack windows into the engine's named inputs (batch first, contiguous)."""
    return {name: np.ascontiguousarray(np.stack([getattr(w, name) for w in windows])) for name in INPUTS}


class Engine(ABC):
    """A loaded model that answers batches of windows."""

    name: str  # the back-end, as ``--backend`` spells it
    problem: str | None = None  # why it answers otherwise than asked (a server that does not answer), or None

    def __init__(self, spec: FeatureSpec) -> None:
        self.spec = spec

    @property
    def labels(self) -> tuple[str, ...]:
        return self.spec.labels

    @abstractmethod
    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Named inputs (B, ...) -> named outputs (B, ...) as float32 numpy arrays."""

    def expression_encoder(self) -> ExpressionModel | Literal["shipped"]:
        """What the face front-end should run its expression CNN with: ``"shipped"`` (the PyTorch
        CNN in ``realtime/data/models/``) unless the back-end brings its own (an export's)."""
        return "shipped"

    def text_model(self) -> TextModel | Literal["shipped"]:
        """What the text front-end should run: ``"shipped"`` (the PyTorch encoders in
        ``realtime/data/models/``) unless the back-end brings its own (an export's)."""
        return "shipped"

    def infer(self, window: Window) -> Inference:
        """The model's answer for ``window``; ``NonFiniteOutputError`` when any output has NaN or inf."""
        start = time.perf_counter()
        out = self.run(window_batch([window]))
        ms = (time.perf_counter() - start) * 1000.0
        bad = [n for n in OUTPUTS if not np.isfinite(out[n][0]).all()]
        if bad:
            raise NonFiniteOutputError(f"the {self.name} engine's {', '.join(bad)} for the window ending at "
                                       f"{window.t_end:.2f} s had NaN or infinity; the model or its inputs are broken")
        return Inference(window.t_end, out["probabilities"][0], float(out["valence"][0]), out["edges_homo"][0],
                         out["edges_hetero"][0], window.modalities_present, ms, float(out["voice_reliability"][0]))
