"""Synthetic MMSA-format data with a planted, learnable signal, for tests and smoke runs.

Labels are MOSI-like: uniform in [-3, 3], rounded to one decimal, with a few exact zeros.
Each modality of a sample is built as unit Gaussian noise plus:
  - the label, `signal * label / 3` along a fixed modality direction, on a random ~30% of the
    time steps; with probability DROP_PROB a modality carries no label at all for that sample;
  - a distractor: an independent random value along a second, orthogonal direction, on its own
    random ~30% of the steps.
Because every modality misses the label on a fifth of the samples, fusing the three recovers signs
that one modality alone cannot (ridge regression on time-averaged features of 1,000 MOSI-sized
training samples: about 87% of non-zero labels' signs from one modality, 96% from all three).
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np

from realtime.core.errors import run_cli

DEFAULT_DIMS = (768, 5, 20)  # (text, audio, vision): MOSI's BERT, COVAREP-subset, FACET-subset sizes
DEFAULT_LENS = (50, 50, 50)  # aligned MMSA sequence lengths
DEFAULT_SIGNAL = 8.0  # peak label amplitude along its direction, in units of the noise std
ACTIVE_STEPS = 0.3  # share of time steps that carry the label (and, separately, the distractor)
DROP_PROB = 0.2  # chance that a modality carries no label for a given sample
ZERO_LABELS = 0.04  # share of labels forced to exactly 0 (MOSI has 96 of 2,199)
CLS_ID, SEP_ID, VOCAB = 101, 102, 30522  # bert-base-uncased special tokens and vocabulary size


def _labels(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n,) float32 labels in [-3, 3] with one decimal and some exact zeros."""
    labels = np.round(rng.uniform(-3.0, 3.0, n), 1)
    labels[rng.random(n) < ZERO_LABELS] = 0.0
    return labels.astype(np.float32)


def _modality(
    rng: np.random.Generator, labels: np.ndarray, length: int, directions: np.ndarray, signal: float
) -> np.ndarray:
    """(N, length, d) float32 features: noise + label on some steps + distractor on others."""
    n, dim = len(labels), directions.shape[0]
    x = rng.standard_normal((n, length, dim), dtype=np.float32)
    present = rng.random((n, 1)) >= DROP_PROB  # (N, 1)
    label_steps = rng.random((n, length)) < ACTIVE_STEPS  # (N, T)
    distractor = rng.uniform(-1.0, 1.0, (n, 1))  # (N, 1)
    distractor_steps = rng.random((n, length)) < ACTIVE_STEPS  # (N, T)
    label_gain = (signal * labels[:, None] / 3.0 * present * label_steps).astype(np.float32)  # (N, T)
    distractor_gain = (signal * distractor * distractor_steps).astype(np.float32)  # (N, T)
    directions = directions.astype(np.float32)
    x += label_gain[..., None] * directions[:, 0]  # (N, T, 1) * (d,) -> (N, T, d)
    x += distractor_gain[..., None] * directions[:, 1]
    return x


def _text_bert(rng: np.random.Generator, n: int, length: int) -> np.ndarray:
    """(N, 3, length) float32 BERT inputs: token ids ([CLS] ... [SEP], zero padded), mask, segment ids."""
    out = np.zeros((n, 3, length), dtype=np.float32)
    n_tokens = rng.integers(2, length + 1, n)  # including [CLS] and [SEP]
    for i, w in enumerate(n_tokens):
        out[i, 0, :w] = rng.integers(1000, VOCAB, w)
        out[i, 0, 0], out[i, 0, w - 1] = CLS_ID, SEP_ID
        out[i, 1, :w] = 1.0
    return out


