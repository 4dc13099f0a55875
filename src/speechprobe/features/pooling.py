"""Masked pooling over time: never over padding."""

from __future__ import annotations

import torch

from ..errors import ConfigError
from ..models.base import POOLINGS


def frame_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """Boolean ``(B, T)`` mask, True on the first ``lengths[b]`` frames of row ``b``."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def masked_pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str = "mean") -> torch.Tensor:
    """Pool ``hidden`` of shape ``(L, B, T, D)`` over real frames given by ``mask`` ``(B, T)``.

    Returns ``(B, L, D)`` for ``mean`` and ``(B, L, 2D)`` for ``mean+std`` (population std).
    Accumulates in float32 whatever the input dtype.
    """
    if pooling not in POOLINGS:
        raise ConfigError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
    h = hidden.float()
    m = mask.to(h.dtype)
    count = m.sum(dim=1).clamp_min(1.0)[None, :, None]  # (1, B, 1)
    # Masked sums as a (1, T) x (T, D) product per layer and clip: no (L, B, T, D) temporary.
    mean = torch.matmul(m[None, :, None, :], h)[:, :, 0] / count  # (L, B, D)
    if pooling == "mean":
        out = mean
    else:
        var = ((h - mean[:, :, None, :]) ** 2 * m[None, :, :, None]).sum(dim=2) / count
        out = torch.cat([mean, var.clamp_min(0).sqrt()], dim=-1)
    return out.transpose(0, 1).contiguous()
