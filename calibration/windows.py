"""Sets of real windows for calibration and parity, read from wherever windows can come from.

A ``WindowSet`` is a batch of windows in the engine's input layout (``realtime.engines.base.window_batch``)
plus, per window, a label (index into the spec's labels, -1 = unknown) and the kind of source it
came from. ``read_windows`` accepts:

- saved windows: ``DIR/windows_NNNNN.npz`` as ``main.py --save-windows DIR`` writes them (or as
  ``WindowSet.save`` writes them, with a ``labels`` array added), or one such file;
- an extraction: a folder written by ``python -m realtime.extract`` (it holds ``index.jsonl``), or
  a folder of such folders (the recipe's, ``~/.cache/dmd-realtime/default/extract``, holds ravdess, fer2013, text, ...);
- clips: a video or audio file, or a folder of them; they are extracted once with
  ``realtime.extract`` into ``~/.cache/dmd-realtime/extract_cache/`` and read as an extraction.

An extraction gives one window per item, built with the app's ``WindowAssembler``: a voice clip's
window ends at its last frame, an utterance's at its last word, a face still (FER2013) fills the
whole visual window, a video gives every window along it. Where faces, voices and words carry the
same labels, ``fused`` windows pair one of each per label (as training does, since no data set
has all three of one moment), so the crossmodal paths are exercised too.

``part`` picks the half of labelled data: ``heldout`` (split ``test``, RAVDESS actors 21-24: what
the parity gates compare on) or ``calibration`` (split ``train``, RAVDESS actors 1-20: what INT8
ranges are fitted on); items without a split (clips, saved windows) belong to both.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from realtime.core.backends import INPUTS
from realtime.core.feature_spec import SPEC_VERSION, FeatureSpec
from realtime.core.modalities import MODALITIES
from realtime.core.resources import cache_dir, shipped
from realtime.engines.base import window_batch
from realtime.extract import INDEX, SUFFIXES, extract, front_end_models
from realtime.offline.datasets import SOURCES, TEST_ACTORS, actor_of
from realtime.window import Window, WindowAssembler

DEFAULT_EXTRACTION = cache_dir("default") / "extract"
DEMO_CLIP = shipped("media/demo.mp4")
CLIP_CACHE = cache_dir("extract_cache")
PARTS = ("heldout", "calibration")
SEED = 0


@dataclass
class WindowSet:
    """N windows: ``arrays`` maps each of ``INPUTS`` to (N, ...); labels (N,); kinds (N,) str."""

    arrays: dict[str, np.ndarray]
    labels: np.ndarray  # (N,) int64, -1 = unknown
    kinds: np.ndarray  # (N,) str: face | voice | words | fused | clip | saved
    origin: str  # where the set was read from, for reports

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, keep: np.ndarray) -> WindowSet:
        return WindowSet({k: v[keep] for k, v in self.arrays.items()}, self.labels[keep], self.kinds[keep],
                         self.origin)

    def batches(self, size: int) -> Iterator[dict[str, np.ndarray]]:
        """The engine's named inputs, ``size`` windows at a time, in order."""
        for i in range(0, len(self), size):
            yield {k: np.ascontiguousarray(v[i:i + size]) for k, v in self.arrays.items()}

    def present(self) -> np.ndarray:
        """(N, 3) bool: which of ``MODALITIES`` each window has at least one step of."""
        return np.stack([self.arrays[f"{m}_mask"].any(axis=1) for m in MODALITIES], axis=1)

    def save(self, directory: Path, per_file: int = 256) -> list[Path]:
        """Write ``windows_NNNNN.npz`` files in the ``--save-windows`` format, plus labels and kinds."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for n, i in enumerate(range(0, len(self), per_file)):
            part = slice(i, i + per_file)
            path = directory / f"windows_{n:05d}.npz"
            np.savez(path, **{k: v[part] for k, v in self.arrays.items()}, t_end=np.zeros(len(self.labels[part])),
                     labels=self.labels[part], kinds=self.kinds[part].astype(str))
            paths.append(path)
        return paths


def concat(sets: list[WindowSet], origin: str) -> WindowSet:
    if not sets or not sum(map(len, sets)):
        raise ValueError(f"no windows found in {origin}")
    sets = [s for s in sets if len(s)]
    return WindowSet({k: np.concatenate([s.arrays[k] for s in sets]) for k in INPUTS},
                     np.concatenate([s.labels for s in sets]), np.concatenate([s.kinds for s in sets]), origin)


def from_windows(windows: list[Window], labels: list[int], kind: str, origin: str) -> WindowSet:
    arrays = window_batch(windows) if windows else {}
    return WindowSet(arrays, np.array(labels, np.int64), np.full(len(windows), kind, dtype=object), origin)


# ---------------------------------------------------------------- saved windows

def read_saved(paths: list[Path], origin: str) -> WindowSet:
    """Windows from ``windows_NNNNN.npz`` files (labels -1 unless the file carries them)."""
    sets = []
    for path in paths:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in INPUTS if k not in z.files]
            if missing:
                raise ValueError(f"{path}: not a saved-windows file (missing {', '.join(missing)})")
            arrays = {k: z[k] for k in INPUTS}
            n = len(arrays["visual"])
            labels = z["labels"] if "labels" in z.files else np.full(n, -1, np.int64)
            kinds = z["kinds"].astype(object) if "kinds" in z.files else np.full(n, "saved", dtype=object)
        sets.append(WindowSet(arrays, labels.astype(np.int64), kinds, origin))
    return concat(sets, origin)


# ---------------------------------------------------------------- extractions

def _in_part(record: dict, part: str) -> bool:
    split, speaker = record.get("split"), record.get("speaker") or ""
    if speaker.startswith("ravdess_"):
        return (actor_of(speaker) in TEST_ACTORS) == (part == "heldout")
    if split is None:
        return True
    return split == ("test" if part == "heldout" else "train")


def _still_stream(spec: FeatureSpec, t_end: float, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A face still as a visual stream: the same features at every visual step of the window ending at t_end."""
    n, step = spec.visual_steps, 1.0 / spec.visual_rate_hz
    times = t_end - spec.window_s + (np.arange(n) + 0.5) * step  # (n,) step centres
    return times, np.repeat(features[:1], n, axis=0)


