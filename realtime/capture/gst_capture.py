"""GStreamer pipelines as a frame source (``--gst PIPELINE``), through GStreamer's own Python bindings.

The pip OpenCV wheels are built without GStreamer, so pipelines run in GStreamer itself (PyGObject
with the system's GStreamer). The pipeline must end in an ``appsink``: its caps are set to BGR
(put ``videoconvert`` before it) and it keeps at most two frames, dropping the oldest, so a slow
consumer never adds latency. ``GstCapture.read()`` answers like OpenCV's ``VideoCapture.read()``
(``VideoSource`` reads both alike); ``ended`` turns True at the end of the stream. Failures are
one-line ``SourceError``s carrying GStreamer's own message.
"""

from __future__ import annotations

import numpy as np

from realtime.core.errors import SourceError

try:  # optional: the system's GStreamer and `pip install pygobject` (scripts/setup.sh installs both)
    import gi

    gi.require_version("Gst", "1.0")
    from gi.repository import GLib, Gst
except (ImportError, ValueError):
    Gst = None

NO_BINDINGS = ("--gst needs GStreamer's Python bindings: install GStreamer (Debian: gir1.2-gstreamer-1.0 "
               "gstreamer1.0-plugins-base gstreamer1.0-plugins-good) and `pip install pygobject`")
START_S = 10.0  # longest wait for the pipeline to start (preroll)
PULL_S = 0.5  # longest wait for one frame before read() answers (False, None)


class GstCapture:
    """A running GStreamer pipeline that ends in an appsink; ``read()`` gives its frames as BGR arrays."""

    def __init__(self, description: str) -> None:
        if Gst is None:
            raise SourceError(NO_BINDINGS)
        Gst.init(None)
        try:
            self.pipeline = Gst.parse_launch(description)
        except GLib.Error as e:
            raise SourceError(f"GStreamer pipeline did not parse ({e.message}): check it with gst-launch-1.0") from e
        self.sink = _last_appsink(self.pipeline)
        if self.sink is None:
            raise SourceError("GStreamer pipeline has no appsink: end it in `! videoconvert ! appsink`")
        self.sink.set_property("caps", Gst.Caps.from_string("video/x-raw,format=BGR"))
        self.sink.set_property("max-buffers", 2)
        self.sink.set_property("drop", True)
        self.bus = self.pipeline.get_bus()
        self.ended = False
        self.pipeline.set_state(Gst.State.PLAYING)
        started, _, _ = self.pipeline.get_state(int(START_S * Gst.SECOND))
        if started == Gst.StateChangeReturn.FAILURE:
            why = self._error() or "it did not start"
            self.release()
            raise SourceError(f"GStreamer pipeline failed: {why}; check it with gst-launch-1.0")

    def _error(self) -> str | None:
        """GStreamer's message for the first error posted on the bus, if any."""
        message = self.bus.pop_filtered(Gst.MessageType.ERROR)
        return None if message is None else message.parse_error()[0].message

    def read(self) -> tuple[bool, np.ndarray | None]:
        """(True, BGR image) for the next frame; (False, None) when none came in time or the stream ended."""
        sample = self.sink.emit("try-pull-sample", int(PULL_S * Gst.SECOND))
        if sample is None:
            if (why := self._error()) is not None:
                raise SourceError(f"GStreamer pipeline failed: {why}")
            self.ended = bool(self.sink.get_property("eos"))
            return False, None
        shape = sample.get_caps().get_structure(0)
        width, height = shape.get_value("width"), shape.get_value("height")
        buffer = sample.get_buffer()
        mapped, info = buffer.map(Gst.MapFlags.READ)
        if not mapped:
            return False, None
        try:
            rows = np.frombuffer(info.data, np.uint8).reshape(height, -1)  # rows may be padded
            return True, rows[:, :width * 3].reshape(height, width, 3).copy()
        finally:
            buffer.unmap(info)

    def release(self) -> None:
        self.pipeline.set_state(Gst.State.NULL)


def _last_appsink(pipeline: Gst.Element) -> Gst.Element | None:
    """An appsink of the pipeline (the first GStreamer lists), or None."""
    if not isinstance(pipeline, Gst.Bin):
        return pipeline if pipeline.get_factory().get_name() == "appsink" else None
    sinks = []
    iterator = pipeline.iterate_sinks()
    while True:
        result, element = iterator.next()
        if result != Gst.IteratorResult.OK:
            break
        if element.get_factory() is not None and element.get_factory().get_name() == "appsink":
            sinks.append(element)
    return sinks[0] if sinks else None
