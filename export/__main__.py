"""Export the recognizer, the face expression CNN and the text model for deployment.

    python -m export onnx [--checkpoint C] --out DIR          (every file the runtime install needs)
    python -m export quantize {--int8,--fp16} [--checkpoint C] [--calibration SRC] --out DIR
    python -m export trt --onnx DIR [--max-batch 16]          (needs TensorRT + CUDA + cuda-python)
    python -m export verify ENGINE [--reference onnx --windows DIR]   (needs TensorRT + CUDA + cuda-python)
    python -m export triton-repo --model DIR|PLAN --out REPO

Every export is gated against PyTorch on held-out real inputs (``--windows SRC``; default: the
shared data's extraction when it holds faces, voices and words, else the demo clip) and described by a ``manifest.json``.
``onnx``, ``quantize`` and ``verify --reference torch`` need PyTorch (the train extra); ``trt`` and
``verify --reference onnx`` do not.
Exit status: 0 done, 1 a parity gate failed (the manifest says by how much), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from realtime.core.errors import run_cli


def _add_sources(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default="default", help="recognizer checkpoint (default: the shipped model)")
    p.add_argument("--windows", type=Path, help="held-out windows for the parity gate (see calibration.windows)")
    p.add_argument("--limit", type=int, default=200, help="items drawn per extraction (default: %(default)s)")
    p.add_argument("--out", type=Path, required=True, help="output folder (recognizer/, expression/ and text/ inside)")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m export", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    sub = ap.add_subparsers(dest="command", required=True, help="what to do")
    _add_sources(sub.add_parser("onnx", help="FP32 ONNX export + parity gate"))
    q = sub.add_parser("quantize", help="INT8 (explicit Q/DQ) or FP16 ONNX + parity gate")
    mode = q.add_mutually_exclusive_group(required=True)
    mode.add_argument("--int8", dest="precision", action="store_const", const="int8",
                      help="INT8 by explicit Q/DQ, activation ranges calibrated on real windows")
    mode.add_argument("--fp16", dest="precision", action="store_const", const="fp16",
                      help="FP16 weights and activations, float32 inputs and outputs")
    q.add_argument("--calibration", type=Path, help="calibration windows (INT8; default: like --windows, "
                                                    "the calibration half)")
    _add_sources(q)
    t = sub.add_parser("trt", help="build a TensorRT engine from an ONNX export")
    t.add_argument("--onnx", type=Path, required=True, help="an export folder, artifact folder or model.onnx")
    t.add_argument("--out", type=Path, help="engine file (default: model.plan beside the ONNX file)")
    t.add_argument("--max-batch", type=int, default=16, help="largest batch the engine takes (default: %(default)s)")
    t.add_argument("--opt-batch", type=int, default=1, help="batch size the kernels are tuned for")
    t.add_argument("--workspace-mib", type=int, default=1024,
                   help="GPU scratch memory TensorRT may use while building, MiB (default: %(default)s)")
    v = sub.add_parser("verify", help="rebuild an engine if it is foreign or stale, then gate it against PyTorch")
    v.add_argument("engine", type=Path, help="a .plan file, or an export to build one for")
    v.add_argument("--reference", choices=("torch", "onnx"), default="torch",
                   help="gate against PyTorch (the checkpoint; default) or the ONNX export the engine was built from "
                        "(onnxruntime on the CPU: for a device without PyTorch, with --windows saved by the app)")
    v.add_argument("--checkpoint", help="reference checkpoint (default: the one named in the manifest)")
    v.add_argument("--windows", type=Path, help="held-out windows for the parity gate (see calibration.windows)")
    v.add_argument("--limit", type=int, default=200, help="items drawn per extraction (default: %(default)s)")
    r = sub.add_parser("triton-repo", help="write a Triton Inference Server model repository")
    r.add_argument("--model", type=Path, required=True, help="an ONNX export (folder or model.onnx) or a .plan")
    r.add_argument("--out", type=Path, required=True, help="repository folder")
    r.add_argument("--name", default="dmd_recognizer", help="model name in the repository (default: %(default)s)")
    r.add_argument("--max-batch", type=int, default=16, help="largest batch Triton forms (default: %(default)s)")
    r.add_argument("--queue-delay-us", type=int, default=2000, help="longest wait to fill a batch")
    r.add_argument("--instance-kind", choices=("gpu", "cpu"), default="gpu",
                   help="where the model instances run (default: %(default)s)")
    r.add_argument("--instances", type=int, default=1, help="model instances (default: %(default)s)")
    return ap


def _report(results: dict, out: Path) -> None:
    for name, parity in results.items():
        print(f"{out / name}: {parity.summary()}")


def verify(args: argparse.Namespace) -> None:
    from calibration.windows import read_windows
    from realtime.engines import make_engine
    from realtime.engines.artifact import MODEL_FILE
    from realtime.engines.trt_engine import TrtEngine

    from .parity import compare, probabilities

    engine = TrtEngine(args.engine)
    sidecar = Path(f"{engine.plan}.json")
    meta = json.loads(sidecar.read_text())
    manifest = meta["manifest"]
    if args.reference == "onnx":
        onnx_path = Path(meta["onnx"]) if Path(meta["onnx"]).is_file() else engine.plan.parent / MODEL_FILE
        reference = make_engine("onnx", engine_file=onnx_path)
    else:
        reference = make_engine("torch", args.checkpoint or manifest["source"]["checkpoint"])
    engine.spec.check_compatible(reference.spec)
    windows = read_windows(args.windows, reference.spec, "heldout", args.limit)
    batch = min(16, engine.max_batch)
    parity = compare(probabilities(reference.run, windows.batches(batch)),
                     probabilities(engine.run, windows.batches(batch)), windows.labels, manifest["precision"],
                     windows.origin, reference_name=args.reference)
    sidecar.write_text(json.dumps({**meta, "parity": parity.to_dict()}, indent=1))
    print(f"{engine.plan} ({meta['key']['gpu']}, TensorRT {meta['key']['tensorrt']}): {parity.summary()}")
    if not parity.passed:
        sys.exit(1)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from .parity import ParityError
    from realtime.engines.trt_engine import TensorRTUnavailable

    try:
        if args.command in ("onnx", "quantize"):
            from .artifacts import make_artifacts

            precision = "fp32" if args.command == "onnx" else args.precision
            _report(make_artifacts(args.checkpoint, args.out, precision, args.windows,
                                   getattr(args, "calibration", None), args.limit), args.out)
        elif args.command == "trt":
            from realtime.engines.artifact import MODEL_FILE, artifact_dir
            from realtime.engines.trt_engine import PLAN_FILE, build_engine

            onnx_path = artifact_dir(args.onnx) / MODEL_FILE
            plan = build_engine(onnx_path, args.out or onnx_path.parent / PLAN_FILE, args.max_batch, args.opt_batch,
                                args.workspace_mib)
            print(f"built {plan}; check it with `python -m export verify {plan}`")
        elif args.command == "verify":
            verify(args)
        else:
            from .triton_repo import write_repository

            config = write_repository(args.model, args.out, args.name, args.max_batch, args.queue_delay_us,
                                      args.instance_kind, args.instances)
            print(f"wrote {config.parent}; serve with `tritonserver --model-repository {args.out}`")
    except ParityError as e:
        print(f"export: {e}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError, TensorRTUnavailable) as e:
        print(f"export: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    run_cli(main)
