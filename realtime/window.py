"""The WindowAssembler: "the last ``window_s`` seconds at time t" -> fixed-shape arrays + masks.

The same code builds live windows (from ``Track``s) and training windows (from the arrays that
``realtime.extract`` writes), so the model sees identical tensors in both.

Time grid of a stream at rate r with N = window_s * r steps, window ending at ``t_end``:
step k covers (t_end - window_s + k/r, t_end - window_s + (k+1)/r] and its time is that bin's
centre. The step takes the sample nearest its centre (the newer one on a tie) when one lies within
``tolerance_steps`` steps of it (0.5 by default: the sample is in the step's own bin; a larger
value lets a sample fill a neighbouring empty step, absorbing jitter). Windows are causal: only samples at or before
``t_end`` count, so an offline window sees exactly what a live one could have seen then.
A step without a sample has mask False and zero features. Present steps are standardised with
the spec's statistics when it carries them.

Text: the most recent ``max_words`` words whose time lies in (t_end - text_window_s, t_end] (words
keep their meaning longer than a face or a voice keeps its expression), oldest
first and left-aligned (slot 0 is the oldest word, padding at the end), so a sentence's first
word sits at position 0 whether it came from a transcript (training) or the live ASR. A word's
features are the text front-end's (``realtime.frontends.text_frontend``), made once when its utterance came.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from realtime.core.feature_spec import STREAMS, FeatureSpec, Stream
from realtime.core.modalities import MODALITIES
from realtime.track import Track

_EPS = 1e-9  # seconds: timestamps this close count as equal (sample on a bin edge goes to the newer step)
_TRACK_SPAN = 2.0  # tracks hold this many windows of samples, so late data still finds its place


@dataclass(frozen=True)
class Window:
    """The features of the last ``window_s`` seconds at ``t_end``, with a presence mask per step."""

    t_end: float
    visual: np.ndarray  # (visual_steps, visual_dim) float32
    visual_mask: np.ndarray  # (visual_steps,) bool
    audio: np.ndarray  # (audio_steps, audio_dim) float32
    audio_mask: np.ndarray  # (audio_steps,) bool
    text: np.ndarray  # (max_words, text_dim) float32 word features, zero at empty slots
    text_mask: np.ndarray  # (max_words,) bool

    @property
    def modalities_present(self) -> tuple[str, ...]:
        """The modalities with at least one present step, in ``MODALITIES`` order."""
        return tuple(m for m in MODALITIES if getattr(self, f"{m}_mask").any())


class WindowAssembler:
    """Builds ``Window``s under one FeatureSpec, live (``from_tracks``) or offline (``from_streams``)."""

    def __init__(self, spec: FeatureSpec, tolerance_steps: float = 0.5) -> None:
        self.spec, self.tolerance_steps = spec, tolerance_steps

    def make_tracks(self) -> dict[str, Track]:
        """Empty tracks sized for this spec: each keeps ``_TRACK_SPAN`` windows of samples."""
        s = self.spec
        tracks = {m: Track((s.dim(m),), round(_TRACK_SPAN * s.steps(m)), np.float32, _TRACK_SPAN * self._look_back(m))
                  for m in STREAMS}
        tracks["text"] = Track((s.text_dim,), round(_TRACK_SPAN * s.max_words), np.float32,
                               _TRACK_SPAN * self._look_back("text"))
        return tracks

    def _look_back(self, m: str) -> float:
        """Seconds a window of stream ``m`` covers."""
        return self.spec.text_window_s if m == "text" else self.spec.window_s

    def from_tracks(self, t_end: float, tracks: Mapping[str, Track]) -> Window:
        """The live window ending at ``t_end``; a modality without a track is absent."""
        slack = self.tolerance_steps / min(map(self.spec.rate_hz, STREAMS))
        return self.from_streams(t_end, {m: tr.slice(t_end - self._look_back(m) - slack, t_end)
                                         for m, tr in tracks.items()})

    def from_streams(self, t_end: float, streams: Mapping[str, Stream]) -> Window:
        """The window ending at ``t_end`` from whole recorded streams (any that are missing are absent)."""
        arrays: dict[str, np.ndarray] = {}
        for m in STREAMS:
            arrays[m], arrays[f"{m}_mask"] = self._grid(m, t_end, streams.get(m))
        arrays["text"], arrays["text_mask"] = self._words(t_end, streams.get("text"))
        return Window(t_end=t_end, **arrays)

    def _grid(self, m: str, t_end: float, stream: Stream | None) -> tuple[np.ndarray, np.ndarray]:
        s = self.spec
        n, step = s.steps(m), 1.0 / s.rate_hz(m)
        x = np.zeros((n, s.dim(m)), dtype=np.float32)
        mask = np.zeros(n, dtype=bool)
        if stream is None:
            return x, mask
        ts, feats = stream
        causal = int(np.searchsorted(ts, t_end, side="right"))
        ts, feats = ts[:causal], feats[:causal]
        if len(ts) == 0:
            return x, mask
        centres = t_end - s.window_s + (np.arange(n) + 0.5) * step  # (n,)
        right = np.searchsorted(ts, centres).clip(max=len(ts) - 1)  # (n,) first sample >= centre
        left = (right - 1).clip(min=0)
        nearest = np.where(np.abs(ts[left] - centres) < np.abs(ts[right] - centres) - _EPS, left, right)
        offset = ts[nearest] - centres  # (n,)
        reach = self.tolerance_steps * step
        mask = (offset > -reach + _EPS) & (offset <= reach + _EPS)  # (-reach, reach]: an edge belongs to one bin
        x[mask] = feats[nearest[mask]]
        norm = s.norm(m)
        if norm is not None:
            x[mask] = norm.apply(x[mask])
        return x, mask

    def _words(self, t_end: float, stream: Stream | None) -> tuple[np.ndarray, np.ndarray]:
        s = self.spec
        x = np.zeros((s.max_words, s.text_dim), dtype=np.float32)
        mask = np.zeros(s.max_words, dtype=bool)
        if stream is None:
            return x, mask
        ts, words = stream
        a = int(np.searchsorted(ts, t_end - s.text_window_s, side="right"))
        b = int(np.searchsorted(ts, t_end, side="right"))
        recent = words[max(a, b - s.max_words):b]  # (k, text_dim), oldest first
        x[: len(recent)], mask[: len(recent)] = recent, True
        return x, mask

    def window_ends(self, t_first: float, t_last: float) -> np.ndarray:
        """Training window ends for a recording spanning [t_first, t_last], oldest first: every
        ``hop_s`` back from its last sample while still after ``t_first`` (at least one)."""
        n = max(1, int(np.ceil((t_last - t_first) / self.spec.hop_s - 1e-9)))
        return t_last - self.spec.hop_s * np.arange(n)[::-1]

    def recording_windows(self, streams: Mapping[str, Stream]) -> Iterator[Window]:
        """Every training window of one recorded input (the streams ``realtime.extract`` wrote)."""
        times = [ts for ts, _ in streams.values() if len(ts)]
        if not times:
            return
        t_first, t_last = min(float(t[0]) for t in times), max(float(t[-1]) for t in times)
        for t_end in self.window_ends(t_first, t_last):
            yield self.from_streams(float(t_end), streams)
