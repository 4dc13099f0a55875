"""Signal effects for the synthetic suite (numpy/scipy only): resampling, mixing talkers,
simulated rooms and distances, and codec/vocoder-like degradation."""

from __future__ import annotations

from math import gcd

import numpy as np


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Polyphase resampling from ``sr_in`` to ``sr_out`` (float32 out)."""
    if sr_in == sr_out:
        return audio.astype(np.float32)
    g = gcd(sr_in, sr_out)
    from scipy import signal  # here: listing the tasks needs no scipy

    return signal.resample_poly(audio, sr_out // g, sr_in // g).astype(np.float32)


def rms(audio: np.ndarray) -> float:
    """Root-mean-square level."""
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))


def mix(talkers: list[np.ndarray], onsets: list[int], length: int) -> np.ndarray:
    """Sum talkers into a ``length``-sample window, each starting at its onset (cut at the end).

    Every talker is first scaled to the same RMS so that no one dominates the mixture.
    """
    out = np.zeros(length, dtype=np.float64)
    for audio, onset in zip(talkers, onsets):
        part = audio[: max(0, length - onset)]
        out[onset : onset + len(part)] += part / max(rms(audio), 1e-8)
    return out.astype(np.float32)


def reverb_tail(rt60: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Diffuse reverberation: Gaussian noise with a -60 dB-at-``rt60`` exponential decay,
    scaled to unit energy."""
    t = np.arange(int(rt60 * sr)) / sr
    tail = rng.standard_normal(len(t)) * np.exp(-6.9078 * t / rt60)
    return tail / np.sqrt(np.sum(tail**2))


def critical_distance(volume: float, rt60: float) -> float:
    """Distance (m) at which direct and reverberant energy are equal: 0.057 * sqrt(V / RT60)."""
    return 0.057 * float(np.sqrt(volume / rt60))


def room_impulse_response(
    distance: float,
    sr: int,
    rng: np.random.Generator,
    rt60: float = 0.5,
    volume: float = 300.0,
    reference_distance: float = 0.4,
) -> np.ndarray:
    """Impulse response of a talker ``distance`` metres away in a diffuse room.

    The direct path has gain ``reference_distance / distance`` (inverse-distance level drop);
    the reverberant tail follows it with a fixed energy that equals the direct energy at the
    room's critical distance, so the direct-to-reverberant ratio falls 6 dB per doubling. The
    propagation delay is left out: a recording has no absolute time reference.
    """
    tail = reverb_tail(rt60, sr, rng) * (reference_distance / critical_distance(volume, rt60))
    return np.concatenate([[reference_distance / distance], tail])


def at_distance(
    audio: np.ndarray,
    sr: int,
    distance: float,
    rng: np.random.Generator,
    rt60: float = 0.5,
    volume: float = 300.0,
) -> np.ndarray:
    """``audio`` as heard ``distance`` metres away in a room (same length)."""
    ir = room_impulse_response(distance, sr, rng, rt60=rt60, volume=volume)
    from scipy import signal

    return signal.fftconvolve(audio, ir)[: len(audio)].astype(np.float32)


def mu_law(audio: np.ndarray, bits: int = 8, mu: float = 255.0) -> np.ndarray:
    """Mu-law companding with ``bits``-bit quantisation, then expansion (a G.711-like codec)."""
    x = np.clip(audio, -1.0, 1.0)
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    levels = 2 ** (bits - 1)
    y = np.round(y * levels) / levels
    return (np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu).astype(np.float32)


def band_limit(audio: np.ndarray, sr: int, low: float = 300.0, high: float = 3400.0) -> np.ndarray:
    """Telephone-like band-pass (4th-order Butterworth, zero phase)."""
    from scipy import signal

    sos = signal.butter(4, [low, high], btype="bandpass", fs=sr, output="sos")
    return signal.sosfiltfilt(sos, audio).astype(np.float32)


def down_up(audio: np.ndarray, sr: int, low_sr: int) -> np.ndarray:
    """Vocoder-like bandwidth loss: resample to ``low_sr`` and back."""
    return resample(resample(audio, sr, low_sr), low_sr, sr)[: len(audio)]


def to_pcm16(audio: np.ndarray) -> np.ndarray:
    """Clip to [-1, 1] and quantise to int16 (round half to even, deterministic)."""
    return np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)
