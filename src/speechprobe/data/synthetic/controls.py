"""Control tasks for the cue analyses: a task whose label a cue has been removed from by construction.

``gender_pitchnorm`` is the suite's ``gender`` task (the same 12 female and 12 male eSpeak NG variants,
sentences and jitter) with every clip's median F0 moved to one value by Praat's PSOLA "Change gender"
(formants, timing and the pitch contour's shape in semitones are kept). Gender is still carried by the
formant scaling and voice quality of the variants, but no longer by F0 level, so erasing F0 from a
representation (:mod:`speechprobe.analysis.erasure`) should cost this task little, while it costs
``emotion`` (built from pitch profiles) much more. It is the control for that demonstration.
"""

from __future__ import annotations

import dataclasses
import threading

import numpy as np

from .suite import SAMPLE_RATE, Item, _gender, _task

CONTROL_TASKS: tuple[str, ...] = ("gender_pitchnorm",)
TARGET_MEDIAN_F0 = 160.0  # Hz: between the male (~100 Hz) and female (~200 Hz) variants
_PRAAT = threading.Lock()  # Praat's random generator is global; the suite renders clips in threads


def normalise_pitch(audio: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """The clip with its median F0 set to TARGET_MEDIAN_F0 (Praat "Change gender": PSOLA, formants kept).

    Praat's PSOLA draws random numbers (for unvoiced stretches), so its generator is seeded from the
    item's ``rng`` under a lock: the same item renders the same bytes, in any thread.
    """
    import parselmouth
    from parselmouth.praat import call

    sound = parselmouth.Sound(audio[0].astype(np.float64), sampling_frequency=SAMPLE_RATE)
    with _PRAAT:
        parselmouth.praat.run(f"random_initializeWithSeedUnsafelyButPredictably ({int(rng.integers(2**31))})\n")
        shifted = call(sound, "Change gender", 75.0, 600.0, 1.0, TARGET_MEDIAN_F0, 1.0, 1.0)
        parselmouth.praat.run("random_initializeSafelyAndUnpredictably ()\n")
    out = shifted.values[0]
    peak = float(np.max(np.abs(out))) if len(out) else 0.0
    return (out / peak * 0.9 if peak > 0.99 else out).astype(np.float32)  # PSOLA can overshoot full scale


@_task(
    "gender_pitchnorm",
    ("female", "male"),
    64,  # the gender task's size: the same draws
    "control: the gender task with every clip's median F0 set to 160 Hz (Praat PSOLA; formants and "
    "contour kept), so formants and voice quality carry the label but F0 level does not; group = voice",
)
def _gender_pitchnorm(n: int, rng: np.random.Generator) -> list[Item]:
    """The gender task's items (same draws for the same seed), each pitch-normalised after synthesis."""
    return [dataclasses.replace(item, post=normalise_pitch) for item in _gender(n, rng)]
