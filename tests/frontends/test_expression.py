"""The shipped expression CNN on held-out FER2013 faces, the alignment it is trained and run with,
and the errors of loading weights that are missing or do not fit."""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers.paths import DATA, ROOT
from safetensors.torch import save_file

from realtime.core.feature_spec import LABELS
from realtime.frontends.face import FaceFrontEnd
from realtime.nets.expression import WEIGHTS_PATH, ExpressionEncoder, crops_to_tensor
from realtime.nets.face_crop import CROP_SIZE, EMBED_DIM, align_face, fallback_crop

ASTRONAUT = ROOT / "media" / "astronaut.png"  # a real face, bundled
FER_TEST = DATA / "fer2013_48" / "test"
needs_fer = pytest.mark.needs_data("fer2013_48/test")


@pytest.fixture(scope="module")
def encoder() -> ExpressionEncoder:
    return ExpressionEncoder()


@pytest.fixture(scope="module")
def still() -> FaceFrontEnd:
    with FaceFrontEnd(encoder=None, still_images=True) as front:
        yield front


def _first_found(front: FaceFrontEnd, folder: str, n: int) -> list[np.ndarray]:
    """Aligned crops of the first n test images of a class (file-name order) with a face found."""
    crops = []
    for p in sorted((FER_TEST / folder).glob("*.png")):
        crop = front.aligned_crop(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE))
        if crop is not None:
            crops.append(crop)
        if len(crops) == n:
            return crops
    raise AssertionError(f"fewer than {n} faces found in {folder}")


@needs_fer
def test_shipped_encoder_recognises_happy_and_surprised_faces(encoder: ExpressionEncoder, still: FaceFrontEnd) -> None:
    crops = _first_found(still, "happy", 3) + _first_found(still, "surprise", 3)
    truth = [LABELS.index("happy")] * 3 + [LABELS.index("surprised")] * 3
    emb, probs = encoder(np.stack(crops))
    assert emb.shape == (6, EMBED_DIM) and probs.shape == (6, len(LABELS))
    assert (probs.argmax(1) == truth).sum() >= 4
    single_emb, single_p = encoder(crops[0])  # one crop gives what the batch gave for it
    np.testing.assert_allclose(single_p, probs[0], atol=1e-5)
    np.testing.assert_allclose(single_emb, emb[0], atol=1e-4)


def test_a_face_and_its_mirror_image_get_the_same_answer(encoder: ExpressionEncoder, still: FaceFrontEnd) -> None:
    face = cv2.imread(str(ASTRONAUT), cv2.IMREAD_GRAYSCALE)
    crops = np.stack([still.aligned_crop(face), fallback_crop(face)])
    emb, probs = encoder(crops)
    emb_m, probs_m = encoder(np.ascontiguousarray(crops[:, :, ::-1]))
    np.testing.assert_allclose(probs_m, probs, atol=1e-5)
    np.testing.assert_allclose(emb_m, emb, atol=1e-4)
    _, one_view = encoder.model.cnn(crops_to_tensor(np.stack([crops[0], crops[0, :, ::-1]])))
    assert not torch.allclose(one_view[0], one_view[1], atol=1e-3)  # the CNN alone is not symmetric


@needs_fer
def test_alignment_is_deterministic_and_undoes_rotation(still: FaceFrontEnd) -> None:
    face = cv2.imread(str(sorted((FER_TEST / "neutral").glob("*.png"))[0]), cv2.IMREAD_GRAYSCALE)
    assert np.array_equal(still.aligned_crop(face), still.aligned_crop(face))
    big = cv2.resize(face, (224, 224), interpolation=cv2.INTER_CUBIC)
    lm = still.process(big).landmarks
    crop = align_face(big, lm)
    assert crop.shape == (CROP_SIZE, CROP_SIZE) and crop.dtype == np.uint8
    assert np.array_equal(crop, align_face(big, lm.copy()))
    m = cv2.getRotationMatrix2D((112, 112), 15, 1.0)  # tilt the picture, move the landmarks with it
    tilted = cv2.warpAffine(big, m, (224, 224), borderMode=cv2.BORDER_REPLICATE)
    lm_tilted = lm @ m[:, :2].T + m[:, 2]
    diff = np.abs(align_face(tilted, lm_tilted).astype(float) - crop)[8:56, 8:56]  # centre: no borders
    other = np.abs(fallback_crop(face).astype(float) - np.roll(crop, 6, axis=1))[8:56, 8:56]
    assert diff.mean() < 4 and diff.mean() < other.mean() / 3


def test_missing_weights_say_how_to_train(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="python -m realtime.expression train"):
        ExpressionEncoder(tmp_path / "none.safetensors")


def test_weights_that_do_not_fit_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    save_file({"head.1.weight": torch.zeros(3, 3)}, bad)
    shutil.copy(WEIGHTS_PATH.with_suffix(".json"), bad.with_suffix(".json"))
    with pytest.raises(ValueError, match="does not fit"):
        ExpressionEncoder(bad)
    meta = json.loads(WEIGHTS_PATH.with_suffix(".json").read_text())
    meta["alignment"]["crop_size"] = 48
    bad.with_suffix(".json").write_text(json.dumps(meta))
    shutil.copy(WEIGHTS_PATH, bad)
    with pytest.raises(ValueError, match="alignment"):
        ExpressionEncoder(bad)
