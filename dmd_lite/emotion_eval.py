"""Held-out evaluation of a recognizer on real data, per modality and fused.

Sets (built from ``realtime.extract`` outputs of ``../shared/data``, see ``held_out_sets``):
- ``face_fer2013_test``: every FER2013 test image, its still held over the visual window, face only;
- ``face_fer2013_test_passing``: the same windows, each with a test face of another label over a
  third of its steps (a random span, fixed seed): the held expression is the answer;
- ``voice_ravdess_heldout``: every clip of RAVDESS actors 21-24, the window ending at its last step;
- ``text_meld_test``: every MELD test utterance, the window ending at its last word;
- ``fused_paired_test``: ``N_PAIRED`` label-paired triplets of those sets (labels drawn uniformly,
  all three modalities present, fixed seed).
Paired sets also get ``paired_extras``: each modality alone and the fused accuracy with every voice
trusted in full. Each entry: n, accuracy, macro_f1, weighted_f1, chance (the majority class's
share), the expected calibration error with and without the checkpoint's temperature,
``valence_mae`` against the valence targets the model is trained on (``emotion_data.valence_targets``:
MELD's sentiment for its words, the label's ``LABEL_VALENCE`` for faces and voices), the share of
windows whose valence has the sign of their label (``valence_sign_agreement`` over
``valence_sign_n`` windows of labels with a clear sign, ``CLEAR_VALENCE_SIGN``), the share of
windows whose answer is confident enough to be shown (``SHOW_CONFIDENCE``) and has a clear sign but
whose valence has the other sign (``valence_contradicts_label`` over ``valence_confident_n``), the voice
encoder's mean reliability over windows with a voice
(``mean_voice_reliability``), and the mean GD-Unit edge weights (homo and hetero graphs; an
edge touching an absent modality weighs 0, so single-modality sets show zeros).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from realtime.core.feature_spec import CLEAR_VALENCE_SIGN, FeatureSpec
from realtime.core.modalities import EDGE_NAMES, MODALITIES
from realtime.extract import MODELS, extract
from realtime.nets.voice_encoder import VoiceEncoder
from realtime.offline.datasets import SOURCES, TEST_ACTORS, VAL_ACTORS, actor_of
from realtime.smoothing import SHOW_CONFIDENCE

from .emotion_data import (Pool, Triplets, concat_pools, face_pool, face_windows, paired_picks, pass_over,
                           sequence_pool, valence_targets)
from .emotion_train import TripletSampler, predict
from .metrics import classification_metrics, save_confusion_png
from .model import DMDOutput
from .recognizer import Recognizer

FIT_ACTORS = VAL_ACTORS[:-1]  # the voice encoder's validation actors (17-19): fusion is fitted on them
SELECT_ACTORS = VAL_ACTORS[-1:]  # ... and selected and calibrated on the last (20)
N_PAIRED = 2000
PAIRED_SEED = 20231
PASSING_SEED = 20232


def extract_all(data: Path, extraction: Path, workers: int, sources: dict[str, tuple[str, str]] = SOURCES,
                clips_alone: bool = False, live_seed: int | None = None) -> None:
    """Run ``realtime.extract`` on ``sources`` ({name: (kind, folder in data)}; default the three shared
    sets) into ``extraction``/name (a rerun skips what is done); ``clips_alone``, ``live_seed``: see
    ``extract``."""
    for name, (kind, folder) in sources.items():
        if not (data / folder).is_dir():
            raise FileNotFoundError(f"{data / folder} not found: pass --data the shared data folder")
        extract(kind, data / folder, extraction / name, workers, clips_alone, live_seed)


def extracted_front_ends(extraction: Path) -> dict[str, dict[str, str]]:
    """Per extracted source that runs models (faces, words), the models its features came out of
    (``realtime.extract``'s record): what a recognizer trained on them was trained for."""
    return {name: json.loads((extraction / name / MODELS).read_text())
            for name in ("fer2013", "text") if (extraction / name / MODELS).is_file()}


def encode_pool(pool: Pool, voice: VoiceEncoder, batch: int = 256) -> Pool:
    """Replace a voice pool's raw windows by the frozen voice encoder's per-step features, with its reliability."""
    with torch.inference_mode():
        outs = [voice.encode(torch.from_numpy(pool.x[i:i + batch]), torch.from_numpy(pool.mask[i:i + batch]))
                for i in range(0, len(pool), batch)]
    return replace(pool, x=np.concatenate([f.numpy() for f, _ in outs]).astype(np.float32),
                   reliability=np.concatenate([r.numpy() for _, r in outs]).astype(np.float32))


def pools(voice: VoiceEncoder, extraction: Path, spec: FeatureSpec, part: str,
          more_voices: Pool | None = None) -> dict[str, Pool]:
    """Pools of one part, voices encoded: ``fit`` and ``select`` (the encoders' validation data, never
    seen in their training) or ``test``; ``more_voices`` (raw windows) join RAVDESS's."""
    face_split, meld_split = {"fit": ("val", "val"), "select": ("val", "val"), "test": ("test", "test")}[part]
    actors = {"fit": FIT_ACTORS, "select": SELECT_ACTORS, "test": TEST_ACTORS}[part]
    face = face_pool(extraction / "fer2013", face_split, spec)
    if part != "test":  # FER2013 val is split 80/20 into fit and select, by a fixed permutation
        order = np.random.default_rng(0).permutation(len(face))
        cut = int(0.8 * len(face))
        face = face.select(np.sort(order[:cut] if part == "fit" else order[cut:]))
    if spec.visual_norm is not None:
        face = replace(face, x=spec.visual_norm.apply(face.x))
    voice_pool = sequence_pool(extraction / "ravdess", "audio", lambda r: r["status"] == "ok" and actor_of(r["speaker"]) in actors,
                          spec, every_hop=part == "fit")
    words = sequence_pool(extraction / "text", "text",
                          lambda r: r.get("corpus") == "meld" and r.get("split") == meld_split and r["status"] == "ok",
                          spec, every_hop=False)
    if part != "test":  # MELD dev is split 80/20 by a fixed permutation as well
        order = np.random.default_rng(1).permutation(len(words))
        cut = int(0.8 * len(words))
        words = words.select(np.sort(order[:cut] if part == "fit" else order[cut:]))
    if more_voices is not None:
        voice_pool = concat_pools({"ravdess": voice_pool, "more": more_voices})
    return {"visual": face, "audio": encode_pool(voice_pool, voice), "text": words}


def single_modality(pool: Pool, stream: str, shapes: dict[str, tuple[int, ...]]) -> Triplets:
    """Every member of one pool as a window with only that modality present (faces held still);
    ``shapes[m]`` is the (steps, dim) of modality m's windows."""
    n = len(pool)
    out = {}
    for m in MODALITIES:
        out[m] = np.zeros((n, *shapes[m]), np.float32)
        out[f"{m}_mask"] = np.zeros((n, shapes[m][0]), bool)
    if stream == "visual":
        out["visual"], out["visual_mask"] = face_windows(pool.x, shapes["visual"][0], np.random.default_rng(0),
                                                         np.zeros(0, np.float32), None)
    else:
        out[stream], out[f"{stream}_mask"] = pool.x, pool.mask
    return Triplets(**out, labels=pool.labels, valence=pool.valence,
                    voice_reliability=pool.reliability if stream == "audio" else None)


def with_passing_faces(faces: Triplets) -> Triplets:
    """Face-only windows of held stills with, in each, the still of another label's window over a third
    of the steps (``emotion_data.pass_over``; a random span, ``PASSING_SEED``)."""
    rng = np.random.default_rng(PASSING_SEED)
    n, steps = faces.visual.shape[:2]
    other = np.array([rng.choice(np.flatnonzero(faces.labels != c)) for c in faces.labels])
    span = np.full(n, steps // 3)
    start = rng.integers(0, steps - span + 1)
    return replace(faces, visual=pass_over(faces.visual, faces.visual[other, 0], start, span))


def shapes_of(pools: dict[str, Pool], visual_steps: int) -> dict[str, tuple[int, ...]]:
    return {"visual": (visual_steps, pools["visual"].x.shape[1]),
            **{m: pools[m].x.shape[1:] for m in ("audio", "text")}}


def paired_set(pools: dict[str, Pool], spec: FeatureSpec, present: tuple[bool, bool, bool] = (True, True, True),
               labels: Sequence[int] | None = None) -> Triplets:
    """``N_PAIRED`` label-paired triplets of encoded pools (labels uniform over ``labels``, default all;
    fixed seed; faces held still)."""
    return TripletSampler(pools, len(spec.labels), spec.visual_steps, labels).fixed_set(N_PAIRED, present, PAIRED_SEED,
                                                                                        jitter=None)


def held_out_sets(test: dict[str, Pool], spec: FeatureSpec) -> dict[str, Triplets]:
    """The five evaluation sets of the module docstring, from encoded test pools."""
    shapes = shapes_of(test, spec.visual_steps)
    faces = single_modality(test["visual"], "visual", shapes)
    return {"face_fer2013_test": faces, "face_fer2013_test_passing": with_passing_faces(faces),
            "voice_ravdess_heldout": single_modality(test["audio"], "audio", shapes),
            "text_meld_test": single_modality(test["text"], "text", shapes),
            "fused_paired_test": paired_set(test, spec)}


def paired_test_picks(labels_of: dict[str, np.ndarray], n_labels: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The labels and per-modality pool indices of ``fused_paired_test`` given each test pool's
    labels (the draws ``held_out_sets`` makes), for scoring other models on the same triplets."""
    rng = np.random.default_rng(PAIRED_SEED)
    labels = rng.integers(0, n_labels, N_PAIRED)
    by_label = {m: [np.flatnonzero(labels_of[m] == c) for c in range(n_labels)] for m in MODALITIES}
    return labels, paired_picks(by_label, labels, rng)


def _windows(batch: Triplets) -> list[torch.Tensor]:
    """What ``Recognizer.decide`` needs of a batch besides DMD's logits."""
    return [torch.from_numpy(getattr(batch, name)) for name in ("text", "visual_mask", "audio_mask", "text_mask")]


def answer(model: Recognizer, batch: Triplets) -> tuple[np.ndarray, np.ndarray, np.ndarray, DMDOutput]:
    """The recognizer's probabilities (N, K) at its temperatures and at 1, valence (N,) and DMD's
    edges for encoded triplets: as ``Recognizer.forward`` answers, the answer with the voice mixed
    with the one without it by the voice's weight where the triplets carry its reliability, and a
    face or a voice alone answered by its encoder."""
    def dmd_answers(b: Triplets) -> tuple[list[tuple[torch.Tensor, ...]], DMDOutput]:
        out = predict(model.dmd, b, torch.device("cpu"))
        return [(*model.decide(out.logits, *_windows(b), temperature=t), out.edges_homo, out.edges_hetero)
                for t in (True, False)], out

    (calibrated, at_one), out = dmd_answers(batch)
    bare_calibrated, bare_at_one = (dmd_answers(replace(batch, audio=np.zeros_like(batch.audio),
                                                        audio_mask=np.zeros_like(batch.audio_mask)))[0]
                                    if batch.audio_mask.any() else (calibrated, at_one))  # no voice: the same pass
    reliability = (torch.ones(len(batch.labels)) if batch.voice_reliability is None
                   else torch.from_numpy(batch.voice_reliability))
    windows = [torch.from_numpy(getattr(batch, n)) for n in ("visual", "audio", "visual_mask", "audio_mask", "text_mask")]
    probs, valence, *edges = model.combine(calibrated, bare_calibrated, reliability, *windows)
    uncalibrated = model.combine(at_one, bare_at_one, reliability, *windows, temperature=False)[0]
    return probs.numpy(), uncalibrated.numpy(), valence.numpy(), DMDOutput(out.logits, *edges)


def voice_only_answer(model: Recognizer, shapes: dict[str, tuple[int, ...]]) -> Callable[[Pool], np.ndarray]:
    """The recognizer's answer to voice windows alone: raw voice pool -> (N, K) log-probabilities."""
    def voice_answer(pool: Pool) -> np.ndarray:
        probs = answer(model, single_modality(encode_pool(pool, model.voice), "audio", shapes))[0]
        return np.log(np.clip(probs, 1e-12, None))
    return voice_answer


def score_set(model: Recognizer, batch: Triplets, labels: tuple[str, ...], png: Path | None = None) -> dict:
    """The metrics of one set (see the module docstring); saves its confusion matrix as ``png``."""
    probs, uncalibrated, valence, out = answer(model, batch)
    k = len(labels)
    pred = probs.argmax(1)
    keep = batch.labels >= 0
    m = classification_metrics(pred[keep], batch.labels[keep], k)
    counts = np.bincount(batch.labels[keep], minlength=k)
    entry = {"n": int(keep.sum()), "accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
             "weighted_f1": m["weighted_f1"], "chance": float(counts.max() / max(1, counts.sum())),
             "ece": expected_calibration_error(probs[keep], batch.labels[keep]),
             "ece_before_temperature": expected_calibration_error(uncalibrated[keep], batch.labels[keep])}
    voiced = batch.audio_mask.any(1)
    if batch.voice_reliability is not None and voiced.any():
        entry["mean_voice_reliability"] = float(batch.voice_reliability[voiced].mean())
    target = valence_targets(batch.labels, batch.valence)
    entry["valence_mae"] = float(np.abs(valence[keep] - target[keep]).mean())
    entry |= valence_sign_agreement(valence[keep], batch.labels[keep], labels)
    entry |= valence_contradictions(probs[keep], valence[keep], labels)
    entry["gd_edges"] = {kind: dict(zip(EDGE_NAMES, getattr(out, f"edges_{kind}").mean(0).tolist()))
                         for kind in ("homo", "hetero")}
    if png is not None:
        save_confusion_png(m["confusion"], labels, png, png.stem)
    return entry


def valence_sign_agreement(valence: np.ndarray, labels: np.ndarray, names: tuple[str, ...]) -> dict:
    """``valence_sign_n``: windows whose label (index into ``names``) has a clear valence sign
    (``CLEAR_VALENCE_SIGN``); ``valence_sign_agreement``: the share of them whose valence has that sign."""
    sign = np.array([CLEAR_VALENCE_SIGN.get(name, 0) for name in names])[labels]
    clear = sign != 0
    if not clear.any():
        return {"valence_sign_n": 0}
    return {"valence_sign_n": int(clear.sum()),
            "valence_sign_agreement": float((np.sign(valence[clear]) == sign[clear]).mean())}


def valence_contradictions(probs: np.ndarray, valence: np.ndarray, names: tuple[str, ...]) -> dict:
    """``valence_confident_n``: windows whose most probable label (``names``) has a clear valence sign
    and at least ``SHOW_CONFIDENCE``, as the overlay would show it; ``valence_contradicts_label``: the
    share of them whose valence has the other sign (a valence of 0 contradicts nothing)."""
    sign = np.array([CLEAR_VALENCE_SIGN.get(name, 0) for name in names])[probs.argmax(1)]
    confident = (probs.max(1) >= SHOW_CONFIDENCE) & (sign != 0)
    if not confident.any():
        return {"valence_confident_n": 0}
    return {"valence_confident_n": int(confident.sum()),
            "valence_contradicts_label": float((np.sign(valence[confident]) == -sign[confident]).mean())}


def alone(batch: Triplets, stream: str) -> Triplets:
    """The same triplets with only ``stream`` present."""
    arrays = {m: getattr(batch, m) * (m == stream) for m in MODALITIES}
    masks = {f"{m}_mask": getattr(batch, f"{m}_mask") & (m == stream) for m in MODALITIES}
    reliability = None if batch.voice_reliability is None else batch.voice_reliability * (stream == "audio")
    return Triplets(**arrays, **masks, labels=batch.labels, valence=batch.valence, voice_reliability=reliability)


def score_held_out(model: Recognizer, test: dict[str, Triplets], report: Path) -> dict:
    """``score_set`` on every set; the paired ones (``fused_*``) get ``paired_extras`` too."""
    report.mkdir(parents=True, exist_ok=True)
    results = {name: score_set(model, batch, model.labels, report / f"confusion_{name}.png") for name, batch in test.items()}
    for name, batch in test.items():
        if name.startswith("fused_"):
            results[name] |= paired_extras(model, batch)
    return results


def paired_extras(model: Recognizer, batch: Triplets) -> dict:
    """For paired triplets: each present modality alone (``alone_accuracy``), which the fused figure
    must not fall below, and the fused accuracy with every voice trusted in full."""
    present = [m for m in MODALITIES if getattr(batch, f"{m}_mask").any()]
    extras = {"alone_accuracy": {m: score_set(model, alone(batch, m), model.labels)["accuracy"] for m in present}}
    if batch.voice_reliability is not None:
        extras["accuracy_voice_always_trusted"] = score_set(model, replace(batch, voice_reliability=None),
                                                            model.labels)["accuracy"]
    return extras


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE: the confidence-weighted gap between confidence and accuracy over equal-width bins."""
    conf, pred = probs.max(1), probs.argmax(1)
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            total += inside.mean() * abs((pred[inside] == labels[inside]).mean() - conf[inside].mean())
    return float(total)
