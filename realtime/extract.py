"""Offline feature extraction with the live front-ends, for training and evaluation.

    python -m realtime.extract --kind {video,audio,image,text} --input PATH --out DIR [--workers N]

``--input`` is a file or a folder searched recursively; symbolic links inside it, to files and to
folders alike, are never followed: each is skipped and counted as failed (name the link's target as
``--input`` to extract it). Per kind:
  video  videos with sound: face features (15 Hz) and voice features (25 Hz) on media time
  audio  flac/wav/opus clips: voice features; a folder with a ``manifest.csv`` (the speech corpora of
         ``realtime.offline.speech_corpora``) takes each clip's label, speaker and split from it.
         The clips of one speaker (named by the manifest or a RAVDESS file name) are one voice
         session, in a fixed shuffled order: the voice front-end's running normalisation goes on
         from clip to clip as it does live while one person talks (``frontends.voice.VoiceNorm``).
         With ``--clips-alone`` each clip is a session of its own, heard from its first sample
         as at the start of a live session (a cold start). With ``--live-conditions SEED`` each clip
         is first heard through a room, noise, a level and a codec drawn with SEED and its name
         (``offline.live_conditions``; its record's ``live_conditions`` says which)
  image  face crops (png/jpg, FER2013-style): one face-feature vector each, still-image mode; where
         MediaPipe finds no face (status no_face) the expression CNN still sees the whole picture
  text   transcript CSVs (MELD, EmoryNLP, CMU-MOSI): per utterance, the text front-end's word features
         timed at a speaking rate; a malformed row (more or fewer fields than the header, a valence
         that does not parse) is skipped and counted as failed, with its file and line

Output in DIR:
  shards/...npz   one shard per video, per speaker's session of clips (``sessions/<speaker>.npz``) or
                  clip without a speaker, per chunk of ``CHUNK`` images of one folder, per chunk
                  of ``CHUNK`` transcript rows. A shard holds the streams of its items, concatenated:
                  ``<stream>_t`` (n,) times, ``<stream>`` (n, ...) features, ``<stream>_offsets``
                  (items + 1,), plus ``records`` (JSON of the items' index records); ``load_shard``
                  reads it back as per-item streams for ``WindowAssembler.recording_windows``.
  index.jsonl     one record per input (or transcript row): source, shard, item, status
                  (ok | no_face | failed), n_steps ({stream: steps}), label (``FeatureSpec`` label set, or null),
                  source_label, and speaker, split, valence, error where known.
  feature_spec.json  the spec the features follow; a rerun into DIR refuses a different one.
  voice_sessions.json  audio only: {"voice_sessions": "speaker" or "clip"}; a rerun with the other
                  choice refuses DIR.
  live_conditions.json  audio only: {"live_conditions_seed": SEED or null}; a rerun with another
                  refuses DIR.
  front_end_models.json  the sha256 of each model file the features come out of (faces: the landmarker
                  and the expression CNN; words: the sentence and text encoders; voices: silero-vad
                  and the GE2E network); a
                  rerun with other models refuses DIR, as it refuses one made before this record.

Only the samples where the modality is there are written (a video frame without a face is no step), so
the assembler's masks come out as they would live. Shards are written atomically (temporary file,
then rename): an existing shard is complete, and a rerun skips it. An unreadable input gets one
line on stderr and a ``failed`` record; it never stops the run (a failed clip or video is tried
again by a rerun; one in a chunk or session shard stays recorded there). The last stdout line is the JSON
summary ``{"processed", "skipped_existing", "failed", "out"}``, counting inputs (rows for text).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import multiprocessing as mp
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from realtime.capture.audio_source import SAMPLE_RATE, FileAudioSource
from realtime.core.errors import SourceError, interrupts_left_to_parent, one_line, run_cli
from realtime.core.feature_spec import FeatureSpec, Stream
from realtime.core.files import sha256, write_text_atomic
from realtime.core.resources import shipped
from realtime.core.native_logs import silence_native_stderr
from realtime.core.tokens import tokenize
from realtime.frontends.voice import VOICE_FEATURE_DIM, VoiceNorm, voice_features
from realtime.offline.datasets import (EMORYNLP_DROPPED, EMORYNLP_EMOTIONS, FER_TO_LABEL, MELD_EMOTIONS,
                                       MELD_SENTIMENTS, MOSI_SCALE, RAVDESS_EMOTIONS, RAVDESS_TO_LABEL)
from realtime.offline.live_conditions import Conditions, apply_conditions, clip_rng, draw_conditions
from realtime.offline.speech_corpora import MANIFEST, extraction_meta

KINDS = ("video", "audio", "image", "text")
SUFFIXES = {
    "video": (".mp4", ".avi", ".mov", ".mkv", ".webm"),
    "audio": (".flac", ".wav", ".opus"),
    "image": (".png", ".jpg", ".jpeg"),
    "text": (".csv",),
}
CHUNK = 1000  # images or transcript rows per shard
SHARDS, INDEX, SPEC, MODELS = "shards", "index.jsonl", "feature_spec.json", "front_end_models.json"
SESSIONS = "voice_sessions.json"
LIVE = "live_conditions.json"
FACE_MODELS = ("face_landmarker.task", "expression_cnn.safetensors")
VOICE_MODELS = ("silero_vad.onnx", "ge2e.safetensors")
STREAMS_OF = {"video": ("visual", "audio"), "image": ("visual",), "audio": ("audio",), "text": ("text",)}
MODELS_OF = {"video": FACE_MODELS + VOICE_MODELS, "image": FACE_MODELS, "audio": VOICE_MODELS,
             "text": ("sentence_encoder.safetensors", "text_encoder.safetensors")}
LINK_SKIPPED = ("a symbolic link, not followed (extraction reads only what lies inside --input): "
                "pass its target as --input")

_RAVDESS_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")  # modality-..-actor
SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "dev": "val", "test": "test"}


@dataclass(frozen=True)
class CsvSchema:
    """Where a transcript CSV keeps the utterance and its labels; recognised by ``columns``."""

    name: str
    columns: frozenset[str]
    text: str
    emotion: str | None = None
    emotion_map: dict[str, str | None] = field(default_factory=dict)
    speaker: str | None = None
    split: str | None = None  # a column naming the split (else the file name tells)
    valence: str | None = None  # a column giving valence, mapped onto [-1, 1]:
    valence_map: dict[str, float] = field(default_factory=dict)  # by name (sentiment classes), or
    valence_scale: float = 1.0  # a number divided by this


CSV_SCHEMAS = (
    CsvSchema("meld", frozenset({"Utterance", "Emotion", "Sentiment", "Dialogue_ID"}), "Utterance", "Emotion",
              MELD_EMOTIONS, speaker="Speaker", valence="Sentiment", valence_map=MELD_SENTIMENTS),
    CsvSchema("emorynlp", frozenset({"Utterance", "Emotion", "Scene_ID"}), "Utterance", "Emotion",
              {**EMORYNLP_EMOTIONS, **dict.fromkeys(EMORYNLP_DROPPED)}, speaker="Speaker"),
    CsvSchema("mosi", frozenset({"id", "text", "label", "mode"}), "text", split="mode", valence="label",
              valence_scale=MOSI_SCALE),
)


@dataclass(frozen=True)
class Item:
    """One input: a file, or one row of a transcript CSV (``text`` set)."""

    source: str  # path relative to --input, "#row" appended for a transcript row
    path: str
    meta: dict  # label, source_label, speaker, split, valence: what the source tells
    text: str | None = None

    @property
    def labels(self) -> dict:
        """The item's meta for its index record, with ``label`` and ``source_label`` always present."""
        return {"label": None, "source_label": None, **self.meta}


