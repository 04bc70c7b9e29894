"""The voice encoder trained across corpora (``python -m realtime.voice_encoder train-corpora`` / ``loco``):
missing classes masked out of the loss, corpora balanced, the noise-floor augmentation, and a tiny run
on real clips."""

import argparse
import csv
import json
import shutil
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers.paths import DATA

from dmd_lite.evaluate import held_out_voices, voice_views
from dmd_lite.recognizer import load_recognizer
from realtime.core.feature_spec import LABELS, N_MELS, VOICE_FEATURE_DIM
from realtime.nets.model_files import write_model_files
from realtime.nets.voice_encoder import VoiceConfig, VoiceEncoder, _meta_contract, load_voice_encoder
from realtime.offline.cross_corpus import window_logits
from realtime.offline.speech_corpora import CORPUS_FOLDERS, MANIFEST, CorpusError
from realtime.offline.voice_encoder import (CORPORA_AUGMENT, Augment, CorporaData, Schedule, augment, corpus_weights,
                                           finished, main, masked_cross_entropy, mean_reliability, parse_corpora,
                                           stretch)


def test_missing_classes_take_no_mass_and_no_gradient():
    torch.manual_seed(0)
    logits = torch.randn(4, len(LABELS), requires_grad=True)
    allowed = torch.zeros(4, len(LABELS), dtype=torch.bool)
    allowed[:2, :4] = True  # a 4-class corpus (e.g. TurEV-DB) ...
    allowed[2:] = True  # ... and a 7-class one
    y = torch.tensor([0, 3, 5, 6])
    loss = masked_cross_entropy(logits, y, allowed, label_smoothing=0.1)
    loss.backward()
    loss = loss.detach()
    assert torch.isfinite(loss)
    assert torch.all(logits.grad[~allowed] == 0) and torch.all(logits.grad[allowed] != 0)
    # the same as the cross-entropy over each sample's own classes, smoothing spread over them only
    own = (F.cross_entropy(logits[:2, :4], y[:2], label_smoothing=0.1, reduction="sum")
           + F.cross_entropy(logits[2:], y[2:], label_smoothing=0.1, reduction="sum")) / 4
    assert float(loss) == pytest.approx(float(own.detach()), rel=1e-5)
    # whatever the model says for a missing class changes nothing
    moved = logits.detach().clone()
    moved[:2, 4:] += 100.0
    assert float(masked_cross_entropy(moved, y, allowed, 0.1)) == pytest.approx(float(loss), rel=1e-5)


def test_corpora_are_balanced():
    groups = np.array(["nemo"] * 900 + ["urdu"] * 100)
    for power, nemo_share in ((0.0, 0.5), (0.5, 0.75), (1.0, 0.9)):
        w = corpus_weights(groups, power)
        assert w.sum() == pytest.approx(1.0)
        assert w[groups == "nemo"].sum() == pytest.approx(nemo_share)
        assert len(set(w[groups == "urdu"])) == 1  # alike within a corpus
    drawn = torch.multinomial(torch.from_numpy(corpus_weights(groups, 0.0)), 4000, replacement=True,
                              generator=torch.Generator().manual_seed(0))
    assert 0.45 < float((drawn >= 900).float().mean()) < 0.55


def test_noise_floor_fills_quiet_bins_and_keeps_absent_steps_zero():
    x = torch.full((3, 100, VOICE_FEATURE_DIM), -3.0)
    m = torch.ones(3, 100, dtype=torch.bool)
    m[:, :40] = False
    x = x * m.unsqueeze(2)
    a = Augment(shift=0, gain=0.0, freq_masks=0, time_masks=0, noise=1.0, noise_floor=(0.0, 0.0), noise_jitter=0.0)
    xa, ma = augment(x, m, a, torch.Generator().manual_seed(0))
    assert torch.equal(ma, m) and torch.all(xa[~m] == 0)
    assert torch.allclose(xa[..., :N_MELS][m], torch.logaddexp(torch.tensor(-3.0), torch.tensor(0.0)))
    assert torch.all(xa[..., N_MELS:][m] == -3.0)  # activity, pitch and periodicity are left alone


def test_mel_drop_leaves_some_windows_their_prosody_alone():
    x = torch.randn(400, 100, VOICE_FEATURE_DIM)
    m = torch.ones(400, 100, dtype=torch.bool)
    a = Augment(shift=0, gain=0.0, freq_masks=0, time_masks=0, mel_drop=0.25)
    xa, ma = augment(x, m, a, torch.Generator().manual_seed(0))
    dropped = (xa[..., :N_MELS] == 0).all(2).all(1)
    assert 0.15 < dropped.float().mean() < 0.35 and torch.equal(xa[~dropped], x[~dropped])
    assert torch.equal(xa[..., N_MELS:], x[..., N_MELS:]) and torch.equal(ma, m)


