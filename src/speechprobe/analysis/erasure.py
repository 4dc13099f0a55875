"""Cue erasure: does a task's probe rely on a cue? LEACE (Belrose et al., 2023; the ``concept-erasure``
package) removes from a layer all *linear* information about an acoustic cue group (F0, energy, ...),
fitted on the training fold only; the task's probe is then trained and scored again on the same folds.

Per (model, task, layer, fold, cue group)::

    standardise the layer (training-fold statistics)
    eraser = LEACE fitted on the training fold's (features, standardised cues of the group)
    ΔMacro-F1 = Macro-F1(probe on erased features) - Macro-F1(probe on the original features)

The unerased score is the run's own probe on the run's own folds, so it equals results.csv. LEACE makes
the cue linearly unpredictable from the erased training features while moving them as little as
possible (least squares); a nonlinear probe (KNN, MLP) may still find cue information encoded
nonlinearly, so a loss is a lower bound on how much the probe relies on the cue.

When a fold has fewer training clips than dimensions (n <= D), the eraser is fitted in the span of the
training features (an orthonormal basis of it; the orthogonal complement passes through unchanged).
LEACE only ever moves features inside that span (its cross-covariance, and the covariance it whitens
with, live there), so with the plain covariance estimate this is exactly the full-width eraser (tested),
at a fraction of the cost of a D × D eigendecomposition; the package's covariance shrinkage, on by
default, is then estimated in the span's r <= n - 1 dimensions rather than in D.

Writes ``erasure.csv`` (results.csv's columns plus ``target``: the cue group, or ``none`` for the
unerased score; metrics ``macro_f1`` and ``delta_macro_f1``), one heatmap per model
``figures/erasure_<model>.png`` and ``analyses/erasure.json``. Formulas: docs/analyses.md.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning

from ..errors import SpeechprobeError
from ..parallel import single_threaded
from ..probes import macro_f1, make_probe
from ..probes.cv import Fold
from .cues import CUE_COLUMNS, TARGETS, CueLoader, cue_loader, cue_targets
from .features import FeatureLoader
from .inputs import RunInputs, TaskData, fold_interval, map_pairs, prepare, random_pairs
from .outputs import AnalysisOutput, FigureNote, write_rows
from .plots import plot_panel_heatmaps, task_slug

log = logging.getLogger("speechprobe")

ERASURE_CSV = "erasure.csv"
CUE_GROUPS: dict[str, tuple[str, ...]] = {  # names of analysis.cues.TARGETS
    "f0": ("f0_mean", "f0_range"),
    "f0_rel": ("f0_mean_rel", "f0_range_rel"),
    "energy": ("energy_mean", "energy_range"),
    "rate": ("speaking_rate",),
    "duration": ("duration",),
    "voice_quality": ("jitter", "shimmer", "hnr"),
}
GROUP_LABELS = {
    "f0": "F0",
    "f0_rel": "F0 re speaker",
    "energy": "energy",
    "rate": "speaking rate",
    "duration": "duration",
    "voice_quality": "voice quality",
}
NONE = "none"


@dataclass(frozen=True)
class ErasureSettings:
    """Options of cue erasure; folds and seed default to the run's."""

    probe: str = "knn"
    groups: tuple[str, ...] = tuple(CUE_GROUPS)
    n_folds: int | None = None
    seed: int | None = None
    models: tuple[str, ...] | None = None  # None: every model of the run
    n_jobs: int = 1  # (model, task) pairs erased at once


def group_columns(groups: Sequence[str]) -> dict[str, list[int]]:
    """Cue-group name -> column indices into :data:`~speechprobe.analysis.cues.TARGETS`."""
    unknown = [g for g in groups if g not in CUE_GROUPS]
    if unknown:
        raise SpeechprobeError(f"unknown cue group(s) {', '.join(unknown)}; choose from {', '.join(CUE_GROUPS)}")
    return {g: [TARGETS.index(c) for c in CUE_GROUPS[g]] for g in groups}


def _concept(cues: np.ndarray, train: np.ndarray, cols: list[int]) -> np.ndarray | None:
    """The group's cues on the training rows, undefined values set to the training mean (they add no
    covariance), constant columns dropped, standardised; None when nothing varies."""
    z = cues[np.ix_(train, cols)]
    defined = np.isfinite(z)
    mean = np.where(defined, z, 0.0).sum(axis=0) / np.maximum(defined.sum(axis=0), 1)
    z = np.where(defined, z, mean)
    std = z.std(axis=0)
    keep = np.isfinite(std) & (std > 1e-12)
    if not keep.any():
        return None
    return (z[:, keep] - z[:, keep].mean(axis=0)) / std[keep]


