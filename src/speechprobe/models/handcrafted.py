"""Hand-crafted librosa baselines, exposed as single-layer models (``mfcc``, ``librosa``).

Frame-level features are pooled over time with the run's ``--pooling``, the same statistics the
models get: ``mean`` gives the frame means, ``mean+std`` the means and (population) standard
deviations. Recipe version 2 (version 1 always took mean+std, while models took the mean).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import librosa
import numpy as np

from .base import AdapterInfo, ModelAdapter
from .family import Checkpoint, Family, LoadContext
from .pooling import pool_frames

SAMPLE_RATE = 16000
N_MFCC = 20
_VERSION = "2"  # bump when the feature recipe changes (part of the cache key); 2: pooled as --pooling says


def mfcc_features(y: np.ndarray, sr: int = SAMPLE_RATE, pooling: str = "mean") -> np.ndarray:
    """20 MFCCs with deltas and delta-deltas, pooled over time (60 dims; 120 with ``mean+std``)."""
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=N_MFCC)
    width = min(9, mfcc.shape[1] - (1 - mfcc.shape[1] % 2)) if mfcc.shape[1] >= 3 else 0
    if width >= 3:
        d1 = librosa.feature.delta(mfcc, width=width)
        d2 = librosa.feature.delta(mfcc, order=2, width=width)
    else:
        d1 = d2 = np.zeros_like(mfcc)
    return pool_frames(np.vstack([mfcc, d1, d2]), pooling)


def librosa_features(y: np.ndarray, sr: int = SAMPLE_RATE, pooling: str = "mean") -> np.ndarray:
    """MFCCs plus spectral, chroma, ZCR, RMS and log-pitch frames, pooled over time (85 dims; 170 with mean+std)."""
    stft = np.abs(librosa.stft(y, n_fft=512, hop_length=160))
    spectral = np.vstack(
        [
            librosa.feature.spectral_centroid(S=stft, sr=sr),
            librosa.feature.spectral_bandwidth(S=stft, sr=sr),
            librosa.feature.spectral_rolloff(S=stft, sr=sr),
            librosa.feature.spectral_flatness(S=stft),
            librosa.feature.spectral_contrast(S=stft, sr=sr, n_bands=5, fmin=100.0),
            librosa.feature.chroma_stft(S=stft**2, sr=sr, n_fft=512),
            librosa.feature.zero_crossing_rate(y, frame_length=512, hop_length=160),
            librosa.feature.rms(S=stft, frame_length=512, hop_length=160),
        ]
    )
    f0 = librosa.yin(y, fmin=60, fmax=500, sr=sr, frame_length=1024, hop_length=160)
    log_f0 = np.log(f0)[None, :]
    return np.concatenate([mfcc_features(y, sr, pooling), pool_frames(spectral, pooling), pool_frames(log_f0, pooling)])


_RECIPES = {"mfcc": mfcc_features, "librosa": librosa_features}


class HandcraftedAdapter(ModelAdapter):
    """A librosa feature recipe as a one-layer model (layer 0)."""

    def __init__(self, recipe: str = "mfcc") -> None:
        self.recipe = _RECIPES[recipe]
        dim = self.forward([np.full(SAMPLE_RATE, 1e-3, dtype=np.float32)]).shape[-1]
        key = f"{recipe}:{_VERSION}:{librosa.__version__}"
        self.info = AdapterInfo.of_recipe(recipe, "handcrafted", f"librosa {librosa.__version__}", key, dim, 100.0)

    def forward(self, batch: Sequence[np.ndarray], pooling: str = "mean") -> np.ndarray:
        """The recipe's frames of each clip, pooled over time as ``pooling`` says (as the models are)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # librosa warns on silent/tonal-less clips; values stay finite
            out = [self.recipe(min_length(np.asarray(y, dtype=np.float32)), SAMPLE_RATE, pooling) for y in batch]
        return np.stack(out)[:, None, :].astype(np.float32)


def min_length(y: np.ndarray, n: int = 2048) -> np.ndarray:
    """Zero-pad very short clips so every frame-based feature is defined."""
    return y if len(y) >= n else np.pad(y, (0, n - len(y)))


def _load(ctx: LoadContext) -> HandcraftedAdapter:
    return HandcraftedAdapter(ctx.name or "mfcc")


FAMILY = Family(
    "handcrafted",
    _load,
    title="hand-crafted features",
    checkpoints=(
        Checkpoint("mfcc", num_layers=1, hidden_size=60, packaged=True, baseline=True),
        Checkpoint("librosa", num_layers=1, hidden_size=85, packaged=True, baseline=True),
    ),
    layer0="the recipe's frame features pooled over the clip (the only layer)",
    source="librosa",
    has_weights=False,
)
FAMILIES = (FAMILY,)