@dataclass(frozen=True)
class Unit:
    """The inputs that go into one shard."""

    shard: str  # relative to DIR/shards
    items: tuple[Item, ...]


# ---------------------------------------------------------------- labels from paths and CSVs

def path_meta(rel: Path) -> dict:
    """Label, speaker and split a file's path gives: a RAVDESS file-name code, a FER folder name."""
    meta: dict = {}
    if m := _RAVDESS_NAME.match(rel.stem):
        emotion = RAVDESS_EMOTIONS.get(m.group(3))
        meta.update(label=RAVDESS_TO_LABEL.get(emotion), source_label=emotion, speaker=f"ravdess_{m.group(7)}")
    elif rel.parent.name in FER_TO_LABEL:
        meta.update(label=FER_TO_LABEL[rel.parent.name], source_label=rel.parent.name)
    split = next((SPLIT_NAMES[p] for p in rel.parts[:-1] if p in SPLIT_NAMES), None)
    return {**meta, **({"split": split} if split else {})}


def csv_schema(columns: list[str], path: Path) -> CsvSchema:
    for schema in CSV_SCHEMAS:
        if schema.columns <= set(columns):
            return schema
    raise ValueError(f"unknown transcript columns {columns[:6]} in {path}; known: "
                     + ", ".join(f"{s.name} ({', '.join(sorted(s.columns))})" for s in CSV_SCHEMAS))


