"""The pre-training objectives, all on one transformers ``Wav2Vec2Model`` encoder started from the same seeded weights.

- ``contrastive``: wav2vec 2.0 (``Wav2Vec2ForPreTraining``: quantizer, sampled negatives, diversity loss), with
  transformers' ``_compute_mask_indices`` and ``_sample_negative_indices``. Its loss is transformers' (a sum over
  masked frames) divided by the number of masked frames, as fairseq normalises it.
- ``masked``: HuBERT's masked prediction: the encoder sees masked frames replaced by its learned mask embedding; a
  projection of each output frame is compared (cosine / 0.1) with one embedding per k-means cluster, and the
  cross-entropy against the frame's cluster id is averaged over masked frames only.
- ``regression``: data2vec's: at masked frames, a linear head on the student regresses (mean squared error) the
  average of the top ``TOP_K`` blocks of an EMA teacher that sees the unmasked input, each block's output
  instance-normalised over time; the teacher follows the student with a decay rising linearly from 0.999 to
  0.9999 over the steps, and is never trained by the optimiser.
- ``random``: the same encoder, untrained (the control).

Every objective's encoder is ``initial_encoder(config, seed)``, so the ``random`` checkpoint of a seed is the
exact starting point of that seed's trained ones. The masks (and negatives) of a step come from the global
NumPy generator, which the training loop seeds from (seed, step).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn
from transformers import Wav2Vec2Config, Wav2Vec2ForPreTraining, Wav2Vec2Model
from transformers.models.wav2vec2.modeling_wav2vec2 import _compute_mask_indices, _sample_negative_indices

LOGIT_TEMPERATURE = 0.1  # HuBERT's
TOP_K = 8  # data2vec's averaged teacher blocks (all of them in a smaller encoder)
EMA_DECAY = (0.999, 0.9999)  # data2vec's start and end


def initial_encoder(config: Wav2Vec2Config, seed: int) -> Wav2Vec2Model:
    """The seeded starting weights every objective shares."""
    torch.manual_seed(seed)
    return Wav2Vec2Model(config)


def time_mask(config: Wav2Vec2Config, batch: int, frames: int) -> np.ndarray:
    """wav2vec 2.0's span mask ``(batch, frames)`` (global NumPy generator), at least 2 masked frames per row."""
    return _compute_mask_indices((batch, frames), config.mask_time_prob, config.mask_time_length, min_masks=2)


def gumbel_temperature(step: int) -> float:
    """fairseq's wav2vec 2.0 schedule: 2 decaying by 0.999995 per update to at least 0.5."""
    return max(2.0 * 0.999995**step, 0.5)


class Contrastive(nn.Module):
    """wav2vec 2.0's objective."""

    def __init__(self, config: Wav2Vec2Config, seed: int) -> None:
        super().__init__()
        encoder = initial_encoder(config, seed)
        self.model = Wav2Vec2ForPreTraining(config)
        self.model.wav2vec2.load_state_dict(encoder.state_dict())

    @property
    def encoder(self) -> Wav2Vec2Model:
        return self.model.wav2vec2

    def forward(self, audio: torch.Tensor, mask: np.ndarray, step: int, targets=None) -> tuple[torch.Tensor, dict]:
        self.model.set_gumbel_temperature(gumbel_temperature(step))
        negatives = _sample_negative_indices(mask.shape, self.model.config.num_negatives, mask_time_indices=mask)
        out = self.model(
            audio,
            mask_time_indices=torch.from_numpy(mask).to(audio.device),
            sampled_negative_indices=torch.from_numpy(negatives).to(audio.device),
        )
        n = float(mask.sum())
        parts = {"contrastive": out.contrastive_loss, "diversity": out.diversity_loss}
        return out.loss / n, {k: float(v.detach()) / n for k, v in parts.items()}


