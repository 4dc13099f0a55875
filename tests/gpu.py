"""CUDA checks: marked ``cuda`` and skipped where torch sees no GPU. On a GPU machine: ``pytest -m cuda``.

The CPU in float32 is the reference everywhere. CUDA float32 may differ by summation order and by the
TF32 convolutions that PyTorch allows by default (``torch.backends.cudnn.allow_tf32``); bf16 and fp16
by their rounding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest
import torch

CUDA_MARKS = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA_MARKS)]


def cuda_only(test: Callable) -> Callable:
    """Mark a test ``cuda`` and skip it without a GPU."""
    for mark in CUDA_MARKS:
        test = mark(test)
    return test


CUDA_FLOAT32_TOLERANCE = 1e-2  # worst clip x layer, relative L2, CUDA float32 (TF32 convolutions) vs CPU
LOW_PRECISION_TOLERANCE = 5e-2  # the same for bf16 and fp16 on CUDA


def relative_error(got: np.ndarray, exact: np.ndarray) -> float:
    """Worst relative L2 error over clips x layers of pooled features ``(B, L, D)``."""
    return float((np.linalg.norm(got - exact, axis=-1) / np.linalg.norm(exact, axis=-1)).max())


def check_cuda_parity(
    load: Callable[..., object], clips: Sequence[np.ndarray], batched: bool = True
) -> dict[str, float]:
    """``load(device=..., dtype=...)`` gives an adapter: CUDA float32, bf16 and fp16 against CPU float32.

    With ``batched``, also checks that a CUDA batch equals its clips run one at a time (within float32
    rounding; not for models whose features depend on the batch's padding). Returns the measured errors.
    """
    exact = load(device="cpu").forward(clips)
    errors = {}
    for dtype in (None, "bf16", "fp16"):
        adapter = load(device="cuda", dtype=dtype)
        got = adapter.forward(clips)
        assert got.dtype == np.float32 and got.shape == exact.shape and np.isfinite(got).all()
        errors[dtype or "float32"] = relative_error(got, exact)
        if dtype is None and batched:
            alone = np.concatenate([adapter.forward([clip]) for clip in clips])
            errors["batched"] = relative_error(got, alone)
    assert errors["float32"] < CUDA_FLOAT32_TOLERANCE, errors
    assert errors.get("batched", 0.0) < CUDA_FLOAT32_TOLERANCE, errors
    assert 1e-6 < errors["bf16"] < LOW_PRECISION_TOLERANCE, errors  # really computed in low precision
    assert 1e-6 < errors["fp16"] < LOW_PRECISION_TOLERANCE, errors
    return errors
