"""The ModelAdapter contract shared by every model family.

An adapter turns a batch of waveforms (float32 mono at ``sample_rate``) into per-layer pooled
vectors, using only real frames. Batching, caching, resampling and devices live outside.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

POOLINGS = ("mean", "mean+std")
RANDOM_SUFFIX = "+random"  # a random-init adapter is named <model>+random
DECODER_MARK = ":decoder@"  # a model's decoder states, probed as a model of their own (speechprobe.decoder_stage)


def decoder_model(model: str, prompt_id: str, rule: str) -> str:
    """``<model>:decoder@<prompt-id>`` (position rule ``last``) or ``...@<prompt-id>/<rule>``: the probed model
    of ``model``'s decoder states for one prompt and position rule."""
    return f"{model}{DECODER_MARK}{prompt_id}" + ("" if rule == "last" else f"/{rule}")


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
    weights: dict | None = None  # a local checkpoint dir: its weight files and their full SHA-256

    @classmethod
    def of_recipe(cls, name: str, family: str, source: str, recipe: str, hidden_size: int, frame_rate: float):
        """A fixed one-layer feature recipe at 16 kHz, one clip at a time; its revision hashes ``recipe``."""
        revision = hashlib.sha256(recipe.encode()).hexdigest()[:16]
        return cls(name, family, source, revision, 16000, 1, hidden_size, frame_rate, "none (one clip at a time)")


class Described:
    """``name`` and ``sample_rate`` read from ``info``: an adapter's, or an extraction engine's copy of it."""

    info: AdapterInfo
    # True when ``forward`` pools every layer's frames with ``models.pooling.masked_pool`` (or ``pooled_blocks``),
    # so a pooling-variants request (``pooling.variants_spec``) comes back as the variants side by side from
    # one forward; recipes that pool their own groups of frames, or no frames, leave it False.
    pools_frames: ClassVar[bool] = False

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def sample_rate(self) -> int:
        return self.info.sample_rate


class ModelAdapter(Described, ABC):
    """Per-layer pooled representations of a batch of clips.

    Layer ``0`` is the input-embedding output; layers ``1..N`` are the blocks, in order.
    """

    @property
    def num_layers(self) -> int:
        return self.info.num_layers

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

        The nuisance baselines override it; every other adapter ignores the facts.
        """
        return self.forward(batch, pooling)
