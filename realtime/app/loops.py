"""The app's thread loops: capture, face, audio, speech recognition, inference and display.

``ThreadLoops`` holds the bodies the threads run; ``App`` (``realtime.app.app``) makes the state they
share in its ``__init__`` and starts them. Each loop ends within ``POLL_S`` of ``stop()``."""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from typing import TypeVar

import cv2
import numpy as np

from realtime.app.config import FLOWING_S, MIC_SILENT_S, WINDOW_TITLE
from realtime.capture.audio_source import AudioChunk, AudioSource, FileAudioSource, MicrophoneSource
from realtime.capture.video_source import Frame
from realtime.core.backoff import Backoff
from realtime.core.clock import now
from realtime.core.errors import NonFiniteOutputError, SourceError, one_line
from realtime.core.handoff import POLL_S
from realtime.core.modalities import EDGE_NAMES, MODALITIES
from realtime.engines.base import Inference
from realtime.frontends.asr import StreamingASR, resolve_vosk_model
from realtime.frontends.face import PRESENCE, FaceFrontEnd, Resampler
from realtime.frontends.text_frontend import TextFrontEnd
from realtime.frontends.voice import VoiceFrontEnd
from realtime.outputs.overlay import OverlayState, Readout, render
from realtime.smoothing import Decision, Smoother, modality_reliability
from realtime.window import Window

log = logging.getLogger("realtime.app")
S = TypeVar("S")  # a source that _reopen opens


def _window_open() -> bool:
    """Whether the overlay window is still open. Closing Qt's last HighGUI window deletes its GUI
    receiver, after which asking about the window raises instead of answering "not visible"."""
    try:
        return cv2.getWindowProperty(WINDOW_TITLE, cv2.WND_PROP_VISIBLE) >= 1
    except cv2.error:
        return False


class ThreadLoops:
    """The thread bodies of ``App``: each reads and writes the state ``App.__init__`` made."""


    def _capture(self) -> None:
        block = not self.config.realtime
        first: float | None = None  # time of the source's first frame
        try:
            while not self._stop.is_set():
                frame = self.video.read(timeout=POLL_S)
                if frame is None:
                    if not self.video.queue.closed:
                        continue
                    if not self.live or self.video.ended:  # a file, or a pipeline that reached its end
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
                self._face_q.put(frame, wait=block, stop=self._stop)
                self._display_q.put(frame, wait=block, stop=self._stop)
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
        """Queue audio for the ASR (None: the end, which closes the hand-off): live, dropping its oldest
        when it is behind; as fast as possible, waiting for room."""
        if not self._asr_on:
            return
        if chunk is None:
            self._asr_q.close()
            return
        self._asr_q.put(chunk, wait=not self.config.realtime, stop=self._stop)
        self.stats.asr_dropped = self._asr_q.dropped


    def _load_asr(self) -> None:
        try:
            self._text_frontend = TextFrontEnd(self.engine.text_model())
            self._asr_loaded = StreamingASR(resolve_vosk_model(self.config.vosk_model))
        except Exception as e:  # the ASR thread reports it
            self._asr_loaded = e


    def _asr_loop(self) -> None:
        backlog: deque[AudioChunk] = deque()  # audio heard while the model loads (a few seconds)
        while self._asr_loader.is_alive():
            if self._stop.is_set():
                return
            self._asr_loader.join(POLL_S)
            backlog.extend(self._asr_q.take_all())  # kept, not dropped: the ASR catches up once loaded
        asr = self._asr_loaded
        if isinstance(asr, SourceError):  # ModelUnavailableError: no model and no way to get one
            self._asr_on = False
            self._set_off("text", one_line(asr))
            return
        if isinstance(asr, Exception):
            raise asr
        last_partial = 0.0
        while not self._stop.is_set():
            chunk = backlog.popleft() if backlog else self._asr_q.get(timeout=POLL_S)
            if chunk is None:
                if self._asr_q.closed:  # the end of the audio, all of it decoded
                    self._add_words(asr.finish())
                    return
                continue
            asr.insert_audio_chunk(chunk)  # one chunk (20 ms) at a time, so a stop is seen promptly
            self._add_words(asr.process_iter())
            self.stats.asr_renewals = asr.renewals
            self._asr_lag = now() - (chunk.t0 + chunk.duration)
            self.stats.asr_lag_ms.append(self._asr_lag * 1e3)
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
            if self._off.get("server") != self.engine.problem:  # --server: the server stopped or came back
                self._set_off("server", self.engine.problem)
            t_result = now()
            coverage = self._coverage(window)
            reliability = modality_reliability(coverage, inference.voice_reliability)
            decision = smoother.update(inference.probabilities, inference.valence, reliability)
            self._decision, self._edges = decision, inference.edges_hetero
            self._present = {m: m in inference.present for m in MODALITIES}
            self._reliability = reliability
            # window end -> result on the shared clock; as fast as possible, windows end in the data's time
            update_ms = (t_result - next_t) * 1e3 if self.clock.live else None
            self.stats.inferences += 1
            if update_ms is not None:
                self.stats.update_ms.append(update_ms)
            self.stats.model_ms.append(inference.model_ms)
            if self.saver is not None:
                self.saver.add(window)
            if self.events is not None:
                self._write_event(self._event(window, inference, decision, coverage, reliability, t_result,
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
               reliability: dict[str, float], t_result: float, latency: dict[str, float | None]) -> dict:
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
                "valence": round(inference.valence, 4),
                "valence_smoothed": None if decision.valence is None else round(decision.valence, 4),
                "present": self._present,  # set for this inference; replaced whole, never changed in place
                "coverage": {m: round(v, 3) for m, v in coverage.items()},
                "voice_reliability": round(inference.voice_reliability, 4),
                "reliability": {m: round(v, 3) for m, v in reliability.items()},
                "edges_homo": named(inference.edges_homo, EDGE_NAMES),
                "edges_hetero": named(inference.edges_hetero, EDGE_NAMES),
                "latency_ms": {**{k: None if v is None else round(v, 2) for k, v in latency.items()},
                               "visual_lag": lag("visual"), "audio_lag": lag("audio"),
                               "asr_lag": None if self._asr_lag is None else round(self._asr_lag * 1e3, 1)},
                "words": self._words_text}


    def _overlay_state(self) -> OverlayState:
        face = self._face
        with self._off_lock:
            off = dict(self._off)
        glass = self.stats.glass_ms[-1] if self.stats.glass_ms else None
        model = self.stats.model_ms[-1] if self.stats.model_ms else None
        return OverlayState(self.spec.labels, self._decision, face.box if face is not None and face.present else None,
                            self._present, off, self._edges, self._words_text, self._partial,
                            Readout(glass, model, self._asr_lag, self.stats.fps or None,
                                    self._tegrastats.footer() if self._tegrastats is not None else ""),
                            self._reliability)


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
        if self.clock.live:  # as fast as possible, a frame's time is the file's, not when it was captured
            s.glass_ms.append((t - frame.t) * 1e3)
        s.display_dropped = self._display_q.dropped