def _item_windows(assembler: WindowAssembler, streams: dict) -> tuple[str, list[Window]]:
    """(kind, windows) of one extracted item."""
    spec = assembler.spec
    if set(streams) == {"visual"}:
        return "face", [assembler.from_streams(0.0, {"visual": _still_stream(spec, 0.0, streams["visual"][1])})]
    if set(streams) in ({"audio"}, {"text"}):
        (name, (ts, _)), = streams.items()
        if not len(ts):
            return "", []
        return {"audio": "voice", "text": "words"}[name], [assembler.from_streams(float(ts[-1]), streams)]
    return "clip", list(assembler.recording_windows(streams))


def read_extraction(directory: Path, spec: FeatureSpec, part: str, limit: int | None) -> WindowSet:
    """One window per item of the ``part`` (a video: all of its windows), at most ``limit`` items
    drawn at random (seeded) across the whole index, so every label and speaker can appear."""
    from realtime.extract import SHARDS, SPEC, load_shard

    index = [json.loads(line) for line in (directory / INDEX).read_text().splitlines() if line.strip()]
    chosen = [r for r in index if r["status"] != "failed" and _in_part(r, part)]
    spec_file = directory / SPEC
    if spec_file.is_file():  # only the streams read here must agree
        streams = tuple(sorted({s for r in chosen for s in r.get("n_steps", {})}))
        FeatureSpec.from_dict(json.loads(spec_file.read_text())).check_compatible(spec, windows=False, streams=streams)
    if limit is not None and len(chosen) > limit:
        keep = np.sort(np.random.default_rng(SEED).choice(len(chosen), limit, replace=False))
        chosen = [chosen[i] for i in keep]
    wanted = {(r["shard"], r["item"]) for r in chosen}
    assembler = WindowAssembler(spec)
    by_kind: dict[str, tuple[list[Window], list[int]]] = {}
    for shard in sorted({s for s, _ in wanted}):
        for record, streams in load_shard(directory / SHARDS / shard):
            if (shard, record["item"]) not in wanted:
                continue
            kind, windows = _item_windows(assembler, streams)
            label = spec.labels.index(record["label"]) if record.get("label") in spec.labels else -1
            ws, ls = by_kind.setdefault(kind, ([], []))
            ws += windows
            ls += [label] * len(windows)
    return concat([from_windows(ws, ls, kind, str(directory)) for kind, (ws, ls) in by_kind.items()],
                  str(directory))


