"""The prosodic and paralinguistic baselines: openSMILE eGeMAPS / ComParE 2016 and the Praat cue vector."""

import sys

import numpy as np
import pytest

from speechprobe.config import RunConfig
from speechprobe.errors import ConfigError, SpeechprobeError
from speechprobe.models import registry
from speechprobe.models.acoustic_cues import CUES, NAME, PROSODY, clip_cues, pack
from speechprobe.models.opensmile_sets import OpenSmileAdapter
from speechprobe.models.registry import checkpoints, default_baselines, load_model
from speechprobe.pipeline import run_extract

SR = 16000


def tone(f0: float, seconds: float = 1.5, amp: float = 0.3) -> np.ndarray:
    """A harmonic complex (1/k amplitudes, 8 harmonics) at ``f0`` with a little noise."""
    t = np.arange(int(seconds * SR)) / SR
    y = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 9))
    noise = 0.003 * np.random.default_rng(0).standard_normal(len(t))
    return (amp * y / np.max(np.abs(y)) + noise).astype(np.float32)


@pytest.fixture(scope="module")
def egemaps():
    return load_model("egemaps")


def test_egemaps_gives_88_finite_functionals_with_f0_in_semitones(egemaps):
    feats = egemaps.forward([tone(120.0), tone(220.0), tone(220.0, amp=0.03)])
    assert feats.shape == (3, 1, 88) and np.isfinite(feats).all()
    names = egemaps.smile.feature_names
    f0 = names.index("F0semitoneFrom27.5Hz_sma3nz_amean")
    low, high, soft = feats[:, 0, f0]
    assert low == pytest.approx(12 * np.log2(120 / 27.5), abs=0.3)  # semitones re 27.5 Hz: 25.5
    assert high == pytest.approx(12 * np.log2(220 / 27.5), abs=0.3)  # 36.0
    assert soft == pytest.approx(high, abs=0.3)  # F0 does not follow the level ...
    loudness = names.index("loudness_sma3_amean")
    assert feats[1, 0, loudness] > 3 * feats[2, 0, loudness]  # ... loudness does
    assert checkpoints()["egemaps"].hidden_size == egemaps.info.hidden_size == 88


def test_egemaps_of_a_clip_too_short_for_opensmile_is_padded_and_finite(egemaps):
    short = tone(200.0, seconds=0.03)  # 480 samples: openSMILE alone gives NaN under ~75 ms
    feats = egemaps.forward([short, np.zeros(SR, dtype=np.float32)])
    assert np.isfinite(feats).all()


def test_egemaps_ignores_pooling_and_threads_give_the_clip_by_clip_values(egemaps):
    clips = [tone(f) for f in (100.0, 150.0, 310.0)]
    batch = OpenSmileAdapter("egemaps", workers=2).forward(clips, "mean+std")
    one_by_one = np.stack([egemaps.forward([y], "mean")[0] for y in clips])
    np.testing.assert_array_equal(batch, one_by_one)


def test_compare2016_is_an_option_of_6373_functionals():
    adapter = load_model("compare2016")
    feats = adapter.forward([tone(180.0, seconds=1.0)])
    assert feats.shape == (1, 1, 6373) and np.isfinite(feats).all()
    assert "compare2016" not in default_baselines() and "egemaps" in default_baselines()
    assert adapter.info.revision != load_model("egemaps").info.revision


def test_prosody_is_the_cue_vector_as_a_baseline():
    prosody, cues = load_model(PROSODY), load_model(NAME)
    feats = prosody.forward([tone(120.0), tone(220.0)], "mean+std")
    f0 = feats[:, 0, CUES.index("f0_mean")]
    np.testing.assert_allclose(f0, 12 * np.log2(np.array([120.0, 220.0]) / 100.0), atol=0.2)  # semitones re 100 Hz
    assert feats[:, 0, len(CUES) + CUES.index("f0_mean")].tolist() == [1.0, 1.0]  # defined
    np.testing.assert_array_equal(feats[1, 0], pack(clip_cues(tone(220.0))))
    assert prosody.info.revision == cues.info.revision  # same recipe: the cue stage copies its items
    assert prosody.name == "prosody" and prosody.info.hidden_size == 2 * len(CUES)
    assert checkpoints()[PROSODY].baseline and not checkpoints()[NAME].baseline


def test_default_baselines_need_their_module(monkeypatch):
    assert default_baselines() == ("mfcc", "librosa", "egemaps", "prosody", "duration", "channel", "loudness")
    real = registry.importlib.util.find_spec
    monkeypatch.setattr(registry.importlib.util, "find_spec", lambda n: None if n == "opensmile" else real(n))
    assert default_baselines() == ("mfcc", "librosa", "prosody", "duration", "channel", "loudness")


def test_egemaps_without_opensmile_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "opensmile", None)  # import opensmile raises ImportError
    with pytest.raises(SpeechprobeError, match="egemaps baseline needs openSMILE: pip install opensmile"):
        load_model("egemaps")


def test_a_run_naming_egemaps_without_opensmile_stops_before_any_work(monkeypatch, tones, tmp_path):
    real = registry.importlib.util.find_spec
    monkeypatch.setattr(registry.importlib.util, "find_spec", lambda n: None if n == "opensmile" else real(n))
    cfg = RunConfig.of(
        models=[], tasks=[str(tones)], out=tmp_path / "run", baselines=["mfcc", "egemaps"], progress=False
    )
    with pytest.raises(ConfigError, match="egemaps needs the opensmile package, not installed here: pip install"):
        run_extract(cfg)
    assert not (tmp_path / "run" / "state.json").exists()
