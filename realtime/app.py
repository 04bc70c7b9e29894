"""The live recognizer: sources -> front-ends -> window assembler -> engine -> smoother -> overlay.

One thread per stage, as in DESIGN.md, talking through bounded queues and ``Track``s:

    capture    VideoSource's reader, plus a pump that hands each frame to the face and display
               queues (newest wins; drops counted) and reconnects a lost camera or stream with
               back-off (0.5 s, doubling to 8 s; back to 0.5 s only once frames have flowed for
               FLOWING_S, so a source that opens and then delivers nothing is retried ever slower)
    face       FaceFrontEnd on at most one frame per visual step (15 Hz) -> Resampler -> visual track
    audio      AudioSource -> recorder (the original audio), VoiceFrontEnd -> audio track, and a
               bounded queue to the ASR; a microphone that delivers nothing for 2 s is reopened
               with back-off
    asr        StreamingASR -> text track; its model is resolved (and downloaded if need be) and loaded
               from the start on an ``asr-load`` thread, while the engine loads, so that no stop waits
               for it (the loader holds nothing to finalise and is not joined); the audio heard
               meanwhile is kept and decoded once the model is ready
    inference  every hop: the window ending at the hop's time -> engine -> smoother -> events
    display    the calling thread: newest frame + newest result -> overlay -> window / recorder

Why the face runs once per visual step: the model sees the face at 15 Hz (the Resampler keeps the
newest observation at or before each step, as ``extract`` does offline), so the frames between
steps would cost CPU and change nothing but how fast the face box follows; the display still shows
every frame. Why display is on the calling thread: OpenCV's HighGUI wants one thread, and signal
handlers run on the main one.

A failing input turns its modality off (said on screen, in the log and in the events) and the rest
keeps running; the model takes any subset of modalities. ``stop()`` (Ctrl-C, SIGTERM, q / Esc,
window close, end of input, ``max_seconds``) ends every thread within a second, then the recorder,
the event log and the window files are finalised, whichever way the run ended.

Files play in real time by default (``realtime=True``), like a camera. ``realtime=False`` reads them
as fast as the slowest stage allows: nothing is dropped, windows follow the data (``DataClock``) and
producers wait instead of running more than half a window ahead of the inference.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np

from realtime.capture.audio_source import BLOCK_S, AudioChunk, AudioSource, FileAudioSource, MicrophoneSource
from realtime.capture.video_source import Frame, FrameQueue, VideoSource
from realtime.core.backoff import Backoff
from realtime.core.clock import now
from realtime.core.errors import NonFiniteOutputError, SourceError, one_line
from realtime.core.handoff import put_or_drop
from realtime.core.modalities import EDGE_NAMES, MODALITIES
from realtime.engines import make_engine
from realtime.engines.base import Engine, Inference
from realtime.frontends.asr import StreamingASR, resolve_vosk_model
from realtime.frontends.face import PRESENCE, FaceFrontEnd, FaceObservation, Resampler
from realtime.frontends.text_frontend import TextFrontEnd
from realtime.frontends.voice import VoiceFrontEnd
from realtime.outputs.events import EventLog, WindowSaver
from realtime.outputs.overlay import OverlayState, Readout, render
from realtime.outputs.recorder import Recorder, RecordingError
from realtime.smoothing import Decision, Smoother
from realtime.window import Window, WindowAssembler

log = logging.getLogger("realtime.app")

WINDOW_TITLE = "dmd-realtime (q or Esc to quit)"
POLL_S = 0.1  # longest any thread waits before looking at the stop flag
JOIN_S = 1.0  # all threads together must end within this after stop()
MIC_SILENT_S = 2.0  # a live microphone that delivers nothing this long is treated as gone
BACKOFF_S = (0.5, 8.0)  # first and longest wait between reconnection attempts
FLOWING_S = 1.0  # a reopened source counts as working once it has delivered frames this long
LOADER_JOIN_S = 60.0  # longest the exit waits for a speech model still loading
S = TypeVar("S")  # a source that _reopen opens
ASR_QUEUE_S = 2.0  # audio the ASR may fall behind before its oldest chunks are dropped
WORDS_SHOWN = 12
STATS_KEPT = 100_000  # latency samples kept for the summary (bounded memory on long runs)


@dataclass(frozen=True)
class AppConfig:
    """What ``main.py`` parses; see ``main.py --help`` for each field."""

    video: int | str  # camera index, file, URL or GStreamer pipeline
    mic: str | None = None  # None: a file's own audio, else the default microphone
    audio: bool = True
    asr: bool = True
    vosk_model: str | None = None
    realtime: bool = True
    checkpoint: str = "default"
    backend: str = "torch"
    engine_file: str | None = None
    device: str = "cpu"
    threads: int | None = 1
    headless: bool = False
    record: Path | None = None
    events: Path | None = None
    save_windows: Path | None = None
    max_seconds: float | None = None


@dataclass
class Stats:
    """What a run measured (``bench/pipeline.py`` prints it)."""

    glass_ms: deque = field(default_factory=lambda: deque(maxlen=STATS_KEPT))  # capture -> shown
    update_ms: deque = field(default_factory=lambda: deque(maxlen=STATS_KEPT))  # window end -> result
    model_ms: deque = field(default_factory=lambda: deque(maxlen=STATS_KEPT))
    shown: int = 0  # frames rendered and shown (or recorded)
    first_shown: float | None = None
    last_shown: float | None = None
    inferences: int = 0
    hops_skipped: int = 0  # hops whose window was not taken because inference was late
    display_dropped: int = 0
    capture_dropped: int = 0
    asr_dropped: int = 0
    asr_renewals: int = 0  # recognisers the ASR renewed to bound its memory (see StreamingASR)
    failed_windows: int = 0  # windows whose model output was not finite (reported, not shown)
    join_s: float = 0.0  # how long the threads took to end after stop()

    @property
    def fps(self) -> float:
        if self.first_shown is None or self.last_shown is None or self.last_shown <= self.first_shown:
            return 0.0
        return (self.shown - 1) / (self.last_shown - self.first_shown)


class DataClock:
    """Up to when windows can be taken. Live: the shared clock. As fast as possible: the time up to
    which every running stream has delivered (``advance``; ``finish`` when one ends); producers
    ``hold`` while they are more than ``lead_s`` ahead of the inference (``consumed``)."""

    def __init__(self, live: bool, streams: Iterable[str], start: float, lead_s: float) -> None:
        self.live, self.lead_s = live, lead_s
        self._t = {s: -math.inf for s in streams}
        self._last = -math.inf  # latest finite time any stream reached
        self._consumed = start
        self._cond = threading.Condition()

    def advance(self, stream: str, t: float) -> None:
        with self._cond:
            self._t[stream] = max(self._t[stream], t)
            if t < math.inf:
                self._last = max(self._last, t)
            self._cond.notify_all()

    def finish(self, stream: str) -> None:
        self.advance(stream, math.inf)

    def time(self) -> float:
        if self.live:
            return now()
        with self._cond:
            return min(self._t.values(), default=math.inf)

    def last(self) -> float:
        """Latest time any stream reached (the end of the data once all have finished)."""
        with self._cond:
            return self._last

    @property
    def finished(self) -> bool:
        with self._cond:
            return all(t == math.inf for t in self._t.values())

    def wait_for(self, t: float, stop: threading.Event) -> bool:
        """Wait (at most POLL_S) until the data reach ``t``; True when they have."""
        if self.live:
            stop.wait(min(POLL_S, max(0.0, t - now())))
            return now() >= t
        with self._cond:
            if self.time() < t:
                self._cond.wait(POLL_S)
        return self.time() >= t

    def consumed(self, t: float) -> None:
        with self._cond:
            self._consumed = t
            self._cond.notify_all()

    def hold(self, t: float, stop: threading.Event) -> None:
        """Producers, as fast as possible: wait while ``t`` is more than ``lead_s`` ahead of the inference."""
        if self.live:
            return
        with self._cond:
            while t > self._consumed + self.lead_s and not stop.is_set():
                self._cond.wait(POLL_S)


def _window_open() -> bool:
    """Whether the overlay window is still open. Closing Qt's last HighGUI window deletes its GUI
    receiver, after which asking about the window raises instead of answering "not visible"."""
    try:
        return cv2.getWindowProperty(WINDOW_TITLE, cv2.WND_PROP_VISIBLE) >= 1
    except cv2.error:
        return False


def _is_live(video: int | str) -> bool:
    return isinstance(video, int) or not Path(str(video)).is_file()


class App:
    """Opens the inputs and loads the engine (raising ``SourceError`` / ``ValueError`` / ``RuntimeError``
    / ``OSError`` with one-line messages when they are unusable); ``run`` runs until stopped."""

    def __init__(self, config: AppConfig) -> None:
        self.config = config
        # the state every path reads, made before anything can fail
        self.stats = Stats()
        self._stop = threading.Event()
        self.stop_reason = "end of input"
        self._start = now()  # set again when run() starts
        self._off: dict[str, str] = {}
        self._off_lock = threading.Lock()
        self._threads: dict[str, threading.Thread] = {}
        self._reconnecting = False  # the capture thread's own: visual is off until a reopened source flows
        self._video_backoff = Backoff(*BACKOFF_S)
        self._mic_backoff = Backoff(*BACKOFF_S)
        self.video: VideoSource | None = None
        self._audio_source: AudioSource | None = None
        self._asr_loaded: StreamingASR | Exception | None = None
        self._asr_loader = threading.Thread(target=self._load_asr, name="asr-load", daemon=True)
        self.events: EventLog | None = None
        self.recorder: Recorder | None = None
        self.recording_error: str | None = None  # why the recording stopped early, if it did
        self.saver: WindowSaver | None = None
        # what the display reads (each a reference swapped whole by its one writer thread)
        self._face: FaceObservation | None = None
        self._decision: Decision | None = None
        self._present: dict[str, bool] = {}
        self._edges: np.ndarray | None = None
        self._words: deque[str] = deque(maxlen=WORDS_SHOWN)  # the ASR thread's own
        self._words_text = ""  # the same words, for the other threads
        self._partial = ""
        self._asr_lag: float | None = None
        try:
            self._open()
        except BaseException:  # a failed start leaves no source open and no loader running
            self._close_inputs()
            raise

    def _open(self) -> None:
        """Open the window, the inputs, the engine and the event log and window files."""
        c = self.config
        if not c.headless:  # first: a display Qt cannot use aborts the process, before anything is open
            cv2.namedWindow(WINDOW_TITLE, cv2.WINDOW_NORMAL | cv2.WINDOW_GUI_NORMAL)  # resizable, no toolbar
        self.video = self._open_video()
        self.live = _is_live(c.video)
        self._audio_source = self._open_audio() if c.audio else None  # started by run()
        self.has_audio = self._audio_source is not None
        if c.asr and self.has_audio:
            self._asr_loader.start()
        self.engine: Engine = make_engine(c.backend, c.checkpoint, c.device, c.threads, c.engine_file)
        self.spec = self.engine.spec
        self.assembler = WindowAssembler(self.spec)
        self.tracks = self.assembler.make_tracks()
        with contextlib.suppress(NonFiniteOutputError):  # such windows are reported one by one while running
            self.engine.infer(self.assembler.from_streams(0.0, {}))  # warm-up: the first run is the slowest
        if c.events is not None:
            self.events = EventLog(c.events)
        if c.save_windows is not None:
            self.saver = WindowSaver(c.save_windows)

    def _close_inputs(self) -> None:
        """Stop the sources and wait for the ASR loader: a process must not exit while it is in Vosk."""
        if self.video is not None:
            self.video.stop(timeout=0.2)
        if self._audio_source is not None:
            self._audio_source.stop()
        if self._asr_loader.ident is not None:
            self._asr_loader.join(LOADER_JOIN_S)
        if self.events is not None:
            self.events.close()

    # ------------------------------------------------------------------ inputs

    def _open_video(self) -> VideoSource:
        return VideoSource(self.config.video, pace=self.config.realtime, maxlen=2 if self.config.realtime else 4)

    def _open_audio(self) -> AudioSource | None:
        """The audio source, not started; None (audio off, said why) when an implicit one is missing."""
        c = self.config
        if c.mic is not None:
            return MicrophoneSource(c.mic)  # asked for by name: a failure is the user's to fix
        try:
            if not self.live:
                return FileAudioSource(c.video, pace=c.realtime)
            return MicrophoneSource(None)
        except SourceError as e:
            self._set_off("audio", one_line(e))
            return None

    def _set_off(self, modality: str, why: str | None) -> None:
        """Mark a modality off (``why``) or back on (None); log and write a status event on change."""
        with self._off_lock:
            if self._off.get(modality) == why:
                return
            if why is None:
                self._off.pop(modality, None)
            else:
                self._off[modality] = why
        if why is None:
            log.warning("%s back on", modality)
        else:
            log.warning("%s off: %s", modality, why)
        self._write_event({"type": "status", "t": self._rel(now()), "modality": modality,
                           "state": "off" if why else "on", "why": why or ""})

    def _write_event(self, event: dict) -> None:
        """Append to the event log; a log that cannot be written is closed and said, the run goes on."""
        events = self.events
        if events is None:
            return
        try:
            events.write(event)
        except OSError as e:
            self.events = None
            log.error("event log off: writing %s failed (%s)", events.path, one_line(e))
            events.close()

    def _record(self, write: Callable[..., None], *args: object) -> None:
        """Call a recorder writer; a failing recording turns off alone (said on screen and in the events)."""
        try:
            write(*args)
        except RecordingError as e:
            self.recorder, self.recording_error = None, one_line(e)
            self._set_off("recording", self.recording_error)

    def _rel(self, t: float) -> float:
        return round(t - self._start, 4)

    # ------------------------------------------------------------------ lifecycle

    @property
    def failed(self) -> bool:
        """Whether a thread ended the run with an unexpected error."""
        return self.stop_reason.startswith("error")

    def stop(self, reason: str = "stopped") -> None:
        """Ask every thread to end (safe from a signal handler)."""
        if not self._stop.is_set():
            self.stop_reason = reason
        self._stop.set()

    def run(self) -> Stats:
        """Start the threads, show frames on this thread until the end, then finalise everything."""
        c = self.config
        self._start = now()
        try:
            if c.record is not None:
                try:
                    self.recorder = Recorder(c.record, self._start, audio=self.has_audio)
                except OSError as e:
                    self.recording_error = one_line(e)
                    self._set_off("recording", f"cannot write {c.record} ({self.recording_error})")
            self._write_start_event()
            self._run_threads()
        finally:
            self._finalise()
        return self.stats

    def _write_start_event(self) -> None:
        c = self.config
        with self._off_lock:
            off = dict(self._off)
        self._write_event({"type": "start", "wall_time": time.time(), "input": str(c.video),
                           "audio": type(self._audio_source).__name__ if self.has_audio else None, "off": off,
                           "backend": self.engine.name, "checkpoint": str(c.checkpoint), "labels": list(self.spec.labels),
                           "edges": list(EDGE_NAMES), "window_s": self.spec.window_s, "hop_s": self.spec.hop_s,
                           "realtime": c.realtime})

    def _run_threads(self) -> None:
        c = self.config
        streams = ["visual"] + (["audio"] if self.has_audio else [])
        self.clock = DataClock(c.realtime, streams, self._start, lead_s=self.spec.window_s / 2)
        self._face_q = FrameQueue(1 if c.realtime else 4)
        self._display_q = FrameQueue(2 if c.realtime else 4)
        self._asr_q: queue.Queue[AudioChunk | None] = queue.Queue(maxsize=round(ASR_QUEUE_S / BLOCK_S))
        self._asr_on = c.asr and self.has_audio
        if c.asr and not self._asr_on:
            self._set_off("text", "no audio to recognise words in")
        elif not c.asr:
            self._set_off("text", "speech recognition turned off (--no-asr)")
        self.video.start()
        if isinstance(self._audio_source, FileAudioSource):
            self._audio_source.start_time = self._start  # the file's audio and video share time 0
        if self._audio_source is not None:
            self._audio_source.start()
        workers = [("capture", self._capture), ("face", self._face_loop), ("inference", self._inference)]
        if self._audio_source is not None:
            workers.append(("audio", self._audio_loop))
        if self._asr_on:
            workers.append(("asr", self._asr_loop))
        self._threads = {name: threading.Thread(target=self._guard(fn), name=name, daemon=True) for name, fn in workers}
        for t in self._threads.values():
            t.start()
        self._display_loop()
        if not c.realtime and not self._stop.is_set():  # let the inference catch up with the data
            while self._threads["inference"].is_alive() and not self._stop.wait(POLL_S):
                pass
        self.stop(self.stop_reason)

    def _guard(self, fn: Callable[[], None]) -> Callable[[], None]:
        """A thread body that, on an unexpected error, logs it and stops the app instead of dying silently."""
        def body() -> None:
            try:
                fn()
            except Exception as e:
                log.exception("thread %s failed", threading.current_thread().name)
                self.stop(f"error in {threading.current_thread().name}: {one_line(e)}")
        return body

    def _finalise(self) -> None:
        """Stop and join every thread (within JOIN_S together), then close the outputs, each on its own."""
        self._stop.set()
        t0 = now()
        self.video.stop(timeout=0.2)
        if self._audio_source is not None:
            self._audio_source.stop()
        for t in self._threads.values():
            t.join(max(0.0, JOIN_S - (now() - t0)))
        self.stats.join_s = now() - t0
        alive = [t.name for t in self._threads.values() if t.is_alive()]
        if alive:
            log.error("threads still running %.1f s after stop: %s", JOIN_S, ", ".join(alive))
        self.stats.capture_dropped = self.video.dropped
        if self.saver is not None:
            try:
                self.saver.close()
            except OSError as e:
                log.error("saving windows failed: %s", one_line(e))
        if self.recorder is not None:
            self._record(self.recorder.close)
        self._write_event({"type": "end", "t": self._rel(now()), "reason": self.stop_reason,
                           "inferences": self.stats.inferences, "failed_windows": self.stats.failed_windows,
                           "frames_shown": self.stats.shown, "fps": round(self.stats.fps, 2),
                           "threads_joined_s": round(self.stats.join_s, 3),
                           "recording": "off: " + self.recording_error if self.recording_error else
                           ("on" if self.config.record is not None else None),
                           "asr_renewals": self.stats.asr_renewals,
                           "dropped": {"capture_frames": self.stats.capture_dropped,
                                       "display_frames": self.stats.display_dropped,
                                       "asr_chunks": self.stats.asr_dropped}})
        self._close_inputs()
        if not self.config.headless:
            cv2.destroyAllWindows()

    # ------------------------------------------------------------------ capture

    def _capture(self) -> None:
        block = not self.config.realtime
        first: float | None = None  # time of the source's first frame
        try:
            while not self._stop.is_set():
                frame = self.video.read(timeout=POLL_S)
                if frame is None:
                    if not self.video.queue.closed:
                        continue
                    if not self.live:
                        return
                    self._reconnect_video()
                    first = None
                    continue
                first = frame.t if first is None else first
                if frame.t - first >= FLOWING_S:  # frames flow: a later loss starts from the shortest wait
                    self._video_backoff.reset()
                    if self._reconnecting:
                        self._reconnecting = False
                        self._set_off("visual", None)
                self.clock.hold(frame.t, self._stop)
                self._face_q.put(frame, block=block, stop=self._stop)
                self._display_q.put(frame, block=block, stop=self._stop)
        finally:
            self.stats.display_dropped = self._display_q.dropped
            self._face_q.close()
            self._display_q.close()

    def _reconnect_video(self) -> None:
        """The camera or stream stopped: say so and reopen it with back-off until it returns or we stop."""
        why = one_line(self.video.error) if self.video.error else "the stream ended"
        self._set_off("visual", f"{why}; reconnecting")
        self._reconnecting = True  # back on once frames flow, not at the first open
        self._face = None
        video = self._reopen(self._open_video, self._video_backoff)
        if video is None:
            return
        if self._stop.is_set():  # stopped while opening: _finalise has seen the old source only
            video.stop()
            return
        self.video.stop()
        self.video = video.start()

    def _reopen(self, open_source: Callable[[], S], backoff: Backoff) -> S | None:
        """``open_source()`` retried after each of ``backoff``'s waits until it opens; None once we stop.
        The waits keep growing across reopens until the caller sees data again and resets ``backoff``."""
        while not self._stop.wait(backoff.next()):
            try:
                return open_source()
            except SourceError:
                continue
        return None

    # ------------------------------------------------------------------ face

    def _face_loop(self) -> None:
        rate = self.spec.visual_rate_hz
        resampler = Resampler(rate)
        last_step: int | None = None
        try:
            face: FaceFrontEnd | None = FaceFrontEnd(encoder=self.engine.expression_encoder())
        except SourceError as e:  # ModelUnavailableError: frames are still shown, without faces
            face = None
            self._set_off("visual", one_line(e))
        while True:
            frame = self._face_q.get(timeout=POLL_S)
            if frame is None:
                if self._face_q.closed or self._stop.is_set():
                    break
                continue
            step = math.floor(frame.t * rate)
            if face is not None and step != last_step:  # one frame per visual step
                last_step = step
                obs = face.process(frame.image, frame.t)
                self._face = obs
                for t, f in resampler.push(frame.t, obs.features):
                    if f[PRESENCE] > 0:
                        self.tracks["visual"].push(t, f)
            self.clock.advance("visual", frame.t)
        if face is not None:
            face.close()
        self.clock.finish("visual")

    # ------------------------------------------------------------------ audio and words

    def _audio_loop(self) -> None:
        voice = VoiceFrontEnd()
        source = self._audio_source
        last_chunk = now()
        lost = False  # the microphone went away; it is back at its first chunk
        while not self._stop.is_set():
            try:
                chunk = source.get(timeout=POLL_S)
            except SourceError as e:
                chunk, failure = None, one_line(e)
            else:
                failure = None
            if chunk is None:
                if isinstance(source, FileAudioSource) and (source.ended or failure):
                    if failure:
                        self._set_off("audio", failure)
                    break
                if failure or now() - last_chunk > MIC_SILENT_S:
                    source = self._reopen_microphone(source, failure or "the microphone stopped delivering sound")
                    last_chunk, lost = now(), True
                continue
            last_chunk = now()
            self._mic_backoff.reset()
            if lost:
                self._set_off("audio", None)
                lost = False
            if self.recorder is not None:
                self._record(self.recorder.write_audio, chunk)
            steps = voice.push(chunk)
            for t, f in steps:
                self.tracks["audio"].push(t, f)
            self._to_asr(chunk)
            if steps:
                self.clock.hold(steps[-1][0], self._stop)
                self.clock.advance("audio", steps[-1][0])
        if not self._stop.is_set():
            for t, f in voice.finish():
                self.tracks["audio"].push(t, f)
        self.clock.finish("audio")
        self._to_asr(None)

    def _reopen_microphone(self, source: AudioSource, why: str) -> AudioSource:
        """Say the microphone is gone and reopen it with back-off until it opens again or we stop."""
        source.stop()
        self._set_off("audio", f"{why}; reopening")
        reopened = self._reopen(lambda: MicrophoneSource(self.config.mic).start(), self._mic_backoff)
        if reopened is None:
            return source
        self._audio_source = reopened
        return reopened

    def _to_asr(self, chunk: AudioChunk | None) -> None:
        """Queue audio for the ASR (None: the end): live, dropping its oldest when it is behind; as fast
        as possible (and the end marker), waiting for room."""
        if not self._asr_on:
            return
        wait = chunk is None or not self.config.realtime
        self.stats.asr_dropped += put_or_drop(self._asr_q, chunk, wait, self._stop, POLL_S)

    def _load_asr(self) -> None:
        try:
            self._text_frontend = TextFrontEnd()
            self._asr_loaded = StreamingASR(resolve_vosk_model(self.config.vosk_model))
        except Exception as e:  # the ASR thread reports it
            self._asr_loaded = e

    def _asr_loop(self) -> None:
        backlog: deque[AudioChunk | None] = deque()  # audio heard while the model loads (a few seconds)
        while self._asr_loader.is_alive():
            if self._stop.is_set():
                return
            self._asr_loader.join(POLL_S)
            while not self._asr_q.empty():  # kept, not dropped: the ASR decodes at about twice real time
                backlog.append(self._asr_q.get_nowait())  # and catches up once loaded
        asr = self._asr_loaded
        if isinstance(asr, SourceError):  # ModelUnavailableError: no model and no way to get one
            self._asr_on = False
            self._set_off("text", one_line(asr))
            return
        if isinstance(asr, Exception):
            raise asr
        last_partial = 0.0
        while not self._stop.is_set():
            try:
                chunk = backlog.popleft() if backlog else self._asr_q.get(timeout=POLL_S)
            except queue.Empty:
                continue
            if chunk is None:
                self._add_words(asr.finish())
                return
            asr.insert_audio_chunk(chunk)  # one chunk (20 ms) at a time, so a stop is seen promptly
            self._add_words(asr.process_iter())
            self.stats.asr_renewals = asr.renewals
            self._asr_lag = now() - (chunk.t0 + chunk.duration)
            if now() - last_partial > 0.3:
                self._partial = " ".join(w.text for w in asr.partial)
                last_partial = now()

    def _add_words(self, words: list) -> None:
        times, features = self._text_frontend.timed_words(words)
        for t, row in zip(times, features):
            self.tracks["text"].push(float(t), row)
        if words:
            self._words.extend(w.text for w in words)
            self._words_text, self._partial = " ".join(self._words), ""

    # ------------------------------------------------------------------ inference

    def _inference(self) -> None:
        hop = self.spec.hop_s
        smoother = Smoother(self.spec.labels)
        next_t = self._start + hop
        while not self._stop.is_set():
            if not self.clock.wait_for(next_t, self._stop):
                continue
            if self.clock.finished and next_t > self.clock.last():  # past the end of the data
                return
            if self.clock.live and now() - next_t > hop:  # late: skip to the newest hop
                skipped = math.floor((now() - next_t) / hop)
                self.stats.hops_skipped += skipped
                next_t += skipped * hop
            t0 = time.perf_counter()
            window = self.assembler.from_tracks(next_t, self.tracks)
            assemble_ms = (time.perf_counter() - t0) * 1e3
            try:
                inference = self.engine.infer(window)
            except NonFiniteOutputError as e:  # reported and skipped; the next window may be fine
                self._window_failed(window, one_line(e))
                self.clock.consumed(next_t)
                next_t += hop
                continue
            if "model" in self._off:
                self._set_off("model", None)
            t_result = now()
            coverage = self._coverage(window)
            decision = smoother.update(inference.probabilities, inference.valence, coverage)
            self._decision, self._edges = decision, inference.edges_hetero
            self._present = {m: m in inference.present for m in MODALITIES}
            update_ms = (t_result - next_t) * 1e3
            self.stats.inferences += 1
            self.stats.update_ms.append(update_ms)
            self.stats.model_ms.append(inference.model_ms)
            if self.saver is not None:
                self.saver.add(window)
            if self.events is not None:
                self._write_event(self._event(window, inference, decision, coverage, t_result,
                                              {"update": update_ms, "assemble": assemble_ms,
                                               "model": inference.model_ms}))
            self.clock.consumed(next_t)
            next_t += hop

    def _window_failed(self, window: Window, why: str) -> None:
        """A window the model could not answer: counted, written to the events, shown as the model off."""
        self.stats.failed_windows += 1
        self._write_event({"type": "failed", "t_end": self._rel(window.t_end), "t_result": self._rel(now()),
                           "why": why})
        self._set_off("model", why)

    def _coverage(self, window: Window) -> dict[str, float]:
        """Fraction of the window's steps present per modality (text: 1 with any word)."""
        return {"visual": float(window.visual_mask.mean()), "audio": float(window.audio_mask.mean()),
                "text": float(window.text_mask.any())}

    def _event(self, window: Window, inference: Inference, decision: Decision, coverage: dict[str, float],
               t_result: float, latency: dict[str, float]) -> dict:
        def lag(m: str) -> float | None:
            newest = self.tracks[m].newest
            return None if newest is None else round((window.t_end - newest) * 1e3, 1)

        def named(values: np.ndarray, names) -> dict[str, float]:
            return {n: round(float(v), 6) for n, v in zip(names, values)}

        labels = self.spec.labels
        return {"type": "inference", "t_end": self._rel(window.t_end), "t_result": self._rel(t_result),
                "wall_time": round(time.time(), 3), "label": decision.label,
                "confidence": round(decision.confidence, 4), "uncertain_reason": decision.reason,
                "probabilities": named(inference.probabilities, labels),
                "smoothed": named(decision.probabilities, labels),
                "valence": round(inference.valence, 4), "valence_smoothed": round(decision.valence, 4),
                "present": self._present,  # set for this inference; replaced whole, never changed in place
                "coverage": {m: round(v, 3) for m, v in coverage.items()},
                "edges_homo": named(inference.edges_homo, EDGE_NAMES),
                "edges_hetero": named(inference.edges_hetero, EDGE_NAMES),
                "latency_ms": {**{k: round(v, 2) for k, v in latency.items()},
                               "visual_lag": lag("visual"), "audio_lag": lag("audio"),
                               "asr_lag": None if self._asr_lag is None else round(self._asr_lag * 1e3, 1)},
                "words": self._words_text}

    # ------------------------------------------------------------------ display

    def _overlay_state(self) -> OverlayState:
        face = self._face
        with self._off_lock:
            off = dict(self._off)
        glass = self.stats.glass_ms[-1] if self.stats.glass_ms else None
        model = self.stats.model_ms[-1] if self.stats.model_ms else None
        return OverlayState(self.spec.labels, self._decision, face.box if face is not None and face.present else None,
                            self._present, off, self._edges, self._words_text, self._partial,
                            Readout(glass, model, self._asr_lag, self.stats.fps or None))

    def _display_loop(self) -> None:
        c = self.config
        shown_any = False
        while not self._stop.is_set():
            if c.max_seconds is not None and now() - self._start >= c.max_seconds:
                self.stop("max-seconds")
                break
            frame = self._display_q.get(timeout=POLL_S)
            if frame is None:
                if self._display_q.closed:
                    break
                continue
            image = render(frame.image, self._overlay_state())
            if self.recorder is not None:
                self._record(self.recorder.write_frame, image, frame.t)
            if not c.headless:
                if not shown_any:  # a resizable window opens small (Qt: 400x300), shrinking the overlay's text
                    cv2.resizeWindow(WINDOW_TITLE, image.shape[1], image.shape[0])
                cv2.imshow(WINDOW_TITLE, image)
                key = cv2.waitKey(1) & 0xFF
                if key in (ord("q"), 27):
                    self.stop("key")
                elif shown_any and not _window_open():
                    self.stop("window closed")
                shown_any = True
            self._shown(frame)

    def _shown(self, frame: Frame) -> None:
        t = now()
        s = self.stats
        s.shown += 1
        s.first_shown = t if s.first_shown is None else s.first_shown
        s.last_shown = t
        s.glass_ms.append((t - frame.t) * 1e3)
        s.display_dropped = self._display_q.dropped
