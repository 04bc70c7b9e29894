"""The recognizer on an NVIDIA GPU, side by side in one run (``python -m bench.model --device cuda``).

Rows: PyTorch eager, its CUDA-graph replay, ``torch.compile(mode="max-autotune")``, the fused
Triton kernels launched one by one, and the fused kernels replayed as one CUDA graph (float32,
TF32 and bfloat16 products); batches 1, 16, 256 and 4096 of real windows repeated to size. Every
call is timed on the device with CUDA events (launch gaps included), the rows taking turns call by
call; the floor is an empty Triton kernel's launch, timed the same way in the same run. Then the
outputs: each row's largest difference from eager, the fused kernels against eager on every
modality subset, and the labels of every window at batch 1 through the app's engines.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable
from importlib.metadata import version

import numpy as np
import torch
import triton

from calibration.windows import WindowSet
from dmd_lite.recognizer import Recognizer
from realtime.core.backends import INPUTS, OUTPUTS
from realtime.core.modalities import MODALITIES
from realtime.engines.fused.launch import FusedCall
from realtime.engines.fused.weights import pack
from realtime.engines.fused_engine import FusedEngine
from realtime.engines.torch_engine import CapturedCall, TorchEngine

BATCHES = (1, 16, 256, 4096)
COMPILE_BUDGET_S = 60.0  # torch.compile rows are skipped for larger batches once their compiling took this long
Call = Callable[[], object]


@triton.jit
def _empty_kernel(x):
    pass


def device_batch(arrays: dict[str, np.ndarray], n: int) -> list[torch.Tensor]:
    """The first n windows (repeated when there are fewer) as CUDA tensors in ``INPUTS`` order."""
    index = np.resize(np.arange(len(arrays["visual"])), n)
    return [torch.from_numpy(np.ascontiguousarray(arrays[k][index])).cuda() for k in INPUTS]


def time_on_device(calls: dict[str, Call], repeat: int, warmup: int = 10) -> dict[str, list[float]]:
    """Microseconds per call of each function between CUDA events, sorted; the functions take turns."""
    for _ in range(warmup):
        for fn in calls.values():
            fn()
    torch.cuda.synchronize()
    times: dict[str, list[float]] = {name: [] for name in calls}
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for _ in range(repeat):
        for name, fn in calls.items():
            start.record()
            fn()
            end.record()
            end.synchronize()
            times[name].append(start.elapsed_time(end) * 1e3)
    return {name: sorted(t) for name, t in times.items()}


def graph_of(fn: Call) -> torch.cuda.CUDAGraph:
    """``fn`` captured once, as the engines capture a model (``CapturedCall``: warm-up calls on a side stream)."""
    return CapturedCall(fn, []).graph


def floor_us(repeat: int) -> tuple[float, float]:
    """Median microseconds of an empty Triton kernel: launched, and replayed as a one-kernel graph."""
    x = torch.empty(1, device="cuda")
    launch = lambda: _empty_kernel[(1,)](x)  # noqa: E731
    graph = graph_of(launch)
    timed = time_on_device({"launch": launch, "graph": graph.replay}, repeat)
    return statistics.median(timed["launch"]), statistics.median(timed["graph"])


class Rows:
    """The compared ways of running one batch, each a no-argument call and where its outputs land."""

    def __init__(self, model: Recognizer, inputs: list[torch.Tensor], compiled: Callable | None) -> None:
        self.calls: dict[str, Call] = {}
        self.outputs: dict[str, Callable[[], tuple[torch.Tensor, ...]]] = {}
        eager = lambda: model.unmixed(*inputs)  # noqa: E731  (the kernels' part; the engines add the voice mix)
        self.add("torch eager", eager, eager)
        captured = CapturedCall(model.unmixed, inputs)
        self.add("torch cuda graph", captured.graph.replay, lambda: captured.outputs)
        if compiled is not None:
            run = lambda: compiled(*inputs)  # noqa: E731
            self.add("torch.compile max-autotune", run, run)
        for precision in ("float32", "tf32", "bfloat16"):
            call = FusedCall(pack(model, "cuda", precision), len(inputs[0]), "cuda")
            launch = lambda c=call: c(*inputs)  # noqa: E731
            if precision == "float32":
                self.add("fused", launch, launch)
            graph = graph_of(launch)
            self.add(f"fused {precision} + graph", graph.replay, lambda c=call: (c.probabilities, c.valence,
                                                                                   c.edges_homo, c.edges_hetero))

    def add(self, name: str, call: Call, outputs: Callable[[], tuple[torch.Tensor, ...]]) -> None:
        self.calls[name], self.outputs[name] = call, outputs


def max_diff(a: tuple[torch.Tensor, ...], b: tuple[torch.Tensor, ...]) -> float:
    return max(float((x.float() - y.float()).abs().max()) for x, y in zip(a, b))


def subset_inputs(inputs: list[torch.Tensor], present: tuple[str, ...]) -> list[torch.Tensor]:
    """The same windows with the masks of every modality outside ``present`` cleared."""
    out = list(inputs)
    for m in MODALITIES:
        if m not in present:
            i = INPUTS.index(f"{m}_mask")
            out[i] = torch.zeros_like(inputs[i])
    return out


def main(checkpoint: str, windows: WindowSet, repeat: int) -> None:
    torch.backends.cuda.matmul.allow_tf32 = False  # eager and its graph in IEEE float32, as on a CPU
    torch.backends.cudnn.allow_tf32 = False
    eager = TorchEngine(checkpoint, "cuda", cuda_graphs=False)
    model = eager.model
    props = torch.cuda.get_device_properties(0)
    print(f"# {props.name} ({props.multi_processor_count} SMs), driver {driver_version()}, torch {version('torch')}, "
          f"triton {version('triton')}; {len(windows.arrays['visual'])} real windows ({windows.origin}) repeated to "
          f"each batch; {repeat} calls per row, CUDA events around each call")
    launch_us, replay_us = floor_us(repeat)
    print(f"# floor: an empty Triton kernel {launch_us:.1f} us launched, {replay_us:.1f} us as a one-kernel graph")
    print(f"{'backend':<30}{'batch':>6}{'median us':>11}{'p95 us':>9}{'windows/s':>12}{'vs graph':>9}{'max |d| vs eager':>18}")
    compiled, compile_s = torch.compile(model.unmixed, mode="max-autotune", dynamic=False), 0.0
    for batch in BATCHES:
        inputs = device_batch(windows.arrays, batch)
        with torch.inference_mode():
            use_compile = compile_s < COMPILE_BUDGET_S
            if use_compile:
                t0 = time.perf_counter()
                compiled(*inputs)
                torch.cuda.synchronize()
                compile_s += time.perf_counter() - t0
            rows = Rows(model, inputs, compiled if use_compile else None)
            timed = time_on_device(rows.calls, repeat)
            reference = model.unmixed(*inputs)
            graph_median = statistics.median(timed["torch cuda graph"])
            for name, times in timed.items():
                rows.calls[name]()
                median, p95 = statistics.median(times), times[int(0.95 * (len(times) - 1))]
                print(f"{name:<30}{batch:>6}{median:>11.1f}{p95:>9.1f}{batch / median * 1e6:>12.0f}"
                      f"{graph_median / median:>8.2f}x{max_diff(rows.outputs[name](), reference):>18.2e}")
            if not use_compile:
                print(f"# batch {batch}: torch.compile not measured (compiling took {compile_s:.0f} s so far)")
    print(f"# torch.compile max-autotune: {compile_s:.0f} s compiling in all")
    with torch.inference_mode():
        compare_subsets(model, device_batch(windows.arrays, len(windows.arrays["visual"])))
    compare_labels(checkpoint, windows)


def compare_subsets(model: Recognizer, inputs: list[torch.Tensor]) -> None:
    """Fused (float32 and bfloat16) against eager on each of the 8 modality subsets of the windows."""
    calls = {p: FusedCall(pack(model, "cuda", p), len(inputs[0]), "cuda") for p in ("float32", "bfloat16")}
    print("# fused vs eager on every modality subset (the real windows with the other masks cleared)")
    print(f"{'present':<24}{'float32 max |d|':>16}{'labels equal':>14}{'bfloat16 max |d|':>18}{'labels equal':>14}")
    for present in (s for n in range(4) for s in itertools.combinations(MODALITIES, n)):
        x = subset_inputs(inputs, present)
        ref = model.unmixed(*x)
        cells = []
        for call in calls.values():
            out = call(*x)
            same = int((out[0].argmax(1) == ref[0].argmax(1)).sum())
            cells += [f"{max_diff(out, ref):>16.2e}", f"{same:>9}/{len(ref[0])}"]
        print(f"{'+'.join(present) or 'none':<24}{cells[0]}{cells[1]:>14}{cells[2]:>18}{cells[3]:>14}")


def compare_labels(checkpoint: str, windows: WindowSet) -> None:
    """Every window at batch 1 through the app's engines: torch (CUDA graph) against fused."""
    torch_engine, fused_engine = TorchEngine(checkpoint, "cuda"), FusedEngine(checkpoint, "cuda")
    n = len(windows.arrays["visual"])
    same, worst = 0, 0.0
    for i in range(n):
        one = {k: np.ascontiguousarray(v[i:i + 1]) for k, v in windows.arrays.items() if k in INPUTS}
        a, b = torch_engine.run(one), fused_engine.run(one)
        same += int(a["probabilities"].argmax() == b["probabilities"].argmax())
        worst = max(worst, max(float(np.abs(a[k] - b[k]).max()) for k in OUTPUTS))
    print(f"# app engines at batch 1, every window: labels equal {same}/{n}, largest output difference {worst:.2e}")


def driver_version() -> str:
    try:
        import pynvml  # noqa: PLC0415  (nvidia-ml-py, where installed)

        pynvml.nvmlInit()
        return pynvml.nvmlSystemGetDriverVersion()
    except Exception:  # noqa: BLE001  (no NVML: the figure is left out, not guessed)
        return "unknown"
