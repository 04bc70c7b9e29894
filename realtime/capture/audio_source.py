"""Audio sources: a microphone (sounddevice / PortAudio) or the audio track of a file (PyAV), as a
stream of 16 kHz mono float32 ``AudioChunk``s stamped on the shared monotonic clock.

A source produces in its own thread (PortAudio's callback thread for a microphone, a decoder
thread for a file) and hands chunks over through a bounded queue. A live source never blocks: when
the consumer falls behind, the oldest chunk is dropped and counted in ``dropped``. An unpaced file
waits for its consumer instead, so offline extraction loses nothing.

Timestamps (``AudioChunk.t0`` is the shared-clock time of the chunk's first sample):
- microphone: anchored on the clock at the first callback (arrival time minus the input latency),
  then advanced by sample count, so consecutive chunks are contiguous; re-anchored when the clock
  and the sample count disagree by more than ``RESYNC_S`` (samples lost in an overflow, clock drift).
- file: start time + media time. Paced (``pace=True``), a chunk is delivered when the clock
  reaches its last sample, as a microphone would deliver it.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import av
import numpy as np

from realtime.core.clock import now
from realtime.core.errors import SourceError
from realtime.core.handoff import POLL_S, Handoff

SAMPLE_RATE = 16_000  # Hz, mono float32 in [-1, 1] everywhere after the source
BLOCK_S = 0.02  # chunk length a source delivers
BLOCK = round(SAMPLE_RATE * BLOCK_S)  # 320 samples
QUEUE_S = 2.0  # audio a source buffers for a slow consumer before it drops the oldest
RESYNC_S = 0.1  # a microphone re-anchors its timestamps past this clock/sample-count disagreement


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """Consecutive samples of one stream; ``t0`` is the shared-clock time of ``samples[0]``."""

    t0: float
    samples: np.ndarray  # (n,) float32 at SAMPLE_RATE

    @property
    def duration(self) -> float:
        return len(self.samples) / SAMPLE_RATE


class StreamTimeline:
    """Shared-clock time of every sample of a stream assembled from chunks.

    Samples are counted from the stream's first chunk. Each chunk's ``t0`` fixes the clock time of
    sample 0 (the anchor); when a chunk's anchor differs from the previous one (chunks were dropped),
    a new segment begins, so the jump shifts the times after it and not those before.
    """

    _JUMP_S = 1e-3  # anchors closer than this are the same segment (float rounding)
    _MAX_SEGMENTS = 256  # older segments are forgotten; their samples map through the oldest kept

    def __init__(self, sample_rate: int = SAMPLE_RATE) -> None:
        self.sample_rate = sample_rate
        self.samples = 0  # samples appended so far
        self._starts: list[int] = []  # first sample index of each segment
        self._anchors: list[float] = []  # clock time of sample index 0, per segment

    def append(self, chunk: AudioChunk) -> None:
        anchor = chunk.t0 - self.samples / self.sample_rate
        if not self._anchors or abs(anchor - self._anchors[-1]) > self._JUMP_S:
            self._starts.append(self.samples)
            self._anchors.append(anchor)
            del self._starts[: -self._MAX_SEGMENTS], self._anchors[: -self._MAX_SEGMENTS]
        self.samples += len(chunk.samples)

    def time(self, index: float) -> float:
        """Clock time of (fractional) sample ``index``."""
        if not self._anchors:
            raise ValueError("StreamTimeline.time: no chunk appended yet")
        segment = max(bisect.bisect_right(self._starts, index) - 1, 0)
        return self._anchors[segment] + index / self.sample_rate


class AudioSource:
    """Base of the sources: a producer filling a bounded queue, with start/stop and iteration.

    ``get`` returns the next chunk, or None on timeout or at the end; ``ended`` tells which.
    Iterating yields chunks until the source ends or is stopped. A failure in the producer is
    raised as ``SourceError`` from ``get`` once the chunks before it are consumed.
    """

    def __init__(self, queue_s: float = QUEUE_S, block_s: float = BLOCK_S) -> None:
        self.block = round(SAMPLE_RATE * block_s)
        self._queue: Handoff[AudioChunk] = Handoff(max(1, round(queue_s / block_s)))
        self._stop = threading.Event()
        self._done = threading.Event()  # the producer will put nothing more
        self._error: SourceError | None = None
        self._started = False

    def start(self) -> AudioSource:
        if self._started:
            raise RuntimeError(f"{type(self).__name__} was already started")
        self._started = True
        self._open()
        return self

    def stop(self) -> None:
        """Stop producing (within ``POLL_S``); chunks already queued can still be read."""
        self._stop.set()
        self._close()
        self._done.set()

    @property
    def ended(self) -> bool:
        return self._done.is_set() and not len(self._queue)

    @property
    def dropped(self) -> int:
        """Chunks dropped because the consumer fell behind."""
        return self._queue.dropped

    def get(self, timeout: float | None = None) -> AudioChunk | None:
        deadline = None if timeout is None else now() + timeout
        while True:
            wait = POLL_S if deadline is None else min(POLL_S, max(deadline - now(), 0.0))
            if (chunk := self._queue.get(timeout=wait)) is not None:
                return chunk
            if self.ended:
                if self._error is not None:
                    raise self._error
                return None
            if deadline is not None and now() >= deadline:
                return None

    def __iter__(self) -> Iterator[AudioChunk]:
        while (chunk := self.get()) is not None:
            yield chunk

    def __enter__(self) -> AudioSource:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _put(self, chunk: AudioChunk, wait: bool) -> None:
        """Queue ``chunk``; when full, wait for room (``wait``) or drop the oldest chunk."""
        self._queue.put(chunk, wait, self._stop)

    def _open(self) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError


def _sounddevice() -> ModuleType:
    try:
        import sounddevice
    except OSError:  # sounddevice raises OSError when it cannot load the PortAudio library
        raise SourceError("the PortAudio library is missing; install it (Debian/Ubuntu: "
                          "sudo apt-get install libportaudio2) or read audio from a file") from None
    return sounddevice


def find_input_device(device: int | str | None = None) -> int:
    """PortAudio index of an input device: by index, by name (exact, else a unique substring,
    case-insensitive), or the default input when ``device`` is None."""
    sd = _sounddevice()
    inputs = {d["index"]: d["name"] for d in sd.query_devices() if d["max_input_channels"] > 0}
    if not inputs:
        raise SourceError("no audio input device found; connect a microphone (or start PulseAudio) "
                          "or read audio from a file")
    listing = ", ".join(f"{i} {n!r}" for i, n in inputs.items())
    if device is None:
        default = sd.default.device[0]
        return default if default in inputs else next(iter(inputs))
    if isinstance(device, int) or device.strip().isdigit():
        if int(device) in inputs:
            return int(device)
        raise SourceError(f"audio input device {device} does not exist; inputs are: {listing}")
    wanted = device.casefold()
    exact = [i for i, n in inputs.items() if n.casefold() == wanted]
    partial = [i for i, n in inputs.items() if wanted in n.casefold()]
    if exact or len(partial) == 1:
        return (exact or partial)[0]
    what = "matches several" if partial else "matches no"
    raise SourceError(f"audio input device name {device!r} {what} input device; inputs are: {listing}")


class MicrophoneSource(AudioSource):
    """Live capture from an input device through PortAudio.

    The device is opened at 16 kHz mono when it accepts that, else at its native rate
    (or ``capture_rate``) and resampled with FFmpeg's resampler in the callback.
    """

    def __init__(self, device: int | str | None = None, *, capture_rate: int | None = None,
                 block_s: float = BLOCK_S, queue_s: float = QUEUE_S) -> None:
        super().__init__(queue_s, block_s)
        self._sd = _sounddevice()
        self.device = find_input_device(device)
        info = self._sd.query_devices(self.device)
        self.name: str = info["name"]
        if capture_rate is None:
            try:
                self._sd.check_input_settings(self.device, channels=1, dtype="float32", samplerate=SAMPLE_RATE)
                capture_rate = SAMPLE_RATE
            except self._sd.PortAudioError:
                capture_rate = round(info["default_samplerate"])
        self.capture_rate = capture_rate
        self._resampler = (None if capture_rate == SAMPLE_RATE else
                           av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE))
        self.overflows = 0  # callbacks where PortAudio reported lost input samples
        self._samples = 0  # samples delivered so far
        self._anchor: float | None = None  # clock time of sample 0
        self._stream = None

    def _open(self) -> None:
        try:
            self._stream = self._sd.InputStream(
                device=self.device, samplerate=self.capture_rate, channels=1, dtype="float32",
                blocksize=round(self.block * self.capture_rate / SAMPLE_RATE), callback=self._callback)
            self._stream.start()
        except self._sd.PortAudioError as e:
            raise SourceError(f"cannot open audio input {self.name!r} ({e}); check that it is "
                              "connected and not used exclusively by another program") from None

    def _close(self) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None

    def _callback(self, indata: np.ndarray, frames: int, time_info, status) -> None:
        arrival = now()
        if status.input_overflow:
            self.overflows += 1
        samples = indata[:, 0].copy()
        if self._resampler is not None:
            frame = av.AudioFrame.from_ndarray(samples[None, :], format="flt", layout="mono")
            frame.sample_rate = self.capture_rate
            parts = [f.to_ndarray()[0] for f in self._resampler.resample(frame)]
            samples = np.concatenate(parts) if parts else samples[:0]
        if len(samples) == 0:
            return
        # Time of the block's first sample; some host APIs (ALSA's pulse plugin) report
        # meaningless stream times, so a latency outside [0, 1) s is replaced by the block length.
        latency = time_info.currentTime - time_info.inputBufferAdcTime
        if not 0 <= latency < 1:
            latency = frames / self.capture_rate
        t0 = arrival - latency
        predicted = None if self._anchor is None else self._anchor + self._samples / SAMPLE_RATE
        if predicted is None or abs(t0 - predicted) > RESYNC_S:
            self._anchor = t0 - self._samples / SAMPLE_RATE
            predicted = t0
        self._samples += len(samples)
        self._put(AudioChunk(predicted, samples), wait=False)


class FileAudioSource(AudioSource):
    """The audio track of a file (wav, flac, mp3, mp4, ...), decoded and resampled by PyAV.

    ``pace=True`` delivers in real time so the file behaves like a microphone (and drops the oldest
    chunks if the consumer falls behind); by default chunks come as fast as the consumer takes them
    (extraction).
    ``start`` is the clock time of media time 0 (default: when ``start()`` is called); give two
    sources of the same file the same ``start`` to keep them in sync.
    """

    def __init__(self, path: str | Path, *, pace: bool = False, start: float | None = None,
                 block_s: float = BLOCK_S, queue_s: float = QUEUE_S) -> None:
        super().__init__(queue_s, block_s)
        self.path = Path(path)
        self.pace = pace
        self.start_time = start
        try:
            self._container = av.open(str(self.path))
        except (av.FFmpegError, OSError) as e:
            reason = getattr(e, "strerror", None) or str(e)
            raise SourceError(f"cannot read {self.path}: {reason}; check the path and that it is an "
                              "audio or video file") from None
        if not self._container.streams.audio:
            self._container.close()
            raise SourceError(f"{self.path} has no audio track; use a file with sound or the microphone")
        self._stream = stream = self._container.streams.audio[0]
        self.duration: float | None = None  # length of the audio track in seconds, when the file says
        if stream.duration is not None and stream.time_base is not None:
            self.duration = float(stream.duration * stream.time_base)
        elif self._container.duration is not None:
            self.duration = self._container.duration / av.time_base
        self._thread = threading.Thread(target=self._run, name=f"audio:{self.path.name}", daemon=True)

    def _open(self) -> None:
        if self.start_time is None:
            self.start_time = now()
        self._thread.start()

    def _close(self) -> None:
        if self._thread.ident is None:  # never started: nobody else will close the file
            self._container.close()
        elif self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        try:
            self._decode()
        except Exception as e:  # a broken packet mid-file: end the stream with a clear error
            self._error = SourceError(f"decoding the audio of {self.path} failed: {e}")
        finally:
            self._container.close()
            self._done.set()

    def _decode(self) -> None:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        pending: list[np.ndarray] = []
        media_t0: float | None = None  # media time of the first sample
        sent = 0  # samples delivered
        for frame in self._container.decode(self._stream):
            if media_t0 is None:
                media_t0 = frame.time or 0.0
            pending += [f.to_ndarray()[0] for f in resampler.resample(frame)]
            sent = self._deliver(pending, media_t0, sent, final=False)
            if self._stop.is_set():
                return
        pending += [f.to_ndarray()[0] for f in resampler.resample(None)]
        self._deliver(pending, media_t0 or 0.0, sent, final=True)

    def _deliver(self, pending: list[np.ndarray], media_t0: float, sent: int, final: bool) -> int:
        """Send whole blocks from ``pending`` (and the remainder when ``final``), keeping the rest
        in it; return the updated count of samples sent."""
        samples = np.concatenate(pending) if pending else np.empty(0, np.float32)
        n_send = len(samples) if final else len(samples) - len(samples) % self.block
        for a in range(0, n_send, self.block):
            block = samples[a:min(a + self.block, n_send)]
            t0 = self.start_time + media_t0 + sent / SAMPLE_RATE
            sent += len(block)
            if self.pace and self._stop.wait(max(0.0, t0 + len(block) / SAMPLE_RATE - now())):
                break
            if self._stop.is_set():
                break
            self._put(AudioChunk(t0, block), wait=not self.pace)
        pending[:] = [samples[n_send:]]
        return sent
