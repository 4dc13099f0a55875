"""The zero-shot configuration: every setting of a zero-shot run, declared once (its option is generated from it).

Light to import (no torch, no pandas), so that the command line can build its options without the backends.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..config import ComputeOptions, common
from ..errors import ConfigError
from ..settings import positive, rule, setting, split_list, split_pairs

MODES = ("likelihood", "generate", "native")  # likelihood also gives the raw and calibrated modes
ENGINE_FIELDS = ("engine", "ray_address", "ray_actors")  # where answers are computed: not in the manifest config


@dataclass
class ZeroShotConfig(ComputeOptions):
    """Everything that determines a zero-shot run's numbers (written into manifest.json).

    Device, dtype, Whisper window, seed, cache and engine come from :class:`~speechprobe.config.ComputeOptions`,
    shared with ``RunConfig``.
    """

    models: list[str] = common("models")
    tasks: list[str] = common("tasks")
    out: Path = common("out")
    prompts: list[str] = setting(
        help="Zero-shot prompts: all, instruction, choose, question, file:PATH.",
        factory=lambda: ["all"],
        parse=split_list,
    )
    modes: list[str] = setting(
        help="Zero-shot scoring: likelihood (also raw and calibrated), generate, native (a model's own head).",
        factory=lambda: list(MODES),
        flag="--mode",
        parse=split_list,
    )
    n_per_class: int | None = common("n_per_class")
    batch_size: int = setting(8, "Clips per generation/scoring batch.", check=positive(1, integer=True))
    max_new_tokens: int = setting(32, "Greedy generation length.", check=positive(1, integer=True))
    chat_template: bool | None = setting(None, "Qwen2-Audio chat template [default: on for Instruct].")
    system_prompt: str | None = setting(None, "System prompt for chat models.")
    language: str | None = setting("en", "Whisper language token / SeamlessM4T target language.")
    prompt_as: str | None = setting(
        None,
        "Whisper prompt: transcript (the default) or previous (<|startofprev|>).",
        check=rule(("previous", "transcript").__contains__, "choose previous or transcript"),
    )
    verbalisers: dict[str, str] = setting(
        help="TASK=FILE.json[,...]: a task's label phrasings (docs/zeroshot.md).",
        factory=dict,
        parse=lambda v: split_pairs(v, "--verbalisers"),
        cli_default=None,
    )
    synonyms: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # task -> label -> extra synonyms
    skip_unsupported: bool = False  # `speechprobe run`: skip encoder-only models instead of refusing
    label_map: dict[str, dict[str, str]] | None = common("label_map")

    def validate(self) -> None:
        if not self.models:
            raise ConfigError("no models given; pass --models (zero-shot needs a model with a text decoder)")
        if not self.tasks:
            raise ConfigError("no tasks given; pass --tasks (see `speechprobe tasks`)")
        unknown = [m for m in self.modes if m not in MODES]
        if unknown or not self.modes:
            raise ConfigError(f"--mode {','.join(unknown or ['(none)'])}: choose from {', '.join(MODES)}")
        self.check_compute()  # and every field's own check

    @classmethod
    def from_run_config(
        cls, run, prompts: Sequence[str] = ("all",), modes: Sequence[str] = MODES, **overrides
    ) -> ZeroShotConfig:
        """The zero-shot part of ``speechprobe run``: same models, tasks, run directory, data size and
        compute options (device, dtype, window, seed, cache, engine) as the probing run (a ``RunConfig``);
        encoder-only models are skipped (and recorded) rather than refused."""
        base = {
            "models": list(run.models),
            "tasks": list(run.tasks),
            "out": run.out,
            "prompts": list(prompts),
            "modes": list(modes),
            "n_per_class": run.n_per_class,
            "skip_unsupported": True,
            "label_map": run.label_map,
            **run.compute.compute_kwargs(),
        }
        return cls(**{**base, **overrides})

    def to_json(self) -> dict:
        """What determines the numbers: not ``progress``, nor the engine (recorded beside, in ``engine``)."""
        d = dataclasses.asdict(self)
        d["out"] = str(self.out)
        d["cache"] = str(self.cache) if self.cache else None
        for key in ("progress", *ENGINE_FIELDS):
            d.pop(key)
        return d

    def stage_config(self) -> dict:
        """The settings that decide the zero-shot numbers: the run directory's fingerprint of this stage."""
        return {k: v for k, v in self.to_json().items() if k not in ("out", "cache") and (v or k != "label_map")}
