"""The three fine-tuning methods over a family's :class:`~speechprobe.models.trainable.Trainable` encoder.

- ``head``: the encoder frozen; an attention-pooling head (:class:`AttentionHead`) trained on its frames. The rung
  between mean pooling and fine-tuning.
- ``top-k``: the last ``k`` encoder blocks unfrozen, with the same head.
- ``lora``: low-rank adapters (``peft``) on the encoder's attention projections, with the same head.

The head reads a learned softmax-weighted sum of every layer the probes see (``--ft-layers all``, s3prl/SUPERB's
downstream recipe), or the last layer alone (``last``); real frames only (the padding rule of the probes): padded
frames get no attention weight.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ConfigError
from ..models.pooling import frame_mask
from ..models.trainable import Trainable
from .settings import FT_LAYERS, FinetuneSettings


class AttentionHead(nn.Module):
    """A learned weighting of the layers, attention pooling over a clip's real frames, then a linear classifier.

    With ``L > 1`` layers ``x_l``: ``h_t = LN(Σ_l w_l LN0(x_lt))``, ``w = softmax(c)`` over layers (``c`` starts at
    0: every layer weighs the same; ``LN0``: a layer norm without weights, so a layer's scale does not buy it
    weight); with one layer ``h_t = LN(x_t)``. Then ``score_t = v · tanh(W h_t)``; ``a = softmax(score)`` over real
    frames; ``logits = U (Σ a_t h_t)``.
    """

    def __init__(self, dim: int, n_classes: int, hidden: int = 128, n_layers: int = 1) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.score = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.out = nn.Linear(dim, n_classes)
        self.layer_logits = nn.Parameter(torch.zeros(n_layers)) if n_layers > 1 else None

    def layer_weights(self) -> torch.Tensor:
        """The weight of each layer (sums to 1; ``[1.]`` with one layer)."""
        if self.layer_logits is None:
            return torch.ones(1)
        return torch.softmax(self.layer_logits.detach().float(), dim=0)

    def mix(self, layers: Sequence[torch.Tensor] | torch.Tensor) -> torch.Tensor:
        """``(B, T, D)``: the layers ``(L, B, T, D)`` (a tensor or a list) mixed as the class docstring says."""
        if self.layer_logits is None:
            if len(layers) != 1:
                raise ValueError(f"a one-layer head got {len(layers)} layers")
            return self.norm(layers[0].float())
        if len(layers) != len(self.layer_logits):
            raise ValueError(f"a {len(self.layer_logits)}-layer head got {len(layers)} layers")
        w = torch.softmax(self.layer_logits, dim=0)
        dim = self.norm.normalized_shape
        return self.norm(sum(w[i] * F.layer_norm(x.float(), dim) for i, x in enumerate(layers)))

    def forward(self, layers: Sequence[torch.Tensor] | torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h = self.mix(layers)
        scores = self.score(h).squeeze(-1)
        real = frame_mask(lengths.to(h.device), h.shape[1])
        weights = torch.softmax(scores.masked_fill(~real, float("-inf")), dim=-1)
        return self.out(torch.einsum("bt,btd->bd", weights, h))


class Classifier(nn.Module):
    """A trainable encoder and its head: a batch of waveforms -> class logits. ``every_layer``: the head reads every
    layer of ``trainable.frames`` (``--ft-layers all``), else the last."""

    def __init__(self, trainable: Trainable, head: AttentionHead, frozen: bool, every_layer: bool = True) -> None:
        super().__init__()
        self.encoder = trainable.encoder
        self.head = head
        self.trainable = trainable
        self.frozen = frozen  # the encoder runs without gradients (``head``)
        self.every_layer = every_layer

    def encode(self, audio: Sequence[np.ndarray]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The layers the head reads (each ``(B, T, D)``) and real-frame counts (no gradients when the encoder is
        frozen)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            layers, lengths = self.trainable.frames(audio)
        return (list(layers) if self.every_layer else [layers[-1]]), lengths

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


def classifier(trainable: Trainable, n_classes: int, trained: bool, seed: int, layers: str = "all") -> Classifier:
    """``trainable`` (prepared by :func:`prepare`) with a fresh head for ``n_classes``, initialised from ``seed``,
    reading ``layers``: ``all`` (a learned weighting of every layer) or ``last``."""
    if layers not in FT_LAYERS:
        raise ConfigError(f"--ft-layers {layers!r}: choose one of {', '.join(FT_LAYERS)}")
    torch.manual_seed(seed)
    device = next(trainable.encoder.parameters()).device
    n_layers = trainable.num_layers if layers == "all" else 1
    head = AttentionHead(trainable.hidden_size, n_classes, n_layers=n_layers).to(device)
    return Classifier(trainable, head, frozen=not trained, every_layer=layers == "all")


def trained_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every trained tensor (the head and the encoder's unfrozen or adapter weights)."""
    return {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}


def load_trained(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Put back tensors of :func:`trained_state`."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for k, v in state.items():
            params[k].copy_(v)
