"""Per-window latency and throughput of the recognizer: PyTorch eager, PyTorch traced (TorchScript),
onnxruntime FP32 and INT8, side by side in one run on a CPU; on a GPU (``--device cuda``) the rows
of ``bench.model_cuda`` (eager, CUDA graph, torch.compile, the fused kernels).

    python -m bench.model [--checkpoint default] [--fp32 out/export] [--int8 out/export_int8]
                          [--baseline EXPORT] [--threads 1] [--repeat 200]

The onnxruntime engines answer a batch of one with a session whose batch axis is fixed at 1
(``OnnxEngine.single``); the row "ort fp32 free" runs batch 1 through the free-batch session instead,
and "ort fp32 baseline" another FP32 export (``--baseline``), to time a change to the graph.
Each back-end answers the same real windows (held-out, see ``calibration.windows``) through the
app's engine interface (``Engine.run``: numpy in, numpy out), at batch 1 and batch 16, the
back-ends taking turns call by call. Prints the
machine, one row per back-end and batch (median and p95 milliseconds per call, windows per second,
speed-up of the median over PyTorch at that batch), each other PyTorch path's largest difference from eager,
and the model files' sizes. An export that is
missing is made first (``python -m export onnx`` / ``quantize --int8``, gates included).

The INT8 file is made for TensorRT; why it is not faster than FP32 on a CPU is in MODEL_CARD.md
("Size and latency").
"""

from __future__ import annotations

import argparse
import os
import statistics
import warnings
from functools import partial
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

from bench import model_cuda
from bench.report import cpu_name, time_interleaved
from calibration.windows import read_windows
from dmd_lite.checkpoint import WEIGHTS
from dmd_lite.recognizer import resolve_checkpoint
from export.artifacts import make_artifacts
from realtime.core.backends import INPUTS, OUTPUTS
from realtime.core.errors import run_cli
from realtime.engines.artifact import MODEL_FILE, RECOGNIZER
from realtime.engines.base import Engine
from realtime.engines.onnx_engine import OnnxEngine
from realtime.engines.torch_engine import TorchEngine

BATCHES = (1, 16)


class TracedTorchEngine(Engine):
    """The eager engine's recognizer traced and frozen with TorchScript, one graph per batch size.

    At batch 1 the eager model is bound by Python's per-operator dispatch (about 420 operators
    per window); a traced graph runs the same operators without it. TorchScript is deprecated in
    PyTorch 2.11, so this is a measurement, not an app back-end: the app's fast CPU path is
    onnxruntime (``--backend onnx``)."""

    name = "torch traced"

    def __init__(self, eager: TorchEngine) -> None:
        super().__init__(eager.spec)
        self.model, self.device = eager.model, eager.device
        self.graphs: dict[int, torch.jit.ScriptModule] = {}

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tensors = tuple(torch.from_numpy(inputs[n]).to(self.device) for n in INPUTS)
        batch = len(tensors[0])
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # TorchScript's deprecation and tracer warnings
            if batch not in self.graphs:
                self.graphs[batch] = torch.jit.freeze(torch.jit.trace(self.model, tensors, check_trace=False).eval())
            outputs = self.graphs[batch](*tensors)
        return {n: o.float().cpu().numpy() for n, o in zip(OUTPUTS, outputs)}


def ensure_export(path: Path, precision: str, checkpoint: str) -> Path:
    """The recognizer artifact under ``path``, exported (and gated) first when it is not there."""
    if not (path / RECOGNIZER / MODEL_FILE).is_file():
        print(f"# {path} has no export: making one ({precision})", flush=True)
        make_artifacts(checkpoint, path, precision, artifacts=(RECOGNIZER,))
    return path / RECOGNIZER


