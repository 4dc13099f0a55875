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

A task-scope analysis (every model of a task in one unit). Writes ``erasure.csv`` (``task, model,
target, layer, probe, fold, metric, value``; ``target`` is the cue group, or ``none`` for the unerased
score; metrics ``macro_f1`` and ``delta_macro_f1``), ``erasure_summary.csv`` (per task, model, target and
layer: mean scores, mean Δ and its 95 % interval over folds, and whether the layer is the primary probe's
best) and ``figures/erasure_<task>.png``. Opt-in (``--erasure``): it fits a probe per cue group.
Formulas: docs/analyses.md.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning

from ..errors import SpeechprobeError
from ..figures.base import random_pairs
from ..figures.heatmaps import plot_panel_heatmaps
from ..parallel import single_threaded
from ..probes import ProbeSettings, macro_f1, make_probe
from ..probes.cv import Fold
from .contract import Analysis, AnalysisResult, AnalysisSettings, Figure, Unit
from .cues import TARGETS, baseline_models, cue_plan, model_depths, per_model, unit_targets
from .inputs import read_table
from .intervals import fold_interval, fold_ratio
from .units import unit_note

ERASURE_CSV = "erasure.csv"
SUMMARY_CSV = "erasure_summary.csv"
COLUMNS = ["task", "model", "target", "layer", "probe", "fold", "metric", "value"]
SUMMARY_COLUMNS = ["task", "model", "target", "layer", "probe", "best", "macro_f1", "delta", "lo", "hi", "n"]
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
        self.rank = int((s > s[0] * 1e-10).sum()) if len(s) and s[0] > 0 else 0
        self.basis = vt[: self.rank].T if self.rank < X_train.shape[1] else None

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
    X: np.ndarray,
    y: np.ndarray,
    cues: np.ndarray,
    fold: Fold,
    groups: dict[str, list[int]],
    probe: str,
    seed: int,
    settings: ProbeSettings | None = None,
) -> dict[str, float]:
    """Macro-F1 of ``probe`` (with the run's ``settings``) on one layer and fold, over the task's fixed label
    set: unerased (``"none"``) and with each cue group erased (NaN when the group is constant on the
    training fold)."""
    train, test = fold
    with single_threaded():
        Xtr, Xte = standardise(X[train].astype(np.float64), X[test].astype(np.float64))
        span = Span(Xtr)
        Ctr, Cte = span.coords(Xtr), span.coords(Xte)
        variants = {NONE: (Xtr, Xte)}
        for group, cols in groups.items():
            z = _concept(cues, train, cols)
            if z is None:
                continue
            if (
                span.rank == 0
            ):  # constant training features (e.g. clip duration on a fixed-length task): nothing to erase
                variants[group] = (Xtr, Xte)
                continue
            erase = leace(Ctr, z)
            variants[group] = (span.lift(Xtr, Ctr, erase(Ctr)), span.lift(Xte, Cte, erase(Cte)))
        preds = predict_variants(probe, seed, list(variants.values()), y[train], settings)
    labels = np.unique(y)
    out = {name: macro_f1(y[test], pred, labels) for name, pred in zip(variants, preds)}
    return {NONE: out[NONE], **{g: out.get(g, float("nan")) for g in groups}}


def predict_variants(
    probe: str,
    seed: int,
    variants: list[tuple[np.ndarray, np.ndarray]],
    y_train: np.ndarray,
    settings: ProbeSettings | None = None,
) -> list[np.ndarray]:
    """Test predictions of a fresh ``probe`` trained on each ``(train, test)`` variant of one layer.

    A probe with a batched torch kernel (KNN, the MLP) runs it over all variants at once (the kernels
    reproduce the scikit-learn estimators, :mod:`speechprobe.probes.fast`); other probes one by one.
    """
    from ..probes.fast import kernel_arguments, kernel_predict

    kernel = kernel_arguments(probe, seed, settings)
    classes, codes = np.unique(y_train, return_inverse=True)
    if kernel is None or len(classes) < 2:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return [make_probe(probe, seed, settings).fit(tr, y_train).predict(te) for tr, te in variants]
    train, test = standardise(np.stack([v[0] for v in variants]), np.stack([v[1] for v in variants]))
    return list(classes[kernel_predict(probe, train, codes, test, len(classes), kernel, "cpu")])


