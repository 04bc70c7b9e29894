"""The recipe of the shipped model, ``realtime/data/models/default``: extract, fit, calibrate, evaluate, write.

    python -m dmd_lite.recipes.default --data ../shared/data [--out realtime/data/models/default]

1. ``realtime.extract`` runs the live front-ends over FER2013, RAVDESS and the transcripts into
   ``$XDG_CACHE_HOME/dmd-realtime/default/extract`` (resumable: a rerun skips what is done); the face features hold the
   expression CNN's, the words the text front-end's (``realtime/data/models/text_encoder``).
2. The frozen voice encoder (``realtime/data/models/voice_encoder``, or ``--voice``) encodes the
   voice windows once.
3. DMD-lite is trained on label-paired triplets (``emotion_train``) drawn from the encoders'
   *validation* data (FER2013 val, RAVDESS actors 17-19 and the validation speakers of the other
   speech corpora the voice encoder was trained on, MELD dev, 80 %), so it learns how far each
   encoder is to be trusted on people it has not seen, once per seed (``SEEDS``: runs differ
   by about a point on the held-out sets); the checkpoint is selected (epoch and seed), and the
   softmax temperatures (DMD's, and the text encoder's for words alone) fitted, on the rest (the
   other 20 %, RAVDESS actor 20).
4. ``emotion_eval`` scores it on the held-out sets; the report (JSON, confusion matrices, curves)
   goes to ``$XDG_CACHE_HOME/dmd-realtime/default/report`` (another ``--out``: ``.../default/other/<its
   name>/report``) and the artifact to ``--out``.
Seed and configuration are recorded in the artifact's config.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
from safetensors.torch import load_file

from realtime.core.errors import run_cli
from realtime.core.feature_spec import LABELS, FeatureSpec, NormStats
from realtime.core.modalities import MODALITIES
from realtime.core.resources import cache_dir
from realtime.nets.voice_encoder import WEIGHTS_PATH as VOICE_WEIGHTS
from realtime.nets.voice_encoder import load_voice_encoder
from realtime.offline.cross_corpus import split_pool
from realtime.offline.speech_corpora import CORPUS_FOLDERS, corpus_clips

from ..checkpoint import WEIGHTS
from ..config import preset
from ..metrics import fit_temperature
from ..emotion_data import concat_pools, face_pool
from ..emotion_eval import (extract_all, extracted_front_ends, held_out_sets, pools, score_held_out, shapes_of,
                           single_modality)
from ..emotion_train import TripletSampler, TripletTraining, predict, train_on_triplets
from ..model import DMD
from ..recognizer import DEFAULT_CHECKPOINT, Recognizer, load_recognizer, save_recognizer, words_answer

RUN = cache_dir("default")  # extraction, training runs and report: the user cache, shared with calibration and bench
N_SELECT = 1000  # triplets per selection set
SEEDS = (1234, 1)  # DMD-lite is trained once per seed; the best on the selection sets is kept
VAL_WINDOWS = 3  # windows of each validation clip of the voice encoder's other corpora in the fit pool


def dmd_config(voice_dim: int, text_dim: int):
    """The lite preset sized for the encoders' features, 7 emotions + valence."""
    return replace(preset("lite"), name="default", dim_l=text_dim, dim_a=voice_dim,
                   n_classes=len(LABELS), labels=LABELS, regression=True)


def selection_sets(select: dict, spec: FeatureSpec) -> dict:
    """Fused triplets and each modality alone, from the selection pools."""
    sampler = TripletSampler(select, len(LABELS), spec.visual_steps)
    shapes = shapes_of(select, spec.visual_steps)
    return {"fused": sampler.fixed_set(N_SELECT, (True, True, True), 7, jitter=None),
            **{m: single_modality(select[m], m, shapes) for m in MODALITIES}}


