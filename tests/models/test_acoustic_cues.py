"""Acoustic cues of known signals: F0, energy, rate, duration, tilt, jitter, shimmer and HNR."""

import numpy as np
import pytest
from scipy import signal

from speechprobe.models.acoustic_cues import CUES, AcousticCuesAdapter, clip_cues, pack, split_cues
from speechprobe.models.registry import load_model, resolve_model

SR = 16000


def tone(f0: float, seconds: float = 1.0, amp: float = 0.3, harmonics: int = 8) -> np.ndarray:
    """A voiced-like harmonic complex (1/k amplitudes) at ``f0``."""
    t = np.arange(int(seconds * SR)) / SR
    y = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, harmonics + 1))
    return (amp * y / np.max(np.abs(y))).astype(np.float32)


def pulses(f0: float, seconds: float = 1.0, jitter: float = 0.0, shimmer: float = 0.0, seed: int = 0) -> np.ndarray:
    """A glottal-like pulse train (each pulse a decaying resonance) with relative period/amplitude jitter."""
    rng = np.random.default_rng(seed)
    y = np.zeros(int(seconds * SR))
    pulse = np.exp(-np.arange(200) / 25.0) * np.sin(2 * np.pi * 700 * np.arange(200) / SR)
    t = 0.0
    while t < seconds - 0.02:
        i = int(t * SR)
        y[i : i + len(pulse)] += (1 + shimmer * rng.standard_normal()) * pulse[: len(y) - i]
        t += (1 + jitter * rng.standard_normal()) / f0
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


def cue(values: np.ndarray, name: str) -> float:
    return float(values[CUES.index(name)])


def test_f0_in_semitones_duration_and_voicing():
    low, high = clip_cues(tone(100.0, 1.5)), clip_cues(tone(200.0, 1.5))
    assert cue(low, "f0_mean") == pytest.approx(0.0, abs=0.2)  # semitones re 100 Hz
    assert cue(high, "f0_mean") == pytest.approx(12.0, abs=0.2)  # one octave up
    assert cue(high, "f0_range") < 0.3  # a steady tone
    assert cue(high, "duration") == pytest.approx(1.5)
    assert cue(high, "voicing_rate") > 0.9


def test_f0_range_of_a_glide():
    t = np.arange(SR) / SR
    glide = 0.3 * np.sin(2 * np.pi * np.cumsum(np.linspace(120.0, 240.0, SR)) / SR)  # 12 semitones
    assert 9.0 < cue(clip_cues(glide.astype(np.float32)), "f0_range") < 12.5
    assert len(t) == SR


def test_energy_in_dbfs_and_its_range():
    y = tone(150.0, 1.0, amp=0.1)
    rms_db = 20 * np.log10(np.sqrt(np.mean(y.astype(np.float64) ** 2)))
    loud, soft = clip_cues(y), clip_cues(0.1 * y)
    assert cue(loud, "energy_mean") == pytest.approx(rms_db, abs=0.5)
    assert cue(loud, "energy_mean") - cue(soft, "energy_mean") == pytest.approx(20.0, abs=0.1)
    ramp = y * np.linspace(0.1, 1.0, len(y), dtype=np.float32)
    assert cue(clip_cues(ramp), "energy_range") > cue(loud, "energy_range") + 10.0


def test_speaking_rate_counts_voiced_segments():
    gap = np.zeros(int(0.15 * SR), dtype=np.float32)
    four = np.concatenate([np.concatenate([tone(150.0, 0.2), gap]) for _ in range(4)])
    two = np.concatenate([np.concatenate([tone(150.0, 0.45), gap]) for _ in range(2)])
    rate4, rate2 = cue(clip_cues(four), "speaking_rate"), cue(clip_cues(two), "speaking_rate")
    assert rate4 == pytest.approx(4 / 1.25, rel=0.15)  # 4 segments over the 1.25 s voiced span
    assert rate2 == pytest.approx(2 / 1.05, rel=0.15)  # 2 segments over 0.45 + 0.15 + 0.45 s


