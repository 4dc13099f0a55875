"""Acoustic cues of each clip as a one-layer hand-crafted "model" (``cues``): the targets of the cue
probes and of cue erasure (:mod:`speechprobe.analysis.cues`, :mod:`speechprobe.analysis.erasure`).

Being an adapter, the cue vector is computed once per clip by the normal extraction driver and cached
in the content-keyed feature store like any layer. As ``cues`` it is an analysis target, not a
representation: the pipeline never probes it as a model. The same vector is also the ``prosody``
hand-crafted baseline (a default one, probed like ``mfcc``; same recipe and revision, so a run that has
both computes it once: :mod:`speechprobe.cue_stage`). Every cue is a clip's own: F0 is in semitones re a
fixed 100 Hz, not relative to the speaker. The speaker-relative F0 of the cue analyses
(:mod:`speechprobe.analysis.cues`) needs the other clips of the group, so it is not in the baseline.

Eleven cues (:data:`CUES`), from one Praat pitch analysis (praat-parselmouth) and one STFT (librosa):

- ``f0_mean``, ``f0_range``: mean and 5-95 % range of F0 over voiced frames, in semitones re 100 Hz
  (Praat "To Pitch (ac)", 10 ms steps, 75-600 Hz; Boersma 1993);
- ``voicing_rate``: fraction of pitch frames that are voiced;
- ``energy_mean``, ``energy_range``: mean and 5-95 % range of frame RMS level in dBFS (32 ms frames,
  10 ms hop) over active frames (within 40 dB of the loudest frame);
- ``speaking_rate``: voiced segments (runs of >= 3 voiced frames) per second between the first and
  last voiced frame;
- ``duration``: clip length in seconds;
- ``spectral_tilt``: slope in dB/octave of a line fitted to the long-term average spectrum of the
  active frames over 100-5000 Hz;
- ``jitter``, ``shimmer``: Praat local jitter and local shimmer (fractions) on the periodic point
  process of the same pitch track ("To PointProcess (cc)"; standard voice-report settings);
- ``hnr``: harmonics-to-noise ratio in dB, ``10 log10(r / (1 - r))`` from the autocorrelation peak
  ``r`` of each voiced frame, averaged (Boersma 1993); it tracks Praat's "To Harmonicity (cc)" within
  about 2 dB on noisy pulse trains (tests/models/test_acoustic_cues.py) without a second analysis.

A cue can be undefined (no voicing: no F0, jitter or HNR; a clip shorter than three periods of the
pitch floor, 40 ms: no pitch analysis at all; a silent clip: no energy). The feature store
keeps only finite numbers, so the stored vector is ``[values..., defined...]``: undefined values are 0
and flagged 0 in the second half; :func:`split_cues` turns it back into values with NaN.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

import librosa
import numpy as np

from ..parallel import ordered_map
from .base import AdapterInfo, ModelAdapter
from .family import Checkpoint, Family, LoadContext

NAME = "cues"
PROSODY = "prosody"  # the same vector as a probed baseline
FAMILY_NAME = "acoustic-cues"
SAMPLE_RATE = 16000
_VERSION = "1"  # bump when a cue's recipe changes (part of the cache key)

CUES: tuple[str, ...] = (
    "f0_mean",
    "f0_range",
    "voicing_rate",
    "energy_mean",
    "energy_range",
    "speaking_rate",
    "duration",
    "spectral_tilt",
    "jitter",
    "shimmer",
    "hnr",
)

PITCH_FLOOR, PITCH_CEILING, TIME_STEP = 75.0, 600.0, 0.01
N_FFT, HOP = 512, 160  # 32 ms frames, 10 ms hop at 16 kHz
ACTIVE_DB = 40.0  # frames within this many dB of the loudest count as active
MIN_VOICED_FRAMES = 3  # fewer voiced frames: F0 cues undefined
MIN_SEGMENT_FRAMES = 3  # a voiced segment lasts at least 30 ms
TILT_BAND = (100.0, 5000.0)
SILENT_RMS = 1e-6  # a clip whose loudest frame is below this has no energy cues
_PERIOD = (0.0001, 0.02, 1.3)  # Praat voice report: shortest/longest period (s), max period factor
_MAX_AMPLITUDE_FACTOR = 1.6


def pitch_cues(sound) -> tuple[dict[str, float], object | None]:
    """F0, voicing, speaking-rate and HNR cues from one Praat pitch analysis; returns the Pitch too
    (None, with every cue undefined, for a clip too short to analyse)."""
    out = dict.fromkeys(("f0_mean", "f0_range", "voicing_rate", "speaking_rate", "hnr"), float("nan"))
    if sound.duration < 3.0 / PITCH_FLOOR:  # Praat's window needs three periods of the pitch floor
        return out, None
    pitch = sound.to_pitch_ac(time_step=TIME_STEP, pitch_floor=PITCH_FLOOR, pitch_ceiling=PITCH_CEILING)
    frames = pitch.selected_array
    f0, strength = frames["frequency"], frames["strength"]
    voiced = f0 > 0
    out["voicing_rate"] = float(voiced.mean()) if len(voiced) else float("nan")
    if voiced.sum() >= MIN_VOICED_FRAMES:
        st = 12.0 * np.log2(f0[voiced] / 100.0)
        out["f0_mean"] = float(st.mean())
        out["f0_range"] = float(np.percentile(st, 95) - np.percentile(st, 5))
        r = np.clip(strength[voiced], 1e-6, 1.0 - 1e-6)
        out["hnr"] = float(np.mean(10.0 * np.log10(r / (1.0 - r))))
        out["speaking_rate"] = _segment_rate(voiced)
    return out, pitch


def _segment_rate(voiced: np.ndarray) -> float:
    """Voiced segments of at least MIN_SEGMENT_FRAMES frames per second of the voiced span."""
    edges = np.diff(np.concatenate([[0], voiced.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    long = (ends - starts) >= MIN_SEGMENT_FRAMES
    if not long.any():
        return float("nan")
    span = (ends[long][-1] - starts[long][0]) * TIME_STEP
    return float(long.sum() / span)


def perturbation_cues(sound, pitch) -> dict[str, float]:
    """Praat local jitter and shimmer on the periodic point process of ``pitch`` (NaN when undefined,
    e.g. too few periods in a row for Praat to measure)."""
    from parselmouth import PraatError
    from parselmouth.praat import call

    try:
        points = call([sound, pitch], "To PointProcess (cc)")
        jitter = call(points, "Get jitter (local)", 0.0, 0.0, *_PERIOD)
        shimmer = call([sound, points], "Get shimmer (local)", 0.0, 0.0, *_PERIOD, _MAX_AMPLITUDE_FACTOR)
    except PraatError:
        return {"jitter": float("nan"), "shimmer": float("nan")}
    return {"jitter": float(jitter), "shimmer": float(shimmer)}


def spectral_cues(y: np.ndarray, sr: int) -> dict[str, float]:
    """Energy level and range (dBFS) and spectral tilt (dB/octave) over the active frames."""
    power = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP)) ** 2
    rms = librosa.feature.rms(y=y, frame_length=N_FFT, hop_length=HOP)[0]  # unwindowed frames: true RMS
    out = dict.fromkeys(("energy_mean", "energy_range", "spectral_tilt"), float("nan"))
    if rms.size == 0 or rms.max() < SILENT_RMS:
        return out
    level = 20.0 * np.log10(np.maximum(rms, 1e-12))
    active = level > level.max() - ACTIVE_DB
    out["energy_mean"] = float(level[active].mean())
    out["energy_range"] = float(np.percentile(level[active], 95) - np.percentile(level[active], 5))
    freqs = librosa.fft_frequencies(sr=sr, n_fft=N_FFT)
    band = (freqs >= TILT_BAND[0]) & (freqs <= TILT_BAND[1])
    ltas = 10.0 * np.log10(np.maximum(power[band][:, active].mean(axis=1), 1e-20))
    out["spectral_tilt"] = float(np.polyfit(np.log2(freqs[band]), ltas, 1)[0])
    return out


def clip_cues(y: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """The :data:`CUES` of one clip (float64, NaN where undefined)."""
    import parselmouth

    y = np.asarray(y, dtype=np.float64)
    if len(y) < N_FFT:  # every frame-based analysis needs one full frame
        y = np.pad(y, (0, N_FFT - len(y)))
    sound = parselmouth.Sound(y, sampling_frequency=sr)
    values, pitch = pitch_cues(sound)
    if np.isfinite(values["f0_mean"]):
        values.update(perturbation_cues(sound, pitch))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # librosa warns on very short clips; values stay finite
        values.update(spectral_cues(y.astype(np.float32), sr))
    values["duration"] = len(y) / float(sr)
    return np.array([values.get(name, float("nan")) for name in CUES], dtype=np.float64)


def pack(values: np.ndarray) -> np.ndarray:
    """``(..., C)`` cue values with NaN -> the stored ``(..., 2C)`` float32 ``[values, defined]``."""
    defined = np.isfinite(values)
    return np.concatenate([np.where(defined, values, 0.0), defined], axis=-1).astype(np.float32)


def split_cues(stored: np.ndarray) -> np.ndarray:
    """Stored ``(..., 2C)`` (or ``(N, 1, 2C)``) cue vectors -> ``(..., C)`` float64 values, NaN where undefined."""
    stored = np.asarray(stored, dtype=np.float64)
    if stored.ndim == 3:
        stored = stored[:, 0]
    n = len(CUES)
    if stored.shape[-1] != 2 * n:
        raise ValueError(f"expected {2 * n} stored cue values per clip, got {stored.shape[-1]}")
    return np.where(stored[..., n:] > 0.5, stored[..., :n], np.nan)


class AcousticCuesAdapter(ModelAdapter):
    """The :data:`CUES` as a one-layer model; clips of a batch are analysed in parallel threads
    (Praat's analyses release the GIL for most of their time: 1.3x on 2 cores, benchmarks/README.md)."""

    def __init__(self, name: str = NAME, workers: int | None = None) -> None:
        import parselmouth

        self.workers = workers or min(4, os.cpu_count() or 1)
        recipe = f"{NAME}:{_VERSION}:praat {parselmouth.PRAAT_VERSION}:librosa {librosa.__version__}"  # as prosody
        source = f"praat-parselmouth {parselmouth.__version__} (Praat {parselmouth.PRAAT_VERSION}) + librosa"
        self.info = AdapterInfo.of_recipe(name, FAMILY_NAME, source, recipe, 2 * len(CUES), 1.0 / TIME_STEP)

    def forward(self, batch: Sequence[np.ndarray], pooling: str = "mean") -> np.ndarray:
        """Cues are utterance-level already; ``pooling`` does not apply."""
        values = list(ordered_map(clip_cues, list(batch), workers=self.workers))
        return pack(np.stack(values))[:, None, :]


def _load(ctx: LoadContext) -> AcousticCuesAdapter:
    return AcousticCuesAdapter(ctx.name or NAME)


FAMILY = Family(
    FAMILY_NAME,
    _load,
    title="acoustic cues",
    checkpoints=(
        Checkpoint(NAME, num_layers=1, hidden_size=2 * len(CUES), packaged=True),
        Checkpoint(PROSODY, num_layers=1, hidden_size=2 * len(CUES), packaged=True, baseline=True),
    ),
    layer0="the eleven cue values and their defined flags (the only layer; cues: analysis targets; prosody: baseline)",
    source="praat-parselmouth",
    has_weights=False,
)
FAMILIES = (FAMILY,)
