"""Which voice features carry emotion to a corpus never heard: leave-one-corpus-out with a linear model.

    .venv/bin/python -m bench.voice_features_across_corpora --data ../shared/data [--extraction DIR]

For each of the five speech corpora (``realtime.offline.speech_corpora``): scikit-learn's
LogisticRegression (C 0.1; every corpus weighted by its clips ** -0.5, as the voice encoder draws
them) fitted on the train and validation speakers of the other four and scored on that corpus's test
speakers: unweighted average recall over its test classes of the 7-way answers, the voice encoder's
``voice_cross_corpus`` figure. Features, one vector per clip:

- ``logmel``: the voice front-end's 64 log-mel values, mean and standard deviation over the clip's
  steps (``bench.baselines_voice``), from the ``realtime.extract`` features in ``--extraction``
  (extracted first where missing);
- ``egemaps``: the 88 eGeMAPS v02 functionals (Eyben et al. 2016: pitch, jitter, shimmer, loudness,
  formants, spectral slope, ...) of the decoded 16 kHz audio by openSMILE, when the ``opensmile``
  package is installed (``pip install opensmile==2.6.0``; audEERING's licence allows research and
  personal use only, so it is no dependency of the project). Cached in the user cache;
- ``egemaps_f0``: the 10 of them that describe pitch (``F0semitoneFrom27.5Hz_*``: mean, deviation,
  percentiles, range and slopes of the pitch in semitones), which the front-end does not compute;
- ``ge2e``: the mean and deviation over the clip's steps of the voice front-end's GE2E states (the
  pretrained speaker encoder's second layer, ``realtime.frontends.ge2e``), from the same extraction.

Each is standardised over the training clips (``global``), or first per speaker (``per_speaker``:
each speaker's clips by their own mean and deviation, the test speakers' over their own test clips;
live, a running normalisation over a session of one user's speech would stand in for it). The
shipped recipe's leave-one-corpus-out voice encoders are printed beside them when their
``loco.json`` is in the user cache (``python -m realtime.voice_encoder loco``). The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from dmd_lite.emotion_eval import extract_all
from realtime.capture.audio_source import SAMPLE_RATE, FileAudioSource
from realtime.core.errors import one_line, run_cli
from realtime.core.feature_spec import GE2E_START, LABELS, N_MELS
from realtime.core.resources import cache_dir
from realtime.offline.cross_corpus import VOICE_CORPORA
from realtime.offline.speech_corpora import CORPUS_FOLDERS, Clip, corpus_clips
from realtime.offline.voice_encoder import LOCO_DIR

from .baselines_voice import clip_statistics
from .report import cpu_name

EGEMAPS_CACHE = cache_dir("bench") / "egemaps"
F0_PREFIX = "F0semitoneFrom27.5Hz"  # eGeMAPS's pitch functionals


def step_statistics(extraction: Path, corpus: str, clips: list[Clip], columns: slice) -> dict[str, np.ndarray]:
    """{clip audio path: mean and std over its steps of the voice features in ``columns``} of the corpus's
    extracted clips."""
    wanted = {c.audio for c in clips}
    x, _, sources = clip_statistics(extraction / corpus, lambda r: r["source"] in wanted, columns)
    return dict(zip(sources, x))


def egemaps(data: Path, corpus: str, clips: list[Clip], f0_only: bool = False) -> dict[str, np.ndarray] | None:
    """{clip audio path: the 88 eGeMAPS functionals, or their 10 of pitch}, computed once and cached;
    None without openSMILE."""
    path = EGEMAPS_CACHE / f"{corpus}.npz"
    if path.is_file():
        cached = np.load(path)
        columns = np.char.startswith(cached["names"], F0_PREFIX) if f0_only else slice(None)
        return {source: x[columns] for source, x in zip(cached["sources"].tolist(), cached["x"])}
    try:
        import opensmile
    except ImportError:
        return None
    smile = opensmile.Smile(opensmile.FeatureSet.eGeMAPSv02, opensmile.FeatureLevel.Functionals)
    out = {}
    for clip in tqdm(clips, desc=f"eGeMAPS {corpus}", unit="clip"):
        with FileAudioSource(data / CORPUS_FOLDERS[corpus] / clip.audio) as source:
            samples = np.concatenate([chunk.samples for chunk in source])
        out[clip.audio] = smile.process_signal(samples, SAMPLE_RATE).to_numpy()[0].astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, sources=np.array(list(out)), x=np.stack(list(out.values())), names=np.array(smile.feature_names))
    return egemaps(data, corpus, clips, f0_only)


def per_speaker(x: np.ndarray, speakers: np.ndarray) -> np.ndarray:
    """Each speaker's rows standardised by their own mean and standard deviation."""
    x = x.copy()
    for s in np.unique(speakers):
        rows = speakers == s
        x[rows] = (x[rows] - x[rows].mean(0)) / (x[rows].std(0) + 1e-8)
    return x


