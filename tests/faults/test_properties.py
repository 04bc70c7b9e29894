"""Property tests: the window assembler and the event log keep their contracts for any input.

Timestamps are any floats (negative, huge, equal, NaN, infinite), pushed in any order, with gaps
and duplicates; event values are any floats (NaN, infinities, extremes) and any unicode text.
"""

from __future__ import annotations

import json
import math

import numpy as np
from hypothesis import given, settings, strategies as st

from realtime.core.feature_spec import STREAMS, FeatureSpec, NormStats
from realtime.core.modalities import MODALITIES
from realtime.outputs.events import EventLog
from realtime.window import Window, WindowAssembler

SMALL = FeatureSpec(visual_rate_hz=5.0, audio_rate_hz=10.0, visual_dim=3, audio_dim=2, text_dim=4, max_words=3,
                    window_s=2.0, text_window_s=3.0, visual_norm=NormStats((1.0, -2.0, 0.5), (2.0, 0.5, 1.0)))
SPECS = st.sampled_from([FeatureSpec(), SMALL])
SETTINGS = settings(max_examples=60, deadline=None)
T_ENDS = st.one_of(st.sampled_from([0.0, -7.25, 1.7e9, 2.0**53, 1e300, -1e300]), st.floats(-1e6, 1e6), st.floats())


@st.composite
def times(draw: st.DrawFn, t_end: float) -> list[float]:
    """Sample times in delivery order: mostly near ``t_end``, some anywhere (NaN and infinities
    included), with repeats of earlier times."""
    near = st.floats(-15.0, 2.0).map(lambda dt: t_end + dt)
    ts = draw(st.lists(st.one_of(near, near, near, st.floats()), max_size=40))
    return ts + draw(st.lists(st.sampled_from(ts), max_size=8)) if ts else ts


def dim(spec: FeatureSpec, m: str) -> int:
    """Features per step (per word for text)."""
    return spec.text_dim if m == "text" else spec.dim(m)


def feature(spec: FeatureSpec, m: str, i: int) -> np.ndarray:
    """Sample ``i``'s features: every value ``i + 1``, so a window's row names the sample it took
    (``i``: order of delivery to a track, or place in a sorted stream)."""
    return np.full(dim(spec, m), i + 1, np.float32)


def check_invariants(w: Window, spec: FeatureSpec) -> None:
    """Shapes and dtypes from the spec, 0/1 masks, zeros where masked out, finite values; text left-aligned."""
    sizes = {"visual": spec.visual_steps, "audio": spec.audio_steps, "text": spec.max_words}
    for m in MODALITIES:
        x, mask = getattr(w, m), getattr(w, f"{m}_mask")
        assert x.shape == (sizes[m], dim(spec, m)) and x.dtype == np.float32
        assert mask.shape == (sizes[m],) and mask.dtype == bool
        assert np.isfinite(x).all()
        assert not x[~mask].any()
    assert w.text_mask[: w.text_mask.sum()].all()  # present slots come first
    assert w.modalities_present == tuple(m for m in MODALITIES if getattr(w, f"{m}_mask").any())
    if not math.isfinite(w.t_end):
        assert w.modalities_present == ()


@SETTINGS
@given(spec=SPECS, data=st.data(), t_end=T_ENDS)
def test_live_windows_keep_their_contract_for_any_timestamps(spec: FeatureSpec, data: st.DataObject,
                                                             t_end: float) -> None:
    asm = WindowAssembler(spec)
    tracks = asm.make_tracks()
    for m in MODALITIES:
        for i, t in enumerate(data.draw(times(t_end), label=m)):
            tracks[m].push(t, feature(spec, m, i))
    live = asm.from_tracks(t_end, tracks)
    check_invariants(live, spec)
    if abs(t_end) <= 1e9:  # where a float resolves the steps: the live window is the offline one of the same samples
        offline = asm.from_streams(t_end, {m: tr.slice(-math.inf, math.inf) for m, tr in tracks.items()})
        for name in ("visual", "visual_mask", "audio", "audio_mask", "text", "text_mask"):
            np.testing.assert_array_equal(getattr(live, name), getattr(offline, name), err_msg=name)


@SETTINGS
@given(data=st.data(), t_end=T_ENDS, tolerance=st.sampled_from([0.5, 1.0, 1.5]))
def test_offline_windows_take_only_samples_they_may_see(data: st.DataObject, t_end: float, tolerance: float) -> None:
    spec = FeatureSpec()  # no statistics: a present row is its sample's features
    streams = {}
    for m in MODALITIES:
        ts = np.sort([t for t in data.draw(times(t_end), label=m) if math.isfinite(t)])
        streams[m] = ts, np.array([feature(spec, m, i) for i in range(len(ts))]).reshape(len(ts), dim(spec, m))
    w = WindowAssembler(spec, tolerance).from_streams(t_end, streams)
    check_invariants(w, spec)
    for m in STREAMS:
        mask, step = getattr(w, f"{m}_mask"), 1.0 / spec.rate_hz(m)
        taken = streams[m][0][getattr(w, m)[mask, 0].astype(int) - 1]  # the time of each present step's sample
        centres = t_end - spec.window_s + (np.flatnonzero(mask) + 0.5) * step
        assert np.all(taken <= t_end)  # causal
        assert np.all(np.abs(taken - centres) <= tolerance * step + 1e-9 + 8 * math.ulp(t_end))  # within reach
    ts = streams["text"][0]
    recent = np.flatnonzero((ts > t_end - spec.text_window_s) & (ts <= t_end))[-spec.max_words:]
    assert w.text_mask.sum() == len(recent)
    np.testing.assert_array_equal(w.text[: len(recent), 0], streams["text"][1][recent, 0])  # oldest first


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text()),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.tuples(inner, inner),
                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20)
LABELS = st.one_of(st.text(), st.sampled_from(["행복", "😀 surprised", "a\nb", "line\u2028sep", '"}{', "\x00"]))


@settings(max_examples=150, deadline=None)
@given(events=st.lists(st.fixed_dictionaries({"label": LABELS, "probabilities": st.dictionaries(LABELS, st.floats()),
                                              "valence": st.floats(), "extra": JSON_VALUES}), max_size=5))
def test_event_log_writes_one_strict_json_line_per_event(tmp_path_factory, events: list[dict]) -> None:
    path = tmp_path_factory.mktemp("events") / "events.jsonl"
    log = EventLog(path)
    for event in events:
        log.write(event)
    log.close()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(events)

    def strict(token: str) -> None:
        raise AssertionError(f"non-strict JSON number {token}")

    for line, event in zip(lines, events):
        parsed = json.loads(line, parse_constant=strict)
        assert parsed["label"] == event["label"]
        assert parsed["probabilities"] == {k: v if math.isfinite(v) else None
                                           for k, v in event["probabilities"].items()}
        assert parsed["valence"] == (event["valence"] if math.isfinite(event["valence"]) else None)
