"""The live recognizer: ``python main.py --camera 0`` in a checkout, ``dmd-realtime --camera 0`` or
``python -m realtime --camera 0`` once installed (or ``--demo``, ``--video FILE``; see --help).

Exit status: 0 when the run ends (end of input, q / Esc, window closed, Ctrl-C, SIGTERM,
--max-seconds), 2 with one line on stderr when an argument or an input is unusable, 1 when a
stage failed unexpectedly (logged with its traceback).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
import tempfile
from pathlib import Path

import cv2

from realtime.core.backends import BACKENDS, PRECISIONS
from realtime.core.errors import one_line
from realtime.core.memory import limit_malloc_arenas
from realtime.core.native_logs import silence_native_stderr
from realtime.core.resources import shipped

CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
DEMO_CLIP = shipped("media/demo.mp4")
DEMO_OUT = Path("dmd-realtime-demo")  # relative: under the current working directory, which the user can write


def prog() -> str:
    """The command as the user typed it, for --help and the one-line errors: ``main.py`` in a checkout,
    ``python -m realtime``, or the console script ``dmd-realtime``."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return {"main.py": "main.py", "__main__.py": "python -m realtime"}.get(name, "dmd-realtime")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage block
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _camera_index(text: str) -> int:
    index = int(text)  # argparse turns a ValueError into "invalid _camera_index value"
    if index < 0:
        raise argparse.ArgumentTypeError(f"camera index {index} is negative: use 0 for the first camera")
    return index


def _seconds(text: str) -> float:
    seconds = float(text)
    if not (math.isfinite(seconds) and seconds > 0):
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds")
    return seconds


def _unwritable(path: Path) -> str | None:
    """Why a file cannot be written at ``path`` (None when it can): a folder, or a folder we may not write in."""
    if path.is_dir():
        return "is a folder: give a file name inside it"
    folder = path.parent
    while not folder.exists() and folder != folder.parent:  # it will be made; its first existing parent counts
        folder = folder.parent
    if not folder.is_dir() or not _can_create_in(folder):
        return f"cannot write in {folder}: choose a folder you can write to"
    return None


