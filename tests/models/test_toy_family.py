"""A third-party model family, declared in this test module (no edit of src/), run end to end.

The toy encoder cuts audio into 20 ms frames. Layer 0 is each frame's log energy (it knows loudness,
not pitch); layer 1 is a fixed random projection of each frame's log spectrum (it knows pitch). On
tones whose pitch is the label and whose loudness is the group, layer 1 must separate the labels
perfectly and layer 0 must not.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from speechprobe import plugins
from speechprobe.config import RunConfig
from speechprobe.errors import ConfigError
from speechprobe.models import registry
from speechprobe.models.base import ModelAdapter
from speechprobe.models.family import Checkpoint, Family, LoadContext
from speechprobe.models.pooling import frame_mask, masked_pool
from speechprobe.pipeline import run

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


@pytest.fixture
def toy_registered(monkeypatch):
    """Register the toy family for one test; the registry is restored afterwards."""
    monkeypatch.setattr(registry, "_FAMILIES", dict(registry.families()))
    return registry.register(TOY)


@pytest.fixture
def pitch_tones(tmp_path):
    """12 one-second-ish tones: label = pitch (250 or 500 Hz), group = loudness (6 levels)."""
    root = tmp_path / "tones"
    root.mkdir()
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


def test_registered_family_is_listed_and_its_windows_validate(toy_registered):
    assert registry.checkpoints()["toy-tiny"].family == "toy"
    assert registry.family_of_model_type("toy") is None  # no transformers model type declared
    assert {"full", "trimmed", "whole", "head"} <= set(registry.window_modes())
    RunConfig.of(models=["toy-tiny"], tasks=["x"], out=None, window="head").validate()
    with pytest.raises(ConfigError, match="--window 'tail': choose full, .*head"):
        RunConfig.of(models=["toy-tiny"], tasks=["x"], out=None, window="tail").validate()


def test_pipeline_runs_a_registered_family_end_to_end(toy_registered, pitch_tones, tmp_path):
    cfg = RunConfig.of(
        models=["toy-tiny"],
        tasks=[str(pitch_tones)],
        out=tmp_path / "run",
        cache=tmp_path / "cache",
        folds=3,
        probes=["knn"],
        baselines=[],
        progress=False,
        permutations=0,
        embeddings=False,
        report=False,
    )
    results = run(cfg)
    f1 = results[results.metric == "macro_f1"].groupby("layer")["value"].mean()
    assert set(results["model"]) == {"toy-tiny"} and list(f1.index) == [0, 1]
    assert f1[1] == 1.0  # the spectrum layer knows pitch on held-out loudness groups
    assert f1[0] < 0.8  # log energy is equal for both pitches: no better than chance
    manifest = json.loads((cfg.out / "manifest.json").read_text())
    info = manifest["models"]["toy-tiny"]
    assert info["family"] == "toy" and info["source"] == "test:toy" and info["options"] == {"window": "whole"}
    assert info["revision"] == "toy:v1:seed0:random0"
    assert len(pd.read_csv(cfg.out / "results.csv")) == len(results)


def test_random_init_control_of_a_registered_family(toy_registered):
    adapter = registry.load_model("toy-tiny", window="head", random_init=True, seed=3)
    assert adapter.name == "toy-tiny+random" and adapter.info.revision == "toy:v1:seed3:random1"
    assert adapter.max_seconds() == 0.25


def test_an_installed_plugin_registers_through_its_entry_point(monkeypatch):
    class EntryPoint:
        name, value = "toy", "toy_plugin:TOY"

        def load(self):
            return [TOY]

    monkeypatch.setattr(registry, "_FAMILIES", {})
    monkeypatch.setattr(registry, "_loaded", False)
    monkeypatch.setattr(
        plugins, "entry_points", lambda group: [EntryPoint()] if group == "speechprobe.families" else []
    )
    assert "toy-tiny" in registry.checkpoints() and "whisper-base" in registry.checkpoints()
    assert list(registry.families())[-1] == "toy"
