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

A write that fails (a full disk, a file removed from under it) raises ``RecordingError`` once; the
file is cut back to the end of its last complete top-level MP4 box (the last whole fragment), so
what was recorded before the failure still decodes cleanly, and later calls, ``close`` included,
do nothing.
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from realtime.capture.audio_source import SAMPLE_RATE, AudioChunk
from realtime.core.errors import one_line

VIDEO_CODEC = "libx264"
NOMINAL_FPS = 30  # the encoder's rate hint; frames keep their own timestamps
AUDIO_FRAME = 1024  # AAC frame size in samples
_TIME_BASE = Fraction(1, 1000)  # video timestamps in ms
# delay_moov: the header waits for the first fragment, so the AAC encoder delay goes into an edit
# list instead of shifting every video frame after the first
_MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof+delay_moov"
_MAX_GAP_S = 5.0  # a jump in audio time beyond this restarts the track there instead of filling silence


class RecordingError(OSError):
    """Writing the recording failed; the file holds what was written before the failure."""


class _RecordingFile:
    """The MP4's file, written straight through (no seeking, which fragmented MP4 never needs);
    after a failed write it refuses more and ``cut`` trims it to its last complete top-level box."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open(path, "w+b", buffering=0)
        self.error: OSError | None = None  # the first failed write's; FFmpeg may not pass it on

    def write(self, data: bytes) -> int:
        if self.error is not None:
            raise self.error
        view = memoryview(data)
        try:
            while view:
                view = view[self._file.write(view):]
        except OSError as e:
            self.error = e
            raise
        return len(data)

    def cut(self) -> None:
        """Trim the file to the end of its last complete box that is not a fragment header (moof)."""
        size = self._file.seek(0, os.SEEK_END)
        good = pos = 0
        while pos + 8 <= size:
            self._file.seek(pos)
            header = self._file.read(16)
            length, kind = struct.unpack(">I4s", header[:8])
            if length == 1 and len(header) == 16:  # a 64-bit size follows the type
                length = struct.unpack(">Q", header[8:16])[0]
            if length < 8 or pos + length > size:
                break
            pos += length
            if kind != b"moof":  # a moof is only whole with the mdat after it
                good = pos
        self._file.truncate(good)

    def close(self) -> None:
        self._file.close()


class Recorder:
    """``write_frame`` (BGR images) and ``write_audio`` (chunks) into ``path``; ``close`` finalises."""

    def __init__(self, path: str | Path, origin: float, audio: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.origin = origin
        self._file = _RecordingFile(self.path)
        self._container = av.open(self._file, "w", format="mp4", options={"movflags": _MOVFLAGS})
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
            pts = round((t - self.origin) / _TIME_BASE)
            if pts <= self._last_pts:
                return
            with self._failing_alone():
                if self._video is None:
                    self._video = self._open_video(image.shape[1], image.shape[0])
                    self._flush_audio(final=False)  # the audio that came before the first frame
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
            with self._failing_alone():
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
            with self._failing_alone():
                if self._audio is not None and self._written > 0:
                    self._flush_audio(final=True)
                    self._container.mux(self._audio.encode(None))
                if self._video is not None:
                    self._container.mux(self._video.encode(None))
                self._closed = True
                self._container.close()
            self._file.close()

    @contextmanager
    def _failing_alone(self) -> Iterator[None]:
        """Turn a failing write into one ``RecordingError``, leaving the file closed as it stands."""
        try:
            yield
            if self._file.error is not None:
                raise self._file.error
        except (OSError, av.FFmpegError, ValueError) as e:
            self._closed = True
            self._file.error = self._file.error or RecordingError("closed after a failure")  # nothing more goes in
            with suppress(Exception):
                self._container.close()
            with suppress(OSError):
                self._file.cut()
            self._file.close()
            raise RecordingError(f"writing the recording {self.path} failed ({one_line(e)}); "
                                 "what was recorded before is kept") from e
