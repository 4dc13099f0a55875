"""Acoustic-cue probes: how well each layer linearly encodes each clip's own F0, energy, rate, duration,
spectral tilt, jitter, shimmer and HNR (the cues of :mod:`speechprobe.models.acoustic_cues`).

Besides the stored cues, two targets are derived per task: ``f0_mean_rel`` and ``f0_range_rel``, F0 mean
and range relative to the mean of the clip's own group (speaker): prosody as the listener hears it
against the speaker's own level (undefined when a task has no groups).

Per (model, task, layer, fold): a ridge regression (``StandardScaler`` + ``RidgeCV`` with a penalty per
cue chosen by leave-one-out on the training fold) is fitted on the training fold of the run's own folds
and scored on the test fold by out-of-sample R², ``1 - SS_res / sum((y - mean_train)^2)`` (against the
best constant a probe could know, the training mean: with grouped folds the test fold's own mean is
shifted by its held-out speakers and would make every R² look poor), and by Pearson r between prediction
and cue. The hand-crafted baselines (mfcc, librosa) are probed the same way.

Writes ``cues.csv`` (tidy: results.csv's columns plus ``target``, the cue; ``probe="ridge"``, metric
``r2`` or ``pearson``; a cue undefined or constant on a fold gives an empty value), one heatmap per
model ``figures/cues_<model>.png`` (layer × cue, one panel per task, baselines beside, the
``--random-init`` twin below) and ``analyses/cues.json``. Formulas: docs/analyses.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from ..errors import SpeechprobeError
from ..models.acoustic_cues import CUES, NAME, split_cues
from ..parallel import single_threaded
from ..probes.cv import Fold
from .features import FeatureLoader, read_manifest
from .inputs import RunInputs, TaskData, map_pairs, prepare, random_pairs
from .outputs import AnalysisOutput, FigureNote, write_rows
from .plots import plot_panel_heatmaps, task_slug
from .summary import summarize

log = logging.getLogger("speechprobe")

CUE_CSV = "cues.csv"
CUE_COLUMNS = ["model", "task", "target", "layer", "probe", "fold", "metric", "value"]
RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-2, 5, 15))
CUE_LABELS = {
    "f0_mean": "F0 mean",
    "f0_range": "F0 range",
    "voicing_rate": "voicing rate",
    "energy_mean": "energy mean",
    "energy_range": "energy range",
    "speaking_rate": "speaking rate",
    "duration": "duration",
    "spectral_tilt": "spectral tilt",
    "jitter": "jitter",
    "shimmer": "shimmer",
    "hnr": "HNR",
    "f0_mean_rel": "F0 mean re speaker",
    "f0_range_rel": "F0 range re speaker",
}
RELATIVE = {"f0_mean_rel": "f0_mean", "f0_range_rel": "f0_range"}  # derived target -> stored cue
TARGETS: tuple[str, ...] = (*CUES, *RELATIVE)
HEADLINE_CUES = ("f0_mean", "f0_mean_rel", "energy_mean", "speaking_rate", "hnr")  # in the findings, fixed a priori

CueLoader = Callable[[Sequence[str]], np.ndarray]  # content hashes -> (N, len(CUES)) values, NaN = undefined


@dataclass(frozen=True)
class CueSettings:
    """Options of the cue probes; folds and seed default to the run's."""

    n_folds: int | None = None
    seed: int | None = None
    alphas: tuple[float, ...] = RIDGE_ALPHAS
    models: tuple[str, ...] | None = None  # None: every model of the run
    n_jobs: int = 1  # (model, task) pairs probed at once


def cue_loader(run_dir: Path, cache: Path | None = None) -> CueLoader:
    """Read the run's stored cue vectors (``manifest.json``'s ``targets.cues``) from its feature store."""
    manifest = read_manifest(run_dir)
    info = (manifest.get("targets") or {}).get(NAME)
    if not info:
        raise SpeechprobeError(f"{run_dir}: no acoustic cues were extracted; rerun with cue probes on")
    from ..cache import cache_root
    from ..features.store import FeatureSpace

    if cache is None and (manifest.get("config") or {}).get("cache"):
        cache = Path(manifest["config"]["cache"])
    space = FeatureSpace(cache_root(cache) / "features" / info["space"], {})

    def load(hashes: Sequence[str]) -> np.ndarray:
        missing = sum(not space.has(h) for h in hashes)
        if missing:
            raise SpeechprobeError(f"{missing} of {len(hashes)} clips have no stored cues in {space.root}")
        return split_cues(space.gather(list(hashes)))

    return load


