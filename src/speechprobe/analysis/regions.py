"""Named regions of a clip's time-frequency grid, and the share of an attribution map in each.

Frequency bands (of the grid's bins: STFT bins, or mel bins at their centres): the F0 region (< 300 Hz), the
F1/F2 formant region (300-3000 Hz) and the high band (> 3000 Hz). Time regions (of its frames), by an energy
voice-activity detector: frames within :data:`VAD_DB` dB of the clip's loudest frame are active; each run of
active frames is cut into its onset (first quarter), nucleus (middle half) and offset (last quarter); the other
frames are silence.
"""

from __future__ import annotations

import numpy as np

BANDS = (("f0_band", 0.0, 300.0), ("formant_band", 300.0, 3000.0), ("high_band", 3000.0, np.inf))
TIMES = ("onset", "nucleus", "offset", "silence")
REGIONS = tuple(b[0] for b in BANDS) + TIMES
VAD_DB = 30.0


def band_of(freqs: np.ndarray) -> np.ndarray:
    """The band index (into :data:`BANDS`) of each frequency in Hz."""
    edges = np.asarray([b[2] for b in BANDS[:-1]])
    return np.searchsorted(edges, np.asarray(freqs, dtype=float), side="right")


def time_regions(power: np.ndarray, vad_db: float = VAD_DB) -> np.ndarray:
    """The time region (index into :data:`TIMES`) of each frame from its ``power`` (energy per frame)."""
    db = 10 * np.log10(np.maximum(np.asarray(power, dtype=float), 1e-20))
    active = db > db.max() - vad_db
    out = np.full(len(db), TIMES.index("silence"))
    start = None
    for t, on in enumerate([*active, False]):
        if on and start is None:
            start = t
        elif not on and start is not None:
            length = t - start
            edge = max(1, int(round(length / 4))) if length >= 3 else 0
            out[start:t] = TIMES.index("nucleus")
            if edge:
                out[start : start + edge] = TIMES.index("onset")
                out[t - edge : t] = TIMES.index("offset")
            start = None
    return out


def region_shares(attribution: np.ndarray, freqs: np.ndarray, power: np.ndarray) -> np.ndarray:
    """The share of each of :data:`REGIONS` (bands, then time regions) in an attribution map ``(freqs, frames)``:
    each region's net attribution (its signed sum: by integrated gradients' completeness, its part of the change
    of the output from the baseline), in absolute value, over the sum of those of its group (bands, or time
    regions; each group sums to 1, NaN when all are 0). Net sums, as single bins of a noisy input carry large
    attributions of either sign that cancel over a region which does not move the output."""
    attribution = np.asarray(attribution, dtype=float)
    by_band = np.abs(np.bincount(band_of(freqs), weights=attribution.sum(axis=1), minlength=len(BANDS)))
    by_time = np.abs(np.bincount(time_regions(power), weights=attribution.sum(axis=0), minlength=len(TIMES)))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.concatenate([by_band / by_band.sum(), by_time / by_time.sum()])
