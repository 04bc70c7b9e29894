"""TensorRT engines from the ONNX exports: build, cache, run. Needs ``tensorrt``, CUDA and
``cuda-python`` (the CUDA runtime's Python bindings: device memory, copies, a stream), not PyTorch.

Written for TensorRT 10.3 (JetPack 6 on Jetson Orin, with cuda-python 12.6) and 10.x / 11.x on
desktops; ``tensorrt`` and ``cuda`` are imported only here and only when called, so everything else
works without them. Never run here: no machine this project is built on has TensorRT.

- Build: a strongly typed network (precision comes from the ONNX file: Q/DQ for INT8, float16
  tensors for FP16; no builder precision flags), a workspace limit, one optimisation profile over
  the batch axis (1, ``opt_batch``, ``max_batch``), and a timing cache file reused between builds.
- Cache: an engine ``NAME.plan`` has a sidecar ``NAME.plan.json`` with the key it was built for
  (GPU name, compute capability, TensorRT version), the sha256 of the ONNX file and the export's
  manifest. ``engine_for`` loads an engine only when the key matches this machine; a foreign or
  stale engine is rebuilt from its ONNX file (or refused when that is gone).
- Run: ``TrtEngine`` allocates device buffers for ``max_batch`` once, copies each batch in, calls
  ``execute_async_v3`` on its own CUDA stream and copies the outputs back.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

import numpy as np

from realtime.core.backends import INPUTS, OUTPUTS
from realtime.core.feature_spec import FeatureSpec
from realtime.core.files import sha256
from realtime.engines.artifact import EXPRESSION, MODEL_FILE, TEXT, artifact_dir, read_manifest
from realtime.engines.base import Engine
from realtime.engines.onnx_engine import (OnnxExpressionEncoder, OnnxTextModel, exported_expression,
                                          exported_text_model)

PLAN_FILE = "model.plan"
_NUMPY_DTYPES = {"FLOAT": np.float32, "HALF": np.float16, "INT32": np.int32, "INT64": np.int64,
                 "BOOL": np.bool_, "INT8": np.int8, "UINT8": np.uint8}
TIMING_CACHE = "timing.cache"


class TensorRTUnavailable(RuntimeError):
    """This machine cannot build or run TensorRT engines; the message says why."""


def cudart() -> Any:
    """The CUDA runtime's Python bindings (cuda-python 12.x ``cuda.cudart``; 13.x ``cuda.bindings.runtime``)."""
    try:
        from cuda.bindings import runtime
    except ImportError:
        try:
            from cuda import cudart as runtime
        except ImportError as e:
            raise TensorRTUnavailable("cuda-python is not installed (pip install cuda-python, the release of "
                                      "this machine's CUDA: 12.6 on JetPack 6)") from e
    return runtime


def cuda_call(result: tuple) -> Any:
    """The value of a cuda-python call's (error, value...) tuple; a ``RuntimeError`` naming a CUDA error."""
    err, *values = result
    if int(err) != 0:
        raise RuntimeError(f"CUDA error {int(err)} ({cudart().cudaGetErrorString(err)[1].decode()})")
    return values[0] if len(values) == 1 else tuple(values)


def require_tensorrt():
    """The ``tensorrt`` module and a CUDA device, or ``TensorRTUnavailable`` saying which is missing."""
    try:
        import tensorrt as trt
    except ImportError as e:
        raise TensorRTUnavailable("TensorRT is not installed (pip install tensorrt on an NVIDIA GPU machine; "
                                  "JetPack 6 ships it on Jetson)") from e
    err, count = cudart().cudaGetDeviceCount()
    if int(err) != 0 or count == 0:
        raise TensorRTUnavailable("no CUDA device is visible; TensorRT engines need an NVIDIA GPU")
    return trt


def device_key() -> dict[str, str]:
    """What an engine is only valid for: this GPU, its compute capability, this TensorRT."""
    trt = require_tensorrt()
    prop = cuda_call(cudart().cudaGetDeviceProperties(0))
    name = prop.name.decode() if isinstance(prop.name, bytes) else str(prop.name)
    return {"gpu": name.rstrip("\x00"), "compute_capability": f"{prop.major}.{prop.minor}", "tensorrt": trt.__version__}


def build_engine(onnx_path: Path, plan: Path, max_batch: int = 16, opt_batch: int = 1,
                 workspace_mib: int = 1024, timing_cache: Path | None = None) -> Path:
    """Build ``plan`` from ``onnx_path`` (see the module docstring); writes the sidecar too."""
    trt = require_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mib << 20)
    config.clear_flag(trt.BuilderFlag.TF32)  # float32 tensors stay float32: the FP32 gate is 1e-4
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        rest = tuple(tensor.shape)[1:]  # fixed window shape after the batch axis
        profile.set_shape(tensor.name, (1, *rest), (opt_batch, *rest), (max_batch, *rest))
    config.add_optimization_profile(profile)
    timing_cache = timing_cache or plan.parent / TIMING_CACHE
    cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path} (see its log above)")
    plan.parent.mkdir(parents=True, exist_ok=True)
    plan.write_bytes(bytes(serialized))
    timing_cache.write_bytes(bytes(config.get_timing_cache().serialize()))
    sidecar = {"key": device_key(), "onnx": str(onnx_path.resolve()), "onnx_sha256": sha256(onnx_path),
               "max_batch": max_batch, "manifest": read_manifest(onnx_path.parent)}
    Path(f"{plan}.json").write_text(json.dumps(sidecar, indent=1))
    return plan


