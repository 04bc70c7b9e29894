"""The fused Triton kernels against the PyTorch recognizer: every modality subset, batches 1, 3 and 64,
random and shipped weights, padding full of huge values, half precision.

Without CUDA the same kernels run on CPU tensors under Triton's interpreter (``TRITON_INTERPRET=1``,
set here before Triton loads them); on a GPU they run as compiled kernels.
"""

from __future__ import annotations

import itertools
import os

import pytest
import torch

CUDA = torch.cuda.is_available()
if not CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")

from dmd_lite.recognizer import Recognizer, build_recognizer, load_recognizer  # noqa: E402
from realtime.core.feature_spec import VOICE_FEATURE_DIM  # noqa: E402
from realtime.core.modalities import MODALITIES  # noqa: E402
from realtime.engines.fused.launch import FusedCall  # noqa: E402
from realtime.engines.fused.weights import UnsupportedModel, pack  # noqa: E402

DEVICE = "cuda" if CUDA else "cpu"
SUBSETS = [s for n in range(4) for s in itertools.combinations(MODALITIES, n)]  # all 8, the empty one included
FLOAT32_TOL = 1e-4
# float16 operands keep 11 significant bits (relative rounding 4.9e-4, bfloat16's 8 bits 3.9e-3) through
# about ten products in a row (voice trunk, projection, attention, feed-forward, memory, heads); the
# errors add up to about 1e-3 (float16) and 1e-2 (bfloat16) on probabilities that lie in [0, 1]
HALF_TOL = {"float16": 5e-3, "bfloat16": 3e-2}
OUTPUT_NAMES = ("probabilities", "valence", "edges_homo", "edges_hetero")


@pytest.fixture(scope="module")
def shipped() -> Recognizer:
    return load_recognizer("default")[0]


@pytest.fixture(scope="module")
def random_model() -> Recognizer:
    """The shipped shapes with every weight, bias, norm statistic and temperature drawn at random."""
    torch.manual_seed(7)
    model = build_recognizer(load_recognizer("default")[1]).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            fan_in = p[0].numel() if p.dim() > 1 else 4
            p.copy_(torch.randn_like(p) / fan_in ** 0.5)
        for bn in [block.bn for block in model.voice.blocks] + [model.voice.ge2e_norm]:
            bn.running_mean.normal_()
            bn.running_var.uniform_(0.5, 2.0)
        model.temperature.fill_(1.3)
        model.text_temperature.fill_(0.8)
    model.dmd.forget_stacked()
    return model


def windows(subsets: list[tuple[str, ...]], seed: int, padding: float | None = None) -> list[torch.Tensor]:
    """One window per subset: features everywhere, masks with a random run of present steps (words from
    the first slot on) for the modalities in the subset. ``padding``: the value of every absent step
    (default: random features there too)."""
    g = torch.Generator().manual_seed(seed)
    shapes = {"visual": (60, 127), "audio": (100, VOICE_FEATURE_DIM), "text": (24, 40)}
    out = []
    for m in MODALITIES:
        steps, dim = shapes[m]
        x = torch.randn(len(subsets), steps, dim, generator=g)
        mask = torch.zeros(len(subsets), steps, dtype=torch.bool)
        for i, subset in enumerate(subsets):
            if m in subset:
                n = int(torch.randint(1, steps + 1, (1,), generator=g))
                start = 0 if m == "text" else int(torch.randint(0, steps - n + 1, (1,), generator=g))
                mask[i, start:start + n] = True
        if padding is not None:
            x[~mask] = padding
        out += [x, mask]
    return out


def fused(model: Recognizer, inputs: list[torch.Tensor], precision: str = "float32") -> list[torch.Tensor]:
    call = FusedCall(pack(model, DEVICE, precision), len(inputs[0]), DEVICE)
    return [t.cpu().clone() for t in call(*(t.to(DEVICE) for t in inputs))]


def reference(model: Recognizer, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    with torch.no_grad():
        return list(model.unmixed(*inputs))


def worst(a: list[torch.Tensor], b: list[torch.Tensor]) -> dict[str, float]:
    return {n: float((x - y).abs().max()) for n, x, y in zip(OUTPUT_NAMES, a, b)}


def test_every_subset_at_batch_64_matches_the_shipped_model(shipped):
    inputs = windows(SUBSETS * 8, seed=1)
    out = fused(shipped, inputs)
    assert all(torch.isfinite(t).all() for t in out)
    diff = worst(out, reference(shipped, inputs))
    assert max(diff.values()) <= FLOAT32_TOL, diff
    assert (out[0].argmax(1) == reference(shipped, inputs)[0].argmax(1)).all()


@pytest.mark.parametrize("batch", [1, 3])
def test_random_weights_match_at_small_batches(random_model, batch):
    groups = [SUBSETS[i:i + batch] for i in range(0, len(SUBSETS), batch)]
    for seed, subsets in enumerate(groups):
        inputs = windows(subsets, seed=10 + seed)
        diff = worst(fused(random_model, inputs), reference(random_model, inputs))
        assert max(diff.values()) <= FLOAT32_TOL, (subsets, diff)


def test_padding_full_of_huge_values_never_leaks(random_model):
    huge, zero = windows(SUBSETS, seed=3, padding=1e30), windows(SUBSETS, seed=3, padding=0.0)
    out = fused(random_model, huge)
    assert all(torch.isfinite(t).all() for t in out)
    assert max(worst(out, fused(random_model, zero)).values()) == 0.0
    assert max(worst(out, reference(random_model, zero)).values()) <= FLOAT32_TOL


@pytest.mark.parametrize("precision", ["float16"] + (["bfloat16", "tf32"] if CUDA else []))
def test_lower_precision_stays_within_its_tolerance(shipped, precision):
    inputs = windows(SUBSETS, seed=4)
    diff = worst(fused(shipped, inputs, precision), reference(shipped, inputs))
    assert max(diff.values()) <= HALF_TOL.get(precision, 2e-3), diff


def test_other_shapes_are_refused_in_one_line():
    meta = load_recognizer("default")[1]
    model = build_recognizer({**meta, "model": {**meta["model"], "d_model": 48, "num_heads": 4}})
    with pytest.raises(UnsupportedModel, match="d_model.*--backend torch") as e:
        pack(model, DEVICE)
    assert "\n" not in str(e.value)


@pytest.mark.skipif(CUDA, reason="checks the refusal on a machine without CUDA")
def test_the_backend_refuses_without_cuda_in_one_line(capsys):
    from realtime.cli import parse_args
    from realtime.engines import make_engine

    for device, why in (("cpu", "add --device cuda"), ("cuda", "sees no CUDA device")):
        with pytest.raises(RuntimeError, match=why) as e:
            make_engine("fused", device=device)
        assert "\n" not in str(e.value)
    with pytest.raises(SystemExit) as exit_:
        parse_args(["--demo", "--headless", "--backend", "fused"])
    assert exit_.value.code == 2
    assert "--backend fused runs Triton kernels on an NVIDIA GPU: add --device cuda" in capsys.readouterr().err
