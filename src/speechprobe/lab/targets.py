"""HuBERT-style frame targets: k-means cluster ids of frame features, fitted on the training audio only.

Iteration 1 clusters MFCCs (13 coefficients with deltas and delta-deltas, 25 ms windows every 20 ms, librosa);
iteration 2 clusters a layer of the model being trained. ``MiniBatchKMeans`` (scikit-learn) is fitted on the
training corpus's frames (at most ``MAX_FIT_FRAMES``, drawn with the seed) and assigns every training frame its id;
no other audio reaches it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.cluster import MiniBatchKMeans

from .corpus import HOP, SAMPLE_RATE, Corpus

WINDOW = 400  # 25 ms: the convolutional encoder's receptive field
MAX_FIT_FRAMES = 200_000


def n_frames(n_samples: int) -> int:
    """Frames of the convolutional encoder (and of :func:`mfcc_frames`) for ``n_samples``."""
    return max(0, 1 + (n_samples - WINDOW) // HOP)


def mfcc_frames(audio: np.ndarray) -> np.ndarray:
    """(frames, 39) MFCCs with deltas, one row per encoder frame."""
    import librosa

    m = librosa.feature.mfcc(y=audio, sr=SAMPLE_RATE, n_mfcc=13, n_fft=WINDOW, hop_length=HOP, n_mels=40, center=False)
    feats = np.concatenate([m, librosa.feature.delta(m, width=3), librosa.feature.delta(m, width=3, order=2)])
    return feats.T[: n_frames(len(audio))].astype(np.float32)


def fit_kmeans(frames: list[np.ndarray], k: int, seed: int) -> MiniBatchKMeans:
    """k-means over the rows of ``frames`` (a seeded sample of at most ``MAX_FIT_FRAMES``)."""
    X = np.concatenate(frames)
    if len(X) > MAX_FIT_FRAMES:
        X = X[np.random.default_rng(seed).choice(len(X), MAX_FIT_FRAMES, replace=False)]
    return MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096).fit(X)


def frame_targets(
    corpus: Corpus,
    k: int,
    seed: int,
    features: Callable[[np.ndarray], np.ndarray] = mfcc_frames,
    progress: bool = False,
) -> tuple[list[np.ndarray], MiniBatchKMeans]:
    """Each training clip's frame ids (int64, one per encoder frame) and the k-means fitted on its frames."""
    from tqdm.auto import tqdm

    frames = [features(c) for c in tqdm(corpus.clips, desc="k-means target features", disable=not progress)]
    km = fit_kmeans(frames, k, seed)
    return [km.predict(f).astype(np.int64) for f in frames], km


def crop_targets(targets: list[np.ndarray], clips: np.ndarray, starts: np.ndarray, frames: int) -> np.ndarray:
    """``(batch, frames)`` targets of a batch's crops (clip indices, start frames)."""
    return np.stack([targets[i][s : s + frames] for i, s in zip(clips, starts)])
