"""A video capture thread: camera, file, network stream or GStreamer pipeline -> timestamped frames.

``VideoSource(source)`` takes
  * an ``int`` (or a string of digits): a camera index, opened with OpenCV;
  * a URL (rtsp(s)://, http(s)://, rtmp://, udp://, tcp://): a network stream, OpenCV's FFmpeg backend;
  * a string containing ``!``: a GStreamer pipeline ending in ``appsink``, run by GStreamer itself
    (``gst_capture``: the pip OpenCV wheels have no GStreamer);
  * anything else: a video file, decoded with PyAV.

Timestamps are on the shared monotonic clock (``realtime.core.clock.now``). Live sources stamp a frame
when it is read. A file stamps it with its media time (pts) offset by ``start_time`` (default: the
moment the source started), so file time and clock time advance together; with ``pace=True`` each
frame is also held back until its time comes, and the file behaves like a camera.

Frames go through a bounded ``Handoff``. Live sources and paced files drop the oldest frame
when the consumer falls behind (and count it); an unpaced file waits for its consumer instead,
because reading a file as fast as possible is for extraction, which needs every frame.
``stop()`` ends the thread within about a second; opening failures raise ``SourceError`` with a
one-line message, a source that fails later ends the stream and leaves it in ``error``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from realtime.capture.gst_capture import GstCapture
from realtime.core.clock import now
from realtime.core.errors import SourceError, one_line
from realtime.core.handoff import Handoff

NETWORK_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")
_MAX_READ_FAILURES = 50  # consecutive failed reads before a live source counts as gone


@dataclass(frozen=True)
class Frame:
    t: float  # seconds, shared monotonic clock
    image: np.ndarray  # (H, W, 3) uint8 BGR
    index: int  # 0-based position in the stream


def _opened(capture: cv2.VideoCapture, hint: str) -> cv2.VideoCapture:
    """The capture, or SourceError(hint) when it did not open."""
    if not capture.isOpened():
        capture.release()
        raise SourceError(hint)
    return capture


def _opened_file(path: Path) -> av.container.InputContainer:
    """An open PyAV container with a video stream, or SourceError saying what is wrong."""
    if not path.is_file():
        raise SourceError(f"video file {path} not found: check the path")
    try:
        container = av.open(str(path))
    except av.FFmpegError as e:
        raise SourceError(f"cannot read video file {path} ({one_line(e)}): "
                          "check it is a video that ffmpeg can decode") from e
    if not container.streams.video:
        container.close()
        raise SourceError(f"video file {path} has no video stream: pass a file with video")
    container.streams.video[0].thread_type = "AUTO"
    return container


class VideoSource:
    """Reads frames on its own thread into ``queue``; use as a context manager or start()/stop()."""

    def __init__(self, source: int | str | Path, pace: bool = True, maxlen: int = 2,
                 size: tuple[int, int] | None = None) -> None:
        """``pace``: files only, deliver frames at their media rate. ``maxlen``: queue length.
        ``size``: cameras only, the (width, height) to ask for."""
        self.source = source
        self.queue: Handoff[Frame] = Handoff(maxlen)
        self.error: SourceError | None = None
        self.frames_read = 0
        self.ended = False  # the stream said it is over (a file's end, a pipeline's end of stream), not lost
        self.start_time: float | None = None  # files: the clock time of the first frame (None: when started)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._container: av.container.InputContainer | None = None
        self._capture: cv2.VideoCapture | GstCapture | None = None
        if isinstance(source, int) or (isinstance(source, str) and source.isdigit()):
            self.kind = "camera"
            self._capture = _opened(cv2.VideoCapture(int(source)), f"camera {source} did not open: check it is "
                                    "connected and not used by another program, or choose another index")
            if size is not None:
                self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
                self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
        elif isinstance(source, str) and source.lower().startswith(NETWORK_SCHEMES):
            self.kind = "network"
            self._capture = _opened(cv2.VideoCapture(source, cv2.CAP_FFMPEG), f"stream {source} did not open: "
                                    "check the URL, the network and that the server is up")
        elif isinstance(source, str) and "!" in source:
            self.kind = "gstreamer"
            self._capture = GstCapture(source)
        else:
            self.kind = "file"
            self._container = _opened_file(Path(source))
        self.pace = pace and self.kind == "file"

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> VideoSource:
        if self._thread is not None:
            raise RuntimeError("VideoSource already started")
        self._thread = threading.Thread(target=self._run, name=f"video-{self.kind}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 1.0) -> None:
        """Ask the thread to end and wait up to ``timeout`` seconds for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        else:
            self._release()
        self.queue.close()

    def __enter__(self) -> VideoSource:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def dropped(self) -> int:
        """Frames dropped because the consumer was behind."""
        return self.queue.dropped

    def read(self, timeout: float | None = None) -> Frame | None:
        """Next frame; None at the end of the stream or after ``timeout`` seconds."""
        return self.queue.get(timeout)

    def __iter__(self) -> Iterator[Frame]:
        """Frames until the stream ends or the source is stopped."""
        while (frame := self.queue.get()) is not None:
            yield frame

    # ------------------------------------------------------------------ thread

    def _run(self) -> None:
        try:
            if self._container is not None:
                self._run_file()
            else:
                self._run_capture()
        except Exception as e:  # a source failing mid-stream ends it; the caller reads .error
            self.error = SourceError(f"{self.kind} source {self.source} failed: {one_line(e)}")
        finally:
            self._release()
            self.queue.close()

    def _release(self) -> None:
        if self._container is not None:
            self._container.close()
        if self._capture is not None:
            self._capture.release()

    def _deliver(self, t: float, image: np.ndarray) -> bool:
        """Queue a frame; False when stopping."""
        frame = Frame(t, image, self.frames_read)
        if not self.queue.put(frame, wait=self.kind == "file" and not self.pace, stop=self._stop):
            return False
        self.frames_read += 1
        return not self._stop.is_set()

    def _run_file(self) -> None:
        stream = self._container.streams.video[0]
        t0 = now() if self.start_time is None else self.start_time
        m0 = None
        for i, vf in enumerate(self._container.decode(stream)):
            if self._stop.is_set():
                return
            m = vf.time if vf.time is not None else i / float(stream.average_rate or 30)
            m0 = m if m0 is None else m0
            t = t0 + (m - m0)
            if self.pace and self._stop.wait(max(0.0, t - now())):
                return
            if not self._deliver(t, vf.to_ndarray(format="bgr24")):
                return
        self.ended = True

    def _run_capture(self) -> None:
        failures = 0
        while not self._stop.is_set():
            ok, image = self._capture.read()
            t = now()
            if not ok:
                if isinstance(self._capture, GstCapture) and self._capture.ended:
                    self.ended = True
                    return
                failures += 1
                if failures >= _MAX_READ_FAILURES:
                    self.error = SourceError(f"{self.kind} source {self.source} stopped delivering frames: "
                                             "check the cable, the network or the pipeline")
                    return
                self._stop.wait(0.01)
                continue
            failures = 0
            if not self._deliver(t, image):
                return
