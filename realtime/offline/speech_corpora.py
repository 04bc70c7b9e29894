"""Readers for the labelled speech corpora of the shared data: RAVDESS and the four manifest corpora.

Every corpus gives the same ``Clip`` records: the audio's path inside the corpus folder, speaker,
label (one of ``LABELS``), its own label, and a speaker-disjoint split (train / val / test). Each
corpus has its own class set (``classes``): a label it lacks is missing, not a negative.

- RAVDESS (``ravdess_speech_16k``): labels and actors from the file names, split by actor
  (``datasets.TRAIN_ACTORS`` / ``VAL_ACTORS`` / ``TEST_ACTORS``).
- nEMO, TESS, TurEV-DB, URDU (``speech/<name>``): ``manifest.csv`` with columns ``audio``,
  ``speaker``, ``label`` (already one of ``LABELS``), ``label_orig`` and ``split``. Their
  splits keep the test and validation speakers out of training; TESS's validation and test share
  its second speaker (split by word), which is why only train against the others is checked.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from realtime.core.feature_spec import LABELS
from realtime.offline.datasets import (RAVDESS_EMOTIONS, RAVDESS_TO_LABEL, TEST_ACTORS, TRAIN_ACTORS,
                                       VAL_ACTORS)

MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = ("audio", "speaker", "label", "label_orig", "split")
SPLITS = ("train", "val", "test")
# corpus name -> its folder inside the shared data folder
CORPUS_FOLDERS = {"ravdess": "ravdess_speech_16k", "nemo": "speech/nemo", "tess": "speech/tess",
                  "turev": "speech/turev", "urdu": "speech/urdu"}
_RAVDESS_NAME = re.compile(r"^03-01-(\d\d)-\d\d-\d\d-\d\d-(\d\d)\.(flac|wav)$")  # audio-only speech files


class CorpusError(ValueError):
    """A corpus folder that cannot be read (no manifest, bad columns, unknown labels or splits)."""


@dataclass(frozen=True)
class Clip:
    """One labelled utterance of a corpus."""

    audio: str  # path inside the corpus folder, "/"-separated (what ``realtime.extract`` calls its source)
    speaker: str
    label: str  # one of LABELS
    source_label: str  # the corpus's own label
    split: str  # train, val or test


def _ravdess_split(actor: int) -> str:
    return "train" if actor in TRAIN_ACTORS else "val" if actor in VAL_ACTORS else "test" if actor in TEST_ACTORS else ""


def ravdess_clips(folder: Path) -> list[Clip]:
    """RAVDESS speech clips under ``folder`` (``Actor_NN/03-01-EE-...-AA.flac``), split by actor."""
    clips = []
    for path in sorted(folder.rglob("*")):
        if m := _RAVDESS_NAME.match(path.name):
            emotion = RAVDESS_EMOTIONS[m.group(1)]
            clips.append(Clip(path.relative_to(folder).as_posix(), f"ravdess_{m.group(2)}", RAVDESS_TO_LABEL[emotion],
                              emotion, _ravdess_split(int(m.group(2)))))
    if not clips:
        raise CorpusError(f"{folder}: no RAVDESS speech clips (03-01-EE-II-SS-RR-AA.flac) found")
    return clips


def manifest_clips(folder: Path) -> list[Clip]:
    """The clips ``folder/manifest.csv`` lists; CorpusError (one line) when it is missing or malformed."""
    path = folder / MANIFEST
    if not path.is_file():
        raise CorpusError(f"{folder}: no {MANIFEST} (a speech corpus folder needs one with columns "
                          f"{', '.join(MANIFEST_COLUMNS)})")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if missing := [c for c in MANIFEST_COLUMNS if c not in (reader.fieldnames or [])]:
            raise CorpusError(f"{path}: missing columns {', '.join(missing)}")
        clips = []
        for row in reader:
            if row["label"] not in LABELS or row["split"] not in SPLITS:
                raise CorpusError(f"{path}, line {reader.line_num}: label {row['label']!r} is not one of "
                                  f"{', '.join(LABELS)} or split {row['split']!r} not one of {', '.join(SPLITS)}")
            clips.append(Clip(row["audio"], row["speaker"], row["label"], row["label_orig"], row["split"]))
    if not clips:
        raise CorpusError(f"{path}: no rows")
    check_speakers(clips, str(path))
    return clips


def corpus_clips(data: Path, corpus: str) -> list[Clip]:
    """The clips of ``corpus`` (a key of ``CORPUS_FOLDERS``) in the shared data folder ``data``."""
    if corpus not in CORPUS_FOLDERS:
        raise CorpusError(f"unknown speech corpus {corpus!r}; known: {', '.join(CORPUS_FOLDERS)}")
    folder = data / CORPUS_FOLDERS[corpus]
    if not folder.is_dir():
        raise CorpusError(f"{folder} not found: pass the shared data folder (it holds {CORPUS_FOLDERS[corpus]})")
    return ravdess_clips(folder) if corpus == "ravdess" else manifest_clips(folder)


def check_speakers(clips: list[Clip], where: str) -> None:
    """CorpusError when a training speaker also speaks in validation or test."""
    train = {c.speaker for c in clips if c.split == "train"}
    if shared := sorted(train & {c.speaker for c in clips if c.split != "train"}):
        raise CorpusError(f"{where}: speakers {', '.join(shared[:5])} are in train and in val or test")


def classes(clips: list[Clip]) -> tuple[str, ...]:
    """The labels a corpus has (any split), in ``LABELS`` order: its own class set."""
    present = {c.label for c in clips}
    return tuple(label for label in LABELS if label in present)


def extraction_meta(folder: Path) -> dict[str, dict]:
    """Per clip path inside a manifest corpus ``folder``, the labels ``realtime.extract`` records."""
    corpus = folder.name
    return {c.audio: {"label": c.label, "source_label": c.source_label, "speaker": c.speaker, "split": c.split,
                      "corpus": corpus} for c in manifest_clips(folder)}
