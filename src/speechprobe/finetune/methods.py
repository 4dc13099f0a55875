"""The three fine-tuning methods over a family's :class:`~speechprobe.models.trainable.Trainable` encoder.

- ``head``: the encoder frozen; an attention-pooling head (:class:`AttentionHead`) trained on its last layer's
  frames. The rung between mean pooling and fine-tuning.
- ``top-k``: the last ``k`` encoder blocks unfrozen, with the same head.
- ``lora``: low-rank adapters (``peft``) on the encoder's attention projections, with the same head.

The head reads real frames only (the padding rule of the probes): padded frames get no attention weight.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..models.pooling import frame_mask
from ..models.trainable import Trainable
from .settings import FinetuneSettings


class AttentionHead(nn.Module):
    """Attention pooling over a clip's real frames, then a linear classifier.

    ``score_t = v · tanh(W h_t)``; ``a = softmax(score)`` over real frames; ``logits = U (Σ a_t h_t)``.
    """

    def __init__(self, dim: int, n_classes: int, hidden: int = 128) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.score = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.out = nn.Linear(dim, n_classes)

    def forward(self, frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h = self.norm(frames.float())
        scores = self.score(h).squeeze(-1)
        real = frame_mask(lengths.to(h.device), h.shape[1])
        weights = torch.softmax(scores.masked_fill(~real, float("-inf")), dim=-1)
        return self.out(torch.einsum("bt,btd->bd", weights, h))


class Classifier(nn.Module):
    """A trainable encoder and its head: a batch of waveforms -> class logits."""

    def __init__(self, trainable: Trainable, head: AttentionHead, frozen: bool) -> None:
        super().__init__()
        self.encoder = trainable.encoder
        self.head = head
        self.trainable = trainable
        self.frozen = frozen  # the encoder runs without gradients (``head``)

    def encode(self, audio: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder's last-layer frames and real-frame counts (no gradients when the encoder is frozen)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            return self.trainable.frames(audio)

    def forward(self, audio: Sequence[np.ndarray]) -> torch.Tensor:
        return self.head(*self.encode(audio))


def prepare(trainable: Trainable, method: str, settings: FinetuneSettings) -> bool:
    """Freeze, unfreeze or adapt ``trainable`` in place for ``method``; returns whether the encoder trains."""
    encoder = trainable.encoder
    encoder.requires_grad_(False)
    if method == "top-k":
        if settings.top_k > len(trainable.blocks):
            raise ConfigError(f"--ft-top-k {settings.top_k}: the encoder has only {len(trainable.blocks)} blocks")
        for block in list(trainable.blocks)[-settings.top_k :]:
            block.requires_grad_(True)
    elif method == "lora":
        from peft import LoraConfig, inject_adapter_in_model

        config = LoraConfig(
            r=settings.lora_rank, lora_alpha=settings.lora_alpha, target_modules=list(trainable.attention)
        )
        inject_adapter_in_model(config, encoder)
        for name, param in encoder.named_parameters():
            param.requires_grad_("lora_" in name)
    elif method != "head":
        raise ConfigError(f"--finetune {method!r}: choose lora, top-k or head")
    trained = any(p.requires_grad for p in encoder.parameters())
    trainable.checkpointing(settings.checkpointing and trained)
    encoder.train(trained)
    return trained


def classifier(trainable: Trainable, n_classes: int, trained: bool, seed: int) -> Classifier:
    """``trainable`` (prepared by :func:`prepare`) with a fresh head for ``n_classes``, initialised from ``seed``."""
    torch.manual_seed(seed)
    device = next(trainable.encoder.parameters()).device
    head = AttentionHead(trainable.hidden_size, n_classes).to(device)
    return Classifier(trainable, head, frozen=not trained)


def trained_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every trained tensor (the head and the encoder's unfrozen or adapter weights)."""
    return {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}


def load_trained(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Put back tensors of :func:`trained_state`."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for k, v in state.items():
            params[k].copy_(v)