def _can_create_in(folder: Path) -> bool:
    """Whether a file can be made in ``folder``, tried (then removed): ``os.access`` would say yes to root
    even where none can be made, as in /proc or on a read-only mount."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = _Parser(prog=prog(), description="Real-time multimodal emotion recognition: face, voice and words.")
    src = p.add_argument_group("inputs (one of --camera, --video, --gst, --demo; none: --demo)")
    which = src.add_mutually_exclusive_group()
    which.add_argument("--camera", type=_camera_index, metavar="N", help="camera index (0 is the first webcam)")
    which.add_argument("--video", metavar="FILE|URL", help="a video file, or an rtsp/http/... stream")
    which.add_argument("--gst", metavar="PIPELINE", help="a GStreamer pipeline ending in appsink")
    which.add_argument("--demo", action="store_true",
                       help=f"run the bundled clip (shipped with the package; no camera, microphone or network "
                            f"needed); writes the recording and events to ./{DEMO_OUT}/ in the current folder "
                            f"unless --record / --events say otherwise")
    src.add_argument("--mic", metavar="NAME|INDEX", help="microphone (default: a file's own audio, else the "
                                                         "default input device)")
    src.add_argument("--no-audio", action="store_true", help="no audio (and so no words)")
    src.add_argument("--no-asr", action="store_true", help="no speech recognition")
    src.add_argument("--vosk-model", metavar="PATH", help="unpacked Vosk model (default: $VOSK_MODEL_PATH, else "
                                                          "the small English model, downloaded once)")
    pace = src.add_mutually_exclusive_group()
    pace.add_argument("--realtime", dest="realtime", action="store_true", default=True,
                      help="play files at their own pace, like a camera (default)")
    pace.add_argument("--as-fast-as-possible", dest="realtime", action="store_false",
                      help="read files as fast as the pipeline goes, dropping nothing")
    model = p.add_argument_group("model")
    model.add_argument("--checkpoint", default="default", metavar="DIR", help="checkpoint directory (default: the shipped model)")
    model.add_argument("--backend", default="torch", choices=BACKENDS, help="engine back-end (default torch)")
    model.add_argument("--engine", metavar="FILE", help="an exported model (ONNX export, TensorRT plan) for --backend "
                                                        "onnx|trt")
    model.add_argument("--server", metavar="grpc://HOST:PORT",
                       help="send the windows to a Triton server (python -m serve); the local engine answers "
                            "while it is unreachable")
    model.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                       help="where the engine runs (default cpu; cuda needs an NVIDIA GPU)")
    model.add_argument("--precision", default="float32", choices=PRECISIONS,
                       help="--backend fused: the matrix products' arithmetic (default float32; tf32, float16 and "
                            "bfloat16 are faster, within the tolerances in MODEL_CARD.md)")
    model.add_argument("--threads", type=int, default=1, metavar="N",
                       help=f"intra-op threads of the engine, 1 to the {CORES} cores this process may use (default 1)")
    out = p.add_argument_group("outputs")
    out.add_argument("--headless", action="store_true", help="no window (--demo goes headless by itself without a display, or with a headless OpenCV)")
    out.add_argument("--record", type=Path, metavar="OUT.mp4", help="record the overlaid video and the original audio")
    out.add_argument("--events", type=Path, metavar="OUT.jsonl", help="one JSON line per inference (and status change)")
    out.add_argument("--save-windows", type=Path, metavar="DIR",
                     help="save every window the engine sees (DIR/windows_NNNNN.npz, for calibration)")
    out.add_argument("--max-seconds", type=_seconds, metavar="S", help="stop after S seconds (> 0)")
    out.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                     help="how much to log (default INFO); DEBUG also shows the native libraries' own lines")
    args = p.parse_args(argv)
    if args.camera is None and args.video is None and args.gst is None and not args.demo:
        print(f"{p.prog}: no input given, running the demo clip (--camera 0 for a webcam; see --help)", flush=True)
        args.demo = True
    if args.demo:
        args.video = str(DEMO_CLIP)
        args.headless = args.headless or not os.environ.get("DISPLAY") or not cv2.currentUIFramework()
        args.record = args.record or DEMO_OUT / "demo.mp4"
        args.events = args.events or DEMO_OUT / "events.jsonl"
    if not 1 <= args.threads <= CORES:
        p.error(f"--threads must be between 1 and {CORES} (the cores this process may use)")
    if args.engine is not None and args.backend in ("torch", "fused"):
        p.error(f"--engine is read by --backend onnx or trt, not {args.backend}: add --backend onnx (or trt), or drop --engine")
    if args.server is not None:
        from realtime.engines.remote_engine import server_address

        try:
            server_address(args.server)
        except ValueError as e:
            p.error(str(e))
    if args.backend == "fused" and args.device != "cuda":
        p.error("--backend fused runs Triton kernels on an NVIDIA GPU: add --device cuda (or use --backend torch or onnx)")
    for flag, path in (("--record", args.record), ("--events", args.events)):
        if path is not None and (why := _unwritable(path)):
            p.error(f"{flag} {path}: {why}")
    if not args.headless and not os.environ.get("DISPLAY") and sys.platform.startswith("linux"):
        p.error("no display ($DISPLAY is unset): add --headless (with --record or --events to keep the results)")
    if not args.headless and not cv2.currentUIFramework():  # opencv-python-headless: the runtime install's
        p.error("this OpenCV has no window (a headless build, as the runtime install's): add --headless "
                "(with --record or --events to keep the results), or install the window build "
                "(scripts/venv.sh runtime --window)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    limit_malloc_arenas()  # before any thread starts
    if args.log_level != "DEBUG":
        silence_native_stderr()  # MediaPipe, TFLite, FFmpeg and Kaldi print beneath Python's logging
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # OpenCV's own backend chatter
    # the app's own messages at --log-level; other libraries' from WARNING
    logging.basicConfig(level=max(logging.WARNING, logging.getLevelName(args.log_level)),
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("realtime").setLevel(args.log_level)
    try:
        return _run(args)
    except KeyboardInterrupt:  # Ctrl-C before the run's own handler is in place: nothing to finalise yet
        return 0


def _run(args: argparse.Namespace) -> int:
    from realtime.app import App, AppConfig  # after the arguments: MediaPipe and the front-ends take seconds to load
    from realtime.core.errors import SourceError

    video = args.camera if args.camera is not None else args.video if args.video is not None else args.gst
    config = AppConfig(video=video, mic=args.mic, audio=not args.no_audio, asr=not args.no_asr,
                       vosk_model=args.vosk_model, realtime=args.realtime, checkpoint=args.checkpoint,
                       backend=args.backend, engine_file=args.engine, device=args.device, threads=args.threads,
                       precision=args.precision, server=args.server,
                       headless=args.headless, record=args.record, events=args.events,
                       save_windows=args.save_windows, max_seconds=args.max_seconds)
    try:
        app = App(config)
    except (SourceError, ValueError, RuntimeError, OSError) as e:
        print(f"{prog()}: error: {one_line(e)}", file=sys.stderr)
        return 2
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _: app.stop(signal.Signals(signum).name))
    if args.demo:
        print(f"demo: {DEMO_CLIP.name} ({'headless' if args.headless else 'window'}); "
              f"writing {args.record} and {args.events}", flush=True)
    stats = app.run()
    recording = "recording" if app.recording_error is None else f"recording (off early: {app.recording_error})"
    print(f"done ({app.stop_reason}): {stats.inferences} inferences, {stats.shown} frames shown at "
          f"{stats.fps:.1f} fps" + "".join(f"; {what}: {path}" for what, path in
                                           ((recording, args.record), ("events", args.events),
                                            ("windows", args.save_windows)) if path is not None), flush=True)
    return 1 if app.failed else 0
