import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from dmd_lite.mmsa import MMSADataset, feature_shapes, load_mmsa
from dmd_lite.synthetic import make_synthetic

DIMS, LENS = (16, 5, 20), (10, 12, 14)


@pytest.fixture
def data():
    return make_synthetic(12, 5, 6, dims=DIMS, lens=LENS, seed=0)


def _write(tmp_path, data):
    path = tmp_path / "aligned_50.pkl"
    with path.open("wb") as f:
        pickle.dump(data, f)
    return path


def test_load_shapes_dtypes_and_values(tmp_path, data):
    splits = load_mmsa(_write(tmp_path, data))
    assert list(splits) == ["train", "valid", "test"]
    for name, n in (("train", 12), ("valid", 5), ("test", 6)):
        s = splits[name]
        assert len(s) == n
        assert s.text.shape == (n, LENS[0], DIMS[0]) and s.text.dtype == np.float32
        assert s.audio.shape == (n, LENS[1], DIMS[1]) and s.audio.dtype == np.float32
        assert s.vision.shape == (n, LENS[2], DIMS[2]) and s.vision.dtype == np.float32
        assert s.labels.shape == (n,) and s.labels.dtype == np.float32
        assert s.text_bert.shape == (n, 3, LENS[0])
        assert all(isinstance(i, str) for i in s.ids) and len(s.raw_text) == n
        np.testing.assert_array_equal(s.labels, data[name]["regression_labels"])
        np.testing.assert_array_equal(s.vision, data[name]["vision"])
    assert feature_shapes(splits["test"]) == {
        "dim_l": 16, "dim_a": 5, "dim_v": 20, "len_l": 10, "len_a": 12, "len_v": 14,
    }


def test_negative_infinity_in_audio_becomes_zero(tmp_path, data):
    data["train"]["audio"][0, 0, :3] = -np.inf
    data["train"]["audio"][1, 2, 4] = -np.inf
    audio = load_mmsa(_write(tmp_path, data))["train"].audio
    assert np.isfinite(audio).all()
    assert (audio[0, 0, :3] == 0).all() and audio[1, 2, 4] == 0
    np.testing.assert_array_equal(audio[0, 0, 3:], data["train"]["audio"][0, 0, 3:])


def test_text_bert_is_optional(tmp_path, data):
    for split in data.values():
        del split["text_bert"]
    assert load_mmsa(_write(tmp_path, data))["valid"].text_bert is None


def test_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="dmd_lite.synthetic"):
        load_mmsa(tmp_path / "nope.pkl")


def test_missing_key_names_split_and_key(tmp_path, data):
    del data["valid"]["vision"]
    with pytest.raises(ValueError, match=r"split 'valid' lacks key\(s\) \['vision'\]"):
        load_mmsa(_write(tmp_path, data))


def test_missing_split(tmp_path, data):
    del data["test"]
    with pytest.raises(ValueError, match=r"missing split\(s\) \['test'\]"):
        load_mmsa(_write(tmp_path, data))


def test_inconsistent_sample_counts(tmp_path, data):
    data["train"]["regression_labels"] = data["train"]["regression_labels"][:-1]
    with pytest.raises(ValueError, match="split 'train' has inconsistent sample counts"):
        load_mmsa(_write(tmp_path, data))


def test_feature_shapes_must_agree_across_splits(tmp_path, data):
    data["test"]["audio"] = data["test"]["audio"][:, :, :3]
    with pytest.raises(ValueError, match="split 'test' has feature shapes"):
        load_mmsa(_write(tmp_path, data))


def test_bad_feature_rank(tmp_path, data):
    data["train"]["text"] = data["train"]["text"].mean(axis=1)
    with pytest.raises(ValueError, match=r"'train/text' must be \(N, T, d\)"):
        load_mmsa(_write(tmp_path, data))


def test_dataset_items_and_batches(tmp_path, data):
    split = load_mmsa(_write(tmp_path, data))["train"]
    ds = MMSADataset(split)
    assert len(ds) == 12
    item = ds[3]
    assert item["text"].shape == (LENS[0], DIMS[0]) and item["text"].dtype == torch.float32
    assert item["audio"].shape == (LENS[1], DIMS[1]) and item["audio"].dtype == torch.float32
    assert item["vision"].shape == (LENS[2], DIMS[2]) and item["vision"].dtype == torch.float32
    assert item["label"].shape == (1,) and item["label"].dtype == torch.float32
    assert item["label"].item() == pytest.approx(float(split.labels[3]))
    assert item["index"] == 3
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["audio"].shape == (4, LENS[1], DIMS[1])
    assert batch["label"].shape == (4, 1)
    assert batch["index"].tolist() == [0, 1, 2, 3]
