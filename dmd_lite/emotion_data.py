"""Real emotion data for the default model: per-modality pools of windows built from what
``realtime.extract`` wrote, and label-paired triplets drawn from them.

No data set here has face, voice and words of the same moment, so a training sample pairs a
face, a voice clip and an utterance that carry the same label (drawn from different people), and
each modality is dropped at random so that the model works with any subset. The windows come
from the same ``WindowAssembler`` the live app uses:
- face: a FER2013 still, repeated over the visual window with jitter (feature noise, dropped
  frames, a face that appears part-way through, another expression passing over part of the
  window), standing in for a few seconds of video;
- voice: RAVDESS clips (and, for the default recipe, the validation speakers of the other speech
  corpora), windows ending every hop along the clip (training) or at its end (test);
- words: MELD utterances timed at a speaking rate, the window ending at the last word.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from realtime.core.feature_spec import LABEL_VALENCE, LABELS, FeatureSpec
from realtime.extract import INDEX, SHARDS, load_shard
from realtime.window import Stream, WindowAssembler


@dataclass
class Pool:
    """Windows of one modality, with labels (index into the spec's labels, -1 = none)."""

    x: np.ndarray  # face: (N, visual_dim) one still each; voice: (N, steps, dim); words: (N, words, text_dim)
    mask: np.ndarray  # (N, steps) bool; faces: (N, 1)
    labels: np.ndarray  # (N,) int64
    valence: np.ndarray  # (N,) float32 in [-1, 1], NaN = unknown
    groups: np.ndarray  # (N,) str: speaker or corpus, for splits and reports
    reliability: np.ndarray | None = None  # (N,) float32: encoded voices, the voice encoder's reliability

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, keep: np.ndarray) -> Pool:
        return Pool(self.x[keep], self.mask[keep], self.labels[keep], self.valence[keep], self.groups[keep],
                    None if self.reliability is None else self.reliability[keep])


def records(extraction: Path, accept: Callable[[dict], bool]) -> Iterator[tuple[dict, dict[str, Stream]]]:
    """(index record, streams) of every extracted item that ``accept`` takes, shard by shard."""
    index = [json.loads(line) for line in (extraction / INDEX).read_text().splitlines() if line.strip()]
    wanted = {r["shard"] for r in index if r["status"] != "failed" and accept(r)}
    for shard in sorted(wanted):
        for record, streams in load_shard(extraction / SHARDS / shard):
            if accept(record):
                yield record, streams


def concat_pools(pools: dict[str, Pool]) -> Pool:
    """One pool of several sources' windows (raw, not encoded); ``groups`` holds each window's source name."""
    return Pool(*(np.concatenate([getattr(p, f) for p in pools.values()]) for f in ("x", "mask", "labels", "valence")),
                np.concatenate([np.full(len(p), name) for name, p in pools.items()]))


def _label_index(spec: FeatureSpec, label: str | None) -> int:
    return spec.labels.index(label) if label in spec.labels else -1


def _valence(record: dict) -> float:
    v = record.get("valence")
    return float("nan") if v is None else float(v)


def face_pool(extraction: Path, split: str, spec: FeatureSpec) -> Pool:
    """One feature vector per face image of ``split`` (where MediaPipe found no face, the expression
    CNN's part alone: see ``realtime.extract``)."""
    xs, labels, groups = [], [], []
    for r, streams in records(extraction, lambda r: r.get("split") == split and r["status"] != "failed"):
        _, feats = streams["visual"]
        xs.append(feats[0])
        labels.append(_label_index(spec, r["label"]))
        groups.append("fer2013")
    n = len(xs)
    return Pool(np.stack(xs).astype(np.float32), np.ones((n, 1), bool), np.array(labels, np.int64),
                np.full(n, np.nan, np.float32), np.array(groups))


def sequence_pool(extraction: Path, stream: str, accept: Callable[[dict], bool], spec: FeatureSpec,
                  every_hop: bool, last: int | None = None) -> Pool:
    """Windows of a timed stream (audio or text): the one ending at the last sample of each item,
    or (``every_hop``) one every hop back along it, as training windows are taken (with ``last``,
    only the ``last`` latest of those)."""
    assembler = WindowAssembler(spec)
    xs, masks, labels, valence, groups = [], [], [], [], []
    for r, streams in records(extraction, accept):
        if stream not in streams or not len(streams[stream][0]):
            continue
        ts = streams[stream][0]
        ends = assembler.window_ends(float(ts[0]), float(ts[-1])) if every_hop else [float(ts[-1])]
        ends = ends[-last:] if last else ends
        for t_end in ends:
            w = assembler.from_streams(float(t_end), {stream: streams[stream]})
            xs.append(getattr(w, stream))
            masks.append(getattr(w, f"{stream}_mask"))
            labels.append(_label_index(spec, r["label"]))
            valence.append(_valence(r))
            groups.append(r.get("speaker") or r.get("corpus") or "")
    return Pool(np.stack(xs), np.stack(masks), np.array(labels, np.int64),
                np.array(valence, np.float32), np.array(groups))


@dataclass(frozen=True)
class Jitter:
    """How a still face becomes a few seconds of 'video' (values measured on live webcam runs
    would be better; these are deliberately generous)."""

    noise: float = 0.05  # feature noise, in units of each feature's spread over the pool
    drop: float = 0.1  # probability that a frame gives no face
    late_start: float = 0.3  # probability that the face appears part-way through the window
    passing: float = 0.3  # probability that another expression shows for up to a third of the window


