"""The face front-end on real FER2013 faces: MediaPipe finds them, blendshapes and head pose mean
what they say, the feature vector has its contract's shape; plus the 15 Hz resampler."""

import subprocess
import sys

import cv2
import numpy as np
import pytest
from helpers.imports import modules_after
from helpers.paths import DATA, ROOT

from realtime.core.feature_spec import FeatureSpec
from realtime.frontends.face import (BLENDSHAPE_NAMES, EMBEDDING, PRESENCE, PROBABILITIES, VISUAL_FEATURE_DIM,
                                     VISUAL_RATE_HZ, FaceFrontEnd, Resampler)

FER_TEST = DATA / "fer2013_48" / "test"
needs_fer = pytest.mark.needs_data("fer2013_48/test")


def _faces(emotion: str, n: int = 8) -> list[np.ndarray]:
    return [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted((FER_TEST / emotion).glob("*.png"))[:n]]


def _smile(front: FaceFrontEnd, faces: list[np.ndarray]) -> list[float]:
    obs = [front.process(f) for f in faces]
    return [(o.blendshapes["mouthSmileLeft"] + o.blendshapes["mouthSmileRight"]) / 2 for o in obs if o.present]


@pytest.fixture(scope="module")
def still() -> FaceFrontEnd:
    with FaceFrontEnd(still_images=True) as front:
        yield front


def test_feature_layout_matches_the_feature_spec() -> None:
    assert VISUAL_FEATURE_DIM == FeatureSpec().visual_dim == 127
    assert VISUAL_RATE_HZ == FeatureSpec().visual_rate_hz
    assert len(BLENDSHAPE_NAMES) == len(set(BLENDSHAPE_NAMES)) == 52
    assert PROBABILITIES.stop == VISUAL_FEATURE_DIM


@needs_fer
def test_happy_faces_smile_more_than_neutral_and_sad(still: FaceFrontEnd) -> None:
    happy = _smile(still, _faces("happy"))
    other = _smile(still, _faces("neutral") + _faces("sad"))
    assert len(happy) >= 6 and len(other) >= 12  # MediaPipe finds most upscaled FER faces
    assert np.median(happy) > 0.4
    assert np.median(happy) > np.median(other) + 0.3


@needs_fer
def test_features_of_a_found_face(still: FaceFrontEnd) -> None:
    face = _faces("happy", 1)[0]
    obs = still.process(face)
    assert obs.present and obs.features.shape == (VISUAL_FEATURE_DIM,) and obs.features.dtype == np.float32
    assert obs.features[PRESENCE] == 1.0
    assert obs.features[PROBABILITIES].sum() == pytest.approx(1.0, abs=1e-4)
    assert np.abs(obs.features[EMBEDDING]).sum() > 0
    x0, y0, x1, y1 = obs.box  # in the 48x48 input's pixels, not the upscaled image's
    assert 0 <= x0 < x1 <= 48 and 0 <= y0 < y1 <= 48 and (x1 - x0) > 24
    assert obs.landmarks.shape == (478, 2)


def test_blank_image_has_no_face_and_zero_features() -> None:
    with FaceFrontEnd(still_images=True) as front:
        obs = front.process(np.full((240, 320, 3), 128, np.uint8))
    assert not obs.present and obs.box is None
    assert obs.features.shape == (VISUAL_FEATURE_DIM,) and obs.features.dtype == np.float32
    assert np.all(np.isfinite(obs.features)) and not obs.features.any()


@needs_fer
def test_head_pose_is_small_for_frontal_faces_and_follows_roll(still: FaceFrontEnd) -> None:
    poses = np.array([still.process(f).pose_deg for f in _faces("neutral") if still.process(f).present])
    assert np.all(np.isfinite(poses))
    assert np.all(np.median(np.abs(poses), axis=0) < 15)
    face = cv2.resize(_faces("neutral", 1)[0], (224, 224), interpolation=cv2.INTER_CUBIC)
    rolls = []
    for deg in (-20, 20):  # rotate the picture counter-clockwise by deg
        tilted = cv2.warpAffine(face, cv2.getRotationMatrix2D((112, 112), deg, 1.0), (224, 224),
                                borderMode=cv2.BORDER_REPLICATE)
        rolls.append(still.process(tilted).pose_deg[2])
    assert rolls[1] - rolls[0] == pytest.approx(40, abs=8)


@needs_fer
def test_video_mode_on_a_camera_sized_frame() -> None:
    frame = np.full((480, 640, 3), (40, 90, 30), np.uint8)
    frame[120:344, 200:424] = cv2.resize(_faces("happy", 1)[0], (224, 224), interpolation=cv2.INTER_CUBIC)[..., None]
    with FaceFrontEnd() as front:
        obs = [front.process(frame, t) for t in (10.0, 10.0, 10.0333, 10.0667)]  # a repeated time is tolerated
    assert all(o.present for o in obs)
    x0, y0, x1, y1 = obs[-1].box
    assert 200 < (x0 + x1) / 2 < 424 and 120 < (y0 + y1) / 2 < 344  # on the pasted 224x224 face
    assert 120 < x1 - x0 < 300 and 120 < y1 - y0 < 300  # (the face may reach past the FER crop's edge)
    assert obs[-1].t == pytest.approx(10.0667)


def test_resampler_takes_nearest_previous_within_staleness() -> None:
    rs = Resampler(rate_hz=15.0, max_staleness_s=0.2)
    out = []
    times = [1.0 + i / 30 for i in range(30)] + [2.6, 2.62]  # 30 fps for 1 s, then a 0.63 s stall
    for t in times:
        out += rs.push(t, np.array([t]))
    ts = np.array([g for g, _ in out])
    src = np.array([f[0] for _, f in out])
    np.testing.assert_allclose(np.diff(ts[ts < 2.0]), 1 / 15, atol=1e-9)  # a step every 1/15 s
    assert np.all(src <= ts + 1e-9) and np.all(ts - src <= 0.2 + 1e-9)  # nearest previous, never stale
    assert not np.any((ts > 2.17) & (ts < 2.6))  # the stall gives no steps
    assert len(set(ts.tolist())) == len(ts) and np.all(np.diff(ts) > 0)


def test_mediapipe_is_imported_without_matplotlib() -> None:
    loaded = modules_after("import realtime.frontends.face")
    assert "mediapipe" in loaded and [m for m in loaded if m.split(".")[0] == "matplotlib"] == []


def test_the_face_front_end_runs_where_matplotlib_is_not_installed() -> None:
    """As in the runtime install (MediaPipe with --no-deps): matplotlib cannot be imported at all. After the
    front-end's import, ``import matplotlib`` fails as it should, not with the stand-in."""
    code = ("import sys\n"
            "class NoMatplotlib:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'matplotlib':\n"
            "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
            "sys.meta_path.insert(0, NoMatplotlib())\n"
            "import numpy as np\n"
            "from realtime.frontends.face import FaceFrontEnd\n"
            "with FaceFrontEnd(encoder=None, still_images=True) as front:\n"
            "    print(front.process(np.zeros((96, 96, 3), np.uint8)).present)\n"
            "try:\n"
            "    import matplotlib\n"
            "except ModuleNotFoundError:\n"
            "    print('no matplotlib')\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.splitlines()[-2:] == ["False", "no matplotlib"]
