"""A pre-training run's files, each written atomically.

``OUT/`` holds an ordinary transformers checkpoint of the encoder (``config.json``, ``model.safetensors``,
``preprocessor_config.json``: model type ``wav2vec2``, loadable by ``--models OUT``), ``pretext_loss.csv`` and
``lab.json`` (settings, corpus digest, steps done, status). ``OUT/state/`` holds the training state of the last
checkpoint: ``step-N.pt`` (every module's weights, optimiser and schedule, the loss rows, any re-clustered
targets), named by ``state/latest.json``, which is replaced last, so an interrupted write leaves the previous
checkpoint in force. The random generators need no saving: each step reseeds them from (seed, step).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import torch
from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2Model

from ..files import atomic_write, write_text
from ..models.hub import quiet_transformers

LAB_JSON = "lab.json"
LOSS_CSV = "pretext_loss.csv"
STATE = "state"


def save_encoder(encoder: Wav2Vec2Model, out: Path) -> None:
    """The encoder as a transformers checkpoint in ``out`` (each file replaced atomically)."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".save-") as tmp, quiet_transformers():
        encoder.save_pretrained(tmp, safe_serialization=True)
        Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True).save_pretrained(tmp)
        for f in sorted(Path(tmp).iterdir()):
            os.replace(f, out / f.name)


def write_losses(rows: list[dict], out: Path) -> None:
    atomic_write(out / LOSS_CSV, pd.DataFrame(rows, columns=_columns(rows)).to_csv(index=False).encode())


def _columns(rows: list[dict]) -> list[str]:
    extra = sorted({k for r in rows for k in r} - {"step", "loss", "lr", "seconds"})
    return ["step", "loss", "lr", "seconds", *extra]


def read_lab(out: Path) -> dict | None:
    path = out / LAB_JSON
    return json.loads(path.read_text()) if path.is_file() else None


def write_lab(out: Path, record: dict) -> None:
    write_text(out / LAB_JSON, json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")


def save_state(out: Path, step: int, state: dict) -> None:
    """Training state at ``step``; the pointer moves last, then older states go."""
    folder = out / STATE
    name = f"step-{step}.pt"
    atomic_write(folder / name, lambda fh: torch.save(state, fh))
    write_text(folder / "latest.json", json.dumps({"step": step, "file": name}) + "\n")
    for old in folder.glob("step-*.pt"):
        if old.name != name:
            old.unlink()


def load_state(out: Path) -> dict | None:
    """The last checkpoint's state, or None."""
    pointer = out / STATE / "latest.json"
    if not pointer.is_file():
        return None
    return torch.load(out / STATE / json.loads(pointer.read_text())["file"], weights_only=False)


def clear_state(out: Path) -> None:
    """Drop the training state once the run is done (the checkpoint and the curve stay)."""
    shutil.rmtree(out / STATE, ignore_errors=True)