def uar(pred: np.ndarray, y: np.ndarray) -> float:
    """Unweighted average recall over the classes present in ``y``."""
    return float(np.mean([(pred[y == k] == k).mean() for k in np.unique(y)]))


def leave_one_corpus_out(table: dict[str, tuple[np.ndarray, list[Clip]]], speaker_norm: bool) -> dict[str, float]:
    """{left-out corpus: UAR} (module docstring); ``table``: per corpus, features and their clips."""
    def rows(corpus: str, test: bool) -> tuple[np.ndarray, np.ndarray]:
        x, clips = table[corpus]
        keep = np.array([(c.split == "test") == test for c in clips])
        speakers = np.array([c.speaker for c in clips])[keep]
        labels = np.array([LABELS.index(c.label) for c in clips])[keep]
        return (per_speaker(x[keep], speakers) if speaker_norm else x[keep]), labels

    result = {}
    for left in table:
        parts = [rows(c, test=False) for c in table if c != left]
        x, y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        w = np.concatenate([np.full(len(p[1]), len(p[1]) ** -0.5) for p in parts])
        scaler = StandardScaler().fit(x)
        clf = LogisticRegression(C=0.1, max_iter=3000).fit(scaler.transform(x), y, sample_weight=w * len(w) / w.sum())
        xt, yt = rows(left, test=True)
        result[left] = round(uar(clf.predict(scaler.transform(xt)), yt), 4)
    result["mean"] = round(float(np.mean(list(result.values()))), 4)
    return result


def corpora_parser(prog: str, doc: str) -> argparse.ArgumentParser:
    """The command line of a bench over the speech corpora's extracted voice features."""
    ap = argparse.ArgumentParser(prog=prog, description=doc.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="the shared data folder (ravdess_speech_16k, speech/)")
    ap.add_argument("--extraction", type=Path, default=cache_dir("default") / "extract",
                    help="folder of the corpora's voice features, ravdess/, nemo/, ... (default: %(default)s)")
    return ap


def run_corpora_bench(p: argparse.ArgumentParser, measure: Callable[[Path, Path], dict], argv: list[str] | None) -> None:
    """Parse ``argv`` with ``p`` (``corpora_parser``) and run ``measure(data, extraction)``; bad data: one line, exit 2."""
    a = p.parse_args(argv)
    try:
        measure(a.data, a.extraction)
    except (FileNotFoundError, ValueError) as e:  # CorpusError is a ValueError
        p.exit(2, f"{p.prog}: {one_line(e)}\n")


def clip_table(features: dict[str, np.ndarray], clips: list[Clip]) -> tuple[np.ndarray, list[Clip]]:
    """The clips that have ``features`` ({clip audio path: vector}), their vectors stacked (float64) and the clips."""
    kept = [clip for clip in clips if clip.audio in features]
    return np.stack([features[clip.audio] for clip in kept]).astype(np.float64), kept


def parser() -> argparse.ArgumentParser:
    """The command line."""
    return corpora_parser("python -m bench.voice_features_across_corpora", __doc__)


def main(argv: list[str] | None = None) -> None:
    run_corpora_bench(parser(), measure, argv)


def measure(data: Path, extraction: Path) -> dict:
    """Print each feature set's leave-one-corpus-out figures, then the JSON line; returns it."""
    clips = {c: corpus_clips(data, c) for c in VOICE_CORPORA}
    extract_all(data, extraction, 2, {c: ("audio", CORPUS_FOLDERS[c]) for c in VOICE_CORPORA})  # what is missing
    result: dict = {"machine": f"{cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}",
                    "uar_left_out": {}}
    for name, features in (("logmel", lambda c: step_statistics(extraction, c, clips[c], slice(0, N_MELS))),
                           ("egemaps", lambda c: egemaps(data, c, clips[c])),
                           ("egemaps_f0", lambda c: egemaps(data, c, clips[c], f0_only=True)),
                           ("ge2e", lambda c: step_statistics(extraction, c, clips[c], slice(GE2E_START, None)))):
        by_corpus = {c: features(c) for c in VOICE_CORPORA}
        if any(f is None for f in by_corpus.values()):
            print(f"{name}: skipped (pip install opensmile==2.6.0 to measure it; research use only)")
            continue
        table = {c: clip_table(f, clips[c]) for c, f in by_corpus.items()}
        for norm in ("global", "per_speaker"):
            result["uar_left_out"][f"{name}_{norm}"] = r = leave_one_corpus_out(table, norm == "per_speaker")
            print(f"{name:8s} {norm:11s} " + "  ".join(f"{c} {u:.3f}" for c, u in r.items()), flush=True)
    loco = LOCO_DIR / "loco.json"
    if loco.is_file():
        cross = json.loads(loco.read_text())["voice_cross_corpus"]
        r = {c: cross[c]["uar"] for c in VOICE_CORPORA if c in cross}
        result["uar_left_out"]["voice_encoder"] = r = r | {"mean": round(float(np.mean(list(r.values()))), 4)}
        print("voice encoder (loco.json)  " + "  ".join(f"{c} {u:.3f}" for c, u in r.items()))
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    run_cli(main)
