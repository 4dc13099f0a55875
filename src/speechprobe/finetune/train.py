"""One fold of fine-tuning: train on the fit part, stop early on the validation part, score the test fold.

Batches are made by padded duration (:func:`speechprobe.features.batching.duration_batches`), as extraction's
are; the loss is cross-entropy weighted by the fit part's class frequencies; the weights of the epoch with the
best validation Macro-F1 score the test fold. A frozen encoder (``head``) is run once per clip: its frames
(every layer the head reads) are kept, up to a memory bound, and only the head trains over them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..features.batching import duration_batches
from ..probes.metrics import PROBE_SCORERS, macro_f1
from .data import class_weights
from .methods import Classifier, load_trained, trained_state

KEEP_BYTES = 4 * 2**30  # the frozen layers kept in memory (``head``); past this, recomputed when read


@dataclass
class FoldData:
    """One fold's items (indices into the task's clips) and the codes it trains on."""

    fold: int
    fit: np.ndarray
    val: np.ndarray
    test: np.ndarray
    train_codes: np.ndarray  # the codes training and early stopping read (shuffled in the control)
    true_codes: np.ndarray  # the codes the test fold is scored on


@dataclass
class FoldResult:
    """A fold's test scores, its curve and which items each part used (checked by the tests)."""

    scores: dict[str, float]
    curve: list[dict] = field(default_factory=list)  # epoch, split, metric, value
    best_epoch: int = 0
    seconds: float = 0.0
    used: dict[str, list[int]] = field(default_factory=dict)  # fit, val, test: items that reached each part
    state: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)  # the trained tensors kept
    layer_weights: list[float] = field(default_factory=list)  # the head's weight of each layer it read (sums to 1)


class Inputs:
    """The clips a model reads: waveforms, or (frozen encoder) the layers the head reads, computed once and kept
    (float32, ``(L, T, D)`` per clip) up to ``keep_bytes``; a clip past that is run through the encoder again
    whenever it is read (the same frames up to rounding, more time), so memory stays bounded with every layer kept."""

    def __init__(
        self,
        model: Classifier,
        audio: Sequence[np.ndarray],
        batch_seconds: float,
        rate: int,
        keep_bytes: float = KEEP_BYTES,
    ) -> None:
        self.model, self.audio, self.budget, self.rate = model, audio, batch_seconds, rate
        self.frames: dict[int, torch.Tensor] = {}
        self.keep_bytes, self.kept_bytes = keep_bytes, 0
        self.log: set[int] = set()  # the items that reached the model since the caller last set it

    def batches(self, items: np.ndarray, rng: np.random.Generator | None) -> list[list[int]]:
        """``items`` in batches of at most ``budget`` padded seconds (shuffled order when ``rng``)."""
        batches = list(duration_batches([int(i) for i in items], lambda i: len(self.audio[i]) / self.rate, self.budget))
        if rng is not None:
            rng.shuffle(batches)
        return batches

    def logits(self, batch: list[int]) -> torch.Tensor:
        self.log.update(batch)
        if not self.model.frozen:
            return self.model([self.audio[i] for i in batch])
        seq = self._frozen(batch)
        n_layers, dim = seq[0].shape[0], seq[0].shape[-1]
        padded = seq[0].new_zeros(n_layers, len(seq), max(s.shape[1] for s in seq), dim)
        for j, s in enumerate(seq):
            padded[:, j, : s.shape[1]] = s
        return self.model.head(padded, torch.tensor([s.shape[1] for s in seq], device=padded.device))

    def _frozen(self, batch: list[int]) -> list[torch.Tensor]:
        """Each clip's layers ``(L, T_real, D)`` from the frozen encoder: kept ones, the others computed now."""
        todo = [i for i in batch if i not in self.frames]
        new: dict[int, torch.Tensor] = {}
        if todo:
            with torch.no_grad():
                layers, lengths = self.model.encode([self.audio[i] for i in todo])
            for j, i in enumerate(todo):
                new[i] = torch.stack([x[j, : int(lengths[j])] for x in layers]).detach().float()
                size = new[i].numel() * new[i].element_size()
                if self.kept_bytes + size <= self.keep_bytes:
                    self.frames[i], self.kept_bytes = new[i], self.kept_bytes + size
        return [self.frames.get(i, new.get(i)) for i in batch]