def row_meta(schema: CsvSchema, row: dict[str, str], file_split: str | None) -> dict:
    """The labels one transcript row gives under its schema; ValueError for a valence that does not parse."""
    meta: dict = {"corpus": schema.name}
    if schema.emotion:
        raw = row[schema.emotion].strip()
        meta.update(label=schema.emotion_map.get(raw), source_label=raw)
    if schema.valence:
        raw = row[schema.valence].strip()
        if schema.valence_map and raw not in schema.valence_map:
            raise ValueError(f"{schema.valence} {raw!r} is none of {sorted(schema.valence_map)}")
        meta["valence"] = schema.valence_map[raw] if schema.valence_map else float(raw) / schema.valence_scale
    if schema.speaker:
        meta["speaker"] = row[schema.speaker].strip("[]'\" ")
    elif schema.name == "mosi":
        meta["speaker"] = row["id"].rsplit("_", 1)[0]  # the video id: one speaker per video
    split = SPLIT_NAMES.get(row[schema.split].strip().lower()) if schema.split else file_split
    return {**meta, **({"split": split} if split else {})}


def csv_items(path: Path, rel: Path) -> tuple[list[Item], list[dict]]:
    """One item per utterance of a transcript CSV, with the labels its schema gives, and a failure
    record per malformed row (naming its line), which is skipped."""
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        schema = csv_schema(header, path)
        rows = [(reader.line_num, fields) for fields in reader if fields]  # blank lines are no rows
    file_split = next((SPLIT_NAMES[w] for w in re.split(r"[_\W]+", path.stem.lower()) if w in SPLIT_NAMES), None)
    items: list[Item] = []
    failures: list[dict] = []
    for i, (line, fields) in enumerate(rows):
        source = f"{rel.as_posix()}#{i}"
        try:
            if len(fields) != len(header):
                raise ValueError(f"{len(fields)} fields where the header has {len(header)}")
            row = dict(zip(header, fields))
            items.append(Item(source, str(path), row_meta(schema, row, file_split), row[schema.text]))
        except ValueError as e:
            failures.append(_failure(Item(source, str(path), {}), ValueError(f"malformed row at line {line}: {e}")))
    return items, failures


# ---------------------------------------------------------------- planning

def find_inputs(kind: str, root: Path) -> tuple[list[Path], list[Path]]:
    """(the ``kind`` files under ``root``, the symbolic links there that are not followed), each sorted.

    The one place of the link rule: a link inside ``root`` is never followed, whether it points to a
    file or to a folder (inside ``root`` or out of it); it is listed when it is a folder link or has
    the kind's suffix. ``root`` itself is read even when it is a link: the user named it.
    """
    if root.is_file():
        return [root], []
    files: list[Path] = []
    links: list[Path] = []
    for folder, dirs, names in os.walk(root):  # does not descend into linked folders
        for p in (Path(folder, n) for n in dirs + names):
            matches = p.suffix.lower() in SUFFIXES[kind]
            if p.is_symlink():
                if matches or p.is_dir():
                    links.append(p)
            elif matches and p.is_file():
                files.append(p)
    return sorted(files), sorted(links)


