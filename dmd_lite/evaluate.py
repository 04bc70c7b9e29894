"""Evaluate a checkpoint: the emotion recognizer on the held-out real sets, or DMD on MMSA.

    python -m dmd_lite.evaluate --checkpoint default --data ../shared/data
    python -m dmd_lite.evaluate --checkpoint runs/mosi/best --data aligned_50.pkl --split test

With a data folder, the recognizer (``default`` = ``realtime/data/models/default``) is scored on the sets of
``emotion_eval`` (features extracted into ``--extraction`` first, skipping what is there); the
last stdout line is one JSON object with one entry per set, and ``voice_<corpus>_heldout`` for the
speech corpora nEMO, TESS, TurEV-DB and URDU: the recognizer's answer to each corpus's test speakers'
voices alone (``realtime.offline.cross_corpus``: UAR, raw and restricted to the corpus's classes,
the share of answers per label, the voice encoder's mean reliability); ``fused_corpora_paired``:
FER2013 test faces paired with those four corpora's test voices (speakers the shipped recognizer never
heard, of corpora it was trained on: ``paired_with_voices``), and ``fused_cross_corpus_paired``: the
same from the leave-one-corpus-out recognizers, each on the five corpora's one it never heard at all
(``loco_paired``); ``voice_cold_start``: the recognizer's voice-alone UAR on every speech
corpus's test clips heard alone (``realtime.extract --clips-alone``, as at the start of a live
session) next to the same clips heard in their speaker's session, and ``voice_live_conditions``: in
their session and in it under live conditions (``realtime.extract --live-conditions``: a room, noise,
a level, a codec; the first run extracts every corpus so, about 25 minutes on two cores), with the
voice's mean reliability in each (``voice_views``), and ``fused_live_paired``: ``fused_corpora_paired``
with those voices under live conditions; the shipped text
encoder on MELD test and each written corpus's test split without marks (``text_*_without_marks``);
and ``voice_cross_corpus`` / ``text_cross_corpus``, the leave-one-corpus-out results as
``python -m realtime.voice_encoder loco`` and ``python -m realtime.text_encoder cross-corpus`` last
wrote them (an hour of training; the entry says where from and when). With an MMSA pickle, the last line
holds MMSA's metrics (Has0/Non0 Acc-2 and F1, Acc-3, Acc-5, Acc-7, MAE, Corr) and the mean
GD-Unit edge weights.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from realtime.core.errors import run_cli
from realtime.core.modalities import EDGE_NAMES
from realtime.core.resources import cache_dir
from realtime.offline.cross_corpus import (VOICE_CORPORA, Answer, evaluate_corpora, extract_view, score_corpus,
                                           test_pool)
from realtime.offline.speech_corpora import corpus_clips
from realtime.offline.text_encoder import CROSS_CORPUS_DIR
from realtime.offline.text_encoder import test_scores as text_scores
from realtime.offline.voice_encoder import LOCO_DIR, CorporaData, corpora_pools, mean_reliability

from .checkpoint import load_checkpoint
from .emotion_data import Pool
from .emotion_eval import (encode_pool, extract_all, extracted_front_ends, held_out_sets, paired_set, pools,
                           score_held_out, shapes_of, voice_only_answer)
from .metrics import regression_metrics
from .mmsa import SPLITS, MMSADataset, MMSAFileError, MMSASplit, load_mmsa
from .model import DMD
from .plots import plot_cross_corpus
from .recognizer import Recognizer, load_recognizer

CROSS_CORPUS_VOICE = ("nemo", "tess", "turev", "urdu")  # RAVDESS's test actors: voice_ravdess_heldout


@torch.no_grad()
def predict(model: DMD, split: MMSASplit, device: torch.device, batch_size: int = 64) -> dict[str, np.ndarray]:
    """Regression scores (N,) and both GD-Units' edge weights (N, 6) for every sample."""
    model.eval()
    scores, homo, hetero = [], [], []
    for batch in DataLoader(MMSADataset(split), batch_size=batch_size):
        out = model(*(batch[k].to(device) for k in ("text", "audio", "vision")))
        scores.append(out.logits[:, -1].float().cpu())
        homo.append(out.edges_homo.float().cpu())
        hetero.append(out.edges_hetero.float().cpu())
    return {"score": torch.cat(scores).numpy(), "edges_homo": torch.cat(homo).numpy(),
            "edges_hetero": torch.cat(hetero).numpy()}