def engine_for(path: Path, max_batch: int = 16) -> Path:
    """A plan valid on this machine for ``path`` (a plan, or an ONNX export to build one beside):
    the plan itself when its key and ONNX file match, else a rebuilt one."""
    if path.suffix == ".plan":
        plan = path
        sidecar = Path(f"{plan}.json")
        if not sidecar.is_file():
            raise FileNotFoundError(f"{sidecar} is missing: cannot tell which GPU and TensorRT {plan} was built for")
        meta = json.loads(sidecar.read_text())
        onnx_path = Path(meta["onnx"])
        if not onnx_path.is_file() and (plan.parent / MODEL_FILE).is_file():  # the folder moved with its plan
            onnx_path = plan.parent / MODEL_FILE
    else:
        onnx_path = artifact_dir(path) / MODEL_FILE
        plan = onnx_path.parent / PLAN_FILE
        sidecar = Path(f"{plan}.json")
        meta = json.loads(sidecar.read_text()) if sidecar.is_file() and plan.is_file() else None
    key = device_key()
    if (meta is not None and plan.is_file() and meta["key"] == key and onnx_path.is_file()
            and meta["onnx_sha256"] == sha256(onnx_path)):
        return plan
    if not onnx_path.is_file():
        raise ValueError(f"{plan} was built for {meta['key']}, this machine is {key}, and its ONNX file "
                         f"{onnx_path} is gone: cannot rebuild; re-export and run `python -m export trt`")
    return build_engine(onnx_path, plan, max_batch=meta.get("max_batch", max_batch) if meta else max_batch)


class TrtEngine(Engine):
    """A TensorRT engine of the recognizer; its inputs and outputs have device buffers for ``max_batch``
    windows. The face and text front-ends run the ONNX export's files beside it (onnxruntime) when the
    export holds them."""

    name = "trt"

    def __init__(self, path: str | Path) -> None:
        trt = require_tensorrt()
        plan = engine_for(Path(path))
        meta = json.loads(Path(f"{plan}.json").read_text())
        super().__init__(FeatureSpec.from_dict(meta["manifest"]["feature_spec"]))
        self.plan, self.max_batch = plan, meta["max_batch"]
        # the export (OUT) the plan was built from, or the one it moved with: its expression/ and text/
        exports = [p.parent.parent for p in (plan, Path(meta["onnx"]))]
        self._export = next((e for e in exports if (e / EXPRESSION).is_dir() or (e / TEXT).is_dir()), exports[0])
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._engine = self._runtime.deserialize_cuda_engine(plan.read_bytes())
        if self._engine is None:
            raise RuntimeError(f"TensorRT could not load {plan}")
        self._context = self._engine.create_execution_context()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        if set(names) != {*INPUTS, *OUTPUTS}:
            raise ValueError(f"{plan}: tensors {names} are not the recognizer's {INPUTS} + {OUTPUTS}")
        self._dtypes = {n: np.dtype(_NUMPY_DTYPES[self._engine.get_tensor_dtype(n).name]) for n in names}
        self._rt = rt = cudart()
        self._stream = cuda_call(rt.cudaStreamCreate())
        self._buffers: dict[str, int] = {}
        for n in names:  # the batch axis (-1 in the engine) at its largest
            per_window = math.prod(d for d in self._engine.get_tensor_shape(n)[1:])
            self._buffers[n] = cuda_call(rt.cudaMalloc(max(1, self.max_batch * per_window * self._dtypes[n].itemsize)))
            self._context.set_tensor_address(n, int(self._buffers[n]))

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        batch = len(inputs[INPUTS[0]])
        if batch > self.max_batch:
            raise ValueError(f"batch {batch} exceeds the engine's optimisation profile (max {self.max_batch})")
        rt, stream = self._rt, self._stream
        to_device, to_host = rt.cudaMemcpyKind.cudaMemcpyHostToDevice, rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        feed = {n: np.ascontiguousarray(inputs[n], dtype=self._dtypes[n]) for n in INPUTS}
        for n, x in feed.items():
            self._context.set_input_shape(n, x.shape)
            cuda_call(rt.cudaMemcpyAsync(self._buffers[n], x.ctypes.data, x.nbytes, to_device, stream))
        out = {n: np.empty(tuple(self._context.get_tensor_shape(n)), self._dtypes[n]) for n in OUTPUTS}
        if not self._context.execute_async_v3(int(stream)):
            raise RuntimeError(f"TensorRT execution of {self.plan} failed")
        for n, y in out.items():
            cuda_call(rt.cudaMemcpyAsync(y.ctypes.data, self._buffers[n], y.nbytes, to_host, stream))
        cuda_call(rt.cudaStreamSynchronize(stream))  # the host arrays (feed, out) live until here
        return {n: y.astype(np.float32) for n, y in out.items()}

    def expression_encoder(self) -> OnnxExpressionEncoder | Literal["shipped"]:
        return exported_expression(self._export)  # onnxruntime, on the CPU

    def text_model(self) -> OnnxTextModel | Literal["shipped"]:
        return exported_text_model(self._export)
