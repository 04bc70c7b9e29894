"""silero-vad without torch: its ONNX model, run through onnxruntime.

The model file is silero-vad 6.2.3's ``data/silero_vad.onnx`` (MIT licence, Silero Team), shipped
here as ``realtime/data/models/silero_vad.onnx`` so that the runtime needs neither the package nor
the PyTorch it requires (tests/frontends/test_vad.py checks the file is the package's).

The streaming state is handled as the package's own ``OnnxWrapper`` does: each 512-sample chunk (at
16 kHz) is preceded by the last 64 samples of the previous one (zeros at the start of a stream), and
the recurrent state (2, 1, 128) is carried from call to call. tests/frontends/test_vad.py checks the
probabilities against the package's TorchScript model on real speech.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from realtime.core.resources import shipped

VAD_RATE = 16_000  # the model's sample rate here
VAD_CHUNK = 512  # samples per call at 16 kHz (fixed by the model)
CONTEXT = 64  # samples of the previous chunk prepended to each call at 16 kHz
MODEL_PATH = shipped("models/silero_vad.onnx")  # opset 16, the file load_silero_vad(onnx=True) uses
_STATE_SHAPE = (2, 1, 128)


class SileroVad:
    """Speech probability of consecutive 512-sample chunks of one 16 kHz stream; ``reset`` for a new one."""

    def __init__(self, path: str | Path = MODEL_PATH) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.inter_op_num_threads = 1  # as the package's OnnxWrapper: a small net, called every 32 ms
        options.intra_op_num_threads = 1
        self._session = ort.InferenceSession(str(path), sess_options=options,
                                             providers=["CPUExecutionProvider"])
        self._rate = np.array(VAD_RATE, np.int64)
        self.reset()

    def reset(self) -> None:
        """Forget the stream: zero recurrent state and context."""
        self._state = np.zeros(_STATE_SHAPE, np.float32)
        self._context = np.zeros((1, CONTEXT), np.float32)

    def __call__(self, chunk: np.ndarray) -> float:
        """(VAD_CHUNK,) float32 samples -> speech probability in [0, 1]."""
        samples = np.asarray(chunk, np.float32)
        if samples.shape != (VAD_CHUNK,):
            raise ValueError(f"SileroVad: a chunk is {VAD_CHUNK} samples, got shape {samples.shape}")
        x = np.concatenate([self._context, samples[None]], axis=1)  # (1, CONTEXT + VAD_CHUNK)
        prob, self._state = self._session.run(None, {"input": x, "state": self._state, "sr": self._rate})
        self._context = x[:, -CONTEXT:]
        return float(prob[0, 0])