def test_spectral_tilt_is_steeper_after_lowpass():
    y = pulses(120.0)
    b, a = signal.butter(2, 800, fs=SR)
    dull = signal.lfilter(b, a, y).astype(np.float32)
    assert cue(clip_cues(dull), "spectral_tilt") < cue(clip_cues(y), "spectral_tilt") - 6.0


def test_jitter_shimmer_and_hnr_follow_the_perturbation():
    clean = clip_cues(pulses(120.0, 1.5))
    rough = clip_cues(pulses(120.0, 1.5, jitter=0.03, shimmer=0.25))
    assert cue(rough, "jitter") > 3 * cue(clean, "jitter")
    assert cue(rough, "shimmer") > 2 * cue(clean, "shimmer")
    noisy = tone(150.0, 1.0) + np.random.default_rng(0).normal(0, 0.05, SR).astype(np.float32)
    assert cue(clip_cues(tone(150.0, 1.0)), "hnr") > cue(clip_cues(noisy), "hnr") + 5.0


def test_hnr_agrees_with_praats_harmonicity():
    """Our HNR (from the pitch analysis' autocorrelation peaks) tracks Praat's own Harmonicity (cc)."""
    import parselmouth

    rng = np.random.default_rng(1)
    ours, praat = [], []
    for noise in (0.005, 0.01, 0.02, 0.04):
        y = pulses(140.0, 1.0) + rng.normal(0, noise, SR).astype(np.float32)
        ours.append(cue(clip_cues(y), "hnr"))
        harm = parselmouth.Sound(y.astype(np.float64), SR).to_harmonicity_cc()
        praat.append(float(harm.values[harm.values > -199].mean()))
    assert np.all(np.diff(ours) < -2.0)  # more noise, lower HNR
    assert np.max(np.abs(np.subtract(ours, praat))) < 2.5


def test_silence_and_noise_leave_cues_undefined():
    silent = clip_cues(np.zeros(SR, dtype=np.float32))
    assert np.isnan(cue(silent, "f0_mean")) and np.isnan(cue(silent, "energy_mean")) and np.isnan(cue(silent, "jitter"))
    assert cue(silent, "duration") == 1.0
    stored = pack(np.stack([silent, clip_cues(tone(150.0))]))
    assert np.isfinite(stored).all() and stored.shape == (2, 2 * len(CUES))
    back = split_cues(stored)
    assert np.array_equal(np.isnan(back), np.isnan(np.stack([silent, clip_cues(tone(150.0))])))
    assert back[1, CUES.index("f0_mean")] == pytest.approx(cue(clip_cues(tone(150.0)), "f0_mean"))
    short = clip_cues(tone(150.0, 0.01))  # shorter than one analysis frame: padded, no failure
    assert cue(short, "duration") == pytest.approx(512 / SR)


def test_adapter_is_a_one_layer_model_in_the_registry():
    spec, source = resolve_model("cues")
    assert spec.family == "acoustic-cues" and source == "praat-parselmouth" and not spec.baseline
    adapter = load_model("cues")
    assert isinstance(adapter, AcousticCuesAdapter)
    assert adapter.num_layers == 1 and adapter.info.hidden_size == 2 * len(CUES)
    out = adapter.forward([tone(100.0), tone(200.0, 0.5), np.zeros(SR // 2, dtype=np.float32)])
    assert out.shape == (3, 1, 2 * len(CUES)) and out.dtype == np.float32 and np.isfinite(out).all()
    values = split_cues(out)
    assert values[1, CUES.index("f0_mean")] == pytest.approx(12.0, abs=0.2)
    assert np.isnan(values[2, CUES.index("f0_mean")])
    assert load_model("cues").info.revision == adapter.info.revision  # the cache key is stable
