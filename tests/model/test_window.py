import numpy as np
import pytest

from realtime.core.feature_spec import FeatureSpec, NormStats
from realtime.window import WindowAssembler

SPEC = FeatureSpec()
V_STEP, A_STEP = 1 / SPEC.visual_rate_hz, 1 / SPEC.audio_rate_hz


def ramp(rate: float, t0: float, t1: float, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Samples on the rate's grid whose every feature equals the sample's timestamp."""
    ts = np.arange(round(t0 * rate), round(t1 * rate) + 1) / rate
    return ts, np.repeat(ts[:, None], dim, axis=1).astype(np.float32)


def test_shapes_dtypes_and_empty_window():
    w = WindowAssembler(SPEC).from_streams(10.0, {})
    assert w.visual.shape == (60, 127) and w.visual.dtype == np.float32 and w.visual_mask.shape == (60,)
    assert w.audio.shape == (100, 323) and w.audio_mask.shape == (100,)
    assert w.text.shape == (24, 40) and w.text.dtype == np.float32 and w.text_mask.dtype == bool
    assert w.modalities_present == () and not w.visual.any()


def test_ramp_lands_on_the_right_steps():
    t_end = 10.0
    w = WindowAssembler(SPEC).from_streams(t_end, {"visual": ramp(15, 0, 20, 127), "audio": ramp(25, 0, 20, 323)})
    assert w.visual_mask.all() and w.audio_mask.all()
    # step k holds the sample of (t_end - W + k/r, t_end - W + (k+1)/r]; nothing after t_end
    np.testing.assert_allclose(w.visual[:, 0], t_end - 4 + (np.arange(60) + 1) * V_STEP, atol=1e-5)
    np.testing.assert_allclose(w.audio[:, 5], t_end - 4 + (np.arange(100) + 1) * A_STEP, atol=1e-5)
    assert w.modalities_present == ("visual", "audio")


def test_jittered_samples_still_fill_their_own_steps():
    centres = 6.0 + (np.arange(60) + 0.5) * V_STEP  # the window (6, 10]'s step times
    ts = centres + np.random.default_rng(0).uniform(-0.45, 0.45, 60) * V_STEP
    x = np.repeat(centres[:, None], 127, axis=1).astype(np.float32)
    w = WindowAssembler(SPEC).from_streams(10.0, {"visual": (np.sort(ts), x)})
    assert w.visual_mask.all()
    np.testing.assert_allclose(w.visual[:, 0], centres, atol=1e-5)


def test_gaps_give_false_mask_and_zero_features():
    ts, x = ramp(25, 0, 10, 323)
    keep = (ts < 7.0) | (ts > 8.0)  # one second of silence inside the window (6..10)
    w = WindowAssembler(SPEC).from_streams(10.0, {"audio": (ts[keep], x[keep])})
    step_time = 6.0 + (np.arange(100) + 1) * A_STEP
    gap = (step_time >= 7.0 - 1e-9) & (step_time <= 8.0 + 1e-9)
    np.testing.assert_array_equal(w.audio_mask, ~gap)
    assert not w.audio[gap].any()
    np.testing.assert_allclose(w.audio[~gap, 0], step_time[~gap], atol=1e-5)
    assert w.modalities_present == ("audio",)


def test_stream_that_started_late_is_masked_at_the_start():
    w = WindowAssembler(SPEC).from_streams(10.0, {"visual": ramp(15, 8.0, 10, 127)})
    assert w.visual_mask.sum() == 31 and w.visual_mask[-31:].all()


def test_tolerance_lets_a_sample_fill_a_neighbouring_missing_step():
    ts, x = ramp(15, 0, 10, 127)
    keep = np.ones(len(ts), bool)
    keep[-10] = False  # one dropped frame
    strict = WindowAssembler(SPEC).from_streams(10.0, {"visual": (ts[keep], x[keep])})
    loose = WindowAssembler(SPEC, tolerance_steps=1.0).from_streams(10.0, {"visual": (ts[keep], x[keep])})
    assert strict.visual_mask.sum() == 59 and loose.visual_mask.all()


def test_live_tracks_with_late_and_out_of_order_data_match_the_offline_window():
    asm = WindowAssembler(SPEC)
    tracks = asm.make_tracks()
    streams = {"visual": ramp(15, 0, 10, 127), "audio": ramp(25, 0, 10, 323)}
    rng = np.random.default_rng(0)
    for m, (ts, x) in streams.items():
        order = np.argsort(ts + rng.uniform(0, 0.3, len(ts)))  # delivered up to 0.3 s late, reordered
        for i in order:
            tracks[m].push(float(ts[i]), x[i])
    live, offline = asm.from_tracks(10.0, tracks), asm.from_streams(10.0, streams)
    for name in ("visual", "visual_mask", "audio", "audio_mask"):
        np.testing.assert_array_equal(getattr(live, name), getattr(offline, name))
    assert sum(t.dropped for t in tracks.values()) == 0


def word_rows(n: int, dim: int = FeatureSpec().text_dim) -> np.ndarray:
    """(n, dim) stand-ins for n words' features: row i is all i + 1."""
    return np.repeat(np.arange(1, n + 1, dtype=np.float32)[:, None], dim, axis=1)


def test_words_are_the_most_recent_left_aligned_oldest_first():
    spec = FeatureSpec(max_words=4, text_window_s=4.0)
    ts, rows = np.arange(8, dtype=float) + 3.0, word_rows(8)  # w0 at 3 s ... w7 at 10 s
    asm = WindowAssembler(spec)
    w = asm.from_streams(9.0, {"text": (ts, rows)})  # window (5, 9]: w3..w6, all fit
    np.testing.assert_array_equal(w.text_mask, [True] * 4)
    np.testing.assert_array_equal(w.text, rows[3:7])
    w = asm.from_streams(6.5, {"text": (ts, rows)})  # window (2.5, 6.5]: w0..w3, w0 at 3
    np.testing.assert_array_equal(w.text, rows[0:4])
    w = asm.from_streams(4.0, {"text": (ts, rows)})  # w0, w1 only: left-aligned, padding after
    np.testing.assert_array_equal(w.text_mask, [True, True, False, False])
    np.testing.assert_array_equal(w.text[:2], rows[:2])
    assert not w.text[2:].any() and w.text.dtype == np.float32
    w = WindowAssembler(FeatureSpec(max_words=2, text_window_s=4.0)).from_streams(9.0, {"text": (ts, rows)})
    np.testing.assert_array_equal(w.text, rows[5:7])  # too many: the newest two


def test_words_stay_for_the_text_window_live_and_offline():
    spec = FeatureSpec()  # face and voice: the last 4 s; words: the last 10 s
    ts, rows = np.array([1.0, 2.5, 3.0, 7.5, 11.5]), word_rows(5)
    asm = WindowAssembler(spec)
    offline = asm.from_streams(12.0, {"text": (ts, rows)})  # (2, 12]: w1..w4, w0 is older than 10 s
    np.testing.assert_array_equal(offline.text[:4], rows[1:])
    assert offline.text_mask.tolist() == [True] * 4 + [False] * (spec.max_words - 4)
    tracks = asm.make_tracks()
    for t, row in zip(ts, rows):
        tracks["text"].push(t, row)
    live = asm.from_tracks(12.0, tracks)
    np.testing.assert_array_equal(live.text, offline.text)


def test_statistics_standardise_present_steps_only():
    ts, x = ramp(25, 0, 10, 323)
    keep = ts > 8.0
    spec = FeatureSpec(audio_norm=NormStats((8.0,) * 323, (2.0,) * 323))
    w = WindowAssembler(spec).from_streams(10.0, {"audio": (ts[keep], x[keep])})
    np.testing.assert_allclose(w.audio[w.audio_mask, 0], (ts[ts > 8.0] - 8.0) / 2.0, atol=1e-5)
    assert not w.audio[~w.audio_mask].any()


@pytest.mark.parametrize("duration, expected", [(3.0, 6), (3.2, 7), (0.0, 1)])
def test_recording_windows_step_back_from_the_last_sample(duration, expected):
    asm = WindowAssembler(SPEC)
    streams = {"audio": ramp(25, 1.0, 1.0 + duration, 323)}
    windows = list(asm.recording_windows(streams))
    assert len(windows) == expected
    assert windows[-1].t_end == pytest.approx(1.0 + duration) and windows[-1].audio_mask[-1]
    assert all(b.t_end - a.t_end == pytest.approx(SPEC.hop_s) for a, b in zip(windows, windows[1:]))
    assert list(asm.recording_windows({})) == []
