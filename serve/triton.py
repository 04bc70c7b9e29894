"""The recognizer bound to a real Triton Inference Server through nvidia-pytriton.

pytriton starts the ``tritonserver`` binary it bundles and runs ``infer`` in its Python backend, one
process per model instance; every instance holds its own engine (an ONNX export through onnxruntime,
one intra-op thread each). Triton batches the requests of all streams (dynamic batching: the
preferred batch sizes, at most ``queue_delay_us`` of waiting) before they reach ``infer``.

The model's inputs and outputs are the engines' named arrays (``realtime.core.backends``), batch first;
``SCALAR_OUTPUTS`` travel as (B, 1). A request whose arrays hold NaN or infinity is refused with an
error naming the input; Triton itself refuses a wrong shape or dtype. Neither takes the server down.

pytriton 0.7.0 needs numpy < 2, so it has a venv of its own (``scripts/venv.sh serve``); its Python
backend stub links ``libpython3.x``, found through ``LD_LIBRARY_PATH``, which ``make_triton`` puts this
interpreter's ``LIBDIR`` in front of (the system's older libpython would otherwise be picked).
"""

from __future__ import annotations

import os
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from realtime.core.backends import INPUTS, OUTPUTS, SCALAR_OUTPUTS, SERVED_MODEL
from realtime.engines.onnx_engine import OnnxEngine


@dataclass(frozen=True)
class ServeConfig:
    engine: Path  # an ONNX export (``python -m export onnx --out DIR``)
    host: str = "127.0.0.1"
    grpc_port: int = 8001
    http_port: int = 8000  # health: /v2/health/ready
    metrics_port: int = 8002  # Prometheus: /metrics
    max_batch: int = 64
    preferred_batches: tuple[int, ...] = (16, 32, 64)
    queue_delay_us: int = 20_000  # 20 ms: at 256 streams batches of about 11 (bench.serve), small beside a 500 ms hop
    instances: int = 2


def make_infer(engine: OnnxEngine) -> Callable[..., dict[str, np.ndarray]]:
    """The batched inference function of one model instance."""
    from pytriton.decorators import batch

    @batch
    def infer(**inputs: np.ndarray) -> dict[str, np.ndarray]:
        for name in INPUTS:
            x = inputs[name]
            if x.dtype.kind == "f" and not np.isfinite(x).all():
                raise ValueError(f"input {name} has NaN or infinity; send finite values")
        out = engine.run(inputs)
        return {n: out[n][:, None] if n in SCALAR_OUTPUTS else out[n] for n in OUTPUTS}

    return infer


def make_triton(config: ServeConfig):
    """A started ``pytriton.triton.Triton`` serving the recognizer of ``config.engine``."""
    libdir = sysconfig.get_config_var("LIBDIR")
    os.environ["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (libdir, os.environ.get("LD_LIBRARY_PATH")) if p)
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
    from pytriton.triton import Triton, TritonConfig

    engines = [OnnxEngine(config.engine, threads=1) for _ in range(config.instances)]
    reference = {i.name: i for i in engines[0].session.get_inputs()}
    inputs = [Tensor(name=n, dtype=np.bool_ if "bool" in reference[n].type else np.float32,
                     shape=tuple(reference[n].shape[1:])) for n in INPUTS]
    outputs = [Tensor(name=o.name, dtype=np.float32, shape=(1,) if o.name in SCALAR_OUTPUTS else tuple(o.shape[1:]))
               for o in engines[0].session.get_outputs()]
    triton = Triton(config=TritonConfig(
        http_address=config.host, http_port=config.http_port, grpc_address=config.host, grpc_port=config.grpc_port,
        metrics_address=config.host, metrics_port=config.metrics_port, allow_metrics=True, allow_cpu_metrics=True,
        exit_on_error=True))
    triton.bind(model_name=SERVED_MODEL, infer_func=[make_infer(e) for e in engines], inputs=inputs, outputs=outputs,
                config=ModelConfig(max_batch_size=config.max_batch, batcher=DynamicBatcher(
                    max_queue_delay_microseconds=config.queue_delay_us,
                    preferred_batch_size=[b for b in config.preferred_batches if b <= config.max_batch])),
                strict=True)
    return triton
