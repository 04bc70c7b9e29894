"""``--gst``: GStreamer pipelines through GStreamer's own bindings, with real pipelines: a test
source, a file through decodebin, an RTSP stream served on loopback, and bad pipelines."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading

import pytest

gi = pytest.importorskip("gi", reason="GStreamer's Python bindings (the gst extra) are not installed")

from realtime.capture.gst_capture import Gst, GstCapture  # noqa: E402
from realtime.capture.video_source import VideoSource  # noqa: E402
from realtime.core.errors import SourceError  # noqa: E402

from helpers.paths import ROOT  # noqa: E402

if Gst is None:
    pytest.skip("GStreamer's typelibs (gir1.2-gstreamer-1.0) are not installed", allow_module_level=True)

TEST_SOURCE = "videotestsrc num-buffers=90 ! videoconvert ! appsink"


def run_to_end(description: str) -> None:
    """Play a pipeline until its end of stream (or error)."""
    Gst.init(None)
    pipeline = Gst.parse_launch(description)
    pipeline.set_state(Gst.State.PLAYING)
    message = pipeline.get_bus().timed_pop_filtered(30 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    assert message is not None and message.type == Gst.MessageType.EOS


def test_a_test_source_gives_every_frame_then_ends():
    with VideoSource("videotestsrc num-buffers=45 ! video/x-raw,width=320,height=240 ! videoconvert ! appsink") as v:
        frames = list(v)
    assert v.error is None and v.ended
    assert [f.index for f in frames] == list(range(len(frames))) and 40 <= len(frames) <= 45  # drops at most a few
    assert frames[0].image.shape == (240, 320, 3) and frames[0].image.dtype.name == "uint8"
    assert all(b.t >= a.t for a, b in zip(frames, frames[1:]))
    assert frames[10].image.std() > 10  # the test pattern, not a blank


def test_a_file_through_decodebin(tmp_path):
    clip = tmp_path / "clip.ogg"
    run_to_end(f"videotestsrc num-buffers=30 ! video/x-raw,width=160,height=120 ! theoraenc ! oggmux ! "
               f"filesink location={clip}")
    with VideoSource(f"filesrc location={clip} ! decodebin ! videoconvert ! appsink") as v:
        frames = list(v)
    assert v.error is None and v.ended and len(frames) >= 28
    assert frames[0].image.shape == (120, 160, 3)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_rtsp_stream_served_on_loopback():
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, GstRtspServer

    port = free_port()
    server = GstRtspServer.RTSPServer(address="127.0.0.1", service=str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch("( videotestsrc is-live=true ! video/x-raw,format=I420,width=320,height=240,framerate=15/1 ! jpegenc ! "
                       "rtpjpegpay name=pay0 pt=96 )")
    factory.set_shared(True)
    server.get_mount_points().add_factory("/cam", factory)
    loop = GLib.MainLoop()
    server.attach(None)
    serving = threading.Thread(target=loop.run, daemon=True)
    serving.start()
    try:
        with VideoSource(f"rtspsrc location=rtsp://127.0.0.1:{port}/cam latency=0 protocols=tcp ! rtpjpegdepay ! jpegdec ! "
                         "videoconvert ! appsink") as v:
            frames = [v.read(timeout=5) for _ in range(15)]
        assert all(f is not None for f in frames), v.error
        assert frames[-1].image.shape == (240, 320, 3)
    finally:
        loop.quit()


@pytest.mark.parametrize("description, says", [
    ("videotestsrc ! nosuchelement ! appsink", 'no element "nosuchelement"'),
    ("videotestsrc num-buffers=5 ! fakesink", "has no appsink"),
    ("filesrc location=/nonexistent/clip.ogg ! decodebin ! videoconvert ! appsink", "pipeline failed"),
])
def test_bad_pipelines_are_one_line_errors(description, says):
    with pytest.raises(SourceError, match=says) as e:
        GstCapture(description)
    assert "\n" not in str(e.value)


@pytest.mark.slow
def test_the_app_runs_a_pipeline_headless_and_exits_0(tmp_path):
    events = tmp_path / "events.jsonl"
    done = subprocess.run([sys.executable, "main.py", "--gst", TEST_SOURCE, "--headless", "--no-audio",
                           "--events", str(events)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    log = [json.loads(line) for line in events.read_text().splitlines()]
    assert log[-1]["type"] == "end" and log[-1]["reason"] == "end of input"
    assert sum(e["type"] == "inference" for e in log) >= 4  # 3 s of frames, a window every 0.5 s


@pytest.mark.slow
def test_the_app_refuses_a_bad_pipeline_with_exit_2():
    done = subprocess.run([sys.executable, "main.py", "--gst", "videotestsrc ! nosuchelement ! appsink", "--headless",
                           "--no-audio"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and 'no element "nosuchelement"' in lines[0]
