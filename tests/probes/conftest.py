import numpy as np
import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """BLAS and OpenMP on one thread, as ``probe_layers`` runs its jobs: on a busy machine, multi-threaded
    k-means and small matrix products spin-wait for cores and run many times slower."""
    with threadpool_limits(1):
        yield


def make_blobs(n_per_class: int = 30, n_classes: int = 4, dim: int = 16, sep: float = 6.0, seed: int = 0):
    """Well separated Gaussian blobs ``(N, dim)`` float32 with string labels ``c0..``."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim)) * sep
    y = np.repeat([f"c{i}" for i in range(n_classes)], n_per_class)
    X = centres[np.repeat(np.arange(n_classes), n_per_class)] + rng.normal(size=(len(y), dim))
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def blob_maker():
    return make_blobs


@pytest.fixture(scope="module")
def blobs():
    return make_blobs()


@pytest.fixture(scope="module")
def layered(blobs):
    """Features ``(N, 3, D)``: layer 0 pure noise, layer 1 separable blobs, layer 2 constant; plus labels and groups."""
    X, y = blobs
    rng = np.random.default_rng(1)
    features = np.stack([rng.normal(size=X.shape), X, np.ones_like(X)], axis=1).astype(np.float32)
    groups = np.array([f"spk{i % 10}" for i in range(len(y))])  # every speaker spans every class
    return features, y, groups