def fuse(single: WindowSet, limit: int | None) -> WindowSet | None:
    """Label-paired windows: the k-th face, voice and utterance of each label in one window (None
    when some modality has no labelled window)."""
    parts = {"visual": "face", "audio": "voice", "text": "words"}
    pools = {m: single.select((single.kinds == kind) & (single.labels >= 0)) for m, kind in parts.items()}
    if any(not len(p) for p in pools.values()):
        return None
    picks: dict[str, list[int]] = {m: [] for m in parts}
    labels: list[int] = []
    for label in np.unique(pools["visual"].labels):
        idx = {m: np.flatnonzero(p.labels == label) for m, p in pools.items()}
        n = min(len(i) for i in idx.values())
        for m in parts:
            picks[m] += idx[m][:n].tolist()
        labels += [int(label)] * n
    order = np.random.default_rng(SEED).permutation(len(labels))[:limit]
    arrays = {}
    for m in parts:
        for key in (m, f"{m}_mask"):
            arrays[key] = pools[m].arrays[key][np.array(picks[m], np.int64)[order]]
    return WindowSet(arrays, np.array(labels, np.int64)[order], np.full(len(order), "fused", dtype=object),
                     single.origin)


def read_extractions(directories: list[Path], spec: FeatureSpec, part: str, limit: int | None,
                     origin: str) -> WindowSet:
    """Several extractions' windows, plus ``fused`` ones (at most ``limit`` per extraction and fused)."""
    single = concat([read_extraction(d, spec, part, limit) for d in directories], origin)
    fused = fuse(single, limit)
    return single if fused is None else concat([single, fused], origin)


# ---------------------------------------------------------------- clips

def clip_extraction(source: Path) -> Path:
    """Extract a clip or a folder of clips once (cached by path, size, modification time, the
    FeatureSpec version and the front-end models)."""
    files = sorted(p for p in ([source] if source.is_file() else source.rglob("*")) if p.is_file())
    kinds = {k for p in files for k in ("video", "audio") if p.suffix.lower() in SUFFIXES[k]}
    if not kinds:
        raise ValueError(f"{source}: no video ({', '.join(SUFFIXES['video'])}) or audio "
                         f"({', '.join(SUFFIXES['audio'])}) clips")
    if len(kinds) > 1:
        raise ValueError(f"{source}: holds both video and audio clips; give one kind per folder")
    kind = kinds.pop()
    models = [f"{name}:{digest}" for name, digest in sorted(front_end_models(kind).items())]
    stamp = "|".join([f"spec {SPEC_VERSION}", *models,
                      *(f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)])
    out = CLIP_CACHE / f"{source.stem}-{hashlib.sha256(stamp.encode()).hexdigest()[:12]}"
    if not (out / INDEX).is_file():
        extract(kind, source, out, workers=1)
    return out


# ---------------------------------------------------------------- dispatch

def default_source() -> Path:
    """The shared data's extraction when this machine has its faces, voices and words (the recipe's
    three sets: windows of every modality), else the bundled demo clip. An extraction of some sets only
    (the speech corpora, say) would calibrate and gate the export on part of the model."""
    complete = all((DEFAULT_EXTRACTION / name / INDEX).is_file() for name in SOURCES)
    return DEFAULT_EXTRACTION if complete else DEMO_CLIP


def check_shapes(windows: WindowSet, spec: FeatureSpec) -> WindowSet:
    """``windows`` when their arrays have the spec's window shapes, else ValueError naming the first that differs."""
    want = {"visual": (spec.visual_steps, spec.visual_dim), "audio": (spec.audio_steps, spec.audio_dim),
            "text": (spec.max_words, spec.text_dim)}
    want |= {f"{m}_mask": shape[:1] for m, shape in want.items()}
    for name, shape in want.items():
        if windows.arrays[name].shape[1:] != shape:
            raise ValueError(f"{windows.origin}: {name} windows are {windows.arrays[name].shape[1:]}, the model's "
                             f"FeatureSpec makes {shape}")
    return windows


def read_windows(source: Path | str | None, spec: FeatureSpec | None, part: str = "heldout",
                 limit: int | None = 200) -> WindowSet:
    """The windows of ``source`` (see the module docstring; None: ``default_source()``); ``limit``
    caps the items drawn from each extraction (saved windows are all read). ``spec`` builds the
    windows of extractions and clips and checks the shapes of saved ones (None: saved only)."""
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, not {part!r}")
    source = default_source() if source is None else Path(source)
    if not source.exists():
        raise FileNotFoundError(f"window source {source} does not exist")
    saved = [source] if source.is_file() and source.suffix == ".npz" else sorted(source.glob("windows_*.npz"))
    if saved:
        windows = read_saved(saved, str(source))
        return windows if spec is None else check_shapes(windows, spec)
    if spec is None:
        raise ValueError(f"{source}: not saved windows, and no FeatureSpec given to build windows with")
    if source.is_dir() and (source / INDEX).is_file():
        return read_extractions([source], spec, part, limit, str(source))
    if source.is_dir() and (found := sorted(p.parent for p in source.glob(f"*/{INDEX}"))):
        return read_extractions(found, spec, part, limit, str(source))
    return read_extractions([clip_extraction(source)], spec, part, limit, str(source))
