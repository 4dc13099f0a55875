"""Nuisance baselines (duration, channel, loudness): exact values, source facts, and their cache keys."""

import numpy as np
import pytest

from speechprobe.data.clip import Clip, audio_facts, audio_hash, native_facts
from speechprobe.errors import SpeechprobeError
from speechprobe.features.extract import extract
from speechprobe.features.store import FeatureStore
from speechprobe.models.nuisance import NuisanceAdapter
from speechprobe.models.registry import load_model, nuisance_baselines

MONO = {"sample_rate": 16000, "channels": 1, "clipped_fraction": 0.0, "dc_offset": 0.0}


def _sine(seconds: float, amp: float = 0.5, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * 200 * t)).astype(np.float32)


def test_registry_lists_what_each_measures():
    assert nuisance_baselines() == {
        "duration": "clip duration",
        "channel": "the recording channel",
        "loudness": "loudness",
    }


def test_duration_is_seconds_and_ignores_pooling():
    adapter = load_model("duration")
    feats = adapter.forward_clips([_sine(0.5), _sine(1.25)], [MONO, MONO], "mean+std")
    assert feats.shape == (2, 1, 1) and feats[:, 0, 0].tolist() == [0.5, 1.25]


def test_loudness_of_a_sine_in_dbfs():
    adapter = NuisanceAdapter("loudness")
    mean, both = (adapter.forward_clips([_sine(1.0, 0.5)], [MONO], p)[0, 0] for p in ("mean", "mean+std"))
    rms_db, peak_db = 20 * np.log10(0.5 / np.sqrt(2)), 20 * np.log10(0.5)
    np.testing.assert_allclose(mean, [rms_db, rms_db, peak_db], atol=0.05)  # frame mean, clip RMS, peak
    assert both.shape == (4,) and both[1] < 0.1 and both[0] == mean[0]  # a steady sine: frame level spread ~0
    assert adapter.info.hidden_size == 3


def test_channel_reads_the_source_facts_and_needs_them():
    adapter = load_model("channel")
    facts = {"sample_rate": 44100, "channels": 2, "clipped_fraction": 0.01, "dc_offset": -0.002}
    np.testing.assert_allclose(adapter.forward_clips([_sine(0.3)], [facts])[0, 0], [44100, 2, 0.01, -0.002], rtol=1e-6)
    with pytest.raises(SpeechprobeError, match="channel baseline needs each clip's source facts"):
        adapter.forward([_sine(0.3)])


def test_facts_from_the_clips_own_audio_when_no_reader_recorded_them():
    audio = _sine(0.5, 1.0) + 0.25  # a DC offset, and the positive peaks beyond full scale
    facts = native_facts(Clip("a", audio, 8000, "x"))
    assert facts["sample_rate"] == 8000 and facts["channels"] == 1
    assert facts["dc_offset"] == pytest.approx(0.25, abs=1e-3) and 0.2 < facts["clipped_fraction"] < 0.35
    stereo = audio_facts(np.stack([audio, -audio], axis=1), 8000)
    assert stereo["channels"] == 2 and stereo["dc_offset"] == pytest.approx(0.0, abs=1e-6)


def test_content_hash_keeps_plain_clips_and_separates_different_sources():
    audio = _sine(0.4)
    plain = Clip("a", audio, 16000, "x")
    same_source = Clip("b", audio, 16000, "x", meta={"native": audio_facts(audio, 16000)})
    stereo = Clip("c", audio, 16000, "x", meta={"native": {**MONO, "channels": 2}})
    resampled = Clip("d", audio, 16000, "x", meta={"native": {**MONO, "sample_rate": 48000}})
    assert plain.content_hash == same_source.content_hash == audio_hash(audio, 16000)  # today's hashes stay
    assert len({plain.content_hash, stereo.content_hash, resampled.content_hash}) == 3


def test_extraction_hands_each_clip_its_facts(tmp_path):
    audio = _sine(0.4)
    clips = [
        Clip("native48k", audio, 16000, "x", meta={"native": {**MONO, "sample_rate": 48000}}),
        Clip("plain", audio, 16000, "y"),  # the same mono audio, read from a 16 kHz file
    ]
    adapter = load_model("channel")
    space = FeatureStore(tmp_path / "features").space(adapter.name, adapter.info.revision, {"pooling": "mean"})
    report = extract(adapter, clips, space)
    assert report.computed == 2
    stored = [space.get(c.content_hash)[0] for c in report.clips]
    assert [s[0] for s in stored] == [48000, 16000]