def cue_targets(cues: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
    """``(N, len(TARGETS))``: the stored cues, then the speaker-relative ones (each clip's cue minus the
    mean of its group's defined values; NaN without groups). A group lies wholly in one side of every
    fold, so the relative cue of a training clip never uses a test clip."""
    rel = np.full((len(cues), len(RELATIVE)), np.nan)
    if groups is not None:
        cols = [CUES.index(c) for c in RELATIVE.values()]
        means = pd.DataFrame(cues[:, cols]).groupby(np.asarray(groups)).transform("mean").to_numpy()
        rel = cues[:, cols] - means
    return np.concatenate([cues, rel], axis=1)


def ridge_probe(alphas: Sequence[float] = RIDGE_ALPHAS) -> Pipeline:
    """Standardise, then ridge with one penalty per target chosen by efficient leave-one-out."""
    return make_pipeline(StandardScaler(), RidgeCV(alphas=list(alphas), alpha_per_target=True))


def _varies(values: np.ndarray) -> bool:
    """At least two different defined values."""
    finite = values[np.isfinite(values)]
    return len(finite) > 1 and bool(finite.max() > finite.min())


def _r2_pearson(y: np.ndarray, pred: np.ndarray, train_mean: float) -> tuple[float, float]:
    """Out-of-sample R² (against the training mean) and Pearson r; NaN when the test cue is constant."""
    if len(y) < 2 or np.ptp(y) < 1e-9:
        return float("nan"), float("nan")
    r2 = 1.0 - float(np.sum((y - pred) ** 2) / np.sum((y - train_mean) ** 2))
    r = float(stats.pearsonr(y, pred)[0]) if np.ptp(pred) > 1e-12 else float("nan")
    return r2, r


def fold_cue_scores(
    X: np.ndarray, cues: np.ndarray, fold: Fold, alphas: Sequence[float] = RIDGE_ALPHAS
) -> dict[int, tuple[float, float]]:
    """``{target index: (R², Pearson r)}`` of ridge probes fitted on ``fold``'s training rows of ``X``.

    Cues defined on every clip and varying in training share one multi-target fit; a cue undefined on
    some clips is fitted on its defined clips only; a cue constant in training scores NaN.
    """
    train, test = fold
    out: dict[int, tuple[float, float]] = {}
    varying = [c for c in range(cues.shape[1]) if _varies(cues[train, c])]
    full = [c for c in varying if np.isfinite(cues[:, c]).all()]
    jobs = [(full, train, test)] if full else []
    for c in varying:
        if c not in full:
            ok = np.isfinite(cues[:, c])
            jobs.append(([c], train[ok[train]], test[ok[test]]))
    for cols, tr, te in jobs:
        if len(tr) < 3 or len(te) < 2:
            continue
        pred = ridge_probe(alphas).fit(X[tr], cues[tr][:, cols]).predict(X[te]).reshape(len(te), -1)
        for j, c in enumerate(cols):
            out[c] = _r2_pearson(cues[te, c], pred[:, j], float(cues[tr, c].mean()))
    for c in range(cues.shape[1]):
        out.setdefault(c, (float("nan"), float("nan")))
    return out


def probe_cues(
    features: np.ndarray, cues: np.ndarray, folds: Sequence[Fold], alphas: Sequence[float] = RIDGE_ALPHAS
) -> list[dict]:
    """Tidy rows ``{target, layer, probe, fold, metric, value}`` for features ``(N, L, D)`` and the
    :data:`TARGETS` ``(N, T)`` of :func:`cue_targets`."""
    rows = []
    with single_threaded():  # the same bits whatever the machine's load
        for layer in range(features.shape[1]):
            X = np.asarray(features[:, layer], dtype=np.float64)
            for k, fold in enumerate(folds):
                for c, (r2, r) in sorted(fold_cue_scores(X, cues, fold, alphas).items()):
                    for metric, value in (("r2", r2), ("pearson", r)):
                        rows.append(
                            {
                                "target": TARGETS[c],
                                "layer": layer,
                                "probe": "ridge",
                                "fold": k,
                                "metric": metric,
                                "value": value,
                            }
                        )
    return rows


def _cue_work(features: np.ndarray, task: TaskData, cues: np.ndarray, alphas: Sequence[float]) -> list[dict]:
    return probe_cues(features, cues, task.folds, alphas)


def cue_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean, std, n and 95 % CI over folds per (model, task, target, layer, probe, metric)."""
    parts = [summarize(part.drop(columns="target")).assign(target=target) for target, part in rows.groupby("target")]
    if not parts:
        return pd.DataFrame(columns=["model", "task", "target", "layer", "probe", "metric", "mean", "std", "n", "ci95"])
    return pd.concat(parts, ignore_index=True)


def run_cue_probes(
    run_dir: Path,
    load_features: FeatureLoader | None = None,
    load_cues: CueLoader | None = None,
    settings: CueSettings = CueSettings(),
) -> AnalysisOutput:
    """Ridge cue probes for every (model, task) of a finished run; writes ``cues.csv``, the heatmaps and
    ``analyses/cues.json`` and returns what it wrote."""
    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    inputs, load_features, models = prepare(run_dir, settings, load_features)
    load_cues = load_cues or cue_loader(run_dir)
    targets = {t.name: cue_targets(load_cues(t.hashes), t.groups) for t in inputs.tasks}
    work = partial(_cue_work, alphas=settings.alphas)
    rows, notes = map_pairs(
        inputs, models, load_features, work, CUE_COLUMNS, "cue probes", settings.n_jobs, lambda t: targets[t.name]
    )
    notes = [*inputs.notes, *notes]
    for task, cues in targets.items():
        constant = [t for t, col in zip(TARGETS, cues.T) if not _varies(col)]
        if constant:
            notes.append(f"task {task}: {', '.join(constant)} constant or undefined on every clip (no score)")
    write_rows(run_dir / CUE_CSV, rows)
    summary = cue_summary(rows)
    out = AnalysisOutput(
        "cues",
        params={
            "n_folds": inputs.n_folds,
            "seed": inputs.seed,
            "alphas": list(settings.alphas),
            "targets": list(TARGETS),
        },
        tables=[CUE_CSV],
        notes=notes,
    )
    for png, model in plot_cue_heatmaps(summary, inputs, run_dir / "figures"):
        out.figures.append(FigureNote(str(png.relative_to(run_dir)), _caption(model, inputs), "Acoustic cues"))
    out.findings = cue_findings(summary, inputs)
    out.seconds = round(time.perf_counter() - t0, 3)
    out.write(run_dir)
    return out


def _r2_grid(summary: pd.DataFrame, model: str, task: str, n_layers: int) -> np.ndarray:
    """(cues, layers) mean R² of one model on one task (NaN where missing)."""
    part = summary[(summary["model"] == model) & (summary["task"] == task) & (summary["metric"] == "r2")]
    grid = part.pivot_table(index="target", columns="layer", values="mean", dropna=False)
    return grid.reindex(index=list(TARGETS), columns=range(n_layers)).to_numpy(float)


def plot_cue_heatmaps(summary: pd.DataFrame, inputs: RunInputs, fig_dir: Path) -> list[tuple[Path, str]]:
    """``figures/cues_<model>.png`` per non-baseline model: layer × cue R², a panel per task, the
    baselines as extra columns, and the model's ``+random`` twin as a second row of panels."""
    baselines = inputs.baselines
    tasks = [t.name for t in inputs.tasks if t.name in set(summary["task"])]
    shown = random_pairs([m for m in inputs.models if m not in baselines and m in set(summary["model"])])
    paths = []
    for model, twin in shown.items():
        panels = []
        for m in (model, twin) if twin else (model,):
            row = []
            for task in tasks:
                grid = _r2_grid(summary, m, task, inputs.num_layers(m))
                matrix = np.column_stack([grid, *(_r2_grid(summary, b, task, 1) for b in baselines)])
                row.append((f"{m} · {task}", np.clip(matrix, -1, 1), [*map(str, range(grid.shape[1])), *baselines]))
            panels.append(row)
        png = plot_panel_heatmaps(
            panels,
            [CUE_LABELS[c] for c in TARGETS],
            fig_dir / f"cues_{task_slug(model)}.png",
            (0.0, 1.0),
            "ridge R² (mean over folds; colours clipped at 0)",
            xlabel="layer, then baselines",
        )
        paths.append((png, model))
    return paths


def _caption(model: str, inputs: RunInputs) -> str:
    twin = random_pairs(inputs.models).get(model)
    extra = f" Lower row: {twin}, the same architecture with random weights." if twin else ""
    return (
        f"How well each layer of {model} linearly encodes each clip's acoustic cues: ridge-regression R² on held-out "
        f"clips (mean over the run's {inputs.n_folds} folds; standardised and penalised inside each training fold), "
        f"one panel per task; the last columns are the hand-crafted baselines probed the same way. R² is out of "
        f"sample (against the training fold's mean; below 0: worse than that constant; values below -1 are shown "
        f"as -1). Grey: cue "
        f"undefined or constant on that task.{extra}"
    )


def _mean_over_tasks(summary: pd.DataFrame, model: str, cue: str, layer: int) -> tuple[float, float, float]:
    part = summary[
        (summary["model"] == model)
        & (summary["target"] == cue)
        & (summary["metric"] == "r2")
        & (summary["layer"] == layer)
    ]["mean"].dropna()
    if part.empty:
        return float("nan"), float("nan"), float("nan")
    return float(part.mean()), float(part.min()), float(part.max())


def cue_findings(summary: pd.DataFrame, inputs: RunInputs) -> list[str]:
    """Per model: R² of the headline cues at the input layer and the last layer, beside the best baseline
    (means over tasks of the fold-mean R²; no layer is selected, so none is claimed as best)."""
    out = []
    baselines = inputs.baselines
    for model in [m for m in inputs.models if m not in baselines and m in set(summary["model"])]:
        last = inputs.num_layers(model) - 1
        parts = []
        for cue in HEADLINE_CUES:
            first, end = _mean_over_tasks(summary, model, cue, 0)[0], _mean_over_tasks(summary, model, cue, last)[0]
            base = max((_mean_over_tasks(summary, b, cue, 0)[0] for b in baselines), default=float("nan"))
            if np.isfinite(first) and np.isfinite(end):
                ref = f", best baseline {base:.2f}" if np.isfinite(base) else ""
                parts.append(f"{CUE_LABELS[cue]} {first:.2f} → {end:.2f}{ref}")
        if parts:
            out.append(
                f"Acoustic cues in {model} (ridge R² on held-out clips, layer 0 → last layer {last}, mean over "
                f"{summary['task'].nunique()} tasks; below 0: worse than the training-fold mean): "
                + "; ".join(parts)
                + "."
            )
    return out


def read_cue_rows(run_dir: Path) -> pd.DataFrame:
    """``cues.csv`` of a run (``value`` as float, NaN where empty)."""
    path = Path(run_dir) / CUE_CSV
    if not path.is_file():
        raise SpeechprobeError(f"{run_dir}: no {CUE_CSV}; run the cue probes first")
    frame = pd.read_csv(path, dtype={"model": str, "task": str, "target": str, "probe": str, "metric": str})
    return frame


__all__ = [
    "CUE_COLUMNS",
    "CUE_CSV",
    "TARGETS",
    "CueSettings",
    "cue_targets",
    "cue_findings",
    "cue_loader",
    "cue_summary",
    "fold_cue_scores",
    "plot_cue_heatmaps",
    "probe_cues",
    "read_cue_rows",
    "ridge_probe",
    "run_cue_probes",
]
