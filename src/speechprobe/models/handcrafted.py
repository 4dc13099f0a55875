"""Hand-crafted librosa baselines, exposed as single-layer models (``mfcc``, ``librosa``)."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence

import librosa
import numpy as np

from .base import AdapterInfo, ModelAdapter
from .family import Checkpoint, Family, LoadContext

SAMPLE_RATE = 16000
N_MFCC = 20
_VERSION = "1"  # bump when the feature recipe changes (part of the cache key)


def _functionals(frames: np.ndarray) -> np.ndarray:
    """Mean and standard deviation over time of ``(n_features, n_frames)``."""
    return np.concatenate([frames.mean(axis=1), frames.std(axis=1)])


def mfcc_features(y: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """20 MFCCs with deltas and delta-deltas, mean/std functionals (120 dims)."""
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=N_MFCC)
    width = min(9, mfcc.shape[1] - (1 - mfcc.shape[1] % 2)) if mfcc.shape[1] >= 3 else 0
    if width >= 3:
        d1 = librosa.feature.delta(mfcc, width=width)
        d2 = librosa.feature.delta(mfcc, order=2, width=width)
    else:
        d1 = d2 = np.zeros_like(mfcc)
    return _functionals(np.vstack([mfcc, d1, d2]))


def librosa_features(y: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """MFCC functionals plus spectral, chroma, ZCR, RMS and pitch functionals."""
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
    return np.concatenate([mfcc_features(y, sr), _functionals(spectral), _functionals(log_f0)])


_RECIPES = {"mfcc": mfcc_features, "librosa": librosa_features}


class HandcraftedAdapter(ModelAdapter):
    """A librosa feature recipe as a one-layer model (layer 0)."""

    def __init__(self, recipe: str = "mfcc") -> None:
        self.recipe = _RECIPES[recipe]
        dim = self.forward([np.full(SAMPLE_RATE, 1e-3, dtype=np.float32)]).shape[-1]
        digest = hashlib.sha256(f"{recipe}:{_VERSION}:{librosa.__version__}".encode()).hexdigest()[:16]
        self.info = AdapterInfo(
            name=recipe,
            family="handcrafted",
            source=f"librosa {librosa.__version__}",
            revision=digest,
            sample_rate=SAMPLE_RATE,
            num_layers=1,
            hidden_size=dim,
            frame_rate=100.0,
            padding="none (one clip at a time)",
        )

    def forward(self, batch: Sequence[np.ndarray], pooling: str = "mean") -> np.ndarray:
        """Functionals are already utterance-level; ``pooling`` does not apply."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # librosa warns on silent/tonal-less clips; values stay finite
            out = [self.recipe(_min_length(np.asarray(y, dtype=np.float32))) for y in batch]
        return np.stack(out)[:, None, :].astype(np.float32)


def _min_length(y: np.ndarray, n: int = 2048) -> np.ndarray:
    """Zero-pad very short clips so every frame-based feature is defined."""
    return y if len(y) >= n else np.pad(y, (0, n - len(y)))


def _load(ctx: LoadContext) -> HandcraftedAdapter:
    return HandcraftedAdapter(ctx.name or "mfcc")


FAMILY = Family(
    "handcrafted",
    _load,
    title="hand-crafted features",
    checkpoints=(
        Checkpoint("mfcc", num_layers=1, hidden_size=120, packaged=True, baseline=True),
        Checkpoint("librosa", num_layers=1, hidden_size=170, packaged=True, baseline=True),
    ),
    layer0="the recipe's utterance-level features (the only layer)",
    source="librosa",
    has_weights=False,
)
FAMILIES = (FAMILY,)