def erase_layers(
    features: np.ndarray,
    labels: np.ndarray,
    cues: np.ndarray,
    folds: Sequence[Fold],
    groups: dict[str, list[int]],
    probe: str = "knn",
    seed: int = 0,
    settings: ProbeSettings | None = None,
) -> list[dict]:
    """Tidy rows ``{target, layer, probe, fold, metric, value}`` for features ``(N, L, D)``; ``probe`` with
    the run's probe ``settings`` (default: the defaults)."""
    rows = []
    for layer in range(features.shape[1]):
        X = np.asarray(features[:, layer])
        for k, fold in enumerate(folds):
            scores = erase_cell(X, labels, cues, fold, groups, probe, seed, settings)
            for target, value in scores.items():
                row = {"target": target, "layer": layer, "probe": probe, "fold": k}
                rows.append({**row, "metric": "macro_f1", "value": value})
                if target != NONE:
                    rows.append({**row, "metric": "delta_macro_f1", "value": value - scores[NONE]})
    return rows


def compute(unit: Unit) -> AnalysisResult:
    """Erasure of every cue group from every layer of every model of one task, and the task's figure."""
    targets = unit_targets(unit)
    probe = _option(unit.settings, "probe", unit.settings.primary_probe)
    groups = group_columns(_option(unit.settings, "groups", tuple(CUE_GROUPS)))
    args = (unit.labels, targets, unit.cue_folds, groups, probe, unit.settings.seed, unit.probe_settings)
    rows, notes = per_model(unit, erase_layers, *args, by_layer=True, what="erasure")
    rows = rows.reindex(columns=COLUMNS)
    summary = erasure_summary(rows, unit)
    out = AnalysisResult(tables={ERASURE_CSV: rows, SUMMARY_CSV: summary}, notes=[f"erasure {n}" for n in notes])
    baselines = baseline_models(unit.run_dir)
    png = plot_erasure(summary, unit, baselines)
    if png:
        out.figures.append(Figure(png, _caption(unit, probe, list(groups), baselines)))
    return out


def _option(settings: AnalysisSettings, key: str, default):
    return (settings.options.get("erasure") or {}).get(key, default) or default


def erasure_summary(rows: pd.DataFrame, unit: Unit) -> pd.DataFrame:
    """Per (model, target, layer): mean unerased / erased Macro-F1 and the mean ΔMacro-F1 with its 95 %
    interval over folds (corrected for the folds' shared training data, :func:`fold_interval`); ``best``
    marks each model's best layer by the primary probe."""
    ratio = fold_ratio(unit.cue_folds)
    too_few = unit_note(unit.run_dir, unit.task, "a paired gap")  # then no interval of the paired Δ
    out = []
    for (model, target, layer, probe), part in rows.groupby(["model", "target", "layer", "probe"], sort=False):
        f1 = part[part["metric"] == "macro_f1"]["value"].to_numpy(float)
        delta = part[part["metric"] == "delta_macro_f1"]["value"].to_numpy(float)
        mean, lo, hi = np.clip(fold_interval(delta, ratio), -1, 1) if len(delta) else (np.nan,) * 3
        lo, hi = (np.nan, np.nan) if too_few else (lo, hi)
        try:
            best = int(layer) == unit.best_layer(model)[0]
        except SpeechprobeError:
            best = False
        score = float(np.nanmean(f1)) if np.isfinite(f1).any() else np.nan
        out.append((unit.task, model, target, int(layer), probe, best, score, mean, lo, hi, len(delta)))
    return pd.DataFrame(out, columns=SUMMARY_COLUMNS)


def _delta_grid(summary: pd.DataFrame, model: str, groups: list[str], n_layers: int) -> np.ndarray:
    part = summary[(summary["model"] == model) & (summary["target"] != NONE)]
    grid = part.pivot_table(index="target", columns="layer", values="delta", dropna=False)
    return grid.reindex(index=groups, columns=range(n_layers)).to_numpy(float)