def plan(kind: str, root: Path, clips_alone: bool = False) -> tuple[list[Unit], list[dict]]:
    """The shards to make, and failure records for inputs that could not even be listed (a symbolic
    link, a CSV that does not parse, a malformed transcript row); ``clips_alone``: no speaker sessions."""
    base = root.parent if root.is_file() else root
    files, links = find_inputs(kind, root)
    units: list[Unit] = []
    failures = [_failure(Item(p.relative_to(base).as_posix(), str(p), {}), ValueError(LINK_SKIPPED)) for p in links]
    if kind in ("video", "audio"):
        listed = extraction_meta(root) if kind == "audio" and (root / MANIFEST).is_file() else {}
        sessions: dict[str, list[Item]] = {}
        for p in files:
            rel = p.relative_to(base)
            item = Item(rel.as_posix(), str(p), listed.get(rel.as_posix()) or path_meta(rel))
            if kind == "audio" and item.meta.get("speaker") and not clips_alone:
                sessions.setdefault(item.meta["speaker"], []).append(item)
            else:
                units.append(Unit(rel.with_suffix(".npz").as_posix(), (item,)))
        for speaker, items in sorted(sessions.items()):
            units.append(Unit(f"sessions/{speaker}.npz", tuple(sorted(items, key=_session_order))))
        return units, failures
    groups: dict[str, list[Item]] = {}
    for p in files:
        rel = p.relative_to(base)
        if kind == "image":
            groups.setdefault(rel.parent.as_posix(), []).append(Item(rel.as_posix(), str(p), path_meta(rel)))
            continue
        try:
            groups[rel.with_suffix("").as_posix()], bad_rows = csv_items(p, rel)
        except (OSError, ValueError, csv.Error) as e:
            failures.append(_failure(Item(rel.as_posix(), str(p), {}), e))
            continue
        failures += bad_rows
    for name, items in groups.items():
        for c in range(0, len(items), CHUNK):
            units.append(Unit(f"{name}/{kind}_{c // CHUNK:04d}.npz", tuple(items[c:c + CHUNK])))
    return units, failures


def _session_order(item: Item) -> str:
    """A speaker's clips in a fixed order that mixes their labels (file names often sort by label)."""
    return hashlib.sha1(item.source.encode()).hexdigest()


# ---------------------------------------------------------------- per-input work (in the workers)

_worker: dict = {}  # this process's front-ends, made once by _init_worker


def _init_worker(kind: str, threads: int, live_seed: int | None = None) -> None:
    """Make this process's front-ends; ``threads``: its share of the cores for torch and OpenCV;
    ``live_seed``: audio heard under live conditions drawn with it (``extract``)."""
    _worker["kind"], _worker["live_seed"] = kind, live_seed
    import cv2
    import torch

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    if kind == "text":
        from realtime.frontends.text_frontend import TextFrontEnd

        _worker["text"] = TextFrontEnd()
    elif kind == "image":
        from realtime.frontends.face import PRESENCE, FaceFrontEnd

        _worker["face"] = FaceFrontEnd(still_images=True)
        _worker["presence"] = PRESENCE
    elif kind == "video":
        from realtime.nets.expression import ExpressionEncoder

        _worker["encoder"] = ExpressionEncoder()  # shared by the per-video landmarkers


def _audio_stream(path: str, required: bool = True, norm: VoiceNorm | None = None,
                  live: tuple[Conditions, np.random.Generator] | None = None) -> Stream:
    """Voice features on media time; a video without (decodable) sound gives none unless ``required``;
    ``norm``: the speaker session's running normalisation, else the clip's own; ``live``: the samples
    first go through these conditions (``offline.live_conditions.apply_conditions``)."""
    try:
        with FileAudioSource(path, start=0.0) as source:  # t0 of each chunk = media time
            chunks = list(source)
    except SourceError:
        if required:
            raise
        chunks = []
    if not chunks:
        if required:
            raise ValueError("no audio could be decoded")
        return np.zeros(0), np.zeros((0, VOICE_FEATURE_DIM), np.float32)
    samples = np.concatenate([c.samples for c in chunks])
    if live is not None:
        samples = apply_conditions(samples, *live)
    return voice_features(samples, SAMPLE_RATE, t0=chunks[0].t0, norm=norm)


def _visual_stream(path: str) -> Stream:
    """Face features on the visual grid of the video's media time: each step takes the newest
    frame at or before it (``face.Resampler``), so only the frames some step needs are run."""
    import av

    from realtime.frontends.face import PRESENCE, VISUAL_FEATURE_DIM, VISUAL_RATE_HZ, FaceFrontEnd, Resampler

    steps: list[tuple[float, np.ndarray]] = []
    resampler = Resampler(VISUAL_RATE_HZ)
    with av.open(path) as container, FaceFrontEnd(encoder=_worker["encoder"]) as face:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"

        def observe(frame, t: float) -> None:
            steps.extend(resampler.push(t, face.process(frame.to_ndarray(format="bgr24"), t).features))

        prev = None
        for i, frame in enumerate(container.decode(stream)):
            t = float(frame.time) if frame.time is not None else i / float(stream.average_rate or 30)
            if prev is not None and np.floor(t * VISUAL_RATE_HZ - 1e-9) >= np.ceil(prev[1] * VISUAL_RATE_HZ - 1e-9):
                observe(*prev)  # a grid step lies in [prev, t): prev is its newest frame
            prev = (frame, t)
        if prev is not None:
            observe(*prev)
    present = [(t, f) for t, f in steps if f[PRESENCE] > 0]
    return (np.array([t for t, _ in present], np.float64),
            np.array([f for _, f in present], np.float32).reshape(len(present), VISUAL_FEATURE_DIM))


