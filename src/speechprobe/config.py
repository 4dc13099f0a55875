"""Typed run configuration in groups, each setting declared once (written flat into manifest.json).

A setting is a dataclass field made by :func:`setting`: its default, its help text, its command-line name and
its check live in the field, and ``speechprobe.cli.generated`` builds the options from them. :class:`RunConfig`
holds its groups as fields (``probe``: :class:`ProbeSettings`, ``cv``: :class:`CVSettings`, ``compute``:
:class:`ComputeOptions`, ``analyses``: :class:`AnalysisSwitches`); ``zeroshot.ZeroShotConfig`` extends
:class:`ComputeOptions`. Files and fingerprints hold the settings flat, by their names (:meth:`RunConfig.of`,
:meth:`RunConfig.to_json`), as they always did. Every option is checked in ``validate()`` before any work.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .models.base import POOLINGS
from .settings import (
    at_least,
    check_fields,
    flat_fields,
    group,
    positive,
    rule,
    setting,
    split_list,
)
from .switches import AnalysisSwitches

log = logging.getLogger("speechprobe")

DTYPES = (None, "float32", "bf16", "fp16")
MAX_SEED = 2**32 - 1  # numpy's and scikit-learn's seeds are unsigned 32-bit
DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")
# Settings that change no number: left out of the run directory's fingerprints.
NOT_NUMBERS = ("out", "cache", "progress", "n_jobs", "engine", "ray_address", "ray_actors", "report", "group_name")
# Settings that decide the features (and the clips): the extract stage's fingerprint; the rest is the probe stage's.
EXTRACT_FIELDS = (
    "models",
    "baselines",
    "tasks",
    "seed",
    "window",
    "pooling",
    "device",
    "dtype",
    "random_init",
    "n_per_class",
    "max_batch_seconds",
    "max_clip_seconds",
    "columns",
    "split",
    "streaming",
    "drop_duplicates",
    "group_by",
    "label_map",
    "rare_classes",
)
# Settings added after runs were made: left out of the fingerprints while unset, so those runs still resume.
UNSET_LEFT_OUT = ("group_by", "label_map", "analyses", "pooling_variants", "edge_ms")
UNSET_LEFT_OUT += ("mixing_clips", "attribution_clips", "attribution_steps", "attribution_layers")
UNSET_LEFT_OUT += ("mixing_frames", "mixing_seconds")
RARE_RULES = ("drop", "merge")  # --rare-classes: drop, merge or merge:NAME (speechprobe.probes.rare)
DEFAULT_REST = "other"
MLP_SOLVERS = ("adam", "sgd", "lbfgs")


def parse_label_map(value: str) -> dict[str, dict[str, str]] | None:
    """``--label-map`` parsed (a JSON file is read here, so the run records its content)."""
    from .data.labels import parse_label_map

    return parse_label_map(value) or None


def parse_rare_rule(rule: str) -> tuple[str, str | None]:
    """``"drop"`` -> ``("drop", None)``; ``"merge"`` / ``"merge:NAME"`` -> ``("merge", NAME)``."""
    kind, sep, name = str(rule).partition(":")
    if kind not in RARE_RULES or (kind == "drop" and sep) or (sep and not name.strip()):
        raise ConfigError(f"--rare-classes {rule!r}: use drop, merge or merge:NAME")
    return kind, (name.strip() or DEFAULT_REST) if kind == "merge" else None


# Shared by RunConfig and zeroshot.ZeroShotConfig: the field arguments, declared once.
COMMON = {
    "models": dict(
        help="Comma-separated names, local dirs or hub ids (required unless --baselines-only).",
        flag=("--models", "-m"),
        parse=split_list,
        cli_default="",
    ),
    "tasks": dict(
        help="Comma-separated task names, NAME=DIR, manifest CSVs, dataset folders or HF ids.",
        flag=("--tasks", "-t"),
        parse=split_list,
    ),
    "out": dict(help="Run directory.", flag=("--out", "-o"), cli_default=Path("runs/latest")),
    "n_per_class": dict(
        default=None,
        help="Synthetic clips per class [default: each task's own, 10-64].",
        check=positive(1, integer=True),
    ),
    "label_map": dict(
        default=None,
        help="Map label spellings onto a task's labels: FROM=TO or TASK:FROM=TO[,...], or a JSON file.",
        parse=parse_label_map,
    ),
}


def common(key: str) -> Any:
    """The shared field ``key`` (see ``COMMON``)."""
    return setting(**COMMON[key])


@dataclass(frozen=True)
class ProbeSettings:
    """The probe hyper-parameters a run exposes (``--knn-k``, ``--mlp-hidden``, ...); part of the result.

    Here, below the probes, so that both :class:`RunConfig` and ``speechprobe.probes`` read one definition; a new
    setting is one field here (its option, its check and its place in run.json follow).

    Defaults are the values every earlier run used, except ``mlp_early_stopping`` (on since the probing-at-scale
    change, for training parts of at least ``mlp_early_stopping_min_train`` items, so smaller tasks such as the
    demo's train as before; ``False`` gives the earlier MLP back everywhere). ``linear`` is multinomial logistic
    regression with the lbfgs solver and ``max_iter=1000``; the MLP learning rate is 1e-3 (see
    ``docs/statistics.md``).
    """

    knn_k: int = setting(5, "KNN probe: neighbours.", check=at_least(1, "use 1 or more neighbours"))
    mlp_hidden: int = setting(256, "MLP probe: hidden units.", check=at_least(1, "use 1 or more hidden units"))
    mlp_alpha: float = setting(1e-4, "MLP probe: L2 penalty.", check=at_least(0, "the L2 penalty cannot be negative"))
    mlp_epochs: int = setting(200, "MLP probe: maximum epochs (max_iter).", check=at_least(1, "use 1 or more epochs"))
    mlp_solver: str = setting(
        "adam",
        "MLP probe: adam, sgd or lbfgs.",
        check=rule(MLP_SOLVERS.__contains__, f"choose one of {', '.join(MLP_SOLVERS)}"),
    )
    mlp_early_stopping: bool = setting(
        True,
        "MLP probe: stop on a 10 % validation split of each large enough training fold (--no-...: everywhere "
        "the training-loss rule, at most --mlp-epochs).",
    )
    # From this training-part size on, the MLP stops early: below it the 10 % validation part is too small for its
    # accuracy to time the stop (the demo's tasks lost 0.15 Macro-F1 on average with it on).
    mlp_early_stopping_min_train: int = setting(
        2000,
        "MLP probe: early stopping only on training folds of at least this many items (smaller ones: loss rule).",
        check=at_least(0, "use 0 or more training items"),
    )
    linear_c: float = setting(
        1.0,
        "Linear probe: inverse L2 strength C.",
        check=rule(lambda c: c > 0, "the inverse regularisation must be positive"),
    )

    def validate(self) -> None:
        """One-line errors naming the option."""
        check_fields(self)


def check_window(window: str) -> None:
    """``--window`` must be a mode some registered family declares."""
    from .models.registry import window_modes

    modes = window_modes()
    if window not in modes:
        choices = f"{', '.join(modes[:-1])} or {modes[-1]}" if len(modes) > 1 else ", ".join(modes)
        raise ConfigError(f"--window {window!r}: choose {choices}")


def check_engine(engine: str, ray_address: str | None, ray_actors: int | None) -> None:
    """The ``--engine`` / ``--address`` / ``--ray-actors`` options (extraction and zero-shot alike)."""
    if engine not in ("local", "ray"):
        raise ConfigError(f"--engine {engine!r}: choose local or ray")
    if (ray_address or ray_actors) and engine != "ray":
        raise ConfigError("--address and --ray-actors need --engine ray")
    if ray_actors is not None and ray_actors < 1:
        raise ConfigError("--ray-actors must be at least 1")


def check_device(device: str, here: bool = True) -> None:
    """``--device``: cpu, cuda or cuda:N; with ``here``, a CUDA device this machine's torch can use (the Ray
    engine checks on its workers instead)."""
    if not DEVICE.match(str(device)):
        raise ConfigError(f"--device {device!r}: choose cpu, cuda or cuda:N")
    if device != "cpu" and here:
        _check_cuda(device)


def _check_cuda(device: str) -> None:
    """A CUDA device that this machine has."""
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: no CUDA GPU is visible to torch here; use --device cpu")
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise ConfigError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")


@dataclass(kw_only=True)
class ComputeOptions:
    """Where and how models run; shared by every stage's configuration."""

    device: str = setting("cpu", "cpu, cuda or cuda:N.")
    dtype: str | None = setting(
        None,
        "bf16 (GPU, or a CPU with native bf16) or fp16 (GPU) [default: float32].",
        check=rule(DTYPES.__contains__, "choose float32, bf16 or fp16"),
    )
    window: str = setting(
        "full", "Whisper input: full (30 s, faithful) or trimmed (fast).", check=lambda w, _: check_window(w)
    )
    seed: int = setting(
        0,
        "Seed for data generation, folds and probes (0 to 2^32-1).",
        check=rule(lambda s: isinstance(s, int) and 0 <= s <= MAX_SEED, f"choose a whole number from 0 to {MAX_SEED}"),
    )
    cache: Path | None = setting(None, "The one cache root [default: $SPEECHPROBE_CACHE, else the user cache].")
    engine: str = setting("local", "local, or ray (model actors on a Ray cluster; same results).")
    ray_address: str | None = setting(
        None, "With --engine ray: auto, HOST:PORT or ray://HOST:PORT [default: a new local Ray].", flag="--address"
    )
    ray_actors: int | None = setting(
        None, "With --engine ray: model actors [default: one per GPU, else per CPU but one]."
    )
    progress: bool = True  # the global --progress/--no-progress

    def compute_kwargs(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(ComputeOptions)}

    def check_compute(self) -> None:
        """One-line errors that name the option to change (each field's own check, then the combinations)."""
        check_fields(self)
        check_engine(self.engine, self.ray_address, self.ray_actors)
        check_device(self.device, here=self.engine == "local")
        if self.dtype == "fp16" and self.device == "cpu":
            raise ConfigError("--dtype fp16 needs --device cuda; on CPU use float32 or bf16")
        if self.dtype == "bf16" and self.device == "cpu":
            from .models.hub import cpu_bf16_native

            if cpu_bf16_native() is False:
                log.warning(
                    "this CPU has no native bf16 arithmetic (AVX512-BF16/AMX): --dtype bf16 will be slower than float32"
                )