def test_stretch_reads_each_position_times_the_factor():
    x = torch.arange(10.0)[None]
    torch.testing.assert_close(stretch(x, torch.tensor([1.0]), 1), x)
    torch.testing.assert_close(stretch(x, torch.tensor([0.5]), 1), x * 0.5)  # slower: spread out
    torch.testing.assert_close(stretch(x, torch.tensor([2.0]), 1), (x * 2).clamp(max=9))  # faster: squeezed, held at the end


def test_speed_and_warp_keep_absent_steps_zero_and_the_window_end_present():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 100, VOICE_FEATURE_DIM)
    m = torch.ones(16, 100, dtype=torch.bool)
    m[:, :50] = False
    x = x * m.unsqueeze(2)
    a = Augment(shift=0, gain=0.0, freq_masks=0, time_masks=0, warp=0.15, speed=0.1)
    xa, ma = augment(x, m, a, g)
    assert torch.all(xa[~ma] == 0) and ma[:, -1].all()  # stretched about the end, which holds the latest voice
    assert (ma.sum(1) - 50).abs().max() <= 6 and not torch.equal(xa, x)


def test_corpora_names_are_checked(capsys):
    assert parse_corpora("ravdess, nemo") == ("ravdess", "nemo")
    for bad in ("ravdess,ravdess", ",", "ravdess,klingon"):
        with pytest.raises(CorpusError):
            parse_corpora(bad)
    with pytest.raises(SystemExit) as e:
        main(["train-corpora", "--data", str(DATA), "--corpora", "ravdess,klingon"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "klingon" in err and "known: ravdess" in err


def _copy_corpus(data: Path, corpus: str, per_split: dict[str, int]) -> None:
    """A few clips of a manifest corpus, of different labels, with their manifest rows."""
    src = DATA / CORPUS_FOLDERS[corpus]
    with open(src / MANIFEST, newline="") as f:
        rows = list(csv.DictReader(f))
    picked = []
    for split, n in per_split.items():
        seen: set[str] = set()
        for r in rows:
            if r["split"] == split and r["label"] not in seen and len(seen) < n:
                seen.add(r["label"])
                picked.append(r)
    dest = data / CORPUS_FOLDERS[corpus]
    for r in picked:
        (dest / r["audio"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / r["audio"], dest / r["audio"])
    with open(dest / MANIFEST, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(picked)


@pytest.mark.needs_data("speech/tess")
@pytest.mark.needs_data("speech/turev")
def test_train_corpora_end_to_end_on_a_few_real_clips(tmp_path, capsys):
    """Four training clips, a validation and two test clips of TESS and TurEV-DB each: extraction with the
    live front-end, in speaker sessions and clip by clip, one epoch on both, weights and sidecar that
    load, a JSON last line."""
    data = tmp_path / "data"
    for corpus in ("tess", "turev"):
        _copy_corpus(data, corpus, {"train": 4, "val": 1, "test": 2})
    out = tmp_path / "voice.pt"
    assert main(["train-corpora", "--data", str(data), "--corpora", "tess,turev", "--out", str(out),
                 "--extraction", str(tmp_path / "ex"), "--epochs", "1", "--batch-size", "4", "--windows", "2",
                 "--workers", "1"]) == 0  # live conditions are on by default, as the shipped encoder was trained
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["corpora"] == ["tess", "turev"] and result["epoch"] == 1 and 0 <= result["val_mean_uar"] <= 1
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["training"]["corpora"] == ["tess", "turev"] and meta["training"]["windows"] == 2
    assert meta["training"]["cold_start"] and 0 <= meta["training"]["log"][0]["val_cold_uar"] <= 1
    assert meta["training"]["live"]
    for corpus in ("tess", "turev"):
        assert (tmp_path / "ex" / corpus / "shards" / "sessions").is_dir()
        assert not (tmp_path / "ex" / f"{corpus}_cold" / "shards" / "sessions").exists()
        assert (tmp_path / "ex" / f"{corpus}_live" / "shards" / "sessions").is_dir()
        seed = json.loads((tmp_path / "ex" / f"{corpus}_live" / "live_conditions.json").read_text())
        assert seed == {"live_conditions_seed": 1}
    assert 8 * 3 <= meta["readout"]["windows"] <= 8 * 3 * 2 and meta["readout"]["c"] == 0.01  # 8 clips, 3 views, 1-2 windows
    model = load_voice_encoder(out)
    assert model.classify(torch.zeros(1, 100, VOICE_FEATURE_DIM), torch.ones(1, 100, dtype=torch.bool)).shape == (1, 7)
    readout = ["fit-readout", "--weights", str(out), "--data", str(data), "--extraction", str(tmp_path / "ex")]
    with pytest.raises(SystemExit) as e:  # weights that have their read-out are refused, untouched
        main(readout)
    assert e.value.code == 2 and "already has its read-out" in capsys.readouterr().err
    windows = meta.pop("readout")["windows"]
    out.with_suffix(".json").write_text(json.dumps(meta))
    assert main(readout) == 0
    refitted = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert refitted["readout"]["windows"] == windows and 0 <= refitted["readout"]["val_uar_after"]["raw"] <= 1
    # fit-reliability refits it on the windows train-corpora fitted it on (all three views): the same numbers
    assert main(["fit-reliability", "--weights", str(out), "--data", str(data), "--extraction", str(tmp_path / "ex")]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again == pytest.approx(refitted["reliability"], rel=1e-4)


def test_loco_resumes_only_a_model_trained_the_same_way_with_its_reliability(tmp_path):
    weights, corpora, s = tmp_path / "voice_without_tess.pt", ("ravdess", "nemo"), Schedule(epochs=3)
    d = CorporaData(DATA, tmp_path / "ex")  # sessions and clips alone, not live conditions
    training = {"corpora": list(corpora), "augment": asdict(CORPORA_AUGMENT), **asdict(s), "balance": 0.5,
                "cold_start": True}  # as written before the live view existed: no "live"
    meta = {**_meta_contract(), "config": asdict(VoiceConfig()), "training": training, "readout": {}, "reliability": {}}
    write_model_files(VoiceEncoder().state_dict(), weights, weights.with_suffix(".json"), meta)
    assert finished(weights, corpora, CORPORA_AUGMENT, s, 0.5, d) is not None
    assert finished(weights, corpora, CORPORA_AUGMENT, Schedule(epochs=4), 0.5, d) is None  # other options: retrain
    assert finished(weights, ("ravdess",), CORPORA_AUGMENT, s, 0.5, d) is None
    assert finished(weights, corpora, CORPORA_AUGMENT, s, 0.5, replace(d, cold_start=False)) is None  # sessions only
    assert finished(weights, corpora, CORPORA_AUGMENT, s, 0.5, replace(d, live=True)) is None  # live conditions too
    write_model_files(VoiceEncoder().state_dict(), weights, weights.with_suffix(".json"),
                      {k: v for k, v in meta.items() if k != "reliability"})
    assert finished(weights, corpora, CORPORA_AUGMENT, s, 0.5, d) is None  # stopped before its reliability was fitted
    write_model_files(VoiceEncoder().state_dict(), weights, weights.with_suffix(".json"),
                      {k: v for k, v in meta.items() if k != "readout"})
    assert finished(weights, corpora, CORPORA_AUGMENT, s, 0.5, d) is None  # trained before the read-out: fit-readout
    assert finished(tmp_path / "absent.pt", corpora, CORPORA_AUGMENT, s, 0.5, d) is None


@pytest.mark.needs_data("speech/tess")
def test_voice_views_score_test_clips_alone_in_their_session_and_under_live_conditions(tmp_path):
    """``dmd_lite.evaluate``'s ``voice_cold_start`` and ``voice_live_conditions`` on three TESS test
    clips: every view extracted, each scored, with the encoder's reliability where asked."""
    data = tmp_path / "data"
    _copy_corpus(data, "tess", {"test": 3})
    args = argparse.Namespace(data=data, extraction=tmp_path / "ex", workers=1)
    model = load_voice_encoder()
    result = voice_views(lambda pool: window_logits(model, pool), args, ("alone", "session", "live"), ("tess",),
                         reliability=lambda pool: mean_reliability(model, pool))
    views = ("alone_uar", "alone_reliability", "session_uar", "session_reliability", "live_uar", "live_reliability")
    assert result["tess"]["n"] == 3 and tuple(result["mean"]) == views
    assert all(0 <= result["tess"][k] <= 1 for k in views)
    assert (tmp_path / "ex" / "tess" / "shards" / "sessions").is_dir()
    assert (tmp_path / "ex" / "tess_live" / "shards" / "sessions").is_dir()
    assert len(list((tmp_path / "ex" / "tess_cold" / "shards").glob("**/*.npz"))) == 3
    assert result["tess"]["live_reliability"] != result["tess"]["session_reliability"]  # other sounds, other answers


@pytest.mark.needs_data("speech/tess")
def test_the_recognizers_test_voices_are_encoded_as_heard_in_a_view(tmp_path):
    """``dmd_lite.evaluate.held_out_voices`` (what ``fused_live_paired`` pairs with faces): three TESS test
    clips under live conditions, encoded with the voice's reliability, unlike the same clips clean."""
    data = tmp_path / "data"
    _copy_corpus(data, "tess", {"test": 3})
    args = argparse.Namespace(data=data, extraction=tmp_path / "ex", workers=1)
    model = load_recognizer("default")[0]
    clean, live = held_out_voices(model, args, "tess"), held_out_voices(model, args, "tess", "live")
    assert len(live) == len(clean) == 3 and live.x.shape[2] == model.voice.out_dim
    assert live.reliability is not None and ((live.reliability >= 0) & (live.reliability <= 1)).all()
    assert not np.allclose(live.x, clean.x) and (tmp_path / "ex" / "tess_live" / "live_conditions.json").is_file()
