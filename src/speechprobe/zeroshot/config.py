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

PROMPT_AS = ("transcript", "previous")  # Whisper: where the prompt goes (zeroshot/whisper.py), the default first
#: how run.json's zero-shot fingerprint spelled every built-in mode before each could be asked for alone
#: (then ``likelihood`` also gave the raw and calibrated modes): directories written then still resume
LEGACY_ALL_MODES = ["likelihood", "generate", "native"]
ENGINE_FIELDS = ("engine", "ray_address", "ray_actors")  # where answers are computed: not in the manifest config
#: settings left out of the stage fingerprint while unset, so that directories written before them still resume
UNSET_UNRECORDED = ("label_map", "target_prior")
NOT_FINGERPRINTED = ("out", "cache", "decoder_states", "decoder_prompt")  # they change no zero-shot row


@dataclass(kw_only=True)
class BackendOptions(ComputeOptions):
    """How a zero-shot backend is built and decodes (device, dtype and window from ``ComputeOptions``).

    ``ZeroShotConfig`` extends it and is passed whole as the options, from the command line to the backend's
    constructor (on Ray too); each backend reads the ones that apply to it. Adding an option is one field here.
    """

    batch_size: int = setting(8, "Clips per generation/scoring batch.", check=positive(1, integer=True))
    chat_template: bool | None = setting(None, "Qwen2-Audio chat template [default: on for Instruct].")
    system_prompt: str | None = setting(None, "System prompt for chat models.")
    language: str | None = setting("en", "Whisper language token / SeamlessM4T target language.")
    prompt_as: str | None = setting(
        None,
        "Whisper prompt: transcript (the default) or previous (<|startofprev|>).",
        check=rule(PROMPT_AS.__contains__, "choose previous or transcript"),
    )


@dataclass
class ZeroShotConfig(BackendOptions):
    """Everything that determines a zero-shot run's numbers (written into manifest.json).

    Device, dtype, Whisper window, seed, cache and engine come from :class:`~speechprobe.config.ComputeOptions`,
    shared with ``RunConfig``; batch size, chat template, system prompt, language and Whisper's prompt
    place from :class:`BackendOptions`, which the backend is built with.
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
        help="Zero-shot modes, only these written: all, likelihood (per-token), likelihood_raw, likelihood_cc, "
        "likelihood_pmi, likelihood_bc, likelihood_pm (calibrated), generate, native (a model's own head).",
        factory=lambda: ["all"],
        flag="--mode",
        parse=split_list,
    )
    n_per_class: int | None = common("n_per_class")
    max_new_tokens: int = setting(32, "Greedy generation length.", check=positive(1, integer=True))
    verbalisers: dict[str, str] = setting(
        help="TASK=FILE.json[,...]: a task's label phrasings (docs/zeroshot.md).",
        factory=dict,
        parse=lambda v: split_pairs(v, "--verbalisers"),
        cli_default=None,
    )
    target_prior: dict[str, str] = setting(
        help="TASK=FILE.json[,...]: prior matching's target label distribution, {label: weight} [default: uniform].",
        factory=dict,
        parse=lambda v: split_pairs(v, "--target-prior"),
        cli_default=None,
    )
    decoder_states: bool = setting(
        False,
        "Also keep the decoder's per-layer states and logit lens for one prompt (the decoder_layers analysis).",
    )
    decoder_prompt: str | None = setting(None, "The prompt id of --decoder-states [default: the first prompt].")
    synonyms: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # task -> label -> extra synonyms
    skip_unsupported: bool = False  # `speechprobe run`: skip encoder-only models instead of refusing
    label_map: dict[str, dict[str, str]] | None = common("label_map")

    def validate(self) -> None:
        if not self.models:
            raise ConfigError("no models given; pass --models (zero-shot needs a model with a text decoder)")
        if not self.tasks:
            raise ConfigError("no tasks given; pass --tasks (see `speechprobe tasks`)")
        from .modes import resolve_modes

        resolve_modes(self.modes)
        self.check_compute()  # every field's own check (the backend options' too), then the combinations

    @classmethod
    def from_run_config(
        cls, run, prompts: Sequence[str] = ("all",), modes: Sequence[str] = ("all",), **overrides
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
        from .modes import BUILTIN_MODES, resolve_modes

        config = {
            k: v for k, v in self.to_json().items() if k not in NOT_FINGERPRINTED and (v or k not in UNSET_UNRECORDED)
        }
        names = [m.name for m in resolve_modes(self.modes)]
        config["modes"] = LEGACY_ALL_MODES if set(names) == set(BUILTIN_MODES) else names
        return config