def batch_of(windows: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """The first n windows (repeated when there are fewer)."""
    index = np.resize(np.arange(len(windows["visual"])), n)
    return {k: np.ascontiguousarray(v[index]) for k, v in windows.items()}


def mib(path: Path) -> str:
    return f"{path.stat().st_size / 2**20:.2f} MiB"


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default="default", help="recognizer checkpoint (default: the shipped model)")
    p.add_argument("--fp32", type=Path, default=Path("out/export"), help="FP32 export (default: %(default)s)")
    p.add_argument("--int8", type=Path, default=Path("out/export_int8"), help="INT8 export (default: %(default)s)")
    p.add_argument("--baseline", type=Path,
                   help="another FP32 export (one made before a change to the graph) timed beside the others")
    p.add_argument("--threads", type=int, default=1, help="CPU threads per back-end (default: %(default)s)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                   help="cpu: the CPU rows; cuda: eager, CUDA graph, torch.compile and fused kernels (default: %(default)s)")
    p.add_argument("--windows", type=Path, help="window source (see calibration.windows; default: the held-out data)")
    p.add_argument("--repeat", type=int, default=200, help="timed calls per row (default: %(default)s)")
    return p


def main() -> None:
    args = parser().parse_args()
    if args.device == "cuda":
        spec = TorchEngine(args.checkpoint).spec
        model_cuda.main(args.checkpoint, read_windows(args.windows, spec, "heldout", 16), args.repeat)
        return
    eager = TorchEngine(args.checkpoint, args.device, args.threads, cuda_graphs=False)
    engines: dict[str, Engine] = {"torch eager": eager, "torch traced": TracedTorchEngine(eager)}
    fp32 = ensure_export(args.fp32, "fp32", args.checkpoint)
    int8 = ensure_export(args.int8, "int8", args.checkpoint)
    free_batch = OnnxEngine(fp32, "cpu", args.threads)
    free_batch.single = None  # batch 1 through the free-batch session too: what the fixed-batch session saves
    engines |= {"onnxruntime fp32": OnnxEngine(fp32, "cpu", args.threads), "ort fp32 free": free_batch,
                "onnxruntime int8": OnnxEngine(int8, "cpu", args.threads)}
    if args.baseline:
        engines["ort fp32 baseline"] = OnnxEngine(args.baseline / RECOGNIZER, "cpu", args.threads)
    windows = read_windows(args.windows, eager.spec, "heldout", 16)
    print(f"# {cpu_name()}, {os.cpu_count()} cores; {args.threads} CPU thread(s) per back-end; torch {version('torch')}, "
          f"onnxruntime {version('onnxruntime')}; {args.repeat} calls per row on real windows ({windows.origin})")
    print(f"{'backend':<18}{'batch':>6}{'median ms':>11}{'p95 ms':>9}{'windows/s':>11}{'vs torch':>10}")
    for batch in BATCHES:
        inputs = batch_of(windows.arrays, batch)
        reference = eager.run(inputs)
        for name in [n for n in engines if n.startswith("torch ") and n != "torch eager"]:
            out = engines[name].run(inputs)
            print(f"# batch {batch}: {name} vs eager max abs diff "
                  f"{max(float(np.abs(out[n] - reference[n]).max()) for n in OUTPUTS):.2e}")
        timed = time_interleaved({name: partial(engine.run, inputs) for name, engine in engines.items()}, args.repeat)
        torch_median = statistics.median(timed["torch eager"])
        for name, times in timed.items():
            median, p95 = statistics.median(times), times[int(0.95 * (len(times) - 1))]
            print(f"{name:<18}{batch:>6}{median * 1e3:>11.2f}{p95 * 1e3:>9.2f}{batch / median:>11.0f}"
                  f"{torch_median / median:>9.2f}x")
    print(f"# sizes: checkpoint {mib(resolve_checkpoint(args.checkpoint) / WEIGHTS)}, onnx fp32 {mib(fp32 / MODEL_FILE)}, "
          f"onnx int8 {mib(int8 / MODEL_FILE)}")


if __name__ == "__main__":
    run_cli(main)
