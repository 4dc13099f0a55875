"""The trainable encoder a family hands to fine-tuning (``Family.trainable``), and its shared helpers.

A family with weights declares ``trainable=<function>``: given its loaded adapter, the function returns a
:class:`Trainable`: the encoder module (every weight fine-tuning may touch), its blocks in order (``top-k``
unfreezes the last ``k``), the names of its attention projections (LoRA's targets) and ``frames``: a batch
of waveforms at the adapter's rate -> every layer the probes see (layer 0 = the blocks' input, then each
block's output, the last as extraction pools it), each ``(B, T, D)`` on one time axis, and each clip's
real-frame count ``(B,)``, with gradients (the adapter's own ``forward`` runs without them). The mean of
layer ``l``'s real frames is the extracted feature of layer ``l``. Families without trainable weights
(hand-crafted recipes, nuisance baselines) declare none and are refused by the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .lazy import Lazy

torch = Lazy("torch")

if TYPE_CHECKING:
    Frames = Callable[[Sequence[np.ndarray]], tuple[list[torch.Tensor], torch.Tensor]]


@dataclass
class Trainable:
    """An adapter's encoder as fine-tuning sees it (see the module docstring)."""

    encoder: torch.nn.Module
    blocks: Sequence[torch.nn.Module]
    attention: tuple[str, ...]  # module-name suffixes of the attention projections LoRA adapts
    hidden_size: int
    frames: Frames
    checkpointing: Callable[[bool], None]  # turn gradient checkpointing of the blocks on or off
    num_layers: int  # how many layers ``frames`` returns (the adapter's ``num_layers``)


def run_block(block: Callable[..., torch.Tensor], *args, checkpointed: bool = False) -> torch.Tensor:
    """``block(*args)``, recomputed in the backward pass instead of storing its activations when
    ``checkpointed`` and gradients are on (gradient checkpointing, for blocks the adapter calls itself)."""
    if checkpointed and torch.is_grad_enabled():
        from torch.utils.checkpoint import checkpoint

        return checkpoint(block, *args, use_reentrant=False)
    return block(*args)


def hf_checkpointing(model) -> Callable[[bool], None]:
    """The switch of a transformers model's own gradient checkpointing."""

    def switch(on: bool) -> None:
        if hasattr(model, "activation_checkpointing_enable"):  # transformers 5 (the older names warn)
            enable, disable, key = (
                model.activation_checkpointing_enable,
                model.activation_checkpointing_disable,
                "activation",
            )
        else:
            enable, disable, key = model.gradient_checkpointing_enable, model.gradient_checkpointing_disable, "gradient"
        if on:
            enable(**{f"{key}_checkpointing_kwargs": {"use_reentrant": False}})
        else:
            disable()

    return switch


def on_time_axis(frames: torch.Tensor, length: int) -> torch.Tensor:
    """``frames (B, T', D)`` at a lower frame rate brought to ``length`` frames by repeating each (the nearest
    earlier frame), so a layer that downsamples (Qwen2-Audio's output, 25 Hz) lines up with the blocks' frames."""
    if frames.shape[1] == length:
        return frames
    step = -(-length // frames.shape[1])
    return frames.repeat_interleave(step, dim=1)[:, :length]