def masked_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``logits (B, T, K)`` against ``targets (B, T)`` over the frames where ``mask``."""
    return nn.functional.cross_entropy(logits[mask].float(), targets[mask])


class Masked(nn.Module):
    """HuBERT's objective on the wav2vec2 encoder (targets given per step)."""

    def __init__(self, config: Wav2Vec2Config, seed: int, clusters: int) -> None:
        super().__init__()
        self.encoder = initial_encoder(config, seed)
        dim = config.proj_codevector_dim
        self.proj = nn.Linear(config.hidden_size, dim)
        self.label_embs = nn.Parameter(torch.randn(clusters, dim))

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of each projected frame with each cluster embedding, over the temperature."""
        x = nn.functional.normalize(self.proj(hidden), dim=-1)
        return x @ nn.functional.normalize(self.label_embs, dim=-1).T / LOGIT_TEMPERATURE

    def forward(self, audio: torch.Tensor, mask: np.ndarray, step: int, targets=None) -> tuple[torch.Tensor, dict]:
        m = torch.from_numpy(mask).to(audio.device)
        hidden = self.encoder(audio, mask_time_indices=m).last_hidden_state
        logits = self.logits(hidden)
        loss = masked_loss(logits, torch.from_numpy(targets).to(audio.device), m)
        accuracy = float((logits[m].argmax(-1).cpu() == torch.from_numpy(targets)[m.cpu()]).float().mean())
        return loss, {"masked_accuracy": accuracy}


class Regression(nn.Module):
    """data2vec's objective on the wav2vec2 encoder."""

    def __init__(self, config: Wav2Vec2Config, seed: int, steps: int) -> None:
        super().__init__()
        self.encoder = initial_encoder(config, seed)
        self.teacher = copy.deepcopy(self.encoder).requires_grad_(False)
        self.head = nn.Linear(config.hidden_size, config.hidden_size)
        self.steps = steps

    def decay(self, step: int) -> float:
        start, end = EMA_DECAY
        return start + (end - start) * min(1.0, step / max(1, self.steps - 1))

    @torch.no_grad()
    def update_teacher(self, step: int) -> None:
        """teacher = decay * teacher + (1 - decay) * student, parameter by parameter."""
        d = self.decay(step)
        for t, s in zip(self.teacher.parameters(), self.encoder.parameters()):
            t.mul_(d).add_(s.detach(), alpha=1 - d)

    @torch.no_grad()
    def targets(self, audio: torch.Tensor) -> torch.Tensor:
        """The average of the teacher's top blocks, each instance-normalised over time."""
        self.teacher.eval()
        hidden = self.teacher(audio, output_hidden_states=True).hidden_states[1:]
        top = hidden[-min(TOP_K, len(hidden)) :]
        return sum(nn.functional.instance_norm(h.float().transpose(1, 2)).transpose(1, 2) for h in top) / len(top)

    def forward(self, audio: torch.Tensor, mask: np.ndarray, step: int, targets=None) -> tuple[torch.Tensor, dict]:
        self.update_teacher(step)
        m = torch.from_numpy(mask).to(audio.device)
        y = self.targets(audio)
        pred = self.head(self.encoder(audio, mask_time_indices=m).last_hidden_state)
        return nn.functional.mse_loss(pred[m].float(), y[m]), {"target_std": float(y[m].std())}


class Untrained(nn.Module):
    """The control: the shared starting encoder, never updated."""

    def __init__(self, config: Wav2Vec2Config, seed: int) -> None:
        super().__init__()
        self.encoder = initial_encoder(config, seed)


def build(objective: str, config: Wav2Vec2Config, seed: int, clusters: int, steps: int) -> nn.Module:
    """The module of ``objective`` (its ``encoder`` attribute is what is saved and probed)."""
    if objective == "regression":
        return Regression(config, seed, steps)
    if objective == "contrastive":
        return Contrastive(config, seed)
    if objective == "masked":
        return Masked(config, seed, clusters)
    return Untrained(config, seed)