@dataclass
class CVSettings:
    """Cross-validation and uncertainty (docs/statistics.md)."""

    folds: int = setting(5, "Cross-validation folds.", check=at_least(2, "need at least 2 folds"))
    repeats: int = setting(
        1, "Repeated cross-validation: R reshuffled partitions of --folds folds.", check=at_least(1, "use 1 or more")
    )
    # The first N repeats that the cue probes, erasure, all-layers and pooling variants use (None: all).
    cue_repeats: int | None = setting(
        None, "Cue probes, erasure, all-layers and pooling variants on the first N repeats only [default: all]."
    )
    scheme: str = setting(
        "kfold",
        "kfold (stratified, grouped by speaker when groups exist) or logo.",
        name="cv",
        check=rule(("kfold", "logo").__contains__, "choose kfold or logo (leave one group out)"),
    )
    ungrouped: bool = setting(
        False,
        "Folds ignore the speaker/group column (speaker leakage may inflate scores).",
        flag="--ungrouped/--grouped",
    )
    # Classes with fewer clips or groups than the folds need: drop, or merge[:NAME] into one rest class
    # (speechprobe.probes.rare); applied when the clips are checked after extraction.
    rare_classes: str = setting(
        "drop",
        "Classes with fewer clips (or speakers) than the folds need: drop (with a counted reason; they leave the "
        "Macro-F1 label set) or merge[:NAME] (one rest class, default 'other').",
        check=lambda rule_, _: parse_rare_rule(rule_),
    )
    group_name: str | None = setting(
        None, "What a group is (speaker, language, dialogue, word) [default: the task's declaration]."
    )
    bootstrap: int = setting(
        1000,
        "Bootstrap resamples over the unit: clips or groups (0: skip).",
        check=at_least(0, "use 0 (skip) or more"),
    )

    def validate(self) -> None:
        check_fields(self)
        if self.scheme == "logo" and self.repeats > 1:
            raise ConfigError("--cv logo has a single partition; drop --repeats")
        if self.cue_repeats is not None and not 1 <= self.cue_repeats <= self.repeats:
            raise ConfigError(f"--cue-repeats {self.cue_repeats}: use 1 to --repeats ({self.repeats})")
        if self.scheme == "logo" and self.ungrouped:
            raise ConfigError("--cv logo needs the groups; drop --ungrouped")


