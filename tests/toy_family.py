"""A toy model family for the tests that add a family from outside speechprobe (no edit of src/).

The toy encoder cuts audio into 20 ms frames. Layer 0 is each frame's log energy (it knows loudness,
not pitch); layer 1 is a fixed random projection of each frame's log spectrum (it knows pitch).
``ENERGY`` is a one-layer hand-crafted baseline of the same recipe: layer 0 alone.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from speechprobe.models.base import ModelAdapter
from speechprobe.models.family import Checkpoint, Family, LoadContext
from speechprobe.models.pooling import frame_mask, masked_pool

FRAME = 320  # samples: 20 ms at 16 kHz
DIM = 16


class ToyEncoder(torch.nn.Module):
    """``(B, T, FRAME)`` frames -> ``(2, B, T, DIM)``: log energy (padded with zeros), projected log spectrum."""

    def __init__(self) -> None:
        super().__init__()
        self.project = torch.nn.Linear(FRAME // 2 + 1, DIM)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        energy = frames.pow(2).mean(-1, keepdim=True).clamp_min(1e-10).log()
        spectrum = torch.fft.rfft(frames).abs().clamp_min(1e-6).log()
        return torch.stack([torch.nn.functional.pad(energy, (0, DIM - 1)), self.project(spectrum)])


class ToyAdapter(ModelAdapter):
    def __init__(self, model: ToyEncoder, info, window: str) -> None:
        self.model, self.info, self.window = model.eval(), info, window

    def options(self) -> dict[str, object]:
        return {"window": self.window}

    def max_seconds(self) -> float | None:
        return 0.25 if self.window == "head" else None

    @torch.inference_mode()
    def forward(self, batch: Sequence[np.ndarray], pooling: str = "mean") -> np.ndarray:
        n = [max(1, len(a) // FRAME) for a in batch]
        frames = torch.zeros(len(batch), max(n), FRAME)
        for i, a in enumerate(batch):
            x = np.zeros(n[i] * FRAME, dtype=np.float32)
            x[: min(len(a), len(x))] = a[: len(x)]
            frames[i, : n[i]] = torch.from_numpy(x).view(n[i], FRAME)
        return masked_pool(self.model(frames), frame_mask(torch.tensor(n), max(n)), pooling).numpy()


def load_toy(ctx: LoadContext) -> ToyAdapter:
    torch.manual_seed(ctx.seed + 1000 * ctx.random_init)  # the untrained control gets other weights
    ctx.fingerprint = f"toy:v1:seed{ctx.seed}:random{int(ctx.random_init)}"
    info = ctx.info(sample_rate=16000, num_layers=2, hidden_size=DIM, frame_rate=50.0, padding="zero frames, masked")
    return ToyAdapter(ToyEncoder(), info, ctx.window)


TOY = Family(
    "toy",
    load_toy,
    title="Toy",
    checkpoints=(Checkpoint("toy-tiny", num_layers=2, hidden_size=DIM),),
    windows=("whole", "head"),
    layer0="frame log energy",
    source="test:toy",
)


class EnergyAdapter(ToyAdapter):
    """The toy's layer 0 as a model of its own (a baseline: log energy, no weights)."""

    def forward(self, batch: Sequence[np.ndarray], pooling: str = "mean") -> np.ndarray:
        return super().forward(batch, pooling)[:, :1]


def load_energy(ctx: LoadContext) -> EnergyAdapter:
    ctx.fingerprint = "toy-energy:v1"
    info = ctx.info(sample_rate=16000, num_layers=1, hidden_size=DIM, frame_rate=50.0, padding="zero frames, masked")
    return EnergyAdapter(ToyEncoder(), info, "whole")


ENERGY = Family(
    "toy-energy",
    load_energy,
    checkpoints=(Checkpoint("toy-energy", num_layers=1, hidden_size=DIM, baseline=True),),
    layer0="frame log energy (the only layer)",
    source="test:toy-energy",
    has_weights=False,
)


def write_pitch_tones(root: Path) -> Path:
    """12 tones of 0.6-0.85 s and their manifest: label = pitch (250 or 500 Hz), group = loudness (6 levels)."""
    root.mkdir(parents=True)
    rows = []
    for g, amp in enumerate([0.05, 0.1, 0.2, 0.3, 0.4, 0.5]):
        for label, hz in (("low", 250), ("high", 500)):
            t = np.arange(int(16000 * (0.6 + 0.05 * g))) / 16000
            path = root / f"{label}_{g}.wav"
            sf.write(path, (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32), 16000)
            rows.append([path.name, label, f"level{g}"])
    manifest = root / "manifest.csv"
    with manifest.open("w", newline="") as f:
        csv.writer(f).writerows([["path", "label", "group"], *rows])
    return manifest
