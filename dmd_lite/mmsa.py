"""Loader for MMSA-format feature files (`aligned_50.pkl`, `unaligned_50.pkl`) of CMU-MOSI,
CMU-MOSEI and CH-SIMS.

An MMSA file is a pickle of `{split: {key: array}}` with splits train/valid/test (layout in
`shared/reference/dmd_official.md` §2.3). The pickle is read by a restricted unpickler that only
builds plain data (dicts, lists, strings, numbers, numpy arrays and scalars): a file that refers to
anything else (a function such as `os.system`, any other class) is refused before it can run.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

SPLITS = ("train", "valid", "test")
REQUIRED_KEYS = ("text", "audio", "vision", "regression_labels", "id", "raw_text")

# The only globals a plain-data pickle needs (numpy 1 `numpy.core` and numpy 2 `numpy._core` names;
# `__builtin__` is how protocols 0-2 spell `builtins`, `_codecs.encode` how they store bytes).
_PLAIN_GLOBALS = frozenset({
    ("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict"), ("_codecs", "encode"),
    *((f"{core}.{module}", name) for core in ("numpy.core", "numpy._core")
      for module, name in (("multiarray", "_reconstruct"), ("multiarray", "scalar"),
                           ("numeric", "_frombuffer"))),
    *((module, name) for module in ("builtins", "__builtin__")
      for name in ("set", "frozenset", "bytearray", "complex")),
})


class MMSAFileError(ValueError):
    """An MMSA file that cannot be used: not a plain-data pickle, or a missing split or key, bad shapes
    or inconsistent sample counts."""


class _PlainUnpickler(pickle.Unpickler):
    """Unpickler that builds only plain data: any global outside ``_PLAIN_GLOBALS`` is refused
    before it is looked up, so nothing the file names can run."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _PLAIN_GLOBALS:
            raise pickle.UnpicklingError(f"it refers to {module}.{name}, which is not allowed")
        return super().find_class(module, name)


@dataclass
class MMSASplit:
    """One split of an MMSA file, as float32 arrays."""

    text: np.ndarray  # (N, T_l, d_l) precomputed text features (BERT last hidden state in MMSA)
    audio: np.ndarray  # (N, T_a, d_a), -inf (log of silence in COVAREP) replaced by 0
    vision: np.ndarray  # (N, T_v, d_v)
    labels: np.ndarray  # (N,) sentiment in [-3, 3] (MOSI/MOSEI) or [-1, 1] (SIMS)
    ids: list[str]  # "video$_$clip"
    raw_text: list[str]  # transcripts
    text_bert: np.ndarray | None  # (N, 3, T_l) token ids / attention mask / segment ids, or None

    def __len__(self) -> int:
        return len(self.labels)


def _split_from_dict(name: str, raw: dict, path: Path) -> MMSASplit:
    """Validate one split's dict and convert it to an MMSASplit."""
    if not isinstance(raw, dict):
        raise MMSAFileError(f"{path}: split '{name}' must be a dict of arrays, got {type(raw).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise MMSAFileError(f"{path}: split '{name}' lacks key(s) {missing}; an MMSA file needs {list(REQUIRED_KEYS)}")
    features = {}
    for key in ("text", "audio", "vision"):
        x = np.asarray(raw[key], dtype=np.float32)
        if x.ndim != 3:
            raise MMSAFileError(f"{path}: '{name}/{key}' must be (N, T, d), got shape {x.shape}")
        features[key] = x
    features["audio"] = np.where(features["audio"] == -np.inf, np.float32(0), features["audio"])
    labels = np.asarray(raw["regression_labels"], dtype=np.float32).reshape(-1)
    text_bert = None if raw.get("text_bert") is None else np.asarray(raw["text_bert"], dtype=np.float32)
    ids = [str(i) for i in raw["id"]]
    raw_text = [str(s) for s in raw["raw_text"]]

    sizes = {k: len(v) for k, v in features.items()}
    sizes |= {"regression_labels": len(labels), "id": len(ids), "raw_text": len(raw_text)}
    if text_bert is not None:
        sizes["text_bert"] = len(text_bert)
    if len(set(sizes.values())) != 1:
        raise MMSAFileError(f"{path}: split '{name}' has inconsistent sample counts {sizes}; the file is corrupt")
    return MMSASplit(labels=labels, ids=ids, raw_text=raw_text, text_bert=text_bert, **features)


def load_mmsa(path: str | Path) -> dict[str, MMSASplit]:
    """Load an MMSA pickle into {"train", "valid", "test"} -> MMSASplit.

    Only plain data is unpickled (see ``_PlainUnpickler``). Raises FileNotFoundError for a missing
    file and MMSAFileError (a ValueError) for a pickle that is corrupt or refers to anything but
    plain data, a missing split or key, bad shapes, inconsistent sample counts, or feature sizes
    that differ between splits.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"MMSA file {path} not found: download aligned_50.pkl / unaligned_50.pkl from thuiar/MMSA, "
            "or write a synthetic one with `python -m dmd_lite.synthetic --out FILE`"
        )
    with path.open("rb") as f:
        try:
            data = _PlainUnpickler(f).load()
        except (pickle.UnpicklingError, EOFError, ValueError) as e:  # ValueError: e.g. unknown protocol
            raise MMSAFileError(
                f"{path} is not a plain MMSA pickle: {e}; an MMSA file holds only dicts, lists, strings, numbers "
                "and numpy arrays (use the official MMSA download, or write one with `python -m dmd_lite.synthetic`)"
            ) from None
    if not isinstance(data, dict):
        raise MMSAFileError(f"{path}: expected a dict of splits {list(SPLITS)}, got {type(data).__name__}")
    missing = [s for s in SPLITS if s not in data]
    if missing:
        raise MMSAFileError(f"{path}: missing split(s) {missing}; an MMSA file has {list(SPLITS)}")
    splits = {name: _split_from_dict(name, data[name], path) for name in SPLITS}

    reference = feature_shapes(splits["train"])
    for name in SPLITS[1:]:
        shapes = feature_shapes(splits[name])
        if shapes != reference:
            raise MMSAFileError(f"{path}: split '{name}' has feature shapes {shapes}, train has {reference}")
    return splits


def feature_shapes(split: MMSASplit) -> dict[str, int]:
    """Feature sizes (dim_l, dim_a, dim_v) and sequence lengths (len_l, len_a, len_v) of a split."""
    return {
        "dim_l": split.text.shape[2],
        "dim_a": split.audio.shape[2],
        "dim_v": split.vision.shape[2],
        "len_l": split.text.shape[1],
        "len_a": split.audio.shape[1],
        "len_v": split.vision.shape[1],
    }


class MMSADataset(Dataset):
    """Samples of one split as dicts: float32 `text`, `audio`, `vision`, `label` (1,), int `index`."""

    def __init__(self, split: MMSASplit) -> None:
        # torch views on the numpy arrays: no copy, indexing returns views too.
        self.text = torch.from_numpy(split.text)
        self.audio = torch.from_numpy(split.audio)
        self.vision = torch.from_numpy(split.vision)
        self.labels = torch.from_numpy(split.labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor | int]:
        return {
            "text": self.text[i],  # (T_l, d_l)
            "audio": self.audio[i],  # (T_a, d_a)
            "vision": self.vision[i],  # (T_v, d_v)
            "label": self.labels[i : i + 1],  # (1,)
            "index": i,
        }