def default_baselines() -> list[str]:
    """The registry's default baselines (hand-crafted and nuisance feature sets)."""
    from .models.registry import default_baselines as registered

    return list(registered())


@dataclass
class RunConfig:
    """Everything that determines a run's numbers: the data and models, then the groups."""

    models: list[str] = common("models")
    tasks: list[str] = common("tasks")
    out: Path = common("out")
    probes: list[str] = setting(help="Probes: knn, mlp, linear.", factory=lambda: ["knn", "mlp"], parse=split_list)
    # The probe whose best layer is "the best layer" in every table, figure, test and finding; KNN by default
    # (no training randomness, an exact and cheap permutation null): see analysis/primary.py.
    primary_probe: str = setting(
        "knn",
        "The probe whose best layer is 'the best layer' in every table, test and finding (knn: exact, cheap null).",
    )
    pooling: str = setting(
        "mean",
        "mean or mean+std over real frames.",
        check=rule(POOLINGS.__contains__, f"choose one of {', '.join(POOLINGS)}"),
    )
    baselines: list[str] = setting(
        help="Baselines, comma-separated [default: every default baseline; 'none' for none].",
        factory=default_baselines,
        parse=split_list,
        cli_default=None,
    )
    random_init: bool = setting(False, "Same architectures with random weights (control).")
    n_per_class: int | None = common("n_per_class")
    max_batch_seconds: float | None = setting(
        None, "Padded audio seconds per batch [default: 120 on a CPU, 960 on a GPU].", check=positive()
    )
    max_clip_seconds: float = setting(
        600.0, "Audio decoded per clip; longer clips are cut and counted.", check=positive()
    )
    drop_duplicates: bool = setting(False, "Drop repeated audio (default: keep copies in one group).")
    n_jobs: int = setting(
        1,
        "Parallel probe jobs (joblib; -1: one per CPU).",
        flag=("--jobs", "-j"),
        check=rule(lambda n: n == -1 or n >= 1, "use 1 or more parallel jobs (-1: one per CPU)"),
    )
    columns: dict[str, str | None] | None = None  # dataset column overrides (audio, label, group, ...)
    split: str | None = setting(None, "Dataset split [default: test, or the only one].")
    streaming: bool = False  # read hub datasets without a local copy
    group_by: str | None = setting(
        None,
        "Which declared grouping folds use: KIND (speaker, word, dialogue) or TASK=KIND[,...] [default: each "
        "task's first; `speechprobe tasks --details` lists them].",
    )
    label_map: dict[str, dict[str, str]] | None = common("label_map")
    tune: bool = setting(False, "Nested CV: choose k, MLP alpha and linear C on inner folds of each training part.")
    probe: ProbeSettings = group(ProbeSettings)
    cv: CVSettings = group(CVSettings)
    compute: ComputeOptions = group(ComputeOptions)
    analyses: AnalysisSwitches = group(AnalysisSwitches)

    def validate(self) -> None:
        """One-line errors that name the option to change; run before any work (the probe names are
        checked by the pipeline, which knows the probes: config sits below that stage)."""
        if not self.models and not self.baselines:
            raise ConfigError("no models given; pass --models (see `speechprobe models`)")
        if not self.tasks:
            raise ConfigError("no tasks given; pass --tasks (see `speechprobe tasks`)")
        check_fields(self)
        if not self.probes:
            raise ConfigError("--probes: give at least one probe (knn, mlp, linear)")
        if self.primary_probe not in self.probes:
            raise ConfigError(
                f"--primary-probe {self.primary_probe} is not among --probes {','.join(self.probes)}; "
                "add it to --probes or choose one of them"
            )
        check_fields(self.analyses)
        self.compute.check_compute()
        self.cv.validate()
        self.probe.validate()

    @classmethod
    def of(cls, **settings: Any) -> RunConfig:
        """A config from flat settings (the names of run.json, ``speechprobe.run`` and the options)."""
        top: dict[str, Any] = {}
        groups: dict[str, dict[str, Any]] = {}
        where = flat_fields(cls)
        for key, value in settings.items():
            if key not in where:
                raise TypeError(f"RunConfig has no setting {key!r}")
            owner, f = where[key]
            (groups.setdefault(owner, {}) if owner else top)[f.name] = value
        made = {g.name: g.metadata["group"](**groups.get(g.name, {})) for g in fields(cls) if "group" in g.metadata}
        return cls(**top, **made)

    def updated(self, **settings: Any) -> RunConfig:
        """A copy with some flat settings changed (``speechprobe probe RUN --knn-k 7``)."""
        changes: dict[str, Any] = {}
        groups: dict[str, dict[str, Any]] = {}
        for key, value in settings.items():
            owner, f = flat_fields(type(self))[key]
            (groups.setdefault(owner, {}) if owner else changes)[f.name] = value
        changes |= {g: dataclasses.replace(getattr(self, g), **kw) for g, kw in groups.items()}
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_json(cls, data: dict, out: Path | None = None) -> RunConfig:
        """Rebuild a config written by ``to_json`` (optionally into another run directory)."""
        conf = dict(data)
        conf["out"] = Path(out) if out is not None else Path(conf["out"])
        conf["cache"] = Path(conf["cache"]) if conf.get("cache") else None
        conf.setdefault("mlp_early_stopping", False)  # runs written before the field trained without it
        return cls.of(**conf)

    @classmethod
    def from_recorded(cls, data: object, where: str, out: Path) -> RunConfig:
        """:meth:`from_json` of a config read from a file (``where``, e.g. a manifest.json), checked first: a missing
        config, a missing or unknown key and a value of the wrong type are one-line errors naming ``where`` and
        the key (the values' ranges are checked by :meth:`validate` as for any run)."""
        import typing

        import pydantic

        if not isinstance(data, dict) or not data:
            raise ConfigError(f"{where}: no run configuration (its 'config' section is missing or empty)")
        settings = {k: f for k, (_, f) in flat_fields(cls).items() if k != "progress"}
        unknown = sorted(set(data) - set(settings))
        if unknown:
            raise ConfigError(f"{where}: config key {unknown[0]!r} is not a setting of this speechprobe version")
        required = [k for k, f in settings.items() if f.default is MISSING and f.default_factory is MISSING]
        missing = [k for k in required if k not in data and k != "out"]
        if missing:
            raise ConfigError(f"{where}: config key {missing[0]!r} is missing")
        holders = {None: cls} | {g.name: g.metadata["group"] for g in fields(cls) if "group" in g.metadata}
        hints = {k: typing.get_type_hints(holders[owner])[f.name] for k, (owner, f) in flat_fields(cls).items()}
        for key, value in data.items():
            hint = str | None if key in ("out", "cache") else hints[key]  # paths are written as text
            try:
                pydantic.TypeAdapter(hint).validate_python(value, strict=True)
            except pydantic.ValidationError as e:
                expected = getattr(hint, "__name__", str(hint))
                raise ConfigError(
                    f"{where}: config key {key!r} is {json.dumps(value)[:40]}, not {expected} "
                    f"({e.errors()[0]['msg'].lower()})"
                ) from None
        return cls.from_json(data, out=out)

    @property
    def batch_seconds(self) -> float:
        """The padded-seconds budget per batch: ``max_batch_seconds``, else the device's default."""
        from .features.batching import default_batch_seconds

        return self.max_batch_seconds or default_batch_seconds(self.compute.device)

    def to_json(self) -> dict:
        """The settings, flat, by name (as run.json and manifest.json have always held them)."""
        nested = asdict(self)
        d = {k: nested[owner][f.name] if owner else nested[f.name] for k, (owner, f) in flat_fields(type(self)).items()}
        d["out"] = str(self.out)
        d["cache"] = str(self.compute.cache) if self.compute.cache else None
        d.pop("progress")
        for later in ("analyses", "pooling_variants", "edge_ms"):  # came later: unset, the settings read as before
            d.pop(later) if not d[later] else None
        return d

    def stage_config(self, stage: str) -> dict:
        """The settings that decide ``stage``'s numbers (extract or probe): the run directory's fingerprint."""
        numbers = {k: v for k, v in self.to_json().items() if k not in NOT_NUMBERS and (v or k not in UNSET_LEFT_OUT)}
        if stage == "extract":
            return {k: v for k, v in numbers.items() if k in EXTRACT_FIELDS}
        if stage == "probe":  # any setting not known to decide the features decides the probes
            return {k: v for k, v in numbers.items() if k not in EXTRACT_FIELDS or k == "seed"}
        raise ValueError(f"RunConfig has no stage {stage!r}")
