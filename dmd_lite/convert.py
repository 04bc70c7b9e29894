"""Map an official DMD state_dict (github.com/mdswyz/DMD) onto ours, and verify the mapping.

    python -m dmd_lite.convert --preset mosi_aligned --input dmd.pth --out ckpt/
    python -m dmd_lite.convert --verify ../shared/reference/dmd_parity/mosi_aligned

``--verify`` runs our model on a parity fixture (official weights, inputs and all forward
outputs) and prints one JSON line; it exits 0 only when every official output is reproduced
within atol = rtol = 1e-5 (float32 noise for a different order of operations). Its
``max_rel_diff`` is taken over official values of magnitude 1e-3 or more, since the relative
difference of a value near zero says nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from torch import Tensor

from realtime.core.errors import run_cli

from .checkpoint import save_checkpoint
from .config import DMDConfig, preset
from .model import DMD

ATOL = RTOL = 1e-5
REL_FLOOR = 1e-3  # max_rel_diff is taken over official values at least this large

# official name pattern -> ours; {m}/{o} are modalities, {rest} the tail of a transformer key
_RULES: list[tuple[str, str]] = [
    (r"proj_([lva])\.(.+)", r"project.\1.\2"),
    (r"encoder_s_([lva])\.(.+)", r"private.\1.\2"),
    (r"encoder_c\.(.+)", r"shared.\1"),
    (r"decoder_([lva])\.(.+)", r"decoder.\1.\2"),
    (r"proj_cosine_([lva])\.(.+)", r"proj_cosine.\1.\2"),
    (r"align_c_([lva])\.(.+)", r"align_c.\1.\2"),
    (r"self_attentions_c_([lva])\.(.+)", r"self_attn_common.\1.\2"),
    (r"trans_([lva])_with_([lva])\.(.+)", r"cross.\1_with_\2.\3"),
    (r"trans_([lva])_mem\.(.+)", r"memory.\1.\2"),
    (r"proj([12])_([lva])_low\.(.+)", r"homo_head.\2.proj\1.\3"),
    (r"out_layer_([lva])_low\.(.+)", r"homo_head.\1.out.\2"),
    (r"proj([12])_([lva])_high\.(.+)", r"hetero_head.\2.proj\1.\3"),
    (r"out_layer_([lva])_high\.(.+)", r"hetero_head.\1.out.\2"),
    (r"proj([12])_c\.(.+)", r"common_head.proj\1.\2"),
    (r"out_layer_c\.(.+)", r"common_head.out.\1"),
    (r"weight_([lvac])\.(.+)", r"gate.\1.\2"),
    (r"proj([12])\.(.+)", r"fusion_head.proj\1.\2"),
    (r"out_layer\.(.+)", r"fusion_head.out.\1"),
]
# official entries that carry no parameters (MulT's version counters and dtype holders) or
# belong to the BERT text encoder, which our model takes as precomputed features
_SKIP = re.compile(r"(.*\.version|.*\.embed_positions\._float_tensor|text_model\..*)$")


def official_to_ours(name: str) -> str | None:
    """Our key for an official state_dict key; None for entries we do not keep."""
    if _SKIP.fullmatch(name):
        return None
    for pattern, target in _RULES:
        if re.fullmatch(pattern, name):
            return re.sub(pattern, target, name)
    raise KeyError(f"official key {name!r} has no counterpart; is this a DMD state_dict?")


def convert_state_dict(official: dict[str, Tensor], model: DMD) -> dict[str, Tensor]:
    """Our state_dict from an official one; every model weight outside the GD-Units must be found.

    The official checkpoints do not store the GD-Units (they are separate modules there), so
    ours keep their initialisation."""
    ours = {new: t for k, t in official.items() if (new := official_to_ours(k)) is not None}
    expected = {k for k in model.state_dict() if not k.startswith(("gd_homo.", "gd_hetero."))}
    missing, unexpected = expected - set(ours), set(ours) - set(model.state_dict())
    if missing or unexpected:
        raise ValueError(f"official weights do not fit preset {model.cfg.name!r}: "
                         f"missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]}")
    for k, t in ours.items():
        if t.shape != model.state_dict()[k].shape:
            raise ValueError(f"{k}: official shape {tuple(t.shape)} != preset shape "
                             f"{tuple(model.state_dict()[k].shape)}; check --preset")
    return ours


def load_official(path: Path) -> dict[str, Tensor]:
    """An official state_dict from safetensors, or from a .pth loaded with weights_only=True."""
    if path.suffix == ".safetensors":
        return load_file(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state


def official_layout(name: str, ours: Tensor) -> Tensor:
    """Our aux tensor in the official layout: s_* and c_* are time-first (L', B, d) there."""
    return ours.permute(2, 0, 1) if re.fullmatch(r"[sc]_[lva]", name) else ours


def fixture_config(fixture: dict) -> DMDConfig:
    """The preset a parity fixture was made with, checked against the fixture's sizes."""
    aligned = "aligned" if fixture["need_data_aligned"] else "unaligned"
    cfg = preset(f"{fixture['dataset_name']}_{aligned}")
    dims, lens = fixture["feature_dims_l_a_v"], fixture["seq_len_l_a_v"]
    got = [cfg.dim_l, cfg.dim_a, cfg.dim_v], [cfg.len_l, cfg.len_a, cfg.len_v]
    if got != (dims, lens):
        raise ValueError(f"fixture sizes {dims}/{lens} differ from preset {cfg.name} {got}")
    return cfg


def verify(directory: Path) -> dict:
    """Compare our forward with the fixture's official outputs; returns the JSON report."""
    fixture = json.loads((directory / "config.json").read_text())
    model = DMD(fixture_config(fixture)).eval()
    model.load_state_dict(convert_state_dict(load_file(directory / "state_dict.safetensors"), model), strict=False)
    inputs, expected = np.load(directory / "inputs.npz"), np.load(directory / "outputs.npz")
    with torch.no_grad():
        aux = model(*(torch.from_numpy(inputs[k]) for k in ("text", "audio", "vision")), return_aux=True).aux
    abs_diff = rel_diff = 0.0
    failed = []
    for name in expected.files:
        want = torch.from_numpy(expected[name])
        got = official_layout(name, aux[name])
        if got.shape != want.shape:
            raise ValueError(f"{name}: shape {tuple(got.shape)} != official {tuple(want.shape)}")
        diff = (got - want).abs()
        abs_diff = max(abs_diff, diff.max().item())
        sizable = want.abs() >= REL_FLOOR
        if sizable.any():
            rel_diff = max(rel_diff, (diff[sizable] / want.abs()[sizable]).max().item())
        if not torch.allclose(got, want, atol=ATOL, rtol=RTOL):
            failed.append(name)
    return {"fixture": fixture["fixture"], "outputs_compared": len(expected.files),
            "max_abs_diff": abs_diff, "max_rel_diff": rel_diff, "failed": failed}


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m dmd_lite.convert", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--verify", type=Path, metavar="DIR",
                   help="parity fixture directory (config.json, state_dict.safetensors, inputs.npz, outputs.npz)")
    p.add_argument("--input", type=Path, help="official state_dict: .safetensors, or .pth (trusted files only)")
    p.add_argument("--preset", choices=[n for n in ("mosi_aligned", "mosi_unaligned", "mosei_aligned", "mosei_unaligned")],
                   help="paper preset the official checkpoint was trained with")
    p.add_argument("--out", type=Path, help="output checkpoint directory")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.verify:
        if not (args.verify / "outputs.npz").is_file():
            p.error(f"{args.verify} is not a parity fixture (no outputs.npz)")
        report = verify(args.verify)
        print(json.dumps({k: v for k, v in report.items() if k != "failed"}))
        if report["failed"]:
            print(f"outside atol=rtol={ATOL}: {', '.join(report['failed'])}", file=sys.stderr)
        return 1 if report["failed"] else 0
    if not (args.input and args.preset and args.out):
        p.error("converting needs --input, --preset and --out (or use --verify DIR)")
    if not args.input.is_file():
        p.error(f"no such file: {args.input}")
    model = DMD(preset(args.preset))
    model.load_state_dict(convert_state_dict(load_official(args.input), model), strict=False)
    save_checkpoint(model, args.out, source={"official": str(args.input)})
    print(f"wrote {args.out} ({sum(t.numel() for t in model.parameters()):,} parameters)")
    return 0


if __name__ == "__main__":
    run_cli(main)
