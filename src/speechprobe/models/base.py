"""The ModelAdapter contract shared by every model family.

An adapter turns a batch of waveforms (float32 mono at ``sample_rate``) into per-layer pooled
vectors, using only real frames. Batching, caching, resampling and devices live outside.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

POOLINGS = ("mean", "mean+std")


@dataclass(frozen=True)
class AdapterInfo:
    """Static facts about an adapter, as listed by ``speechprobe models`` and written to manifest.json."""

    name: str
    family: str
    source: str  # hub id, local path or "package:<name>"
    revision: str  # pinned revision or weights hash
    sample_rate: int
    num_layers: int  # pooled layers, including layer 0 (the input embedding output)
    hidden_size: int
    frame_rate: float  # hidden-state frames per second of audio
    padding: str  # how batches are padded and masked


class ModelAdapter(ABC):
    """Per-layer pooled representations of a batch of clips.

    Layer ``0`` is the input-embedding output; layers ``1..N`` are the blocks, in order.
    """

    info: AdapterInfo

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def sample_rate(self) -> int:
        return self.info.sample_rate

    @property
    def num_layers(self) -> int:
        return self.info.num_layers

    @property
    def layer_names(self) -> list[str]:
        return [str(i) for i in range(self.info.num_layers)]

    def options(self) -> dict[str, object]:
        """Options that change the features (window mode, ...); part of the cache key."""
        return {}

    def max_seconds(self) -> float | None:
        """Longest clip the model takes in one window, or None for no limit."""
        return None

    def window_seconds(self, duration: float) -> float:
        """Seconds of input the model actually processes for a clip (its batching cost)."""
        return duration

    @abstractmethod
    def forward(self, batch: Sequence[np.ndarray], pooling: str = "mean") -> np.ndarray:
        """Return float32 ``(len(batch), num_layers, dim)`` pooled over each clip's real frames."""

    def forward_clips(
        self, batch: Sequence[np.ndarray], facts: Sequence[Mapping[str, Any]], pooling: str = "mean"
    ) -> np.ndarray:
        """``forward`` with each clip's source facts (see ``data.clip.native_facts``).

        The nuisance baselines override it.
        """
        return self.forward(batch, pooling)


@contextmanager
def pooled_blocks(blocks: Sequence, mask, pooling: str, last: Callable | None = None) -> Iterator[list]:
    """Pool, while a model runs its own forward, the input of ``blocks[0]`` and each block's output.

    For adapters that let transformers run the model (its masks, relative positions and all)
    and only watch: the list yielded fills with ``(B, 1, D)`` pooled tensors, layer 0 first.
    ``mask`` is the ``(B, T)`` real-frame mask; ``last`` (e.g. the encoder's final layer norm)
    is applied to the last block's output before pooling.
    """
    from ..features.pooling import masked_pool

    pooled: list = []

    def on_input(module, args, kwargs):
        pooled.append(masked_pool((args[0] if args else kwargs["hidden_states"])[None], mask, pooling))

    def on_output(module, args, output):
        h = output[0] if isinstance(output, (tuple, list)) else output
        if last is not None and module is blocks[-1]:
            h = last(h)
        pooled.append(masked_pool(h[None], mask, pooling))

    handles = [blocks[0].register_forward_pre_hook(on_input, with_kwargs=True)]
    handles += [block.register_forward_hook(on_output) for block in blocks]
    try:
        yield pooled
    finally:
        for handle in handles:
            handle.remove()
    if len(pooled) != len(blocks) + 1:
        raise RuntimeError(f"saw {len(pooled)} of {len(blocks) + 1} layers (a block was skipped?)")
