"""Masked pooling over real frames (models/pooling.py)."""

import pytest
import torch

from speechprobe.errors import ConfigError
from speechprobe.models.pooling import frame_mask, masked_pool


def test_masked_mean_ignores_padding():
    h = torch.zeros(2, 2, 4, 3)  # (L, B, T, D)
    h[:, 0, :2] = 1.0
    h[:, 0, 2:] = 100.0  # padding of clip 0
    h[:, 1] = torch.arange(4.0)[:, None]
    mask = frame_mask(torch.tensor([2, 4]), 4)
    out = masked_pool(h, mask, "mean")
    assert out.shape == (2, 2, 3)
    assert torch.allclose(out[0], torch.ones(2, 3))
    assert torch.allclose(out[1], torch.full((2, 3), 1.5))


def test_mean_std_pooling_over_real_frames():
    h = torch.tensor([1.0, 3.0, 99.0])[None, None, :, None]
    out = masked_pool(h, frame_mask(torch.tensor([2]), 3), "mean+std")
    assert out.shape == (1, 1, 2)
    assert out[0, 0].tolist() == pytest.approx([2.0, 1.0])


def test_unknown_pooling_is_a_config_error():
    with pytest.raises(ConfigError, match="mean\\+std"):
        masked_pool(torch.zeros(1, 1, 1, 1), torch.ones(1, 1, dtype=torch.bool), "median")
