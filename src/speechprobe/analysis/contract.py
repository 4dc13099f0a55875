"""The analysis contract: what an analysis is, what it gets and what it returns.

An analysis is one module under ``analysis/`` with a pure function ``compute(unit) -> rows`` and one
:class:`Analysis` record. It works from the feature store and the run's results, never re-running a
model (but for the attention analyses, which replay a bounded sample of clips: :mod:`.replay`), and
returns tidy rows (a DataFrame, or several tables and figures with captions in an :class:`AnalysisResult`).
Plugging one in is a single ``register(Analysis(...))`` line in
:mod:`.registry` (or an entry point in the ``speechprobe.analyses`` group); :mod:`.plan` then decides
what still needs computing and runs it, and hands its figures, findings and notes to the report.

A *unit* is one (model, task) (``scope="model_task"``), one task with every model of the run
(``scope="task"``, e.g. comparing models) or the whole run (``scope="run"``, e.g. layer similarity).
:class:`Unit` hands the analysis its inputs lazily: labels, groups and clips, the run's cross-validation
folds, the primary probe's best layers, and ``features(model)`` ``(items, layers, dims)`` from the store,
loaded once per unit and shared by every analysis of the unit.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import AnalysisSwitches
from ..errors import ConfigError, SpeechprobeError
from ..rundir import register_file, slug

SCOPES = ("model_task", "task", "run")
KEYS = {"model_task": ["model", "task"], "task": ["task"], "run": []}  # the columns a unit's rows start with


@dataclass(frozen=True)
class AnalysisSettings:
    """Run-wide settings every analysis may read; ``options`` holds per-analysis extras by name."""

    n_folds: int = 5
    seed: int = 0
    primary_probe: str = "knn"
    n_permutations: int = 1000
    embeddings: bool = True
    max_points: int = 1000
    n_jobs: int = 1
    device: str | None = None
    progress: bool = False
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # The run's cross-validation and probe settings, so analyses re-score exactly the folds and probes of
    # results.csv (speechprobe.probes.cv.make_cv, ProbeSettings fields).
    repeats: int = 1
    cue_repeats: int | None = None  # the first N repeats the fold-based cue analyses use (None: all)
    cv: str = "kfold"
    ungrouped: bool = False
    probe_settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Figure:
    """A figure an analysis wrote, with the caption the report shows under it."""

    path: Path
    caption: str


@dataclass
class AnalysisResult:
    """What one analysis returns for one unit: rows per table (file name → rows), figures, notes, and the
    report's sentences when they need more than the tables (else :attr:`Analysis.findings` reads them)."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)