def _image_stream(path: str) -> Stream:
    import cv2

    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("not a readable image")
    return np.zeros(1), _worker["face"].process_face_crop(image).features[None]


def _text_stream(text: str) -> Stream:
    return _worker["text"].transcript(tokenize(text))


def _streams(item: Item, norm: VoiceNorm | None,
             live: tuple[Conditions, np.random.Generator] | None = None) -> dict[str, Stream]:
    kind = _worker["kind"]
    if kind == "video":
        return {"visual": _visual_stream(item.path), "audio": _audio_stream(item.path, required=False)}
    if kind == "audio":
        return {"audio": _audio_stream(item.path, norm=norm, live=live)}
    if kind == "image":
        return {"visual": _image_stream(item.path)}
    return {"text": _text_stream(item.text or "")}


def _failure(item: Item, error: BaseException) -> dict:
    return {"source": item.source, "shard": None, "item": None, "status": "failed", "n_steps": {},
            **item.labels, "error": one_line(error)}


def _process(unit: Unit, out: Path) -> list[dict]:
    """Extract one unit's items and write its shard (when any item succeeded); its records."""
    kind = _worker["kind"]
    names = STREAMS_OF[kind]
    records: list[dict] = []
    gathered: dict[str, list[Stream]] = {s: [] for s in names}
    norm = VoiceNorm() if kind == "audio" else None  # one voice session per unit (a speaker's clips)
    seed = _worker.get("live_seed")
    for item in unit.items:
        live = None
        if kind == "audio" and seed is not None:
            rng = clip_rng(seed, item.source)
            live = (draw_conditions(rng), rng)
        try:
            streams = _streams(item, norm, live)
        except Exception as e:  # any unreadable input is recorded and skipped, never fatal
            records.append(_failure(item, e))
            continue
        for s in names:
            gathered[s].append(streams[s])
        n_steps = {s: len(streams[s][0]) for s in names}
        status = "no_face" if kind == "image" and not streams["visual"][1][0, _worker["presence"]] else "ok"
        records.append({"source": item.source, "shard": unit.shard, "item": len(gathered[names[0]]) - 1,
                        "status": status, "n_steps": n_steps, **item.labels,
                        **({"live_conditions": asdict(live[0])} if live else {})})
    if gathered[names[0]]:  # a shard keeps its failures' records too, so a rerun can rebuild the index
        _write_shard(out / SHARDS / unit.shard, gathered, records)
    return records


