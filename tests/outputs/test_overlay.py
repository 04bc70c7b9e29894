"""The overlay drawn on a real frame of the demo clip with a real face observation; the picture is
saved as overlay.png in the ``artifacts_dir`` fixture's folder ($DMD_TEST_ARTIFACTS, else under tmp_path)."""

import av
import cv2
import numpy as np
import pytest

from realtime.core.feature_spec import LABELS
from realtime.core.modalities import EDGE_NAMES
from realtime.core.resources import shipped
from realtime.frontends.face import FaceFrontEnd
from realtime.outputs.overlay import EDGE_COLOUR, GREY, LABEL_COLOURS, OverlayState, Readout, render
from realtime.smoothing import Smoother



@pytest.fixture(scope="module")
def frame_and_face():
    with av.open(str(shipped("media/demo.mp4"))) as container:
        for i, f in enumerate(container.decode(video=0)):
            if i == 45:
                frame = f.to_ndarray(format="bgr24")
                break
    with FaceFrontEnd(still_images=True) as face:
        obs = face.process(frame)
    assert obs.present, "MediaPipe should find the astronaut's face in the demo clip"
    return frame, obs


def _state(obs, edges, present, **kw) -> OverlayState:
    smoother = Smoother(LABELS, alpha=1.0)
    probs = np.array([0.05, 0.7, 0.05, 0.05, 0.05, 0.05, 0.05], np.float32)
    decision = smoother.update(probs, 0.6, {"visual": 1.0, "audio": 1.0, "text": 1.0})
    return OverlayState(LABELS, decision, obs.box, present, kw.pop("off", {}), np.asarray(edges, np.float32),
                        "hello I am so happy to see you", "this is", Readout(38.0, 4.2, 0.4, 29.7), **kw)


def _edge_pixels(img: np.ndarray) -> int:
    return int(np.all(np.abs(img.astype(int) - EDGE_COLOUR) <= 2, axis=2).sum())


def test_overlay_on_a_real_face(frame_and_face, artifacts_dir):
    frame, obs = frame_and_face
    before = frame.copy()
    edges = np.array([0.05, 0.05, 0.1, 0.1, 0.1, 0.6])  # V->A strongest
    img = render(frame, _state(obs, edges, {"visual": True, "audio": True, "text": True}))
    cv2.imwrite(str(artifacts_dir / "overlay.png"), img)

    np.testing.assert_array_equal(frame, before)  # pure: the input is untouched
    assert img.shape == frame.shape and img.dtype == np.uint8
    x0, y0, x1, y1 = obs.box
    happy = np.array(LABEL_COLOURS["happy"])
    on_box = img[(y0 + y1) // 2, x0 - 1:x0 + 2].astype(int)  # the box's left edge, in the label's colour
    assert np.abs(on_box - happy).sum(axis=1).min() < 60
    # the happy bar is long and in its colour; the neutral bar is short
    row = img[40:170, 80:210].astype(int)
    in_happy = np.all(np.abs(row - happy) <= 2, axis=2).sum()
    in_neutral = np.all(np.abs(row - np.array(LABEL_COLOURS["neutral"])) <= 2, axis=2).sum()
    assert in_happy > 3 * in_neutral > 0
    assert np.abs(img[:200, :210].astype(int) - frame[:200, :210]).mean() > 20  # the panel is drawn


def test_edge_width_follows_the_weight_and_absent_modalities_are_grey(frame_and_face):
    frame, obs = frame_and_face
    strong = np.array([0.0, 0.0, 0.0, 0.1, 0.0, 0.9])  # V->A, A->V only
    weak = np.array([0.0, 0.0, 0.0, 0.1, 0.0, 0.2])
    all_on = {"visual": True, "audio": True, "text": True}
    assert _edge_pixels(render(frame, _state(obs, strong, all_on))) > \
        1.5 * _edge_pixels(render(frame, _state(obs, weak, all_on)))
    assert _edge_pixels(render(frame, _state(obs, np.zeros(len(EDGE_NAMES)), all_on))) == 0

    img = render(frame, _state(obs, strong, {"visual": True, "audio": False, "text": True},
                               off={"audio": "no microphone: connect one"}))
    h, w = frame.shape[:2]
    graph = img[:170, w - 150:]
    assert np.all(np.abs(graph.astype(int) - GREY) <= 2, axis=2).sum() > 400  # the grey voice node
    red_line = img[200:300, :300].astype(int)
    assert (np.all(np.abs(red_line - (60, 60, 255)) <= 40, axis=2)).sum() > 50  # "audio off: no microphone"


def _green_pixels(img: np.ndarray) -> int:
    return int(np.all(np.abs(img.astype(int) - (90, 200, 90)) <= 2, axis=2).sum())


def test_a_node_fades_with_its_reliability_and_unknown_valence_is_said(frame_and_face):
    frame, obs = frame_and_face
    all_on = {"visual": True, "audio": True, "text": True}
    edges = np.zeros(len(EDGE_NAMES))
    w = frame.shape[1]
    trusted = render(frame, _state(obs, edges, all_on))[:170, w - 150:]
    faded = render(frame, _state(obs, edges, all_on, reliability={"visual": 1.0, "audio": 0.1, "text": 1.0}))
    assert _green_pixels(trusted) > 1.3 * _green_pixels(faded[:170, w - 150:]) > 0  # two green nodes, not three

    smoother = Smoother(LABELS, alpha=1.0)
    unknown = smoother.update(np.full(len(LABELS), 1 / len(LABELS), np.float32), 0.6,
                              {"visual": 0.0, "audio": 0.1, "text": 0.0})
    assert unknown.valence is None
    img = render(frame, OverlayState(LABELS, unknown, None, all_on))
    assert img.shape == frame.shape  # drawn, with "unknown" on the meter instead of a marker
