"""A Triton Inference Server model repository for the recognizer, so many streams share one GPU.

    REPO/NAME/config.pbtxt       platform, batch limit, inputs/outputs, dynamic batching, instances
    REPO/NAME/1/model.onnx       (or model.plan, a TensorRT engine built for the server's GPU and
                                 the TensorRT inside the Triton container that serves it)
    REPO/NAME/manifest.json      the export's manifest, for people and tools

Triton batches requests from many clients (each sends one window, batch 1) into batches of up to
``max_batch_size``, waiting at most ``queue_delay_us`` to fill one. The config is written as text
here and checked against Triton's own protobuf schema in the tests (``tritonclient``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from realtime.engines.artifact import MANIFEST, MODEL_FILE, artifact_dir, read_manifest

TRITON_TYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "bool": "TYPE_BOOL", "int64": "TYPE_INT64",
                "int32": "TYPE_INT32"}
PLATFORMS = {".onnx": ("onnxruntime_onnx", "model.onnx"), ".plan": ("tensorrt_plan", "model.plan")}


def _tensors(kind: str, specs: dict[str, dict]) -> str:
    rows = []
    for name, spec in specs.items():
        dims = ", ".join(str(d) for d in spec["shape"][1:])  # Triton's dims leave out the batch axis
        rows.append(f'  {{\n    name: "{name}"\n    data_type: {TRITON_TYPES[spec["dtype"]]}\n    dims: [ {dims} ]\n  }}')
    return f"{kind} [\n" + ",\n".join(rows) + "\n]\n"


def config_text(name: str, platform: str, manifest: dict, max_batch_size: int, queue_delay_us: int,
                instance_kind: str, instances: int) -> str:
    """The ``config.pbtxt`` of one model."""
    preferred = ", ".join(str(b) for b in (4, 8, 16, 32, 64) if b <= max_batch_size)
    return (f'name: "{name}"\nplatform: "{platform}"\nmax_batch_size: {max_batch_size}\n'
            + _tensors("input", manifest["inputs"]) + _tensors("output", manifest["outputs"])
            + f"dynamic_batching {{\n  preferred_batch_size: [ {preferred} ]\n"
            f"  max_queue_delay_microseconds: {queue_delay_us}\n}}\n"
            f"instance_group [\n  {{\n    count: {instances}\n    kind: KIND_{instance_kind.upper()}\n  }}\n]\n")


def write_repository(model: Path, repo: Path, name: str = "dmd_recognizer", max_batch_size: int = 16,
                     queue_delay_us: int = 2000, instance_kind: str = "gpu", instances: int = 1) -> Path:
    """Write ``repo/name`` from an ONNX export (an export folder or its model.onnx) or a TensorRT plan
    (``.plan`` with its ``.plan.json`` sidecar); returns the config path."""
    if model.suffix == ".plan":
        sidecar = Path(f"{model}.json")
        if not sidecar.is_file():
            raise FileNotFoundError(f"{sidecar} is missing; build the plan with `python -m export trt`")
        manifest, source = json.loads(sidecar.read_text())["manifest"], model
    else:
        directory = artifact_dir(model)
        manifest, source = read_manifest(directory), directory / MODEL_FILE
    if manifest.get("artifact") != "recognizer":
        raise ValueError(f"{model} is not a recognizer export")
    platform, filename = PLATFORMS[source.suffix]
    if instance_kind not in ("gpu", "cpu"):
        raise ValueError(f"instance kind must be gpu or cpu, not {instance_kind!r}")
    if max_batch_size < 1:
        raise ValueError("max batch size must be at least 1")
    target = repo / name
    (target / "1").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target / "1" / filename)
    (target / MANIFEST).write_text(json.dumps(manifest, indent=1))
    config = target / "config.pbtxt"
    config.write_text(config_text(name, platform, manifest, max_batch_size, queue_delay_us, instance_kind, instances))
    return config
