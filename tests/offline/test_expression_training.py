"""The expression CNN's training (realtime.offline.expression) on a few real FER2013 faces: a fine-tune
starts from the weights it is given, and averaged weights are scored and recorded."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers.paths import DATA

from realtime.nets.expression import WEIGHTS_PATH, ExpressionEncoder
from realtime.offline.datasets import FER_SPLITS
from realtime.offline.expression import load_crop_set, train

PER_CLASS = 6  # images of each FER2013 emotion in each split


@pytest.fixture(scope="module")
def small_fer(tmp_path_factory):
    """A FER2013 tree of PER_CLASS real images per emotion and split (links into the shared data)."""
    root = tmp_path_factory.mktemp("fer")
    for split in FER_SPLITS:
        for emotion in sorted(p.name for p in (DATA / "fer2013_48" / split).iterdir()):
            (root / split / emotion).mkdir(parents=True)
            for image in sorted((DATA / "fer2013_48" / split / emotion).glob("*.png"))[:PER_CLASS]:
                (root / split / emotion / image.name).symlink_to(image)
    return root


@pytest.mark.needs_data("fer2013_48")
@pytest.mark.slow
def test_a_fine_tune_starts_from_its_weights_and_keeps_the_better_of_best_epoch_and_average(small_fer, tmp_path):
    cache = tmp_path / "crops.npz"
    out = tmp_path / "cnn.safetensors"
    runs = {}
    for name, init in (("scratch", None), ("fine-tune", WEIGHTS_PATH)):
        runs[name] = train(small_fer, epochs=2, batch=16, lr=1e-5, patience=5, out=out, cache=cache, seed=0,
                           init=init, average_from=1)
    crops = load_crop_set(small_fer, cache)
    assert len(crops.labels) == 7 * PER_CLASS * len(FER_SPLITS)
    first = {name: meta["training"]["log"][0]["val_accuracy"] for name, meta in runs.items()}
    assert first["fine-tune"] > first["scratch"] + 0.2  # the shipped CNN's answers, not a fresh net's
    log = runs["fine-tune"]["training"]["log"]
    assert log[-1]["averaged_epochs"] == 2
    assert runs["fine-tune"]["metrics"]["val_accuracy"] == max(e["val_accuracy"] for e in log)
    assert runs["fine-tune"]["training"]["init"] == WEIGHTS_PATH.name
    assert json.loads(out.with_suffix(".json").read_text())["training"]["average_from"] == 1
    _, probs = ExpressionEncoder(out)(crops.crops[:4])  # what was written loads as the shipped CNN does
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5)
