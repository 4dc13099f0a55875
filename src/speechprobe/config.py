"""Typed run configuration (written verbatim into manifest.json).

:class:`ComputeOptions` holds what every stage that runs a model shares (device, dtype, Whisper
window, seed, cache, engine), with one validation; :class:`RunConfig` (extraction and probes) and
``zeroshot.ZeroShotConfig`` both extend it, so the options are defined, checked and copied once.
Every option is checked in ``validate()`` before any work starts.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .models.base import POOLINGS

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
UNSET_LEFT_OUT = ("group_by", "label_map", "analyses")
RARE_RULES = ("drop", "merge")  # --rare-classes: drop, merge or merge:NAME (speechprobe.probes.rare)
DEFAULT_REST = "other"


def parse_rare_rule(rule: str) -> tuple[str, str | None]:
    """``"drop"`` -> ``("drop", None)``; ``"merge"`` / ``"merge:NAME"`` -> ``("merge", NAME)``."""
    kind, sep, name = str(rule).partition(":")
    if kind not in RARE_RULES or (kind == "drop" and sep) or (sep and not name.strip()):
        raise ConfigError(f"--rare-classes {rule!r}: use drop, merge or merge:NAME")
    return kind, (name.strip() or DEFAULT_REST) if kind == "merge" else None


MLP_SOLVERS = ("adam", "sgd", "lbfgs")
# Training-part size from which the MLP probe stops early by default: below it the 10 % validation part is
# too small for its accuracy to time the stop (the demo's tasks lost 0.15 Macro-F1 on average with it on).
MLP_EARLY_STOPPING_MIN_TRAIN = 2000


@dataclass(frozen=True)
class ProbeSettings:
    """The probe hyper-parameters a run exposes (``--knn-k``, ``--mlp-hidden``, ...); part of the result.

    Here, below the probes, so that both :class:`RunConfig` and ``speechprobe.probes`` read one definition.

    Defaults are the values every earlier run used, except ``mlp_early_stopping`` (on since the probing-at-scale
    change, for training parts of at least ``mlp_early_stopping_min_train`` items, so smaller tasks such as the
    demo's train as before; ``False`` gives the earlier MLP back everywhere). ``linear`` is multinomial logistic
    regression with the lbfgs solver and ``max_iter=1000``; the MLP learning rate is 1e-3 (see
    ``docs/statistics.md``).
    """

    knn_k: int = 5
    mlp_hidden: int = 256
    mlp_alpha: float = 1e-4
    mlp_epochs: int = 200
    mlp_solver: str = "adam"
    mlp_early_stopping: bool = True
    mlp_early_stopping_min_train: int = MLP_EARLY_STOPPING_MIN_TRAIN
    linear_c: float = 1.0

    def validate(self) -> None:
        """One-line errors naming the option."""
        if self.knn_k < 1:
            raise ConfigError(f"--knn-k {self.knn_k}: use 1 or more neighbours")
        if self.mlp_hidden < 1:
            raise ConfigError(f"--mlp-hidden {self.mlp_hidden}: use 1 or more hidden units")
        if self.mlp_alpha < 0:
            raise ConfigError(f"--mlp-alpha {self.mlp_alpha}: the L2 penalty cannot be negative")
        if self.mlp_epochs < 1:
            raise ConfigError(f"--mlp-epochs {self.mlp_epochs}: use 1 or more epochs")
        if self.mlp_early_stopping_min_train < 0:
            raise ConfigError(
                f"--mlp-early-stopping-min-train {self.mlp_early_stopping_min_train}: use 0 or more training items"
            )
        if self.mlp_solver not in MLP_SOLVERS:
            raise ConfigError(f"--mlp-solver {self.mlp_solver!r}: choose one of {', '.join(MLP_SOLVERS)}")
        if not self.linear_c > 0:
            raise ConfigError(f"--linear-c {self.linear_c}: the inverse regularisation must be positive")


_PROBE = ProbeSettings()  # the probe-setting defaults live in one place


def default_baselines() -> list[str]:
    """The registry's default baselines (hand-crafted and nuisance feature sets)."""
    from .models.registry import default_baselines as registered

    return list(registered())


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


def check_positive(value: float | None, flag: str, minimum: float = 0.0, integer: bool = False) -> None:
    """A finite number above 0 (or, for counts, at least ``minimum``), else a one-line error."""
    if value is None:
        return
    if integer:
        if value < minimum:
            raise ConfigError(f"{flag} {value}: must be at least {int(minimum)}")
    elif not math.isfinite(value) or value <= minimum:
        raise ConfigError(f"{flag} must be positive (a finite number of seconds), got {value}")


@dataclass(kw_only=True)
class ComputeOptions:
    """Where and how models run; shared by every stage's configuration."""

    device: str = "cpu"
    dtype: str | None = None
    window: str = "full"  # Whisper input: full (30 s, faithful) or trimmed (fast)
    seed: int = 0  # data generation, folds and probes
    cache: Path | None = None  # the one cache root (features, converted checkpoints, synthetic data, answers)
    engine: str = "local"  # local, or ray (model actors on a Ray cluster; identical results)
    ray_address: str | None = None  # None: a new local Ray instance (or $RAY_ADDRESS); "auto": the `ray start` cluster
    ray_actors: int | None = None  # model actors (default: one per GPU, else one per CPU but one)
    progress: bool = True

    @property
    def compute(self) -> ComputeOptions:
        """These options alone (to build another stage's configuration from them)."""
        return ComputeOptions(**self.compute_kwargs())

    def compute_kwargs(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(ComputeOptions)}

    def check_compute(self) -> None:
        """One-line errors that name the option to change."""
        check_window(self.window)
        if not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"--seed {self.seed}: choose a whole number from 0 to {MAX_SEED}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"--dtype {self.dtype!r}: choose float32, bf16 or fp16")
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


@dataclass
class RunConfig(ComputeOptions):
    """Everything that determines a run's numbers."""

    models: list[str]
    tasks: list[str]
    out: Path
    probes: list[str] = field(default_factory=lambda: ["knn", "mlp"])
    # The probe whose best layer is "the best layer" in every table, figure, test and finding; KNN by default
    # (no training randomness, an exact and cheap permutation null): see analysis/primary.py.
    primary_probe: str = "knn"
    folds: int = 5
    pooling: str = "mean"
    baselines: list[str] = field(default_factory=default_baselines)
    random_init: bool = False
    n_per_class: int | None = None  # synthetic suite size per class (None: each task's default)
    max_batch_seconds: float | None = None  # None: by device (features.batching.DEFAULT_BATCH_SECONDS)
    max_clip_seconds: float = 600.0  # audio decoded per clip; longer clips are cut (counted in manifest.json)
    drop_duplicates: bool = False  # drop repeated audio content instead of keeping copies in one group
    n_jobs: int = 1
    columns: dict[str, str | None] | None = None  # dataset column overrides (audio, label, group, ...)
    split: str | None = None  # dataset split (default: test, or the only one)
    streaming: bool = False  # read hub datasets without a local copy
    group_by: str | None = None  # --group-by: KIND or TASK=KIND, one of a task's declared groupings (data/tasks.py)
    label_map: dict[str, dict[str, str]] | None = None  # --label-map: {task or "*": {spelling: label}}
    permutations: int = 1000  # shuffles of the selection-aware test of each best layer (0: skip)
    embeddings: bool = True  # t-SNE (and UMAP when installed) of the first, best and last layers
    report: bool = True  # write report.html / report.md / main_table.* at the end
    cue_probes: bool = True  # ridge probes of each clip's acoustic cues per layer (analysis/cues.py; cheap)
    erasure: bool = False  # LEACE cue erasure and the task re-probed (analysis/erasure.py; opt-in: a probe per cue)
    layer_weights: bool = True  # weighting of all layers vs the best single layer (analysis/layer_weights.py)
    fingerprints: bool = True  # depth fingerprints: 90 % and peak depth per (model, task) (analysis.fingerprints)
    similarity: bool = True  # layer similarity: debiased CKA and mutual k-NN between all layers (analysis.similarity)
    mdl: bool = True  # MDL probes: online code length per layer (analysis.mdl)
    analyses: str = ""  # --analyses edits of analyses without a flag above (speechprobe.analysis.registry.settle)
    # Cross-validation and uncertainty (docs/statistics.md)
    repeats: int = 1  # repeated cross-validation: fold id = repeat * folds + k
    cue_repeats: int | None = None  # the first N repeats that the cue probes, erasure and all-layers use (None: all)
    cv: str = "kfold"  # kfold (stratified, grouped when groups exist) or logo (leave one group out)
    ungrouped: bool = False  # ignore the groups: folds may put one speaker in train and test (leakage)
    # Classes with fewer clips or groups than the folds need: drop, or merge[:NAME] into one rest class
    # (speechprobe.probes.rare); applied when the clips are checked after extraction.
    rare_classes: str = "drop"
    group_name: str | None = None  # what a group is (speaker, language, dialogue, word); None: the task's declaration
    bootstrap: int = 1000  # resamples of the bootstrap over clips of the out-of-fold predictions (0: skip)
    # Probe settings (part of the result; recorded in manifest.json)
    knn_k: int = _PROBE.knn_k
    mlp_hidden: int = _PROBE.mlp_hidden
    mlp_alpha: float = _PROBE.mlp_alpha
    mlp_epochs: int = _PROBE.mlp_epochs
    mlp_solver: str = _PROBE.mlp_solver
    mlp_early_stopping: bool = _PROBE.mlp_early_stopping
    mlp_early_stopping_min_train: int = _PROBE.mlp_early_stopping_min_train
    linear_c: float = _PROBE.linear_c
    tune: bool = False  # nested cross-validation of each probe's regularisation on the training folds

    def validate(self) -> None:
        """One-line errors that name the option to change; run before any work (the probe names are
        checked by the pipeline, which knows the probes: config sits below that stage)."""
        if not self.models and not self.baselines:
            raise ConfigError("no models given; pass --models (see `speechprobe models`)")
        if not self.tasks:
            raise ConfigError("no tasks given; pass --tasks (see `speechprobe tasks`)")
        if self.folds < 2:
            raise ConfigError(f"--folds {self.folds}: need at least 2 folds")
        if self.pooling not in POOLINGS:
            raise ConfigError(f"--pooling {self.pooling!r}: choose one of {', '.join(POOLINGS)}")
        if not self.probes:
            raise ConfigError("--probes: give at least one probe (knn, mlp, linear)")
        if self.primary_probe not in self.probes:
            raise ConfigError(
                f"--primary-probe {self.primary_probe} is not among --probes {','.join(self.probes)}; "
                "add it to --probes or choose one of them"
            )
        check_positive(self.max_batch_seconds, "--max-batch-seconds")
        check_positive(self.max_clip_seconds, "--max-clip-seconds")
        check_positive(self.permutations, "--permutations", 0, integer=True)
        check_positive(self.n_per_class, "--n-per-class", 1, integer=True)
        if self.n_jobs != -1 and self.n_jobs < 1:
            raise ConfigError(f"--jobs {self.n_jobs}: use 1 or more parallel jobs (-1: one per CPU)")
        self.check_compute()
        self._validate_cv()

    def _validate_cv(self) -> None:
        if self.repeats < 1:
            raise ConfigError(f"--repeats {self.repeats}: use 1 or more")
        if self.cv not in ("kfold", "logo"):
            raise ConfigError(f"--cv {self.cv!r}: choose kfold or logo (leave one group out)")
        if self.cv == "logo" and self.repeats > 1:
            raise ConfigError("--cv logo has a single partition; drop --repeats")
        if self.cue_repeats is not None and not 1 <= self.cue_repeats <= self.repeats:
            raise ConfigError(f"--cue-repeats {self.cue_repeats}: use 1 to --repeats ({self.repeats})")
        if self.cv == "logo" and self.ungrouped:
            raise ConfigError("--cv logo needs the groups; drop --ungrouped")
        if self.bootstrap < 0:
            raise ConfigError("--bootstrap must be 0 (skip) or more")
        parse_rare_rule(self.rare_classes)
        self.probe_settings().validate()

    def probe_settings(self) -> ProbeSettings:
        """The probe hyper-parameters of this run (fields of the same names)."""
        return ProbeSettings(**{f.name: getattr(self, f.name) for f in fields(ProbeSettings)})

    @classmethod
    def from_json(cls, data: dict, out: Path | None = None) -> RunConfig:
        """Rebuild a config written by ``to_json`` (optionally into another run directory)."""
        conf = dict(data)
        conf["out"] = Path(out) if out is not None else Path(conf["out"])
        conf["cache"] = Path(conf["cache"]) if conf.get("cache") else None
        conf.setdefault("mlp_early_stopping", False)  # runs written before the field trained without it
        conf.setdefault("mlp_early_stopping_min_train", MLP_EARLY_STOPPING_MIN_TRAIN)
        return cls(**conf)

    @classmethod
    def from_recorded(cls, data: object, where: str, out: Path) -> RunConfig:
        """:meth:`from_json` of a config read from a file (``where``, e.g. a manifest.json), checked first: a missing
        config, a missing or unknown key and a value of the wrong type are one-line errors naming ``where`` and
        the key (the values' ranges are checked by :meth:`validate` as for any run)."""
        import typing

        import pydantic

        if not isinstance(data, dict) or not data:
            raise ConfigError(f"{where}: no run configuration (its 'config' section is missing or empty)")
        hints = typing.get_type_hints(cls)
        known = {f.name for f in fields(cls)} - {"progress"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{where}: config key {unknown[0]!r} is not a setting of this speechprobe version")
        required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
        missing = [k for k in required if k not in data and k != "out"]
        if missing:
            raise ConfigError(f"{where}: config key {missing[0]!r} is missing")
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

        return self.max_batch_seconds or default_batch_seconds(self.device)

    def to_json(self) -> dict:
        d = asdict(self)
        d["out"] = str(self.out)
        d["cache"] = str(self.cache) if self.cache else None
        d.pop("progress")
        return d

    def stage_config(self, stage: str) -> dict:
        """The settings that decide ``stage``'s numbers (extract or probe): the run directory's fingerprint."""
        numbers = {k: v for k, v in self.to_json().items() if k not in NOT_NUMBERS and (v or k not in UNSET_LEFT_OUT)}
        if stage == "extract":
            return {k: v for k, v in numbers.items() if k in EXTRACT_FIELDS}
        if stage == "probe":  # any setting not known to decide the features decides the probes
            return {k: v for k, v in numbers.items() if k not in EXTRACT_FIELDS or k == "seed"}
        raise ValueError(f"RunConfig has no stage {stage!r}")