def face_windows(stills: np.ndarray, steps: int, rng: np.random.Generator, spread: np.ndarray,
                 jitter: Jitter | None, passers: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(B, dim) stills -> visual windows (B, steps, dim) and masks (B, steps). With jitter, ``passers``
    (B, dim) are the passing expressions: each shows, with probability ``jitter.passing``, over a
    random span of 1 to steps // 3 steps, and the window keeps its still's label (a face that holds
    an expression counts more than one that crosses it)."""
    B = len(stills)
    x = np.repeat(stills[:, None, :], steps, axis=1)
    mask = np.ones((B, steps), bool)
    if jitter is not None:
        if passers is not None:
            span = np.where(rng.random(B) < jitter.passing, rng.integers(1, steps // 3 + 1, B), 0)
            x = pass_over(x, passers, rng.integers(0, steps - span + 1), span)
        x = x + rng.standard_normal(x.shape).astype(np.float32) * (jitter.noise * spread)
        mask &= rng.random((B, steps)) >= jitter.drop
        late = rng.random(B) < jitter.late_start
        first = rng.integers(0, steps - steps // 4, B)  # the face shows for at least a quarter
        mask &= ~(late[:, None] & (np.arange(steps)[None, :] < first[:, None]))
    return np.where(mask[..., None], x, 0).astype(np.float32), mask


def pass_over(windows: np.ndarray, passers: np.ndarray, start: np.ndarray, span: np.ndarray) -> np.ndarray:
    """Visual windows (B, steps, dim) with ``passers`` (B, dim) in steps [start, start + span) of each."""
    t = np.arange(windows.shape[1])[None, :]
    over = (t >= start[:, None]) & (t < (start + span)[:, None])
    return np.where(over[..., None], passers[:, None, :], windows)


@dataclass
class Triplets:
    """A batch of paired windows: per modality the arrays, masks (B, steps) and the target."""

    visual: np.ndarray
    visual_mask: np.ndarray
    audio: np.ndarray
    audio_mask: np.ndarray
    text: np.ndarray
    text_mask: np.ndarray
    labels: np.ndarray  # (B,) int64
    valence: np.ndarray  # (B,) float32 target (``valence_targets``)
    voice_reliability: np.ndarray | None = None  # (B,) float32 where the voices' is known (0 without voice)


def draw_triplets(pools: dict[str, Pool], labels: np.ndarray, present: np.ndarray, rng: np.random.Generator,
                  face_spread: np.ndarray, visual_steps: int, jitter: Jitter | None,
                  by_label: dict[str, list[np.ndarray]]) -> Triplets:
    """One sample per label in ``labels``: a face, a voice window and an utterance of that label
    (random members of the pools), with modality m present where ``present[:, k]`` (k in visual,
    audio, text order). ``by_label[m][c]`` lists the pool indices of label c."""
    picks = paired_picks(by_label, labels, rng)
    faces = pools["visual"].x
    visual, visual_mask = face_windows(faces[picks["visual"]], visual_steps, rng, face_spread, jitter,
                                       faces[rng.integers(0, len(faces), len(labels))])
    out = {"visual": visual, "visual_mask": visual_mask}
    for m in ("audio", "text"):
        out[m] = pools[m].x[picks[m]].copy()
        out[f"{m}_mask"] = pools[m].mask[picks[m]].copy()
    for k, m in enumerate(("visual", "audio", "text")):
        out[f"{m}_mask"] &= present[:, k:k + 1]
        out[m][~out[f"{m}_mask"]] = 0
    sentiment = np.where(present[:, 2], pools["text"].valence[picks["text"]], np.nan)
    reliability = pools["audio"].reliability
    if reliability is not None:
        reliability = np.where(present[:, 1], reliability[picks["audio"]], 0.0).astype(np.float32)
    return Triplets(**out, labels=labels.astype(np.int64), valence=valence_targets(labels, sentiment),
                    voice_reliability=reliability)


def valence_targets(labels: np.ndarray, sentiment: np.ndarray) -> np.ndarray:
    """(B,) float32 valence targets: the words' sentiment where it is given (not NaN), else the
    label's ``LABEL_VALENCE``; labels index ``LABELS`` (-1, unknown, gets NaN)."""
    table = np.array([LABEL_VALENCE[name] for name in LABELS] + [np.nan], np.float32)
    return np.where(np.isnan(sentiment), table[labels], sentiment).astype(np.float32)


def paired_picks(by_label: dict[str, list[np.ndarray]], labels: np.ndarray,
                 rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per modality, a random pool index of each label in ``labels`` (visual, then audio, then text)."""
    return {m: np.array([rng.choice(by_label[m][c]) for c in labels]) for m in ("visual", "audio", "text")}


def index_by_label(pool: Pool, n_labels: int, required: Sequence[int] | None = None) -> list[np.ndarray]:
    """Pool indices of each label; raises when a ``required`` label (default: every one) has no sample."""
    idx = [np.flatnonzero(pool.labels == c) for c in range(n_labels)]
    need = range(n_labels) if required is None else required
    if missing := [c for c in need if not len(idx[c])]:
        raise ValueError(f"labels {missing} have no sample in this pool; every label needs one to pair")
    return idx
