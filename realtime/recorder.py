"""Recording: the overlaid video and the original audio into one MP4, written as it happens.

Frames and audio chunks carry shared-clock times; the recording's time 0 is ``origin``, so the
two streams stay in sync however irregularly they arrive (a camera's variable frame rate, a display
that drops frames, audio that starts later). Video is H.264 (``libx264``, ``ultrafast`` and
``zerolatency``: a few ms a frame on one core) with a millisecond time base; audio is AAC at the
sources' 16 kHz mono, with silence inserted where chunks are missing. The video stream is added at
the first frame (its size is known then); audio that comes earlier waits for it, because a stream
cannot be added to a file that has started.

The file is a fragmented MP4 with a keyframe (and so a fragment) every second: if the process is
killed before ``close``, the fragments written so far still decode (a SIGKILL loses the last second
or two); ``close`` (called on every exit path) writes the rest. Both writers may be called from different threads.
"""

from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .audio_source import SAMPLE_RATE, AudioChunk

VIDEO_CODEC = "libx264"
NOMINAL_FPS = 30  # the encoder's rate hint; frames keep their own timestamps
AUDIO_FRAME = 1024  # AAC frame size in samples
_TIME_BASE = Fraction(1, 1000)  # video timestamps in ms
# delay_moov: the header waits for the first fragment, so the AAC encoder delay goes into an edit
# list instead of shifting every video frame after the first
_MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof+delay_moov"
_MAX_GAP_S = 5.0  # a jump in audio time beyond this restarts the track there instead of filling silence


class Recorder:
    """``write_frame`` (BGR images) and ``write_audio`` (chunks) into ``path``; ``close`` finalises."""

    def __init__(self, path: str | Path, origin: float, audio: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.origin = origin
        self._container = av.open(str(self.path), "w", format="mp4",
                                  options={"movflags": _MOVFLAGS})
        self._lock = threading.Lock()
        self._video: av.VideoStream | None = None  # created at the first frame, sized by it
        self._last_pts = -1
        self._audio: av.AudioStream | None = None
        if audio:
            self._audio = self._container.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        self._pending = np.zeros(0, np.float32)  # audio samples not yet a whole AAC frame
        self._written = 0  # audio samples encoded (or pending), from the recording's time 0
        self._closed = False

    def _open_video(self, width: int, height: int) -> av.VideoStream:
        stream = self._container.add_stream(VIDEO_CODEC, rate=NOMINAL_FPS,
                                            options={"preset": "ultrafast", "tune": "zerolatency",
                                                     "g": str(NOMINAL_FPS), "crf": "23"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = _TIME_BASE
        return stream

    def write_frame(self, image: np.ndarray, t: float) -> None:
        """Encode one BGR frame shown at clock time ``t``; frames not after the previous one are skipped."""
        with self._lock:
            if self._closed:
                return
            if self._video is None:
                self._video = self._open_video(image.shape[1], image.shape[0])
                self._flush_audio(final=False)  # the audio that came before the first frame
            pts = round((t - self.origin) / _TIME_BASE)
            if pts <= self._last_pts:
                return
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            if (frame.width, frame.height) != (self._video.width, self._video.height):  # a camera came back resized
                frame = frame.reformat(self._video.width, self._video.height)
            frame.pts, frame.time_base = pts, _TIME_BASE
            self._container.mux(self._video.encode(frame))
            self._last_pts = pts

    def write_audio(self, chunk: AudioChunk) -> None:
        """Append a chunk at its place in time: a gap is filled with silence, overlap is trimmed."""
        with self._lock:
            if self._closed or self._audio is None:
                return
            start = round((chunk.t0 - self.origin) * SAMPLE_RATE)
            samples = chunk.samples
            gap = start - self._written
            if gap > _MAX_GAP_S * SAMPLE_RATE and self._video is not None:  # a long outage: go on at ``start``
                self._flush_audio(final=True)
                self._written = start
            elif gap > 0:
                samples = np.concatenate([np.zeros(gap, np.float32), samples])
            elif gap < 0:
                samples = samples[-gap:]
            self._pending = np.concatenate([self._pending, samples.astype(np.float32)])
            self._written += len(samples)
            self._flush_audio(final=False)

    def _flush_audio(self, final: bool) -> None:
        """Encode the whole AAC frames pending (all of them, zero-padded, when ``final``). Nothing is
        muxed before the first video frame has added its stream: a stream cannot join a started file."""
        if self._video is None and not final:
            return
        n = len(self._pending) if final else len(self._pending) - len(self._pending) % AUDIO_FRAME
        first = self._written - len(self._pending)  # time of pending[0], in samples
        for a in range(0, n, AUDIO_FRAME):
            block = np.pad(self._pending[a:a + AUDIO_FRAME], (0, max(0, a + AUDIO_FRAME - n)))
            frame = av.AudioFrame.from_ndarray(block[None, :], format="flt", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = SAMPLE_RATE, first + a, Fraction(1, SAMPLE_RATE)
            self._container.mux(self._audio.encode(frame))
        self._written += -n % AUDIO_FRAME  # the padding of a final partial frame
        self._pending = self._pending[n:]

    def close(self) -> None:
        """Flush the encoders and finish the file; safe to call more than once."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                if self._audio is not None and self._written > 0:
                    self._flush_audio(final=True)
                    self._container.mux(self._audio.encode(None))
                if self._video is not None:
                    self._container.mux(self._video.encode(None))
            finally:
                self._container.close()
