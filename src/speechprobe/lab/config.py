"""The lab's settings, each declared once as a field (its option on ``pretrain`` / ``ablate``, default and check)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..settings import check_fields, group, positive, rule, setting, split_list

OBJECTIVES = ("contrastive", "masked", "regression", "random")
ARCHS = ("tiny", "small", "base")
DEFAULT_DATA = "synthetic"
# Where jobs run: engine, ray_address, ray_actors (the options of speechprobe.config.ComputeOptions)
Engine = Mapping[str, Any]


def _arch(value: str, flag: str) -> None:
    if value not in ARCHS and not Path(value).expanduser().is_file():
        raise ConfigError(f"{flag} {value!r}: choose {', '.join(ARCHS)} or a wav2vec2 config.json path")


@dataclass
class TrainSettings:
    """What decides a pre-training run's weights besides its objective and seed: the same for every objective."""

    arch: str = setting("tiny", "Architecture: tiny, small, base or a wav2vec2 config.json.", check=_arch)
    steps: int = setting(200, "Optimiser steps.", check=positive(1, integer=True))
    data: list[str] = setting(
        help="Training audio: audio folders, manifest CSVs or registered tasks, comma-separated ('synthetic': a "
        "larger set rendered from the suite's voices and texts).",
        factory=lambda: [DEFAULT_DATA],
        parse=split_list,
    )
    batch_size: int = setting(8, "Crops per step.", check=positive(1, integer=True))
    crop_seconds: float = setting(
        2.0, "Longest crop (a batch is cut to its shortest clip, as fairseq does).", check=positive()
    )
    lr: float = setting(5e-4, "Peak learning rate (AdamW; linear warm-up, then linear decay to 0).", check=positive())
    warmup: float = setting(0.1, "Warm-up share of the steps.", check=rule(lambda v: 0 <= v < 1, "use [0, 1)"))
    clusters: int = setting(50, "k-means targets of the masked objective.", check=positive(2, integer=True))
    iterations: int = setting(
        1,
        "Masked objective: 2 re-clusters the model's own features half-way.",
        check=rule((1, 2).__contains__, "1 or 2"),
    )
    corpus_clips: int = setting(
        100, "Clips per class of each synthetic task in the default corpus.", check=positive(1, integer=True)
    )
    device: str = setting(
        "cpu", "cpu, cuda or auto.", check=rule(("cpu", "cuda", "auto").__contains__, "cpu, cuda or auto")
    )
    dtype: str = setting(
        "float32", "float32 or bf16 (autocast).", check=rule(("float32", "bf16").__contains__, "float32 or bf16")
    )
    save_every: int = setting(50, "Steps between checkpoints (and at the end).", check=positive(1, integer=True))

    def validate(self) -> None:
        check_fields(self)
        if not self.data:
            raise ConfigError("--data: give at least one source of training audio")

    def fingerprint(self) -> dict:
        """The settings that decide the weights (device and checkpoint spacing do not)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("device", "save_every")}


@dataclass
class PretrainSettings:
    """One ``speechprobe pretrain`` run."""

    objective: str = setting(
        help="Pre-training objective: contrastive, masked, regression (data2vec) or random (the untrained control).",
        check=rule(OBJECTIVES.__contains__, f"choose {', '.join(OBJECTIVES)}"),
    )
    out: Path = setting(help="Checkpoint directory (resumed when it holds an unfinished run of the same settings).")
    seed: int = setting(0, "Seed of the initial weights, the crops and the masks.", check=positive(0, integer=True))
    train: TrainSettings = group(TrainSettings)

    def validate(self) -> None:
        check_fields(self)
        self.train.validate()
