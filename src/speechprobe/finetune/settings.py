"""The fine-tuning stage's settings (``speechprobe finetune``, ``run --finetune``; docs/finetune.md), declared once as
fields (``settings.setting``: default, help, flag, check), from which the commands' options are generated. Light: no
torch (the command line imports it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import check_device
from ..settings import at_least, check_fields, flat_fields, positive, rule, setting, split_list

FINETUNE_METHODS = ("lora", "top-k", "head")
FT_LAYERS = ("all", "last")


@dataclass
class FinetuneSettings:
    """The fine-tuning ceiling (``speechprobe finetune``, ``run --finetune``; docs/finetune.md): a run's own folds,
    trained per training fold and scored on the test fold. Not part of :class:`RunConfig`: the stage keeps its own
    fingerprint in run.json, so fine-tuning never changes the probes' numbers or their resume."""

    method: str | None = setting(
        None,
        "Fine-tune on the run's folds: lora, top-k or head (frozen encoder, attention-pooling head); off unless given.",
        name="finetune",
        check=rule(FINETUNE_METHODS.__contains__, f"choose one of {', '.join(FINETUNE_METHODS)}"),
    )
    models: list[str] = setting(
        help="Models to fine-tune [default: the run's --models].", name="ft_models", factory=list, parse=split_list
    )
    epochs: int = setting(
        10, "Fine-tuning: most epochs per fold.", name="ft_epochs", check=at_least(1, "use 1 or more")
    )
    patience: int = setting(
        3,
        "Fine-tuning: epochs without a better validation Macro-F1 before stopping.",
        name="ft_patience",
        check=at_least(1, "use 1 or more"),
    )
    head_lr: float = setting(1e-3, "Fine-tuning: learning rate of the head.", name="ft_head_lr", check=positive())
    encoder_lr: float = setting(
        1e-4,
        "Fine-tuning: learning rate of the encoder's trained weights (top-k, lora).",
        name="ft_encoder_lr",
        check=positive(),
    )
    layers: str = setting(
        "all",
        "Fine-tuning: what the head reads: all (a learned softmax-weighted sum of every layer the probes see, as "
        "SUPERB's downstream heads do) or last (the last layer only).",
        name="ft_layers",
        check=rule(FT_LAYERS.__contains__, f"choose one of {', '.join(FT_LAYERS)}"),
    )
    layer_lr: float = setting(
        1e-2,
        "Fine-tuning: learning rate of the head's layer weights (--ft-layers all). Adam moves each about this much a "
        "step, so it bounds how far the weighting can leave uniform in a few hundred steps.",
        name="ft_layer_lr",
        check=positive(),
    )
    top_k: int = setting(
        2, "Fine-tuning top-k: encoder blocks unfrozen.", name="ft_top_k", check=at_least(1, "use 1 or more")
    )
    lora_rank: int = setting(
        8, "Fine-tuning lora: adapter rank.", name="ft_lora_rank", check=at_least(1, "use 1 or more")
    )
    lora_alpha: float = setting(16.0, "Fine-tuning lora: adapter scale alpha.", name="ft_lora_alpha", check=positive())
    val_fraction: float = setting(
        0.2,
        "Fine-tuning: share of each training fold held out (by group) for early stopping.",
        name="ft_val_fraction",
        check=rule(lambda v: 0 < v < 0.5, "use a share between 0 and 0.5"),
    )
    batch_seconds: float | None = setting(
        None,
        "Fine-tuning: padded audio seconds per batch [default: 32 on a CPU, 240 on a GPU].",
        name="ft_batch_seconds",
        check=positive(),
    )
    device: str | None = setting(None, "Fine-tuning device [default: the run's --device].", name="ft_device")
    dtype: str | None = setting(
        None,
        "Fine-tuning precision: float32 or bf16 (autocast) [default: the run's --dtype].",
        name="ft_dtype",
        check=rule(("float32", "bf16").__contains__, "choose float32 or bf16"),
    )
    checkpointing: bool = setting(
        True,
        "Fine-tuning: gradient checkpointing of the encoder blocks (less memory, more compute).",
        name="ft_checkpointing",
    )
    shuffle: bool = setting(
        False,
        "Fine-tuning control: shuffled training labels on the same folds (should stay at chance).",
        name="finetune_shuffle",
        flag="--finetune-shuffle/--no-finetune-shuffle",
    )
    keep_checkpoints: bool = setting(
        False,
        "Fine-tuning: keep each fold's trained weights (safetensors under RUN/finetune/).",
        flag="--keep-checkpoints/--no-keep-checkpoints",
    )

    def validate(self) -> None:
        check_fields(self)
        if self.device is not None:
            check_device(self.device)

    @classmethod
    def of(cls, **settings: Any) -> FinetuneSettings:
        """Settings from their flat names (``finetune``, ``ft_epochs``, ...: the options and run.json's keys)."""
        where = flat_fields(cls)
        return cls(**{where[k][1].name: v for k, v in settings.items()})
