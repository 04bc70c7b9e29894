"""Make the bundled demo clip, ``realtime/data/media/demo.mp4``: a real face that moves a little, and speech.

    python scripts/make_demo_clip.py [--out realtime/data/media/demo.mp4]

Picture: ``media/astronaut.png``, NASA's portrait of astronaut Eileen Collins (public domain, as
shipped by scikit-image), animated with a slow zoom and a gentle sway so that the face tracker sees
motion. Sound: English sentences spoken by espeak-ng (GPL-3 program; its output is ours to use),
mixed to 16 kHz mono. Video 640x480 at 30 fps (H.264), audio AAC, in one MP4 that anyone may
redistribute.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from realtime.core.errors import run_cli
from realtime.core.resources import shipped

ROOT = Path(__file__).resolve().parent.parent
PORTRAIT = ROOT / "media" / "astronaut.png"
SENTENCES = (
    "Hello! I am so happy to see you today. This is wonderful news.",
    "But yesterday was awful. I was really sad and angry about it.",
)
WIDTH, HEIGHT, FPS, SAMPLE_RATE = 640, 480, 30, 16000


def speech(text: str, workdir: Path) -> np.ndarray:
    """espeak-ng's rendering of ``text`` as float32 mono at SAMPLE_RATE."""
    wav = workdir / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), text], check=True)
    with av.open(str(wav)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        chunks = [r.to_ndarray().reshape(-1) for f in container.decode(audio=0) for r in resampler.resample(f)]
    return np.concatenate(chunks).astype(np.float32)


def soundtrack(workdir: Path) -> np.ndarray:
    """The sentences with half a second of silence before, between and after."""
    gap = np.zeros(SAMPLE_RATE // 2, np.float32)
    parts = [gap]
    for sentence in SENTENCES:
        parts += [speech(sentence, workdir), gap]
    return np.concatenate(parts)


def frame(portrait: np.ndarray, t: float) -> np.ndarray:
    """The portrait at time t: zoomed by up to 6% and swayed by a few pixels, on 640x480."""
    zoom = 1.0 + 0.03 * (1 - np.cos(2 * np.pi * t / 8))
    dx, dy = 12 * np.sin(2 * np.pi * t / 5), 6 * np.sin(2 * np.pi * t / 7)
    h, w = portrait.shape[:2]
    scale = HEIGHT / h * zoom
    m = np.array([[scale, 0, WIDTH / 2 - scale * w / 2 + dx], [0, scale, HEIGHT / 2 - scale * h / 2 + dy]])
    return cv2.warpAffine(portrait, m, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR, borderValue=(40, 40, 40))


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=shipped("media/demo.mp4"), help="output MP4 (default: %(default)s)")
    return p


def main() -> None:
    args = parser().parse_args()
    portrait = cv2.imread(str(PORTRAIT), cv2.IMREAD_COLOR)
    with tempfile.TemporaryDirectory() as tmp:
        audio = soundtrack(Path(tmp))
    n_frames = int(np.ceil(len(audio) / SAMPLE_RATE * FPS))
    with av.open(str(args.out), "w") as out:
        video = out.add_stream("libx264", rate=FPS, options={"crf": "28", "preset": "medium"})
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        sound = out.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        for i in range(n_frames):
            vf = av.VideoFrame.from_ndarray(frame(portrait, i / FPS), format="bgr24")
            out.mux(video.encode(vf))
        block = 1024
        for start in range(0, len(audio), block):
            af = av.AudioFrame.from_ndarray(audio[None, start:start + block], format="flt", layout="mono")
            af.sample_rate, af.pts, af.time_base = SAMPLE_RATE, start, Fraction(1, SAMPLE_RATE)
            out.mux(sound.encode(af))
        out.mux(video.encode())
        out.mux(sound.encode())
    print(f"wrote {args.out}: {n_frames / FPS:.1f} s, {WIDTH}x{HEIGHT} at {FPS} fps, speech {len(audio) / SAMPLE_RATE:.1f} s")


if __name__ == "__main__":
    run_cli(main)