def evaluate_split(model: DMD, split: MMSASplit, device: torch.device) -> dict[str, float | dict]:
    """MMSA metrics, the L1 ``loss`` (official model-selection key) and mean edge weights."""
    if not model.cfg.regression:
        raise ValueError("MMSA files carry sentiment scores; this checkpoint has no regression head")
    pred = predict(model, split, device)
    metrics = regression_metrics(pred["score"], split.labels)
    edges = {f"{kind}:{name}": float(w) for kind in ("homo", "hetero")
             for name, w in zip(EDGE_NAMES, pred[f"edges_{kind}"].mean(axis=0))}
    return {"loss": metrics["MAE"], **metrics, "gd_edges": edges}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dmd_lite.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True,
                   help="'default' (the shipped recognizer), a recognizer directory, or a DMD checkpoint "
                        "directory (model.safetensors + config.json) for MMSA data")
    p.add_argument("--data", type=Path, required=True,
                   help="the shared data folder (fer2013_48, ravdess_speech_16k, text), or an MMSA "
                        "aligned_50.pkl / unaligned_50.pkl (only plain data is unpickled: a file that refers to "
                        "functions or other classes is refused)")
    p.add_argument("--split", default="test", choices=SPLITS, help="MMSA split to evaluate (default: %(default)s)")
    p.add_argument("--extraction", type=Path, default=cache_dir("default") / "extract",
                   help="where the shared data's features are (or will be) extracted (default: %(default)s)")
    p.add_argument("--report", type=Path, default=cache_dir("evaluate"),
                   help="where confusion matrices and cross_corpus.png are saved (default: %(default)s)")
    p.add_argument("--workers", type=int, default=2, help="extraction worker processes (default: %(default)s)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="device (default: %(default)s)")
    return p


def evaluate_emotion(args: argparse.Namespace) -> dict:
    """The recognizer on the held-out sets of ``emotion_eval``."""
    model, _ = load_recognizer(args.checkpoint)
    extract_all(args.data, args.extraction, args.workers)
    test_pools = pools(model.voice, args.extraction, model.spec, "test")
    results = score_held_out(model, held_out_sets(test_pools, model.spec), args.report)
    voice_alone = voice_only_answer(model, shapes_of(test_pools, model.spec.visual_steps))
    corpora = evaluate_corpora(voice_alone, args.data, args.extraction, args.report, args.workers, CROSS_CORPUS_VOICE,
                               what="recognizer")
    voices = {c: held_out_voices(model, args, c) for c in CROSS_CORPUS_VOICE}
    live = {c: held_out_voices(model, args, c, "live") for c in CROSS_CORPUS_VOICE}
    for c, entry in corpora.items():
        entry["mean_voice_reliability"] = float(voices[c].reliability.mean())
    words = text_scores(args.data / "text")[0]
    result = {**results, **{f"voice_{c}_heldout": entry for c, entry in corpora.items()},
              "fused_corpora_paired": with_mean({c: paired_with_voices(model, test_pools, voices[c], args.report, c)
                                                 for c in CROSS_CORPUS_VOICE}),
              "fused_cross_corpus_paired": loco_paired(args),
              "voice_cold_start": voice_views(voice_alone, args, ("alone", "session")),
              "voice_live_conditions": voice_views(voice_alone, args, ("session", "live"),
                                                   reliability=lambda pool: mean_reliability(model.voice, pool)),
              "fused_live_paired": with_mean({c: paired_with_voices(model, test_pools, live[c], args.report, f"{c}_live")
                                              for c in CROSS_CORPUS_VOICE}),
              "text_meld_test_without_marks": words["without_marks"],
              **{f"text_{c}_test_without_marks": e for c, e in words["written_test_without_marks"].items()},
              "voice_cross_corpus": cached_result(LOCO_DIR / "loco.json", "python -m realtime.voice_encoder loco --data DATA"),
              "text_cross_corpus": cached_result(CROSS_CORPUS_DIR / "cross_corpus.json",
                                                 "python -m realtime.text_encoder cross-corpus --data DATA/text")}
    plot_cross_corpus(result, args.report / "cross_corpus.png")
    return result


def voice_views(answer: Answer, args: argparse.Namespace, views: tuple[str, ...],
                corpora: tuple[str, ...] = VOICE_CORPORA, reliability: Callable[[Pool], float] | None = None) -> dict:
    """Per speech corpus, ``answer``'s 7-way UAR on its test clips as heard in each of ``views``
    (``cross_corpus.VIEWS``, each extracted first where missing), with the voice's mean ``reliability``
    where given; and their means."""
    d, entries = CorporaData(args.data, args.extraction, workers=args.workers), {}
    for c in corpora:
        entry = {}
        for view in views:
            pool, own = corpora_pools(d, (c,), "test", view)[c]
            entry[f"{view}_uar"] = score_corpus(answer(pool), pool.labels, own)["raw"]["uar"]
            if reliability is not None:
                entry[f"{view}_reliability"] = reliability(pool)
        entries[c] = {"n": len(pool), **entry}
    keys = [k for k in entries[corpora[0]] if k != "n"]
    return {**entries, "mean": {k: round(float(np.mean([e[k] for e in entries.values()])), 4) for k in keys}}


def held_out_voices(model: Recognizer, args: argparse.Namespace, corpus: str, view: str = "session") -> Pool:
    """``corpus``'s test voices as heard in ``view`` (``cross_corpus.VIEWS``), encoded by the model's
    voice encoder (with its reliability)."""
    folder = extract_view(args.data, args.extraction, args.workers, corpus, view)
    return encode_pool(test_pool(folder, corpus_clips(args.data, corpus)), model.voice)


def paired_with_voices(model: Recognizer, test: dict[str, Pool], voices: Pool, report: Path, corpus: str) -> dict:
    """FER2013 test faces (of the model's ``test`` pools) paired with ``corpus``'s encoded test
    ``voices``, labels drawn over its classes, no words: scored fused, with each alone and with every
    voice trusted in full."""
    paired = paired_set({**test, "audio": voices}, model.spec, (True, True, False), np.unique(voices.labels))
    name = f"fused_{corpus}_paired"  # a paired set: ``score_held_out`` adds each modality alone
    entry = score_held_out(model, {name: paired}, report / "cross_corpus_paired")[name]
    return {k: entry[k] for k in ("n", "accuracy", "macro_f1", "mean_voice_reliability", "alone_accuracy",
                                  "accuracy_voice_always_trusted", "valence_sign_agreement")}


def with_mean(entries: dict[str, dict]) -> dict:
    """``entries`` of ``paired_with_voices`` and their mean over corpora."""
    mean = lambda f: round(float(np.mean([f(e) for e in entries.values()])), 4)  # noqa: E731
    return {**entries, "mean": {"accuracy": mean(lambda e: e["accuracy"]),
                                "face_alone": mean(lambda e: e["alone_accuracy"]["visual"]),
                                "voice_alone": mean(lambda e: e["alone_accuracy"]["audio"]),
                                "voice_always_trusted": mean(lambda e: e["accuracy_voice_always_trusted"]),
                                "mean_voice_reliability": mean(lambda e: e["mean_voice_reliability"])}}


def loco_paired(args: argparse.Namespace) -> dict:
    """``paired_with_voices`` for each speech corpus c with a leave-one-out recognizer
    (``LOCO_DIR``/recognizer_without_c: the recipe run with ``--voice LOCO_DIR/voice_without_c.pt``,
    so neither its voice encoder nor its fusion heard c), on c's voices; and their mean. A recognizer
    trained on other front-end models than the extraction's (an older expression CNN) is left out, named
    under ``stale``."""
    entries, stale, current = {}, [], extracted_front_ends(args.extraction)
    for c in VOICE_CORPORA:
        if (LOCO_DIR / f"recognizer_without_{c}" / "config.json").is_file():
            model, meta = load_recognizer(LOCO_DIR / f"recognizer_without_{c}")
            if meta.get("front_ends") != current:
                stale.append(c)
                continue
            entries[c] = paired_with_voices(model, pools(model.voice, args.extraction, model.spec, "test"),
                                            held_out_voices(model, args, c), args.report, c)
    rerun = (f"run `python -m dmd_lite.recipes.default --data DATA --voice {LOCO_DIR}/voice_without_<corpus>.pt "
             f"--out {LOCO_DIR}/recognizer_without_<corpus>`")
    if not entries:
        return {"missing": f"no current {LOCO_DIR}/recognizer_without_<corpus> (stale: {stale}): {rerun}"}
    return with_mean(entries) | ({"stale": f"{stale} trained on other front-end models: {rerun}"} if stale else {})


def cached_result(path: Path, command: str) -> dict:
    """A cross-corpus result that takes an hour of training to make, as its command last wrote it, with
    where it came from; or what to run to make it."""
    if not path.is_file():
        return {"missing": f"{path} not found: run `{command}` first"}
    return {"from": str(path), "written": time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime)),
            **json.loads(path.read_text())}


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.data.is_dir():
        print(json.dumps(evaluate_emotion(args)))
        return 0
    if not args.data.is_file():
        p.error(f"no such data file or folder: {args.data}")
    model, _ = load_checkpoint(args.checkpoint, device=args.device)
    try:
        split = load_mmsa(args.data)[args.split]
    except MMSAFileError as e:
        p.exit(2, f"{p.prog}: error: {e}\n")
    print(json.dumps({"split": args.split, "n": len(split), **evaluate_split(model, split, torch.device(args.device))}))
    return 0


if __name__ == "__main__":
    run_cli(main)
