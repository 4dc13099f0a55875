"""The lab tests' micro encoder (a step in milliseconds), its settings, and a run cut off part-way."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import Wav2Vec2Config

from speechprobe.lab.arch import PRETRAIN_MASK
from speechprobe.lab.config import PretrainSettings, TrainSettings
from speechprobe.lab.corpus import Corpus
from speechprobe.lab.train import pretrain


def micro_config() -> Wav2Vec2Config:
    """A wav2vec2 configuration small enough for a test step in well under a second."""
    return Wav2Vec2Config(
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(8,) * 7,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        num_codevectors_per_group=8,
        codevector_dim=8,
        proj_codevector_dim=8,
        num_negatives=5,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        **PRETRAIN_MASK,
    )


def settings(arch: str, out: Path, objective: str, seed: int = 0, steps: int = 3, **kw) -> PretrainSettings:
    train = TrainSettings(arch=arch, steps=steps, batch_size=2, crop_seconds=1.0, clusters=4, save_every=2, **kw)
    return PretrainSettings(objective=objective, out=out, seed=seed, train=train)


def weights(out: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(out / "model.safetensors")


def cut_off(job: PretrainSettings, corpus: Corpus, at_step: int, monkeypatch) -> None:
    """Train ``job`` here until step ``at_step`` starts, where the run is interrupted (Ctrl-C)."""
    original = Corpus.batch

    def interrupt(self, seed, step, *args):
        if step == at_step:
            raise KeyboardInterrupt
        return original(self, seed, step, *args)

    with monkeypatch.context() as patch:
        patch.setattr(Corpus, "batch", interrupt)
        with pytest.raises(KeyboardInterrupt):
            pretrain(job, Path(job.out), corpus, progress=False)
