"""VideoSource on a real encoded clip (FER2013 faces pasted on a background), read paced and unpaced,
and the one-line SourceErrors of sources that cannot open."""

import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from helpers.paths import DATA

from realtime.capture.video_source import Frame, VideoSource
from realtime.core.clock import now
from realtime.core.errors import SourceError

FER = DATA / "fer2013_48"
FPS, N_FRAMES, W, H = 30, 45, 640, 480
MEDIA_S = (N_FRAMES - 1) / FPS  # first to last frame


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not FER.is_dir():
        pytest.skip(f"FER2013 images not found at {FER} (../shared is absent on this machine)")
    faces = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted((FER / "test" / "happy").glob("*.png"))[:3]]
    path = tmp_path_factory.mktemp("video") / "faces.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for i in range(N_FRAMES):
            img = np.full((H, W, 3), (40, 90, 30), np.uint8)  # a green wall
            face = cv2.resize(faces[i // 15 % len(faces)], (240, 240), interpolation=cv2.INTER_CUBIC)
            x = 150 + 4 * i  # the face drifts right
            img[120:360, x:x + 240] = face[..., None]
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def _read_all(source: VideoSource) -> list[Frame]:
    with source:
        return list(source)


def test_unpaced_file_delivers_every_frame_on_media_time(clip: Path) -> None:
    t_start = now()
    frames = _read_all(VideoSource(clip, pace=False, maxlen=2))
    assert len(frames) == N_FRAMES
    assert [f.index for f in frames] == list(range(N_FRAMES))
    ts = np.array([f.t for f in frames])
    assert np.all(np.diff(ts) > 0)
    assert ts[0] >= t_start
    np.testing.assert_allclose(np.diff(ts), 1 / FPS, atol=2e-3)  # media timestamps, not arrival times
    assert frames[0].image.shape == (H, W, 3) and frames[0].image.dtype == np.uint8
    assert frames[10].image[240, 20, 1] > frames[10].image[240, 20, 0]  # BGR order: the wall is green


def test_paced_file_runs_at_media_rate(clip: Path) -> None:
    t_start = now()
    frames = _read_all(VideoSource(clip, pace=True, maxlen=N_FRAMES))
    wall = now() - t_start
    ts = np.array([f.t for f in frames])
    assert len(frames) == N_FRAMES and np.all(np.diff(ts) > 0)
    assert ts[-1] - ts[0] == pytest.approx(MEDIA_S, abs=0.02)
    assert MEDIA_S - 0.05 <= wall <= MEDIA_S + 0.8  # held back to real time, not decoded at full speed


def test_slow_consumer_drops_oldest_and_counts(clip: Path) -> None:
    got = []
    with VideoSource(clip, pace=True, maxlen=1) as src:
        while (f := src.read(timeout=2.0)) is not None:
            got.append(f.index)
            time.sleep(0.1)  # a consumer three frames slow
    assert src.dropped > 0
    assert len(got) + src.dropped == N_FRAMES
    assert got == sorted(got) and got[-1] == N_FRAMES - 1  # the newest frame always gets through


def test_stop_ends_the_thread_quickly(clip: Path) -> None:
    src = VideoSource(clip, pace=True).start()
    assert src.read(timeout=2.0) is not None
    t0 = now()
    src.stop()
    assert now() - t0 < 1.0 and not src.running


def _assert_one_line(e: pytest.ExceptionInfo[SourceError]) -> None:
    msg = str(e.value)
    assert msg and "\n" not in msg and "check" in msg


def test_camera_that_does_not_open_raises_source_error() -> None:
    with pytest.raises(SourceError) as e:
        VideoSource(97)
    assert "camera 97" in str(e.value)
    _assert_one_line(e)


def test_unreadable_file_raises_source_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video" * 100)
    with pytest.raises(SourceError) as e:
        VideoSource(bad)
    assert "broken.mp4" in str(e.value)
    _assert_one_line(e)
    with pytest.raises(SourceError) as e:
        VideoSource(tmp_path / "missing.mp4")
    _assert_one_line(e)
