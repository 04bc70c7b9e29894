"""The recognizer on words alone, MELD test, with the transcripts' "?" and "!" and without any mark.

    .venv/bin/python -m bench.words_without_marks [--checkpoint default] [--data ../shared/data/text]

``dmd_lite.evaluate`` scores ``text_meld_test`` on MELD's words as extracted, marks included; the
live ASR gives none. This scores both, each utterance timed as the extraction times it and windowed
at its last word, with face and voice absent. The last line is a JSON summary.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from bench.baselines_text import DEFAULT_DATA
from dmd_lite.metrics import classification_metrics
from dmd_lite.recognizer import Recognizer, load_recognizer
from realtime.core.errors import run_cli
from realtime.core.tokens import strip_marks
from realtime.frontends.text_frontend import TextFrontEnd
from realtime.offline.text_encoder import meld_split
from realtime.window import WindowAssembler


def words_only(model: Recognizer, utterances: list[list[str]], labels: np.ndarray, valence: np.ndarray) -> dict[str, float]:
    """Accuracy, weighted and macro F1 and valence MAE of words-only windows, one per utterance."""
    spec, assembler, front_end = model.spec, WindowAssembler(model.spec), TextFrontEnd()
    windows = []
    for words in utterances:
        times, features = front_end.transcript(words)
        windows.append(assembler.from_streams(float(times[-1]) if len(words) else 0.0, {"text": (times, features)}))
    n = len(windows)
    absent = lambda steps, dim: (torch.zeros(n, steps, dim), torch.zeros(n, steps, dtype=torch.bool))  # noqa: E731
    text = torch.from_numpy(np.stack([w.text for w in windows]))
    text_mask = torch.from_numpy(np.stack([w.text_mask for w in windows]))
    with torch.inference_mode():
        probs, predicted_valence, *_ = model(*absent(spec.visual_steps, spec.visual_dim),
                                               *absent(spec.audio_steps, spec.audio_dim), text, text_mask)
    m = classification_metrics(probs.argmax(1), labels, len(spec.labels))
    return {"accuracy": m["accuracy"], "weighted_f1": m["weighted_f1"], "macro_f1": m["macro_f1"],
            "valence_mae": float(np.abs(predicted_valence.numpy() - valence).mean())}


def parser() -> argparse.ArgumentParser:
    """The command line."""
    ap = argparse.ArgumentParser(prog="python -m bench.words_without_marks", description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default="default", help="recognizer checkpoint (default: the shipped model)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with meld/")
    return ap


def main(argv: list[str] | None = None) -> None:
    a = parser().parse_args(argv)
    test, (model, _) = meld_split(a.data, "test"), load_recognizer(a.checkpoint)
    summary = {}
    for name, utterances in (("with_marks", test.words), ("without_marks", [strip_marks(u) for u in test.words])):
        m = summary[name] = {k: round(v, 4) for k, v in words_only(model, utterances, test.emotion,
                                                                   test.valence).items()}
        print(f"MELD test, words only, {name:>13}: accuracy {m['accuracy']:.4f}  weighted-F1 {m['weighted_f1']:.4f}  "
              f"macro-F1 {m['macro_f1']:.4f}  valence MAE {m['valence_mae']:.4f}", flush=True)
    print(json.dumps({"checkpoint": a.checkpoint, "n": len(test), **summary}))


if __name__ == "__main__":
    run_cli(main)
