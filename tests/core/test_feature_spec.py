import json

import numpy as np
import pytest

from realtime.core.feature_spec import FeatureSpec, NormStats


def test_defaults_derive_step_counts():
    spec = FeatureSpec()
    assert (spec.visual_steps, spec.audio_steps) == (60, 100)
    assert FeatureSpec(window_s=2.0).visual_steps == 30


def test_round_trip_through_json_keeps_everything():
    rng = np.random.default_rng(0)
    spec = FeatureSpec(visual_norm=NormStats.fit(rng.normal(size=(50, 127))),
                       audio_norm=NormStats.fit(rng.normal(3.0, 2.0, size=(50, 323))), hop_s=0.25)
    d = json.loads(json.dumps(spec.to_dict()))
    assert d["visual_steps"] == 60 and d["audio_steps"] == 100
    back = FeatureSpec.from_dict(d)
    assert back == spec
    back.check_compatible(spec)


def test_mismatch_names_the_first_differing_field():
    with pytest.raises(ValueError, match="visual_dim: 127 here, 52"):
        FeatureSpec().check_compatible(FeatureSpec(visual_dim=52, audio_dim=13))
    with pytest.raises(ValueError, match="labels"):
        FeatureSpec().check_compatible(FeatureSpec(labels=("neutral", "happy")))


def test_a_spec_written_before_the_text_window_reads_as_one_window():
    old = {k: v for k, v in FeatureSpec(window_s=2.0).to_dict().items() if k != "text_window_s"}
    assert FeatureSpec.from_dict(old).text_window_s == 2.0
    with pytest.raises(ValueError, match="text_window_s"):
        FeatureSpec().check_compatible(FeatureSpec(text_window_s=4.0))
    FeatureSpec().check_compatible(FeatureSpec(text_window_s=4.0, window_s=2.0), windows=False)  # features alike


def test_hop_and_one_sided_statistics_are_not_a_mismatch():
    stats = NormStats.fit(np.ones((4, 323)))
    FeatureSpec().check_compatible(FeatureSpec(hop_s=0.25, audio_norm=stats))
    other = NormStats((0.5,) * 323, (1.0,) * 323)
    with pytest.raises(ValueError, match="audio_norm"):
        FeatureSpec(audio_norm=stats).check_compatible(FeatureSpec(audio_norm=other))


def test_invalid_specs_are_refused():
    with pytest.raises(ValueError, match="whole number"):
        FeatureSpec(window_s=4.01)
    with pytest.raises(ValueError, match="audio_norm has 3 values"):
        FeatureSpec(audio_norm=NormStats((0.0,) * 3, (1.0,) * 3))
    with pytest.raises(ValueError, match="unknown FeatureSpec keys"):
        FeatureSpec.from_dict({**FeatureSpec().to_dict(), "colour": "red"})
    with pytest.raises(ValueError, match="visual_steps"):
        FeatureSpec.from_dict({**FeatureSpec().to_dict(), "visual_steps": 61})
    with pytest.raises(ValueError, match="newer"):
        FeatureSpec.from_dict({**FeatureSpec().to_dict(), "version": 99})
    with pytest.raises(ValueError, match="hashed word ids.*re-extract, re-train or re-export"):
        FeatureSpec.from_dict({**FeatureSpec().to_dict(), "version": 1})


def test_norm_stats_standardise():
    x = np.random.default_rng(1).normal(5.0, 3.0, size=(1000, 4))
    z = NormStats.fit(x).apply(x)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(z.std(0), 1, atol=1e-3)


def test_defaults_are_the_front_ends_constants():
    from realtime.frontends.face import VISUAL_FEATURE_DIM, VISUAL_RATE_HZ
    from realtime.nets.text_encoder import TEXT_FEATURE_DIM
    from realtime.frontends.voice import FEATURE_RATE_HZ, VOICE_FEATURE_DIM

    spec = FeatureSpec()
    assert (spec.visual_rate_hz, spec.visual_dim) == (VISUAL_RATE_HZ, VISUAL_FEATURE_DIM)
    assert (spec.audio_rate_hz, spec.audio_dim) == (FEATURE_RATE_HZ, VOICE_FEATURE_DIM)
    assert spec.text_dim == TEXT_FEATURE_DIM
