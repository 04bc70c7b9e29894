"""The live recognizer: sources -> front-ends -> window assembler -> engine -> smoother -> overlay.

One thread per stage, as in docs/architecture.md, talking through bounded queues and ``Track``s:

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
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np

from realtime.app.config import ASR_QUEUE_S, BACKOFF_S, JOIN_S, LOADER_JOIN_S, WINDOW_TITLE, WORDS_SHOWN, AppConfig
from realtime.app.data_clock import DataClock
from realtime.app.loops import ThreadLoops
from realtime.app.stats import Stats
from realtime.capture.audio_source import BLOCK_S, AudioChunk, AudioSource, FileAudioSource, MicrophoneSource
from realtime.capture.video_source import Frame, VideoSource
from realtime.core.backoff import Backoff
from realtime.core.clock import now
from realtime.core.errors import NonFiniteOutputError, SourceError, one_line
from realtime.core.handoff import POLL_S, Handoff
from realtime.core.modalities import EDGE_NAMES
from realtime.engines import make_engine
from realtime.engines.base import Engine
from realtime.frontends.asr import StreamingASR
from realtime.frontends.face import FaceObservation
from realtime.frontends.text_frontend import TextFrontEnd
from realtime.outputs.events import EventLog
from realtime.outputs.recorder import Recorder, RecordingError
from realtime.outputs.tegrastats import TegraStatsReader
from realtime.outputs.window_saver import WindowSaver
from realtime.smoothing import Decision
from realtime.window import WindowAssembler

log = logging.getLogger("realtime.app")


def _is_live(video: int | str) -> bool:
    return isinstance(video, int) or not Path(str(video)).is_file()


W = TypeVar("W")


def _writable(flag: str, path: Path, open_output: Callable[[Path], W]) -> W:
    """``open_output(path)``, its OSError (a folder that cannot be made, say) turned into one line naming ``flag``."""
    try:
        return open_output(path)
    except OSError as e:
        raise OSError(f"{flag} {path}: cannot write there ({e.strerror or e}); choose a place you can write to") from e


class App(ThreadLoops):
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
        self._tegrastats: TegraStatsReader | None = None  # a Jetson's load figures, where tegrastats is
        # what the display reads (each a reference swapped whole by its one writer thread)
        self._face: FaceObservation | None = None
        self._decision: Decision | None = None
        self._present: dict[str, bool] = {}
        self._reliability: dict[str, float] = {}  # per modality, in the last window
        self._edges: np.ndarray | None = None
        self._words: deque[str] = deque(maxlen=WORDS_SHOWN)  # the ASR thread's own
        self._words_text = ""  # the same words, for the other threads
        self._partial = ""
        self._asr_lag: float | None = None
        self._text_frontend: TextFrontEnd | None = None  # made by the asr-load thread
        try:
            self._open()
        except BaseException:  # a failed start leaves no source open and no loader running
            self._close_inputs()
            raise
        # what the threads share, once the inputs and the engine are known
        c = config
        streams = ["visual"] + (["audio"] if self.has_audio else [])
        self.clock = DataClock(c.realtime, streams, self._start, lead_s=self.spec.window_s / 2)
        self._face_q: Handoff[Frame] = Handoff(1 if c.realtime else 4)
        self._display_q: Handoff[Frame] = Handoff(2 if c.realtime else 4)
        self._asr_q: Handoff[AudioChunk] = Handoff(round(ASR_QUEUE_S / BLOCK_S))  # closed at the end of the audio
        self._asr_on = c.asr and self.has_audio

    def _open(self) -> None:
        """Open the window, the inputs, the engine and the event log and window files."""
        c = self.config
        if not c.headless:  # first: a display Qt cannot use aborts the process, before anything is open
            cv2.namedWindow(WINDOW_TITLE, cv2.WINDOW_NORMAL | cv2.WINDOW_GUI_NORMAL)  # resizable, no toolbar
        # the engine before the sources: loading it (and PyTorch) takes seconds, during which a pipeline
        # already playing would drop its frames; and a model that does not load leaves no source to close
        self.engine: Engine = make_engine(c.backend, c.checkpoint, c.device, c.threads, c.engine_file, c.precision,
                                          c.server)
        self.spec = self.engine.spec
        self.assembler = WindowAssembler(self.spec)
        self.tracks = self.assembler.make_tracks()
        with contextlib.suppress(NonFiniteOutputError):  # such windows are reported one by one while running
            self.engine.infer(self.assembler.from_streams(0.0, {}))  # warm-up: the first run is the slowest
        self.video = self._open_video()
        self.live = _is_live(c.video)
        self._audio_source = self._open_audio() if c.audio else None  # started by run()
        self.has_audio = self._audio_source is not None
        if c.asr and self.has_audio:  # after the engine: the text front-end runs the engine's text model
            self._asr_loader.start()
        if c.events is not None:
            self.events = _writable("--events", c.events, EventLog)
        if c.save_windows is not None:
            self.saver = _writable("--save-windows", c.save_windows, WindowSaver)

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
        # As fast as possible, the run starts on a whole second of the clock, where the face and voice
        # grids and the windows' hops all start a step: a file then gives the same windows every run.
        self._start = now() if c.realtime else math.floor(now())
        self.clock.consumed(self._start)  # the data clock counts from the run's start
        try:
            self._tegrastats = TegraStatsReader.start_if_present()  # None (nothing started) off a Jetson
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
        if c.asr and not self._asr_on:
            self._set_off("text", "no audio to recognise words in")
        elif not c.asr:
            self._set_off("text", "speech recognition turned off (--no-asr)")
        self.video.start_time = self._start  # a file's first frame is at the run's start (live sources stamp reads)
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
        if self._tegrastats is not None:
            self._tegrastats.stop()
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

    # ------------------------------------------------------------------ face

    # ------------------------------------------------------------------ audio and words

    # ------------------------------------------------------------------ inference

    # ------------------------------------------------------------------ display