def _split(
    rng: np.random.Generator,
    name: str,
    n: int,
    lens: tuple[int, int, int],
    directions: list[np.ndarray],
    signal: float,
) -> dict:
    """One split in MMSA's key layout."""
    labels = _labels(rng, n)
    text, audio, vision = (_modality(rng, labels, t, d, signal) for t, d in zip(lens, directions))
    sentiment = np.sign(labels).astype(np.int64) + 1  # 0 negative, 1 neutral, 2 positive
    return {
        "raw_text": np.array([f"synthetic utterance {i}" for i in range(n)]),
        "audio": audio,
        "vision": vision,
        "id": np.array([f"{name}{i // 10:04d}$_${i % 10}" for i in range(n)]),
        "text": text,
        "text_bert": _text_bert(rng, n, lens[0]),
        "audio_lengths": np.full(n, lens[1], dtype=np.int64),
        "vision_lengths": np.full(n, lens[2], dtype=np.int64),
        "annotations": np.array(["Negative", "Neutral", "Positive"])[sentiment],
        "classification_labels": sentiment.astype(np.float32),
        "regression_labels": labels,
    }


def make_synthetic(
    n_train: int,
    n_valid: int,
    n_test: int,
    dims: tuple[int, int, int] = DEFAULT_DIMS,
    lens: tuple[int, int, int] = DEFAULT_LENS,
    seed: int = 0,
    signal: float = DEFAULT_SIGNAL,
) -> dict:
    """{"train", "valid", "test"} -> MMSA split dict; dims and lens are (text, audio, vision).

    The planted directions are shared by all splits; each split has its own random stream, so
    changing one split's size leaves the others unchanged.
    """
    if min(dims) < 2 or min(lens) < 2:
        raise ValueError(f"dims and lens must all be >= 2, got dims={dims}, lens={lens}")
    if min(n_train, n_valid, n_test) < 1:
        raise ValueError(f"every split needs at least one sample, got {n_train}/{n_valid}/{n_test}")
    dir_rng, *split_rngs = np.random.default_rng(seed).spawn(4)
    # Per modality, (d, 2) orthonormal columns: label direction, distractor direction.
    directions = [np.linalg.qr(dir_rng.standard_normal((d, 2)))[0] for d in dims]
    sizes = {"train": n_train, "valid": n_valid, "test": n_test}
    return {
        name: _split(rng, name, n, tuple(lens), directions, signal)
        for (name, n), rng in zip(sizes.items(), split_rngs)
    }


def write_synthetic(
    path: str | Path,
    n_train: int,
    n_valid: int,
    n_test: int,
    dims: tuple[int, int, int] = DEFAULT_DIMS,
    lens: tuple[int, int, int] = DEFAULT_LENS,
    seed: int = 0,
    signal: float = DEFAULT_SIGNAL,
) -> Path:
    """Write make_synthetic(...) as an MMSA pickle at `path` and return the path."""
    data = make_synthetic(n_train, n_valid, n_test, dims, lens, seed, signal)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(
        prog="python -m dmd_lite.synthetic",
        description="Write a synthetic MMSA-format pickle (train/valid/test) whose labels are "
        "planted in all three modalities, each only partly informative.",
    )
    p.add_argument("--out", required=True, type=Path, help="output .pkl file")
    p.add_argument("--n-train", type=int, default=1000, help="training samples (default: %(default)s)")
    p.add_argument("--n-valid", type=int, default=200, help="validation samples (default: %(default)s)")
    p.add_argument("--n-test", type=int, default=400, help="test samples (default: %(default)s)")
    p.add_argument(
        "--dims", type=int, nargs=3, default=DEFAULT_DIMS, metavar=("L", "A", "V"),
        help="feature sizes of text, audio, vision (default: %(default)s, as MOSI)",
    )
    p.add_argument(
        "--lens", type=int, nargs=3, default=DEFAULT_LENS, metavar=("L", "A", "V"),
        help="sequence lengths of text, audio, vision (default: %(default)s, as aligned MMSA)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument(
        "--signal", type=float, default=DEFAULT_SIGNAL,
        help="label amplitude in noise-std units; lower is harder (default: %(default)s)",
    )
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    path = write_synthetic(
        args.out, args.n_train, args.n_valid, args.n_test, tuple(args.dims), tuple(args.lens), args.seed, args.signal
    )
    size_mib = path.stat().st_size / 2**20
    print(f"wrote {path} ({size_mib:.1f} MiB): {args.n_train}/{args.n_valid}/{args.n_test} samples, "
          f"dims {tuple(args.dims)}, lens {tuple(args.lens)}")


if __name__ == "__main__":
    run_cli(main)