@dataclass
class Unit:
    """The inputs of one (model, task), or of one task with every model (see the module docstring)."""

    task: str
    model: str | None
    models: tuple[str, ...]
    clips: pd.DataFrame
    settings: AnalysisSettings
    run_dir: Path
    best: pd.DataFrame  # primary_best rows of the unit's model(s)
    loader: Callable[[str, Sequence[str]], np.ndarray]
    _features: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return f"{self.model} × {self.task}" if self.model else f"task {self.task}" if self.task else "the run"

    @property
    def labels(self) -> np.ndarray:
        return self.clips["label"].astype(str).to_numpy()

    @property
    def groups(self) -> np.ndarray | None:
        """The clips' groups as the run folded them (None without groups or with ``--ungrouped``)."""
        g = self.clips["group"].astype(str).to_numpy()
        return g if any(g) and not self.settings.ungrouped else None

    @cached_property
    def folds(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The run's cross-validation folds (those of the probe runner, repeats included, so scores match
        results.csv)."""
        from ..probes import make_cv

        s = self.settings
        return make_cv(self.labels, self.groups, s.n_folds, s.seed, s.repeats, s.cv).folds

    @property
    def cue_folds(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The folds of the cue analyses (cue probes, erasure, all-layers; pooling variants too): the run's, or
        with ``cue_repeats`` the first that many repeats of them (fold id = repeat x folds + k), to bound their cost."""
        n = self.settings.cue_repeats
        return self.folds if n is None else self.folds[: n * len(self.folds) // self.settings.repeats]

    @property
    def probe_settings(self):
        """The run's probe hyper-parameters (:class:`speechprobe.probes.ProbeSettings`)."""
        from ..probes import ProbeSettings

        return ProbeSettings(**self.settings.probe_settings)

    def features(self, model: str | None = None) -> np.ndarray:
        """``(items, layers, dims)`` of ``model`` (default: the unit's) for the unit's clips, loaded once."""
        model = model or self.model
        if model is None:
            raise SpeechprobeError(f"{self.name}: name a model to load features of")
        if model not in self._features:
            feats = self.loader(model, list(self.clips["content_hash"]))
            if feats.ndim != 3 or feats.shape[0] != len(self.clips):
                raise SpeechprobeError(f"{model}: features of shape {feats.shape} for {len(self.clips)} clips")
            self._features[model] = feats
        return self._features[model]

    def best_layer(self, model: str | None = None) -> tuple[int, int]:
        """``(best layer, number of layers)`` of ``model`` (default: the unit's) by the primary probe."""
        model = model or self.model
        rows = self.best[self.best["model"] == model]
        if rows.empty:
            raise SpeechprobeError(f"{model} × {self.task}: no {self.settings.primary_probe} results")
        return int(rows["layer"].iloc[0]), int(rows["num_layers"].iloc[0])

    def figure_path(self, prefix: str, model: str | None = None, suffix: str = ".png") -> Path:
        """``RUN/figures/<prefix>_<model>_<task><suffix>`` (``<prefix>_<task>`` for task-scope units)."""
        model = model or self.model
        parts = [prefix, *([slug(model)] if model else []), slug(self.task)]
        return self.run_dir / "figures" / ("_".join(parts) + suffix)

    def release(self) -> None:
        self._features.clear()


@dataclass(frozen=True)
class Analysis:
    """One analysis, declared once: what it computes, when it runs, what it writes and what the report says
    (a module declares its own with ``ANALYSIS = Analysis.of(__name__, tables, ...)``: the rest by convention).

    ``tables``: file name → columns (``model``/``task`` first for ``scope="model_task"``, ``task`` for
    ``scope="task"``; a run-scope analysis writes whole tables); a ``compute`` that returns a bare
    DataFrame fills the only table. The tables are registered with the run directory (removed with the
    probe stage's files). ``after``: analyses whose outputs it reads; it runs after them when they run.
    ``flag``: the run setting that switches it (``--mdl/--no-mdl``: ``"mdl"``; ``--permutations N``:
    ``"permutations"``, 0 is off), else ``default`` decides; ``--analyses`` edits either (:mod:`.registry`).
    ``cost`` and ``description`` (what the numbers are) are shown in ``--analyses``'s help.
    ``enabled`` reads the settings: whether they leave the analysis anything to do. ``options`` are what
    change the outputs (a unit is recomputed when they or its inputs change; run-scope analyses always
    are). ``finalise`` runs once over the whole tables after every unit (e.g. q-values across tests).
    ``findings(run_dir)`` gives the report its sentences, read from the tables; its figures go under
    ``section``, and ``summary`` ones lead the report (sentences first, figures on the summary).
    """

    name: str
    compute: Callable[[Unit], AnalysisResult | pd.DataFrame]
    tables: Mapping[str, Sequence[str]] = field(default_factory=dict)
    scope: str = "model_task"
    after: tuple[str, ...] = ()
    flag: str | None = None
    default: bool = True
    cost: str = "seconds"
    enabled: Callable[[AnalysisSettings], bool] = lambda settings: True
    options: Callable[[AnalysisSettings], Mapping[str, Any]] = lambda settings: {}
    finalise: Callable[[dict[str, pd.DataFrame]], dict[str, pd.DataFrame]] | None = None
    findings: Callable[[Path], list[str]] | None = None
    section: str = "Analyses"
    summary: bool = False
    description: str = ""

    @classmethod
    def of(cls, module: str, tables: Mapping[str, Sequence[str]] | None = None, **declared: Any) -> Analysis:
        """The analysis declared by ``module`` (its ``__name__``), by convention: named after the module, of
        ``scope="task"``, switched by the run setting of its name when there is one, computed by the module's
        ``compute``, with its ``_options``, ``finalise`` and ``findings`` when it has them; the first sentence of
        its docstring describes it, and the sentence's title (``"Title: ..."``) names its report section.
        ``declared`` (any field, the name too) overrides these."""
        mod = sys.modules[module]
        name = declared.pop("name", module.rpartition(".")[2])
        found = {k: getattr(mod, a) for k, a in CONVENTIONS.items() if hasattr(mod, a)}
        flag = name if name in AnalysisSwitches.__dataclass_fields__ else None
        text = re.sub(r"(:\w+:)?`+~?([^`]+)`+", r"\2", " ".join((mod.__doc__ or "").split("\n\n")[0].split()))
        title, colon, _ = text.partition(": ")
        defaults = {"scope": "task", "flag": flag, "description": text, "section": title if colon else "Analyses"}
        return cls(name, **{**defaults, **found, "tables": dict(tables or {}), **declared})

    def result(self, value: AnalysisResult | pd.DataFrame) -> AnalysisResult:
        """``compute``'s return value as an :class:`AnalysisResult`."""
        if isinstance(value, AnalysisResult):
            return value
        if len(self.tables) != 1:
            raise TypeError(f"analysis {self.name!r} returned a DataFrame but declares {len(self.tables)} tables")
        return AnalysisResult(tables={next(iter(self.tables)): value})


CONVENTIONS = {"compute": "compute", "options": "_options", "finalise": "finalise", "findings": "findings"}
_REGISTRY: dict[str, Analysis] = {}


def register(analysis: Analysis) -> Analysis:
    """Add ``analysis`` to the analyses a run can choose (in registration order, after those it reads);
    returns it."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", analysis.name):
        raise ConfigError(f"analysis {analysis.name!r}: name it in lower case, digits and _ (a --analyses item)")
    if analysis.scope not in SCOPES:
        raise ConfigError(f"analysis {analysis.name!r}: scope {analysis.scope!r}; choose from {', '.join(SCOPES)}")
    key = KEYS[analysis.scope]
    for table, columns in analysis.tables.items():
        if list(columns[: len(key)]) != key:
            raise ConfigError(f"analysis {analysis.name!r}: table {table} must start with columns {key}")
    taken = {t: a.name for a in _REGISTRY.values() if a.name != analysis.name for t in a.tables}
    clash = [t for t in analysis.tables if t in taken]
    if clash:
        raise ConfigError(f"analysis {analysis.name!r}: {clash[0]} is already written by {taken[clash[0]]!r}")
    _REGISTRY[analysis.name] = analysis
    for table in analysis.tables:  # the run directory removes them with the probe stage's other files
        register_file("probe", table)
    return analysis


def registered_so_far() -> list[Analysis]:
    """The analyses registered so far, in registration order (``registry.registered`` adds the built-in
    ones first; this module never imports them, as they import it)."""
    return list(_REGISTRY.values())
