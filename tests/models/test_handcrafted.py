"""Hand-crafted baselines get the models' pooling statistics (--pooling), with their registry sizes."""

import numpy as np
import pytest
import torch

from speechprobe.errors import ConfigError
from speechprobe.models.handcrafted import HandcraftedAdapter, mfcc_features
from speechprobe.models.pooling import frame_mask, masked_pool, pool_frames
from speechprobe.models.registry import checkpoints, default_baselines, load_model


@pytest.fixture(scope="module")
def tone():
    t = np.arange(12000) / 16000
    return (0.3 * np.sin(2 * np.pi * 220 * t) * np.linspace(0.2, 1, len(t))).astype(np.float32)


# Where mean+std keeps the frame means: each block of frame features (MFCCs with deltas; spectral, chroma,
# ZCR and RMS; log f0) gives its means, then its stds (recipe version 1's layout, unchanged).
MEANS = {"mfcc": list(range(60)), "librosa": [*range(60), *range(120, 144), 168]}


@pytest.mark.parametrize("name, frame_dims", [("mfcc", 60), ("librosa", 85)])
def test_pooling_gives_frame_means_or_means_and_stds(name, frame_dims, tone):
    adapter = load_model(name)
    mean, both = adapter.forward([tone], "mean"), adapter.forward([tone], "mean+std")
    assert mean.shape == (1, 1, frame_dims) and both.shape == (1, 1, 2 * frame_dims)
    np.testing.assert_array_equal(both[..., MEANS[name]], mean)
    stds = np.delete(both, MEANS[name], axis=-1)
    assert (stds[..., :60] > 0).all()  # the MFCC stds of a tone whose level rises
    assert checkpoints()[name].hidden_size == adapter.info.hidden_size == frame_dims
    with pytest.raises(ConfigError, match="mean\\+std"):
        adapter.forward([tone], "max")


def test_frame_pooling_is_the_models_masked_pooling():
    """The same statistics as a model's layer: mean and population std over the frames."""
    frames = np.random.default_rng(0).normal(size=(5, 40))
    hidden = torch.from_numpy(frames.T[None, None].astype(np.float32))  # (L=1, B=1, T, D)
    pooled = masked_pool(hidden, frame_mask(torch.tensor([40]), 40), "mean+std")[0, 0].numpy()
    np.testing.assert_allclose(pool_frames(frames, "mean+std"), pooled, rtol=1e-5)


def test_mfcc_recipe_pools_its_60_frame_features(tone):
    import librosa

    mfcc = librosa.feature.mfcc(y=tone, sr=16000, n_mfcc=20)
    d1, d2 = librosa.feature.delta(mfcc, width=9), librosa.feature.delta(mfcc, order=2, width=9)
    np.testing.assert_allclose(mfcc_features(tone, pooling="mean"), np.vstack([mfcc, d1, d2]).mean(axis=1), rtol=1e-6)


def test_recipe_version_2_is_in_the_cache_key():
    """Version 1 stored mean+std features under --pooling mean: they must never be reused."""
    import hashlib

    import librosa

    old = hashlib.sha256(f"mfcc:1:{librosa.__version__}".encode()).hexdigest()[:16]
    assert HandcraftedAdapter("mfcc").info.revision != old


def test_default_baselines_are_the_registrys():
    assert default_baselines() == ("mfcc", "librosa", "egemaps", "prosody", "duration", "channel", "loudness")
