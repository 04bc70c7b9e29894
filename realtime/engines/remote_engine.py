"""The recognizer on a Triton Inference Server (``--server grpc://HOST:PORT``; ``python -m serve``), with the
local engine behind it.

``RemoteEngine.run`` sends the window's named arrays to the server's ``SERVED_MODEL`` over gRPC
(tritonclient) and gives its answer. When the server cannot be reached, times out or refuses the
request, the local engine answers instead and ``problem`` says why; the server is tried again after a
back-off (0.5 s doubling to 8 s) and used as soon as it answers. Nothing is raised for a server's
failure: the caller keeps getting answers. ``answered`` counts the windows each side answered.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlparse

import numpy as np

from realtime.core.backends import INPUTS, OUTPUTS, SCALAR_OUTPUTS, SERVED_MODEL
from realtime.core.backoff import Backoff
from realtime.core.errors import one_line
from realtime.engines.base import Engine

if TYPE_CHECKING:
    from realtime.frontends.text_frontend import TextModel
    from realtime.nets.face_crop import ExpressionModel

TIMEOUT_S = 1.0  # a window's round trip, at most: two hops of the app
RETRY_FIRST_S, RETRY_CAP_S = 0.5, 8.0


def server_address(url: str) -> str:
    """``grpc://HOST:PORT`` -> ``HOST:PORT``; a one-line ``ValueError`` for anything else."""
    parsed = urlparse(url)
    if parsed.scheme != "grpc" or not parsed.hostname or not parsed.port or parsed.path not in ("", "/"):
        raise ValueError(f"--server {url}: give the server as grpc://HOST:PORT (python -m serve prints it)")
    return f"{parsed.hostname}:{parsed.port}"


class RemoteEngine(Engine):
    """A Triton server's recognizer, ``local`` answering whenever the server does not."""

    name = "server"

    def __init__(self, url: str, local: Engine, timeout_s: float = TIMEOUT_S) -> None:
        try:
            import tritonclient.grpc as grpcclient
        except ImportError as e:
            raise ValueError("--server needs tritonclient: pip install 'dmd-realtime[client]'") from e

        super().__init__(local.spec)
        self.url, self.local, self.timeout_s = url, local, timeout_s
        self._grpc = grpcclient
        self._client = grpcclient.InferenceServerClient(server_address(url))
        self._backoff = Backoff(RETRY_FIRST_S, RETRY_CAP_S)
        self._retry_at = 0.0  # monotonic time of the next attempt while the server is not used
        self.answered: Counter[str] = Counter()  # "server" | "local" -> windows

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.problem is None or time.monotonic() >= self._retry_at:
            try:
                out = self._ask_server(inputs)
            except self._grpc.InferenceServerException as e:
                self.problem = f"server {self.url} not answering ({one_line(e).split(' message:')[0][:160]}); " \
                               "answering locally"
                self._retry_at = time.monotonic() + self._backoff.next()
            else:
                self.problem = None
                self._backoff.reset()
                self.answered["server"] += len(inputs[INPUTS[0]])
                return out
        self.answered["local"] += len(inputs[INPUTS[0]])
        return self.local.run(inputs)

    def _ask_server(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        request = []
        for name in INPUTS:
            mask = name.endswith("_mask")  # the presence masks are bool, the features float32
            x = np.ascontiguousarray(inputs[name], dtype=np.bool_ if mask else np.float32)
            tensor = self._grpc.InferInput(name, list(x.shape), "BOOL" if mask else "FP32")
            tensor.set_data_from_numpy(x)
            request.append(tensor)
        result = self._client.infer(SERVED_MODEL, request, outputs=[self._grpc.InferRequestedOutput(n) for n in OUTPUTS],
                                    client_timeout=self.timeout_s)
        out = {n: result.as_numpy(n) for n in OUTPUTS}
        return {n: np.asarray(v[:, 0] if n in SCALAR_OUTPUTS else v, np.float32) for n, v in out.items()}

    def expression_encoder(self) -> ExpressionModel | Literal["shipped"]:
        """The local engine's: the face front-end runs next to the camera."""
        return self.local.expression_encoder()

    def text_model(self) -> TextModel | Literal["shipped"]:
        """The local engine's: the text front-end runs next to the microphone."""
        return self.local.text_model()

    def close(self) -> None:
        """Close the gRPC channel."""
        self._client.close()