def plot_erasure(summary: pd.DataFrame, unit: Unit, baselines: list[str]) -> Path | None:
    """``figures/erasure_<task>.png``: per non-baseline model the mean ΔMacro-F1 of each cue group × layer,
    the baselines as extra columns, the model's ``+random`` twin beside it."""
    groups = [g for g in CUE_GROUPS if g in set(summary["target"])]
    base = [b for b in baselines if b in set(summary["model"])]
    shown = random_pairs([m for m in unit.models if m not in baselines and m in set(summary["model"])])
    if not shown or not groups:
        return None
    depth = model_depths(unit.run_dir)
    worst = float(np.nanmax(np.abs(summary.loc[summary["target"] != NONE, "delta"].to_numpy(float)), initial=0.05))
    panels = []
    for model, twin in shown.items():
        row = []
        for m in (model, twin) if twin else (model,):
            cols = [_delta_grid(summary, m, groups, depth.get(m, 1))]
            cols += [_delta_grid(summary, b, groups, 1) for b in base]
            labels = [*map(str, range(cols[0].shape[1])), *base]
            row.append((f"{m} · {unit.task}", np.column_stack(cols), labels))
        panels.append(row)
    return plot_panel_heatmaps(
        panels,
        [GROUP_LABELS[g] for g in groups],
        unit.figure_path("erasure"),
        (-worst, worst),
        "ΔMacro-F1 after erasing the cue (mean over folds)",
        xlabel="layer, then baselines",
        cmap_name="RdBu",
    )


def _caption(unit: Unit, probe: str, groups: list[str], baselines: list[str]) -> str:
    twins = [m for m in random_pairs(unit.models).values() if m]
    extra = f" Right of each model: {', '.join(twins)}, the same architecture with random weights." if twins else ""
    named = "; ".join(f"{GROUP_LABELS[g]} = {', '.join(CUE_GROUPS[g])}" for g in groups)
    return (
        f"Change in the {probe} probe's Macro-F1 on {unit.task} when LEACE erases a cue group from each layer "
        f"(fitted on each training fold; the run's {unit.settings.n_folds} folds), one panel per model; the last "
        f"columns are the baselines ({', '.join(baselines) or 'none'}). Red: the probe loses accuracy without the "
        f"cue. Groups: {named}.{extra}"
    )


def findings(run_dir: Path) -> list[str]:
    """Per (non-baseline model, task), at the primary probe's best layer: ΔMacro-F1 for every cue group
    with its 95 % interval (every group is named, so none is selected for its size). The layer's own score is
    the headline's when erasure ran on every fold, else it names the folds (:func:`.cues.cue_plan`)."""
    path = Path(run_dir) / SUMMARY_CSV
    if not path.is_file():
        return []
    summary = read_table(path, SUMMARY_COLUMNS)
    summary["best"] = summary["best"].astype(str).str.lower() == "true"
    baselines, out, plan = baseline_models(run_dir), [], cue_plan(run_dir)
    for (task, model), part in summary[summary["best"]].groupby(["task", "model"], sort=True):
        if model in baselines:
            continue
        at = part[part["target"] != NONE].set_index("target")
        phrases = [_phrase(g, at.loc[g]) for g in CUE_GROUPS if g in at.index and np.isfinite(at.loc[g, "delta"])]
        base = part[part["target"] == NONE]
        if phrases and not base.empty:
            layer, score, probe = int(base["layer"].iloc[0]), float(base["macro_f1"].iloc[0]), base["probe"].iloc[0]
            where = f" {plan}" if plan else ""
            out.append(
                f"{task} in {model} layer {layer} (its best layer, {probe} Macro-F1 {score:.2f}{where}) "
                + "; ".join(phrases)
                + " (95% intervals over folds)."
            )
    return out


def _phrase(group: str, row: pd.Series) -> str:
    interval = f"[{row['lo']:+.2f}, {row['hi']:+.2f}]" if np.isfinite(row["lo"]) else "(no interval: too few units)"
    if round(abs(row["delta"]), 2) == 0:
        return f"is unchanged (0.00) when {GROUP_LABELS[group]} is erased {interval}"
    verb = "loses" if row["delta"] < 0 else "gains"
    return f"{verb} {abs(row['delta']):.2f} Macro-F1 when {GROUP_LABELS[group]} is erased {interval}"


def _options(settings: AnalysisSettings) -> dict:
    options = settings.options.get("erasure") or {}
    groups = list(options.get("groups") or CUE_GROUPS)
    return {
        "probe": options.get("probe") or settings.primary_probe,
        "groups": groups,
        "targets": options.get("targets"),
        "cue_repeats": settings.cue_repeats,
    }


ANALYSIS = Analysis.of(
    __name__,
    {ERASURE_CSV: COLUMNS, SUMMARY_CSV: SUMMARY_COLUMNS},
    cost="minutes; the task re-probed per cue group and layer",
)