def _autocast(device: torch.device, dtype: str | None):
    if dtype == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def predict(inputs: Inputs, items: np.ndarray, device: torch.device, dtype: str | None) -> np.ndarray:
    """Predicted codes of ``items``, in their order."""
    model = inputs.model
    was = model.training
    model.eval()
    out = np.empty(len(items), dtype=np.int64)
    where = {int(i): k for k, i in enumerate(items)}
    with torch.no_grad(), _autocast(device, dtype):
        for batch in inputs.batches(items, None):
            pred = inputs.logits(batch).argmax(-1).cpu().numpy()
            out[[where[i] for i in batch]] = pred
    model.train(was)
    return out


def train_fold(
    inputs: Inputs,
    data: FoldData,
    n_classes: int,
    *,
    epochs: int,
    patience: int,
    lrs: tuple[float, float],
    layer_lr: float | None = None,
    seed: int,
    device: torch.device,
    dtype: str | None,
) -> FoldResult:
    """Train ``inputs.model`` (already reset to its initial weights) on ``data.fit``; return the test scores of the
    epoch with the best validation Macro-F1. ``lrs``: (head, encoder) learning rates; ``layer_lr``: the head's layer
    weights' [default: the head's]."""
    t0 = time.perf_counter()
    model = inputs.model
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    layer = model.head.layer_logits
    head = [p for p in model.head.parameters() if p.requires_grad and p is not layer]
    encoder = [p for p in model.encoder.parameters() if p.requires_grad]
    groups = [{"params": head, "lr": lrs[0]}] + ([{"params": encoder, "lr": lrs[1]}] if encoder else [])
    groups += [{"params": [layer], "lr": layer_lr or lrs[0]}] if layer is not None else []
    optimiser = torch.optim.AdamW(groups, weight_decay=0.01)
    weights = torch.from_numpy(class_weights(data.train_codes[data.fit], n_classes)).to(device)
    loss_fn = nn.CrossEntropyLoss(weight=weights)
    labels = torch.from_numpy(data.train_codes).to(device)
    best, best_epoch, best_state, waited, curve = -1.0, 0, trained_state(model), 0, []
    used: dict[str, set[int]] = {"fit": set(), "val": set(), "test": set()}
    for epoch in range(1, epochs + 1):
        model.train(not model.frozen)
        model.head.train()
        total, seen = 0.0, 0
        inputs.log = used["fit"]
        for batch in inputs.batches(data.fit, rng):
            with _autocast(device, dtype):
                loss = loss_fn(inputs.logits(batch).float(), labels[batch])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total, seen = total + float(loss.detach()) * len(batch), seen + len(batch)
        inputs.log = used["val"]
        val_pred = predict(inputs, data.val, device, dtype)
        val_f1 = macro_f1(data.train_codes[data.val], val_pred, np.arange(n_classes))
        curve += [
            {"epoch": epoch, "split": "fit", "metric": "loss", "value": total / max(seen, 1)},
            {"epoch": epoch, "split": "val", "metric": "macro_f1", "value": float(val_f1)},
        ]
        if val_f1 > best:
            best, best_epoch, best_state, waited = float(val_f1), epoch, trained_state(model), 0
        else:
            waited += 1
            if waited >= patience:
                break
    load_trained(model, best_state)
    inputs.log = used["test"]
    pred = predict(inputs, data.test, device, dtype)
    labels_all = np.arange(n_classes)
    scores = {name: float(f(data.true_codes[data.test], pred, labels_all)) for name, f in PROBE_SCORERS.items()}
    used_lists = {k: sorted(int(i) for i in v) for k, v in used.items()}
    weights = model.head.layer_weights().tolist()
    return FoldResult(scores, curve, best_epoch, time.perf_counter() - t0, used_lists, best_state, weights)
