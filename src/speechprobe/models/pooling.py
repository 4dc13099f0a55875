"""Masked pooling over time (never over padding), and pooling while a model runs its own forward."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from ..errors import ConfigError
from .base import POOLINGS
from .lazy import Lazy

torch = Lazy("torch")


def frame_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """Boolean ``(B, T)`` mask, True on the first ``lengths[b]`` frames of row ``b``."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def pool_frames(frames: np.ndarray, pooling: str = "mean") -> np.ndarray:
    """``(n_features, n_frames)`` of one clip pooled over time, for the hand-crafted recipes.

    The same statistics as :func:`masked_pool`: the mean, and with ``mean+std`` the population std.
    """
    if pooling not in POOLINGS:
        raise ConfigError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
    if pooling == "mean":
        return frames.mean(axis=1)
    return np.concatenate([frames.mean(axis=1), frames.std(axis=1)])


def masked_pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str = "mean") -> torch.Tensor:
    """Pool ``hidden`` of shape ``(L, B, T, D)`` over real frames given by ``mask`` ``(B, T)``.

    Returns ``(B, L, D)`` for ``mean`` and ``(B, L, 2D)`` for ``mean+std`` (population std).
    Accumulates in float32 whatever the input dtype. A pooling-variants request (:func:`variants_spec`)
    returns its variants side by side on the last axis, each computed as it would be alone.
    """
    if pooling not in POOLINGS:
        return torch.cat([_variant(hidden, mask, part) for part in parse_variants(pooling)], dim=-1)
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


# Pooling variants (issue 28): the mean of the first or last k real frames, and the max over real frames.
VARIANT_KINDS = ("first", "last", "max")


def variant_name(kind: str, k: int | None = None) -> str:
    """A variant's pooling name: ``first:K``, ``last:K`` (K real frames) or ``max``."""
    return f"{kind}:{k}" if kind in ("first", "last") else kind


def variants_spec(poolings: Sequence[str]) -> str:
    """One pooling string asking a frame-pooling adapter for several poolings from one forward."""
    for p in poolings:
        parse_variants(p)
    return "|".join(poolings)


def parse_variants(spec: str) -> list[str]:
    """The poolings of a :func:`variants_spec` string (or of one pooling name); a one-line error for others."""
    parts = spec.split("|")
    for part in parts:
        kind, _, k = part.partition(":")
        edge = kind in ("first", "last") and k.isdigit() and int(k) >= 1
        if not (part in POOLINGS or part == "max" or edge):
            raise ConfigError(
                f"unknown pooling {part!r}; choose one of {', '.join(POOLINGS)}, first:K, last:K (K >= 1 frames), max"
            )
    return parts


def split_pooled(features: np.ndarray, poolings: Sequence[str]) -> dict[str, np.ndarray]:
    """``(B, L, W)`` features of a :func:`variants_spec` request, split into each pooling's ``(B, L, W_p)``."""
    units = [2 if p == "mean+std" else 1 for p in poolings]
    dim, rest = divmod(features.shape[-1], sum(units))
    if rest:
        raise ValueError(f"{features.shape[-1]} features cannot hold the poolings {', '.join(poolings)}")
    edges = np.cumsum([0, *units]) * dim
    return {p: features[..., a:b] for p, a, b in zip(poolings, edges[:-1], edges[1:])}


def _variant(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """One pooling of a variants request, ``(B, L, D')``, over real frames only."""
    kind, _, k = pooling.partition(":")
    if kind in POOLINGS:
        return masked_pool(hidden, mask, kind)
    if kind == "max":
        h = hidden.float().masked_fill(~mask.bool()[None, :, :, None], float("-inf")).amax(dim=2)  # (L, B, D)
        return torch.where(mask.any(dim=1)[None, :, None], h, 0.0).transpose(0, 1).contiguous()
    rank = mask.long().cumsum(dim=1)  # 1 on the first real frame, n on the last
    n = rank[:, -1:]
    keep = rank <= int(k) if kind == "first" else rank > n - int(k)
    return masked_pool(hidden, mask.bool() & keep, "mean")


def pooled_blocks(blocks: Sequence, mask, pooling: str, last: Callable | None = None):
    """Pool, while a model runs its own forward, the input of ``blocks[0]`` and each block's output.

    For adapters that let transformers run the model (its masks, relative positions and all)
    and only watch: the list yielded fills with ``(B, 1, D)`` pooled tensors, layer 0 first.
    ``mask`` is the ``(B, T)`` real-frame mask; ``last`` (e.g. the encoder's final layer norm)
    is applied to the last block's output before pooling.
    """
    return block_outputs(blocks, last, keep=lambda h: masked_pool(h[None], mask, pooling))


@contextmanager
def block_outputs(blocks: Sequence, last: Callable | None = None, keep: Callable = lambda h: h) -> Iterator[list]:
    """Collect, while a model runs its own forward, ``keep`` of the input of ``blocks[0]`` and of each block's
    output ``(B, T, D)`` (``last``, e.g. the final layer norm, applied to the last block's first), layer 0 first.
    Gradients flow through what is kept; the hooks are gone when the block exits (before any backward pass
    recomputes a block under gradient checkpointing)."""
    layers: list = []

    def on_input(module, args, kwargs):
        layers.append(keep(args[0] if args else kwargs["hidden_states"]))

    def on_output(module, args, output):
        h = output[0] if isinstance(output, (tuple, list)) else output
        layers.append(keep(last(h) if last is not None and module is blocks[-1] else h))

    handles = [blocks[0].register_forward_pre_hook(on_input, with_kwargs=True)]
    handles += [block.register_forward_hook(on_output) for block in blocks]
    try:
        yield layers
    finally:
        for handle in handles:
            handle.remove()
    if len(layers) != len(blocks) + 1:
        raise RuntimeError(f"saw {len(layers)} of {len(blocks) + 1} layers (a block was skipped?)")
