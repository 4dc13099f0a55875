"""``speechprobe ablate``: pre-train every (objective, seed) that is missing, probe them all in one ordinary run
through the pipeline's Python API, then report the objectives' effects with the seed as the unit.

``OUT/models/<objective>-s<seed>/`` holds the checkpoints (``speechprobe pretrain`` runs), ``OUT/run/`` the run
directory of the probes (with its own report), ``OUT/report.html`` / ``report.md`` and the ``ablate_*.csv`` tables
the ablation's report (:mod:`.ablate_report`). Every step resumes: a finished checkpoint is not trained again and
the run resumes like any run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import RunConfig
from ..errors import ConfigError
from ..settings import check_fields, group, positive, rule, setting, split_list
from .config import OBJECTIVES, Engine, PretrainSettings, TrainSettings

# The run's analyses: the probes and the cue probes (the cue peaks); the rest answers other questions.
RUN_ANALYSES = {"cue_probes": True, "permutations": 0, "embeddings": False, "layer_weights": False}
RUN_ANALYSES |= {"fingerprints": False, "similarity": False, "mdl": False, "erasure": False}


@dataclass
class AblateSettings:
    """One ``speechprobe ablate``."""

    out: Path = setting(help="The ablation's directory (models/, run/, report.html); resumed when it exists.")
    objectives: list[str] = setting(
        help="Objectives, comma-separated (random: the untrained control every other is paired with).",
        factory=lambda: ["contrastive", "masked", "random"],
        parse=split_list,
        check=rule(lambda v: set(v) <= set(OBJECTIVES), f"choose among {', '.join(OBJECTIVES)}"),
    )
    seeds: int = setting(
        3, "Pre-training seeds per objective (0..N-1): the unit of every interval.", check=positive(1, integer=True)
    )
    tasks: list[str] = setting(
        help="Tasks to probe, comma-separated (as run --tasks).",
        factory=lambda: ["gender", "emotion", "stress"],
        parse=split_list,
    )
    probes: list[str] = setting(
        help="Probes; the first is the one compared.", factory=lambda: ["knn"], parse=split_list
    )
    n_per_class: int | None = setting(None, "Clips per class of each synthetic task probed [default: the task's].")
    train: TrainSettings = group(TrainSettings)

    def validate(self) -> None:
        check_fields(self)
        self.train.validate()
        if not self.objectives or not self.tasks or not self.probes:
            raise ConfigError("ablate: give at least one objective, task and probe")


def checkpoints(s: AblateSettings) -> dict[Path, tuple[str, int]]:
    """Each checkpoint folder -> (objective, seed)."""
    return {s.out / "models" / f"{obj}-s{seed}": (obj, seed) for obj in s.objectives for seed in range(s.seeds)}


def _done(folder: Path, objective: str, seed: int, train: TrainSettings) -> bool:
    from .checkpoint import read_lab

    found = read_lab(folder)
    want = {"objective": objective, "seed": seed, "settings": train.fingerprint(), "status": "done"}
    return found is not None and {k: found.get(k) for k in want} == want


def run_config(
    s: AblateSettings, models: list[Path], cache_root: Path, progress: bool, engine: Engine | None = None
) -> RunConfig:
    """The ordinary run that probes every checkpoint (its extraction on Ray too when ``engine`` says so)."""
    return RunConfig.of(
        models=[str(m) for m in models],
        tasks=s.tasks,
        out=s.out / "run",
        probes=s.probes,
        primary_probe=s.probes[0],
        baselines=[],
        n_per_class=s.n_per_class,
        cache=cache_root,
        progress=progress,
        **RUN_ANALYSES,
        **dict(engine or {}),
    )


def ablate(
    s: AblateSettings, cache_root: Path, progress: bool = True, existing: str = "auto", engine: Engine | None = None
) -> Path:
    """Pre-train what is missing, probe, report; returns the report's path. ``existing``: what to do with a run
    already in ``OUT/run`` (``auto``: resume one of the same settings; ``overwrite``: start it again, as after a
    change of objectives or seeds; the features stay cached). ``engine`` (``engine``, ``ray_address``,
    ``ray_actors``): with ``engine: ray`` the pre-training jobs run as Ray actor calls (:mod:`.jobs`) and the
    run's extraction on Ray, with the same results."""
    from ..pipeline import run as run_pipeline
    from .ablate_report import write_report
    from .jobs import run_jobs

    s.validate()
    models = checkpoints(s)
    missing = [
        PretrainSettings(objective=objective, out=folder, seed=seed, train=s.train)
        for folder, (objective, seed) in models.items()
        if not _done(folder, objective, seed, s.train)
    ]
    for _ in run_jobs(missing, cache_root, None, progress, engine):
        pass
    cfg = run_config(s, list(models), cache_root, progress, engine)
    run_pipeline(cfg, existing)
    return write_report(s, {folder.name: key for folder, key in models.items()}, progress)