def _write_shard(path: Path, streams: dict[str, list[Stream]], records: list[dict]) -> None:
    arrays: dict[str, np.ndarray] = {"records": np.array(json.dumps(records))}
    for s, parts in streams.items():
        arrays[f"{s}_t"] = np.concatenate([t for t, _ in parts]).astype(np.float64)
        feats = [x for _, x in parts if len(x)]
        arrays[s] = np.concatenate(feats) if feats else np.zeros((0, 0), np.float32)
        arrays[f"{s}_offsets"] = np.cumsum([0] + [len(t) for t, _ in parts]).astype(np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


def _run_unit(args: tuple[Unit, Path]) -> tuple[Unit, list[dict]]:
    unit, out = args
    return unit, _process(unit, out)


def load_shard(path: str | Path) -> list[tuple[dict, dict[str, Stream]]]:
    """(index record, {stream: (times, features)}) per extracted item of a shard, in shard order."""
    with np.load(path) as z:
        records = [r for r in json.loads(str(z["records"])) if r["status"] != "failed"]
        names = [k[: -len("_offsets")] for k in z.files if k.endswith("_offsets")]
        data = {s: (z[f"{s}_t"], z[s], z[f"{s}_offsets"]) for s in names}
    return [(r, {s: (t[o[i]:o[i + 1]], x[o[i]:o[i + 1]]) for s, (t, x, o) in data.items()})
            for i, r in ((r["item"], r) for r in records)]


def _existing_records(path: Path) -> list[dict] | None:
    """The records of a complete shard, or None when there is none (or it cannot be read)."""
    if not path.is_file():
        return None
    try:
        with np.load(path) as z:
            return json.loads(str(z["records"]))
    except Exception:
        return None


# ---------------------------------------------------------------- the run

def _preflight(kind: str) -> None:
    """Fail once, before any worker starts, when a model the front-ends need is missing."""
    if kind in ("image", "video"):
        from realtime.nets.expression import ExpressionEncoder
        from realtime.frontends.face import LANDMARKER_PATH

        if not LANDMARKER_PATH.is_file():
            raise FileNotFoundError(f"face landmarker model missing at {LANDMARKER_PATH}")
        ExpressionEncoder()


def _check_spec(out: Path, kind: str) -> None:
    """Write the spec the features follow; refuse a DIR whose streams of ``kind`` were extracted under a
    different one (a change to another stream's features leaves a DIR of faces or words as it was)."""
    spec, path = FeatureSpec(), out / SPEC
    if path.is_file():
        try:
            recorded = FeatureSpec.from_dict(json.loads(path.read_text()))
            recorded.check_compatible(spec, windows=False, streams=STREAMS_OF[kind])
        except ValueError as e:
            raise ValueError(f"{out} holds features of another front-end ({e}): "
                             "delete it to extract them again") from None
        if recorded == spec:
            return
    write_text_atomic(path, json.dumps(spec.to_dict(), indent=1))


def front_end_models(kind: str) -> dict[str, str]:
    """{file name: sha256} of the shipped models whose outputs the features of ``kind`` hold."""
    return {name: sha256(shipped(f"models/{name}")) for name in MODELS_OF[kind]}


def _check_sessions(out: Path, clips_alone: bool) -> None:
    """Write how the voices of DIR are grouped into sessions; refuse a DIR grouped the other way."""
    path, chosen = out / SESSIONS, "clip" if clips_alone else "speaker"
    recorded = json.loads(path.read_text())["voice_sessions"] if path.is_file() else None
    if recorded is None and any((out / SHARDS).glob("**/*.npz")):
        recorded = "speaker" if (out / SHARDS / "sessions").is_dir() else "clip"  # made before this record
    if recorded is not None and recorded != chosen:
        raise ValueError(f"{out} holds voices extracted with one session per {recorded}: "
                         f"{'drop' if clips_alone else 'add'} --clips-alone, or choose another --out")
    if not path.is_file():
        write_text_atomic(path, json.dumps({"voice_sessions": chosen}))


def _check_live(out: Path, seed: int | None) -> None:
    """Write the live conditions' seed of DIR's voices (null: clean); refuse a DIR heard otherwise
    (one made before this record holds clean voices)."""
    path = out / LIVE
    if path.is_file():
        recorded = json.loads(path.read_text())["live_conditions_seed"]
    elif any((out / SHARDS).glob("**/*.npz")):
        recorded = None
    else:
        recorded = seed
    if recorded != seed:
        held = "clean voices" if recorded is None else f"voices heard under live conditions of seed {recorded}"
        fix = "drop --live-conditions" if recorded is None else f"pass --live-conditions {recorded}"
        raise ValueError(f"{out} holds {held}: {fix}, or choose another --out")
    if not path.is_file():
        write_text_atomic(path, json.dumps({"live_conditions_seed": seed}))


def _check_models(out: Path, kind: str) -> None:
    """Write the front-end models the features come out of; refuse a DIR made with other ones (or
    before they were recorded) when it holds shards."""
    models, path = front_end_models(kind), out / MODELS
    recorded = json.loads(path.read_text()) if path.is_file() else None
    if recorded is None and models and any((out / SHARDS).glob("**/*.npz")):
        raise ValueError(f"{out} holds features of unrecorded front-end models: delete it to extract them again")
    if recorded is not None and recorded != models:
        changed = sorted(k for k in models.keys() | recorded.keys() if models.get(k) != recorded.get(k))
        raise ValueError(f"{out} holds features of other front-end models ({', '.join(changed)}): delete it "
                         "to extract them again with the shipped ones")
    if recorded != models:
        write_text_atomic(path, json.dumps(models, indent=1))


def _results(units: list[Unit], out: Path, workers: int, kind: str,
             live_seed: int | None) -> Iterator[tuple[Unit, list[dict]]]:
    jobs = [(u, out) for u in units]
    threads = max(1, (os.cpu_count() or 1) // workers)
    if workers <= 1 or len(units) <= 1:
        _init_worker(kind, threads, live_seed)
        yield from map(_run_unit, jobs)
        return
    with interrupts_left_to_parent():
        pool = mp.get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(kind, threads, live_seed))
    with pool:
        yield from pool.imap_unordered(_run_unit, jobs)


def _source_order(record: dict) -> tuple[str, int]:
    path, _, row = record["source"].partition("#")
    return path, int(row or -1)


def extract(kind: str, root: Path, out: Path, workers: int, clips_alone: bool = False,
            live_seed: int | None = None) -> dict:
    """Run the extraction; the summary counts inputs (transcript rows for ``text``); ``clips_alone``
    (audio): each clip is a voice session of its own, not one per speaker; ``live_seed`` (audio): each
    clip heard under live conditions drawn with it and its name (``offline.live_conditions``)."""
    if not root.exists():
        raise FileNotFoundError(f"input {root} does not exist")
    _preflight(kind)
    out.mkdir(parents=True, exist_ok=True)
    _check_spec(out, kind)
    _check_models(out, kind)
    if kind == "audio":
        _check_sessions(out, clips_alone)
        _check_live(out, live_seed)
    elif live_seed is not None:
        raise ValueError(f"--live-conditions is for --kind audio, not {kind}")
    units, records = plan(kind, root, clips_alone)
    for r in records:
        print(f"extract: skipped {r['source']}: {r['error']}", file=sys.stderr)
    failed, processed, skipped = len(records), 0, 0
    todo = []
    for unit in units:
        existing = _existing_records(out / SHARDS / unit.shard)
        if existing is None:
            todo.append(unit)
        else:  # done by an earlier run, failures it recorded included
            records += existing
            skipped += len(unit.items)
    with tqdm(total=sum(len(u.items) for u in todo), desc=f"extract {kind}", unit=kind, file=sys.stderr,
              mininterval=2.0) as bar:
        for unit, unit_records in _results(todo, out, workers, kind, live_seed):
            for r in unit_records:
                if r["status"] == "failed":
                    failed += 1
                    tqdm.write(f"extract: skipped {r['source']}: {r['error']}", file=sys.stderr)
                else:
                    processed += 1
            records += unit_records
            bar.update(len(unit.items))
    write_text_atomic(out / INDEX, "".join(json.dumps(r) + "\n" for r in sorted(records, key=_source_order)))
    return {"processed": processed, "skipped_existing": skipped, "failed": failed, "out": str(out)}


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m realtime.extract", description=__doc__.split("\n\n")[0])
    p.add_argument("--kind", choices=KINDS, required=True,
                   help="the inputs: videos with sound, audio clips, face images or transcript CSVs")
    p.add_argument("--input", type=Path, required=True,
                   help="a file or a folder, searched recursively; symbolic links in it are skipped, not followed")
    p.add_argument("--out", type=Path, required=True,
                   help="output folder (shards/, index.jsonl, feature_spec.json); a rerun skips finished shards")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes")
    p.add_argument("--clips-alone", action="store_true",
                   help="audio: each clip is a voice session of its own (a cold start), not one per speaker")
    p.add_argument("--live-conditions", type=int, metavar="SEED",
                   help="audio: each clip heard first through a room, noise, a level and a codec drawn with "
                        "SEED (realtime.offline.live_conditions; index records say which)")
    p.add_argument("--native-logs", action="store_true",
                   help="let MediaPipe, TFLite and FFmpeg print their own log lines (silenced by default)")
    return p


def main(argv: list[str] | None = None) -> None:
    p = parser()
    args = p.parse_args(argv)
    if not args.native_logs:
        silence_native_stderr()
    try:
        summary = extract(args.kind, args.input, args.out, args.workers, args.clips_alone, args.live_conditions)
    except (FileNotFoundError, ValueError, SourceError) as e:
        p.exit(2, f"extract: {e}\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    run_cli(main)