def run(data: Path, out: Path, cfg: TripletTraining, seeds: tuple[int, ...], workers: int,
        voice_weights: Path = VOICE_WEIGHTS, fit_voices: str = "corpora") -> dict:
    started = time.time()
    extraction = RUN / "extract"
    work = RUN if out.resolve() == DEFAULT_CHECKPOINT.resolve() else RUN / "other" / out.name  # runs and report
    extract_all(data, extraction, workers)
    voice = load_voice_encoder(voice_weights)
    trained_on = json.loads(voice_weights.with_suffix(".json").read_text()).get("training", {}).get("corpora", [])
    corpora = [c for c in trained_on if c != "ravdess"] if fit_voices == "corpora" else []  # voices fitted beside RAVDESS's
    extract_all(data, extraction, workers, {c: ("audio", CORPUS_FOLDERS[c]) for c in corpora})
    more = concat_pools({c: split_pool(extraction / c, corpus_clips(data, c), "val", VAL_WINDOWS) for c in corpora}) \
        if corpora else None
    stats = NormStats.fit(face_pool(extraction / "fer2013", "train", FeatureSpec()).x)
    spec = FeatureSpec(visual_norm=stats)
    fit, select = pools(voice, extraction, spec, "fit", more), pools(voice, extraction, spec, "select")
    config = dmd_config(fit["audio"].x.shape[2], fit["text"].x.shape[2])
    print(json.dumps({"pool_sizes": {part: {m: len(p[m]) for m in MODALITIES} for part, p in
                                     (("fit", fit), ("select", select))}}), flush=True)
    valid = selection_sets(select, spec)
    meta = {"feature_spec": spec.to_dict()}
    runs = {}
    for seed in seeds:
        torch.manual_seed(seed)  # DMD-lite's initial weights
        runs[seed] = train_on_triplets(DMD(config), TripletSampler(fit, len(LABELS), spec.visual_steps), valid,
                                       replace(cfg, seed=seed), work / "train" / f"seed-{seed}", torch.device("cpu"), meta)
    seed = min(runs, key=lambda s: runs[s]["valid_loss"])
    cfg, best, chosen = replace(cfg, seed=seed), runs[seed], work / "train" / f"seed-{seed}"
    model = Recognizer(DMD(config), voice, spec)
    model.dmd.load_state_dict(load_file(chosen / "best" / WEIGHTS))
    logits = torch.cat([predict(model.dmd, b, torch.device("cpu")).logits[:, :len(LABELS)] for b in valid.values()])
    targets = torch.cat([torch.from_numpy(b.labels) for b in valid.values()])
    model.temperature.fill_(fit_temperature(logits, targets))
    words = valid["text"]
    text_log_probs = words_answer(torch.from_numpy(words.text), torch.from_numpy(words.text_mask))[0]
    model.text_temperature.fill_(fit_temperature(text_log_probs, torch.from_numpy(words.labels)))
    test = held_out_sets(pools(voice, extraction, spec, "test"), spec)
    report = work / "report"
    results = score_held_out(model, test, report)
    save_recognizer(model, out, recipe="dmd_lite.recipes.default", train=asdict(cfg), best_epoch=best.get("epoch"),
                    selection=best, seeds={s: r["valid_loss"] for s, r in runs.items()},
                    temperature=float(model.temperature), front_ends=extracted_front_ends(extraction),
                    text_temperature=float(model.text_temperature), held_out=results,
                    data={"fit": "FER2013 val 80%, RAVDESS actors 17-19"
                                 + "".join(f", {c} validation speakers" for c in corpora)
                                 + ", MELD dev 80%",
                          "select": "FER2013 val 20%, RAVDESS actor 20, MELD dev 20%"},
                    minutes=round((time.time() - started) / 60, 1))
    shutil.copy(chosen / "curves.png", report / "curves.png")
    (report / "held_out.json").write_text(json.dumps(results, indent=2))
    load_recognizer(out)  # the artifact loads
    return results


def parser() -> argparse.ArgumentParser:
    """The command line; training defaults are ``TripletTraining``'s."""
    defaults = TripletTraining()
    p = argparse.ArgumentParser(prog="python -m dmd_lite.recipes.default", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="the shared data folder (fer2013_48, ravdess_speech_16k, text)")
    p.add_argument("--out", type=Path, default=DEFAULT_CHECKPOINT, help="artifact directory (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=defaults.epochs,
                   help="most epochs per seed; training stops early when selection stalls (default: %(default)s)")
    p.add_argument("--steps-per-epoch", type=int, default=defaults.steps_per_epoch,
                   help="mini-batches of label-paired triplets per epoch (default: %(default)s)")
    p.add_argument("--seeds", type=int, nargs="+", default=SEEDS, help="one DMD-lite per seed, the best kept")
    p.add_argument("--workers", type=int, default=2, help="extraction worker processes")
    p.add_argument("--voice", type=Path, default=VOICE_WEIGHTS,
                   help="the frozen voice encoder's weights (default: the shipped ones, %(default)s)")
    p.add_argument("--fit-voices", choices=("corpora", "ravdess"), default="corpora",
                   help="the fusion's fit voices: RAVDESS actors 17-19 and the validation speakers of the voice "
                        "encoder's other corpora, or RAVDESS's alone (default: %(default)s)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    cfg = replace(TripletTraining(), epochs=args.epochs, steps_per_epoch=args.steps_per_epoch)
    results = run(args.data, args.out, cfg, tuple(args.seeds), args.workers, args.voice, args.fit_voices)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    run_cli(main)