class Span:
    """Coordinates in an orthonormal basis of the span of the (standardised, centred) training rows.

    LEACE moves features only inside that span (see the module docstring), so an eraser fitted on the
    training coordinates and added back to the full features is the full-width eraser; one basis serves
    every cue group of a (layer, fold). Without a saving (rows >= dimensions) the basis is the identity.
    """

    def __init__(self, X_train: np.ndarray) -> None:
        _, s, vt = np.linalg.svd(X_train - X_train.mean(axis=0), full_matrices=False)
        rank = int((s > s[0] * 1e-10).sum()) if len(s) and s[0] > 0 else 0
        self.basis = vt[:rank].T if rank < X_train.shape[1] else None

    def coords(self, X: np.ndarray) -> np.ndarray:
        return X @ self.basis if self.basis is not None else X

    def lift(self, X: np.ndarray, coords: np.ndarray, erased: np.ndarray) -> np.ndarray:
        """``X`` with its span coordinates ``coords`` replaced by ``erased``."""
        return erased if self.basis is None else X + (erased - coords) @ self.basis.T


def leace(coords: np.ndarray, z: np.ndarray, **options):
    """The LEACE eraser (concept-erasure's ``LeaceFitter``; its defaults unless ``options`` say otherwise)
    for concept ``z`` on ``coords``, as a function of numpy arrays."""
    import torch
    from concept_erasure import LeaceFitter

    x, z = torch.from_numpy(coords), torch.from_numpy(np.ascontiguousarray(z))
    eraser = LeaceFitter.fit(x, z, **options).eraser
    return lambda X: eraser(torch.from_numpy(X)).numpy()


def standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``StandardScaler``'s transform fitted on ``train`` ``(..., n, D)``, applied to both, in plain numpy
    (on these small arrays scikit-learn's input checks cost more than the arithmetic)."""
    mean = train.mean(axis=-2, keepdims=True)
    std = train.std(axis=-2, keepdims=True)
    std = np.where(std < 10 * np.finfo(train.dtype).eps, 1.0, std)  # StandardScaler's rule for constant features
    return (train - mean) / std, (test - mean) / std


def erase_cell(
    X: np.ndarray, y: np.ndarray, cues: np.ndarray, fold: Fold, groups: dict[str, list[int]], probe: str, seed: int
) -> dict[str, float]:
    """Macro-F1 of ``probe`` on one layer and fold: unerased (``"none"``) and with each cue group erased
    (NaN when the group is constant on the training fold)."""
    train, test = fold
    with single_threaded():
        Xtr, Xte = standardise(X[train].astype(np.float64), X[test].astype(np.float64))
        span = Span(Xtr)
        Ctr, Cte = span.coords(Xtr), span.coords(Xte)
        variants = {NONE: (Xtr, Xte)}
        for group, cols in groups.items():
            z = _concept(cues, train, cols)
            if z is not None:
                erase = leace(Ctr, z)
                variants[group] = (span.lift(Xtr, Ctr, erase(Ctr)), span.lift(Xte, Cte, erase(Cte)))
        preds = predict_variants(probe, seed, list(variants.values()), y[train])
    out = {name: macro_f1(y[test], pred) for name, pred in zip(variants, preds)}
    return {NONE: out[NONE], **{g: out.get(g, float("nan")) for g in groups}}


def predict_variants(
    probe: str, seed: int, variants: list[tuple[np.ndarray, np.ndarray]], y_train: np.ndarray
) -> list[np.ndarray]:
    """Test predictions of a fresh ``probe`` trained on each ``(train, test)`` variant of one layer.

    KNN and the MLP run as the probe stage's batched torch kernels over all variants at once (they
    reproduce the scikit-learn estimators, :mod:`speechprobe.probes.fast`); other probes one by one.
    """
    from ..probes.fast import knn_predict, mlp_predict
    from ..probes.runner import _torch_settings

    settings = _torch_settings(probe, seed)
    classes, codes = np.unique(y_train, return_inverse=True)
    if settings is None or len(classes) < 2:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return [make_probe(probe, seed).fit(tr, y_train).predict(te) for tr, te in variants]
    train, test = standardise(np.stack([v[0] for v in variants]), np.stack([v[1] for v in variants]))
    if probe == "knn":
        pred = knn_predict(train, codes, test, len(classes), device="cpu", **settings)
    else:
        pred = mlp_predict(train, codes, test, len(classes), device="cpu", **settings)[0]
    return list(classes[pred])


def erase_layers(
    features: np.ndarray,
    labels: np.ndarray,
    cues: np.ndarray,
    folds: Sequence[Fold],
    groups: dict[str, list[int]],
    probe: str = "knn",
    seed: int = 0,
) -> list[dict]:
    """Tidy rows ``{target, layer, probe, fold, metric, value}`` for features ``(N, L, D)``."""
    rows = []
    for layer in range(features.shape[1]):
        X = np.asarray(features[:, layer])
        for k, fold in enumerate(folds):
            scores = erase_cell(X, labels, cues, fold, groups, probe, seed)
            for target, value in scores.items():
                row = {"target": target, "layer": layer, "probe": probe, "fold": k}
                rows.append({**row, "metric": "macro_f1", "value": value})
                if target != NONE:
                    rows.append({**row, "metric": "delta_macro_f1", "value": value - scores[NONE]})
    return rows


def _erase_work(features: np.ndarray, task: TaskData, cues: np.ndarray, groups, probe: str, seed: int) -> list[dict]:
    return erase_layers(features, task.labels, cues, task.folds, groups, probe, seed)


def run_erasure(
    run_dir: Path,
    load_features: FeatureLoader | None = None,
    load_cues: CueLoader | None = None,
    settings: ErasureSettings = ErasureSettings(),
) -> AnalysisOutput:
    """Cue erasure for every (model, task) of a finished run; writes ``erasure.csv``, the heatmaps and
    ``analyses/erasure.json`` and returns what it wrote."""
    t0 = time.perf_counter()
    groups = group_columns(settings.groups)
    make_probe(settings.probe)  # an unknown probe fails before any work
    run_dir = Path(run_dir)
    inputs, load_features, models = prepare(run_dir, settings, load_features)
    load_cues = load_cues or cue_loader(run_dir)
    work = partial(_erase_work, groups=groups, probe=settings.probe, seed=inputs.seed)
    rows, notes = map_pairs(
        inputs,
        models,
        load_features,
        work,
        CUE_COLUMNS,
        "erasure",
        settings.n_jobs,
        lambda t: cue_targets(load_cues(t.hashes), t.groups),
    )
    notes = [*inputs.notes, *notes]
    write_rows(run_dir / ERASURE_CSV, rows)
    summary = erasure_summary(rows, inputs)
    out = AnalysisOutput(
        "erasure",
        params={"probe": settings.probe, "groups": {g: list(CUE_GROUPS[g]) for g in settings.groups}},
        tables=[ERASURE_CSV],
        notes=notes,
    )
    out.params.update(n_folds=inputs.n_folds, seed=inputs.seed, method="LEACE (concept-erasure)")
    for png, model in plot_erasure(summary, inputs, run_dir / "figures"):
        out.figures.append(FigureNote(str(png.relative_to(run_dir)), _caption(model, settings, inputs), "Cue erasure"))
    out.findings = erasure_findings(summary, inputs, settings.probe)
    out.seconds = round(time.perf_counter() - t0, 3)
    out.write(run_dir)
    return out


def erasure_summary(rows: pd.DataFrame, inputs: RunInputs) -> pd.DataFrame:
    """Per (model, task, target, layer): mean unerased and erased Macro-F1 and the mean ΔMacro-F1 with its
    95 % interval over folds (corrected for the folds' shared training data, :func:`fold_interval`)."""
    sizes = {
        t.name: (np.mean([len(a) for a, _ in t.folds]), np.mean([len(b) for _, b in t.folds])) for t in inputs.tasks
    }
    out = []
    for (model, task, target, layer), part in rows.groupby(["model", "task", "target", "layer"], sort=False):
        n_train, n_test = sizes.get(task, (1.0, 0.0))
        f1 = part[part["metric"] == "macro_f1"]["value"].to_numpy(float)
        delta = part[part["metric"] == "delta_macro_f1"]["value"].to_numpy(float)
        mean, lo, hi = fold_interval(delta, n_train, n_test) if len(delta) else (np.nan, np.nan, np.nan)
        out.append(
            (model, task, target, int(layer), float(np.nanmean(f1)) if len(f1) else np.nan, mean, lo, hi, len(delta))
        )
    return pd.DataFrame(out, columns=["model", "task", "target", "layer", "macro_f1", "delta", "lo", "hi", "n"])


def plot_erasure(summary: pd.DataFrame, inputs: RunInputs, fig_dir: Path) -> list[tuple[Path, str]]:
    """``figures/erasure_<model>.png`` per non-baseline model: mean ΔMacro-F1, cue group × layer, a panel
    per task, the baselines as extra columns, the ``+random`` twin as a second row of panels."""
    erased = summary[summary["target"] != NONE]
    groups = [g for g in CUE_GROUPS if g in set(erased["target"])]
    tasks = [t.name for t in inputs.tasks if t.name in set(erased["task"])]
    baselines = [b for b in inputs.baselines if b in set(erased["model"])]
    shown = random_pairs([m for m in inputs.models if m not in baselines and m in set(erased["model"])])
    worst = float(np.nanmax(np.abs(erased["delta"].to_numpy(float)), initial=0.05))
    paths = []
    for model, twin in shown.items():
        panels = []
        for m in (model, twin) if twin else (model,):
            row = []
            for task in tasks:
                cols = [_delta_grid(erased, m, task, groups, inputs.num_layers(m))]
                cols += [_delta_grid(erased, b, task, groups, 1) for b in baselines]
                labels = [*map(str, range(cols[0].shape[1])), *baselines]
                row.append((f"{m} · {task}", np.column_stack(cols), labels))
            panels.append(row)
        png = plot_panel_heatmaps(
            panels,
            [GROUP_LABELS[g] for g in groups],
            fig_dir / f"erasure_{task_slug(model)}.png",
            (-worst, worst),
            "ΔMacro-F1 after erasing the cue (mean over folds)",
            xlabel="layer, then baselines",
            cmap_name="RdBu",
        )
        paths.append((png, model))
    return paths


def _delta_grid(erased: pd.DataFrame, model: str, task: str, groups: list[str], n_layers: int) -> np.ndarray:
    part = erased[(erased["model"] == model) & (erased["task"] == task)]
    grid = part.pivot_table(index="target", columns="layer", values="delta", dropna=False)
    return grid.reindex(index=groups, columns=range(n_layers)).to_numpy(float)


def _caption(model: str, settings: ErasureSettings, inputs: RunInputs) -> str:
    twin = random_pairs(inputs.models).get(model)
    extra = f" Lower row: {twin}, the same architecture with random weights." if twin else ""
    groups = "; ".join(f"{GROUP_LABELS[g]} = {', '.join(CUE_GROUPS[g])}" for g in settings.groups)
    return (
        f"Change in the {settings.probe} probe's Macro-F1 when LEACE erases a cue group from each layer of {model} "
        f"(fitted on each training fold; the same {inputs.n_folds} folds as the probes), one panel per task; the last "
        f"columns are the hand-crafted baselines. Red: the probe loses accuracy without the cue. Groups: {groups}."
        f"{extra}"
    )


def erasure_findings(summary: pd.DataFrame, inputs: RunInputs, probe: str) -> list[str]:
    """Per (non-baseline model, task), at the layer where the unerased probe scores highest: ΔMacro-F1 for
    every cue group with its 95 % interval (all groups are named, so none is selected for its size)."""
    out = []
    for model in [m for m in inputs.models if m not in inputs.baselines]:
        for task in [t.name for t in inputs.tasks]:
            part = summary[(summary["model"] == model) & (summary["task"] == task)]
            base = part[part["target"] == NONE]
            if base.empty or base["macro_f1"].isna().all():
                continue
            layer = int(base.loc[base["macro_f1"].idxmax(), "layer"])
            at = part[(part["layer"] == layer) & (part["target"] != NONE)].set_index("target")
            phrases = [_phrase(g, at.loc[g]) for g in CUE_GROUPS if g in at.index and np.isfinite(at.loc[g, "delta"])]
            if phrases:
                score = float(base.loc[base["layer"] == layer, "macro_f1"].iloc[0])
                out.append(
                    f"{task} in {model} layer {layer} (its best {probe} layer, Macro-F1 {score:.2f}) "
                    + "; ".join(phrases)
                    + f" (95% intervals over {inputs.n_folds} folds)."
                )
    return out


def _phrase(group: str, row: pd.Series) -> str:
    interval = f"[{row['lo']:+.2f}, {row['hi']:+.2f}]"
    if round(abs(row["delta"]), 2) == 0:
        return f"is unchanged (0.00) when {GROUP_LABELS[group]} is erased {interval}"
    verb = "loses" if row["delta"] < 0 else "gains"
    return f"{verb} {abs(row['delta']):.2f} Macro-F1 when {GROUP_LABELS[group]} is erased {interval}"


__all__ = [
    "CUE_GROUPS",
    "ERASURE_CSV",
    "ErasureSettings",
    "Span",
    "erase_cell",
    "erase_layers",
    "erasure_findings",
    "erasure_summary",
    "group_columns",
    "leace",
    "predict_variants",
    "plot_erasure",
    "run_erasure",
]
