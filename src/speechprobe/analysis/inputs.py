"""What the feature-level analyses of a run share: its tasks with their folds, its models, the
trained/random pairing of its models, and an interval over cross-validation folds.

Every analysis here uses the very folds of the run's probes (:func:`speechprobe.probes.make_folds`
with the run's labels, groups, number of folds and seed), so its scores line up with results.csv.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy import stats

from ..errors import ConfigError, SpeechprobeError
from ..probes import make_folds
from ..probes.cv import Fold
from .features import read_clips, read_manifest

log = logging.getLogger("speechprobe")

RANDOM_SUFFIX = "+random"  # how the pipeline names a --random-init model (models/whisper.py, models/hub.py)


@dataclass(frozen=True)
class TaskData:
    """One task's clips (in the run's order) and the run's folds over them."""

    name: str
    labels: np.ndarray
    groups: np.ndarray | None
    hashes: list[str]
    folds: list[Fold]


@dataclass(frozen=True)
class RunInputs:
    """The parts of a finished run directory an analysis needs, with the run's fold settings."""

    run_dir: Path
    manifest: dict
    n_folds: int
    seed: int
    tasks: list[TaskData]
    notes: list[str]

    @property
    def models(self) -> list[str]:
        """Models with stored features, in manifest order (baselines included)."""
        return list(self.manifest.get("models") or {})

    @property
    def baselines(self) -> list[str]:
        """The run's hand-crafted baselines (its ``--baselines``, else the models of that family)."""
        names = (self.manifest.get("config") or {}).get("baselines")
        if isinstance(names, list):
            return [m for m in self.models if m in names]
        return [m for m, info in (self.manifest.get("models") or {}).items() if info.get("family") == "handcrafted"]

    def num_layers(self, model: str) -> int:
        return int((self.manifest.get("models") or {}).get(model, {}).get("num_layers") or 0)


def run_inputs(run_dir: Path, n_folds: int | None = None, seed: int | None = None) -> RunInputs:
    """Read ``manifest.json`` and ``clips/`` of ``run_dir`` and rebuild the run's folds per task.

    ``n_folds`` and ``seed`` default to the run's config. A task that cannot be folded (one class
    left, too few groups) is left out with a note rather than failing the other tasks.
    """
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    config = manifest.get("config") or {}
    n_folds = int(n_folds or config.get("folds") or 5)
    seed = int(config.get("seed", 0) if seed is None else seed)
    tasks, notes = [], []
    for name, info in (manifest.get("tasks") or {}).items():
        try:
            clips = read_clips(run_dir, name, info)
            labels = clips["label"].astype(str).to_numpy()
            groups = clips["group"].astype(str).to_numpy()
            groups = groups if any(groups) else None
            folds = make_folds(labels, groups, n_folds, seed)
        except (SpeechprobeError, ConfigError) as e:
            notes.append(f"task {name} left out: {e}")
            continue
        tasks.append(TaskData(name, labels, groups, list(clips["content_hash"]), folds))
    return RunInputs(run_dir, manifest, n_folds, seed, tasks, notes)


def prepare(run_dir: Path, settings, load_features, multi_layer: bool = False) -> tuple[RunInputs, object, list[str]]:
    """What every cue analysis starts from: the run's inputs (folds from ``settings.n_folds`` and
    ``settings.seed``, else the run's), the feature loader (default: the run's feature store) and the
    models to analyse (``settings.models``, else all; with ``multi_layer`` only those with several layers)."""
    from .features import store_loader

    inputs = run_inputs(run_dir, settings.n_folds, settings.seed)
    models = [m for m in (settings.models or inputs.models) if m in inputs.models]
    if multi_layer:
        models = [m for m in models if inputs.num_layers(m) > 1]
    return inputs, load_features or store_loader(run_dir), models


def load_layers(load_features, model: str, task: TaskData) -> np.ndarray:
    """``(N, L, D)`` features of ``model`` on ``task``'s clips, checked against the clip count."""
    feats = load_features(model, task.hashes)
    if feats.ndim != 3 or feats.shape[0] != len(task.hashes):
        raise SpeechprobeError(f"features of shape {feats.shape} for {len(task.hashes)} clips")
    return feats


def map_pairs(
    inputs: RunInputs,
    models: list[str],
    load_features,
    work: Callable,
    columns: list[str],
    label: str,
    n_jobs: int = 1,
    task_data: Callable | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Run ``work(features, task, data)`` -> tidy rows for every (task, model) pair, ``n_jobs`` pairs at
    once (in processes; each job should run single-threaded), and stack the rows with their ``model`` and
    ``task`` in ``columns`` order. ``data`` is ``task_data(task)``, computed once per task. A pair whose
    features cannot be loaded is left out with a note naming ``label``. Rows come in (task, model) order
    whatever ``n_jobs``."""
    notes: list[str] = []

    def calls():
        for task in inputs.tasks:
            data = task_data(task) if task_data else None
            for model in models:
                try:
                    feats = load_layers(load_features, model, task)
                except SpeechprobeError as e:
                    notes.append(f"{label} skipped for {model} × {task.name}: {e}")
                    continue
                yield delayed(_tagged)(work, feats, task, data, model)

    frames = [pd.DataFrame(rows).assign(model=m, task=t) for m, t, rows in Parallel(n_jobs=n_jobs)(calls()) if rows]
    frame = pd.concat([f[columns] for f in frames], ignore_index=True) if frames else pd.DataFrame(columns=columns)
    return frame, notes


def _tagged(work: Callable, feats: np.ndarray, task: TaskData, data, model: str) -> tuple[str, str, list[dict]]:
    return model, task.name, work(feats, task, data)


def random_pairs(models: list[str]) -> dict[str, str | None]:
    """Each model shown in a figure -> its ``--random-init`` twin when the run has it (else None).

    A random model whose trained model is absent is shown on its own (mapped to None).
    """
    names = set(models)
    out: dict[str, str | None] = {}
    for m in models:
        if m.endswith(RANDOM_SUFFIX) and m.removesuffix(RANDOM_SUFFIX) in names:
            continue
        out[m] = m + RANDOM_SUFFIX if m + RANDOM_SUFFIX in names else None
    return out


def fold_interval(values: np.ndarray, n_train: int, n_test: int, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and ``level`` interval of a per-fold quantity (a score or a paired difference).

    Cross-validation folds share training data, so their scores are positively correlated and the plain
    t interval is too narrow. This uses the corrected resampled t (Nadeau & Bengio, 2003): variance
    ``(1/k + n_test/n_train) * s^2`` with ``k`` folds, ``t`` with ``k - 1`` degrees of freedom.
    NaN folds are ignored; fewer than two finite folds give a NaN interval.
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(v.mean())
    if len(v) < 2:
        return mean, float("nan"), float("nan")
    k = len(v)
    half = stats.t.ppf(0.5 + level / 2, k - 1) * np.sqrt((1 / k + n_test / max(n_train, 1)) * v.var(ddof=1))
    return mean, mean - float(half), mean + float(half)
