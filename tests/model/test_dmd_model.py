"""The DMD model: official parity, GD-Unit, masks, gradients and checkpoints."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from dataclasses import replace

import pytest
import torch
from helpers.paths import ROOT as REPO, SHARED

from dmd_lite.checkpoint import load_checkpoint, save_checkpoint
from dmd_lite.config import DMDConfig, preset
from dmd_lite.convert import convert_state_dict, verify
from dmd_lite.gd_unit import GDUnit
from dmd_lite.model import DMD, last_present
from dmd_lite.objective import CORRECTED, OFFICIAL, dmd_loss
from realtime.core.modalities import EDGE_NAMES, MODEL_ORDER

PARITY = SHARED / "reference" / "dmd_parity"
needs_parity = pytest.mark.skipif(not PARITY.is_dir(), reason=f"parity fixtures not found at {PARITY}")


def inputs(cfg: DMDConfig, batch: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = [torch.randn(batch, cfg.length(m), cfg.dim(m), generator=g) for m in ("l", "a", "v")]
    return x


def lite(**changes) -> DMDConfig:
    return replace(preset("lite"), **changes)


@needs_parity
@pytest.mark.parametrize("fixture", ["mosi_aligned", "mosei_unaligned"])
def test_official_parity(fixture):
    report = verify(PARITY / fixture)
    assert report["outputs_compared"] == 38
    assert report["failed"] == [], report
    assert report["max_abs_diff"] < 1e-5


@needs_parity
def test_convert_cli_verify_exit_status():
    run = subprocess.run([sys.executable, "-m", "dmd_lite.convert", "--verify", str(PARITY / "mosi_aligned")],
                         capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert set(report) == {"fixture", "outputs_compared", "max_abs_diff", "max_rel_diff"}


@needs_parity
def test_converted_checkpoint_reproduces_official_prediction(tmp_path):
    from safetensors.torch import load_file
    import numpy as np

    src = PARITY / "mosi_aligned"
    run = subprocess.run([sys.executable, "-m", "dmd_lite.convert", "--input", str(src / "state_dict.safetensors"),
                          "--preset", "mosi_aligned", "--out", str(tmp_path / "ckpt")],
                         capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 0, run.stderr
    model, _ = load_checkpoint(tmp_path / "ckpt")
    x = np.load(src / "inputs.npz")
    with torch.no_grad():
        got = model(*(torch.from_numpy(x[k]) for k in ("text", "audio", "vision"))).logits
    want = torch.from_numpy(np.load(src / "outputs.npz")["output_logit"])
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert len(load_file(src / "state_dict.safetensors")) == 702


def test_converter_rejects_wrong_preset():
    official_like = {k.replace("project.", "proj_"): v for k, v in DMD(preset("mosi_aligned")).state_dict().items()}
    with pytest.raises((KeyError, ValueError)):
        convert_state_dict(official_like, DMD(preset("mosei_aligned")))


@pytest.mark.parametrize("name, n_params", [("mosi_aligned", 4_743_658), ("mosei_unaligned", 5_086_778)])
def test_paper_presets_have_the_official_parameter_count(name, n_params):
    model = DMD(preset(name))
    official = sum(p.numel() for k, p in model.named_parameters() if not k.startswith("gd_"))
    assert official == n_params


def test_paper_hyper_parameters():
    mosi, mosei = preset("mosi_aligned"), preset("mosei_unaligned")
    assert (mosi.d_model, mosi.num_heads, mosi.nlevels, mosi.mem_layers) == (50, 10, 4, 4)
    assert (mosei.d_model, mosei.num_heads, mosei.kernel_l, mosei.kernel_a, mosei.kernel_v) == (30, 6, 5, 1, 3)
    assert [mosei.projected_length(m) for m in ("l", "a", "v")] == [46, 500, 498]
    assert (preset("mosi_unaligned").len_v, preset("mosi_unaligned").len_a) == (500, 375)


def test_gd_unit_edge_order_softmax_and_priors():
    assert EDGE_NAMES == ("V->L", "A->L", "L->V", "A->V", "L->A", "V->A")
    cfg = preset("mosi_aligned")
    homo = GDUnit(1, 50, 64, cfg.gd_prior_homo, cfg.gd_prior_temperature, cfg.gd_alpha, "joint")
    hetero = GDUnit(1, 100, 32, cfg.gd_prior_hetero, cfg.gd_prior_temperature, cfg.gd_alpha, "joint")
    torch.testing.assert_close(homo.prior, torch.tensor([.0088, .0088, .4823, .0088, .4823, .0088]), atol=1e-4, rtol=0)
    torch.testing.assert_close(hetero.prior, torch.tensor([.0060, .0060, .3273, .0060, .3273, .3273]), atol=1e-4, rtol=0)

    logits, reprs = torch.randn(3, 5, 1), torch.randn(3, 5, 50)
    edges = homo(logits, reprs)
    torch.testing.assert_close(edges.sum(dim=1), torch.ones(5))
    # by hand: edge x = (teacher i -> student j) scores W_edge([z_j ; z_i]), softmax(alpha * e) over 6
    z = torch.cat([homo.W_logit(logits), homo.W_repr(reprs)], dim=-1)
    pairs = [(1, 0), (2, 0), (0, 1), (2, 1), (0, 2), (1, 2)]  # V->L A->L L->V A->V L->A V->A
    scores = torch.cat([homo.W_edge(torch.cat([z[j], z[i]], dim=-1)) for i, j in pairs], dim=1)
    torch.testing.assert_close(edges, torch.softmax(scores / 8, dim=1))

    per_target = GDUnit(1, 50, 64, cfg.gd_prior_homo, 0.25, 1 / 8, "per_target")
    per_target.load_state_dict(homo.state_dict())
    torch.testing.assert_close(per_target(logits, reprs).view(5, 3, 2).sum(-1), torch.ones(5, 3))


def test_gd_regulariser_and_distillation_detach_the_teacher():
    unit = GDUnit(1, 4, 8, (0, 0, 1, 0, 1, 0), 0.25, 1 / 8, "joint")
    edges = unit.prior.expand(3, 6).clone()
    assert unit.regulariser(edges).item() == pytest.approx(0.0, abs=1e-12)
    student = torch.randn(3, 3, 4, requires_grad=True)
    unit.distill(edges, student, student, "l1").backward()
    assert student.grad.abs().sum() > 0  # students learn; a detached teacher alone would give 0


def test_gradients_reach_every_trainable_parameter():
    torch.manual_seed(0)
    for cfg, objective in ((lite(n_classes=7), CORRECTED), (preset("mosi_aligned"), OFFICIAL)):
        model = DMD(cfg).train()
        B = 7  # odd: an L1 gradient cannot cancel to exactly 0 over the batch
        target = torch.stack([torch.arange(B) % 7, torch.randn(B)], 1).float() if cfg.n_classes else torch.randn(B, 1)
        dmd_loss(model, model(*inputs(cfg, B), return_aux=True), target, objective)["total"].backward()
        # proj_cosine_* exist only so official checkpoints load; the official loss never uses them.
        # The edge network's output bias (official too) adds the same value to all six edge scores,
        # which their softmax cancels: its gradient is zero up to rounding, by construction.
        silent = [k for k, p in model.named_parameters()
                  if (p.grad is None or not p.grad.abs().sum()) and not k.startswith("proj_cosine")
                  and not k.endswith("W_edge.bias")]
        assert silent == [], f"{cfg.name}: no gradient for {silent}"


def test_lite_outputs_are_finite_for_every_modality_subset():
    model = DMD(lite(n_classes=7)).eval()
    B, cfg = 2, model.cfg
    x = inputs(cfg, B)
    for subset in itertools.chain.from_iterable(itertools.combinations(MODEL_ORDER, k) for k in range(4)):
        masks = {f"mask_{m}": torch.full((B, cfg.length(m)), m in subset) for m in MODEL_ORDER}
        with torch.no_grad():
            out = model(*x, **masks)
        assert torch.isfinite(out.logits).all(), subset
        for edges in (out.edges_homo, out.edges_hetero):
            assert torch.isfinite(edges).all(), subset
            expected = 1.0 if len(subset) >= 2 else 0.0  # edges need a teacher and a student
            torch.testing.assert_close(edges.sum(dim=1), torch.full((B,), expected))


def test_padding_never_leaks_into_the_output():
    model = DMD(lite()).eval()
    cfg = model.cfg
    x = inputs(cfg, 2)
    masks = {f"mask_{m}": torch.rand(2, cfg.length(m), generator=torch.Generator().manual_seed(1)) > 0.4
             for m in MODEL_ORDER}
    noisy = [t.clone() for t in x]
    for t, m in zip(noisy, ("l", "a", "v")):
        t[~masks[f"mask_{m}"]] = 1e3 if t.is_floating_point() else 7  # garbage where nothing is present
    with torch.no_grad():
        clean, dirty = model(*x, **masks), model(*noisy, **masks)
    torch.testing.assert_close(clean.logits, dirty.logits)
    torch.testing.assert_close(clean.edges_hetero, dirty.edges_hetero)


def test_stacked_inference_matches_one_transformer_at_a_time():
    model = DMD(lite(n_classes=7, nlevels=2, min_mem_layers=2)).eval()  # two layers: the stack loops over them
    cfg, B = model.cfg, 4
    x = inputs(cfg, B)
    g = torch.Generator().manual_seed(2)
    masks = {f"mask_{m}": torch.rand(B, cfg.length(m), generator=g) > 0.3 for m in MODEL_ORDER}
    masks["mask_v"][0] = False  # one window without a face, one without a voice
    masks["mask_a"][1] = False
    stacks = model.stacks
    with torch.no_grad():
        stacked = model(*x, **masks)
        model.stacks = None  # one call per transformer, as in training
        single = model(*x, **masks)
    model.stacks = stacks
    for a, b in zip((stacked.logits, stacked.edges_homo, stacked.edges_hetero),
                    (single.logits, single.edges_homo, single.edges_hetero)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_the_stacks_reread_weights_that_change():
    model = DMD(lite(n_classes=7)).eval()
    x = inputs(model.cfg, 1)
    with torch.no_grad():
        before = model(*x).logits
        trained = {k: v + 0.01 * torch.randn_like(v) for k, v in model.state_dict().items()}
        model.load_state_dict(trained)
        after_load = model(*x).logits
        model.stacks = None
        expected = model(*x).logits
    assert not torch.allclose(before, after_load)
    torch.testing.assert_close(after_load, expected, atol=1e-5, rtol=1e-5)


def test_a_strided_step_is_present_where_any_step_of_its_patch_is():
    model = DMD(lite())
    assert (model.cfg.stride("a"), model.cfg.projected_length("a")) == (4, 25)
    present = torch.zeros(2, model.cfg.length("a"), dtype=torch.bool)
    present[0, 5] = True  # patch 1 of sample 0; sample 1 has nothing
    assert model.projected_mask(present, "a").nonzero().tolist() == [[0, 1]]


def test_last_present_reads_the_last_word_of_a_left_aligned_window():
    x = torch.arange(2 * 5 * 3, dtype=torch.float).view(2, 5, 3)
    present = torch.tensor([[True, True, True, False, False], [False] * 5])
    torch.testing.assert_close(last_present(x, present), torch.stack([x[0, 2], x[1, 0]]))


def test_each_modality_alone_reaches_the_prediction():
    """With the other two absent, changing one modality's input changes the output."""
    model = DMD(lite(n_classes=7)).eval()
    cfg = model.cfg
    for k, m in enumerate(("l", "a", "v")):
        x, other = inputs(cfg, 1, seed=1), inputs(cfg, 1, seed=2)
        changed = [other[i] if i == k else x[i] for i in range(3)]
        masks = {f"mask_{o}": torch.full((1, cfg.length(o)), o == m) for o in MODEL_ORDER}
        with torch.no_grad():
            assert not torch.allclose(model(*x, **masks).logits, model(*changed, **masks).logits), m


def test_paper_presets_refuse_masks():
    cfg = preset("mosi_aligned")
    with pytest.raises(ValueError, match="takes no masks"):
        DMD(cfg)(*inputs(cfg, 1), mask_l=torch.ones(1, 50, dtype=torch.bool))


def test_checkpoint_round_trip_is_bit_exact(tmp_path):
    torch.manual_seed(3)
    model = DMD(lite(n_classes=7)).eval()
    save_checkpoint(model, tmp_path / "ckpt", note="test")
    loaded, meta = load_checkpoint(tmp_path / "ckpt")
    assert meta["note"] == "test" and loaded.cfg == model.cfg
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    x = inputs(model.cfg, 3)
    with torch.no_grad():
        assert torch.equal(model(*x).logits, loaded(*x).logits)
    assert not list(tmp_path.glob("**/*.pt")) and not list(tmp_path.glob("**/*.pth"))
