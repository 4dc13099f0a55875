"""Layer-curve shape, gains over hand-crafted baselines, paralinguistic vs other tasks.

Curve shape (:data:`CURVE_RULE`, also printed in the report). The per-layer mean scores of one
(model, task, probe) sit at relative depth ``x = layer / (num_layers - 1)``.

*Quadratic description.* ``f(x) = a x² + b x + c`` is fitted by least squares;
``curvature = f'' = 2a`` (negative: concave, positive: convex); the quadratic peak is the maximum of
``f`` on [0, 1] (the vertex ``-b / 2a`` when it lies inside and ``a < 0``, else the better end),
with ``peak_height = f(peak)``; ``r2`` says how well a parabola describes the curve.

*Point classification* (``shape_point``) uses the measured curve, because a parabola bends saturating
curves into false peaks. With ``τ = tol`` (0.02):

1. fewer than 3 layers → ``too few layers``;
2. ``max − min < τ`` → ``flat``;
3. the best layer is interior and beats both the first and the last layer by at least ``τ`` →
   ``peaked``; the worst layer is interior and is beaten by both ends by at least ``τ`` →
   ``dipped``; when both hold, the sign of the quadratic curvature decides (concave: peaked);
4. otherwise ``rising`` if the last layer scores higher than the first, else ``falling``.

*The claim* (``shape``) is the point class only when the differences that define it hold over their
whole 95% interval; otherwise ``undetermined``. The interval of a difference between two layers is the
corrected resampled-t interval of the paired per-fold differences (:func:`..summary.corrected_t_halfwidth`;
the layers share their folds), or, with per-layer CIs only, ``sqrt(ci_a² + ci_b²)``. Defining differences:
flat: every pair of layers within ``(−τ, τ)``; peaked: best − first ≥ τ and best − last ≥ τ; dipped:
first − worst ≥ τ and last − worst ≥ τ; rising: last − first > 0; falling: last − first < 0. The best
(worst) layer is the observed one. See ``docs/statistics.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..models.registry import default_baselines
from .summary import best_layers, corrected_t_halfwidth, layer_rows, num_layers

SHAPES = ("rising", "falling", "peaked", "dipped", "flat", "too few layers", "undetermined")
DEFAULT_TOL = 0.02
CURVE_RULE = (
    "Each layer curve (mean score per layer at relative depth x = layer / (layers − 1)) is described by "
    "a least-squares quadratic f(x) = a·x² + b·x + c: curvature f'' = 2a (negative: concave, positive: convex) "
    "and the quadratic peak (the maximum of f on [0, 1]) with its height. The point class (shape_point) uses "
    "the measured curve with τ = {tol:g}: fewer than 3 layers is 'too few layers'; max − min < τ is 'flat'; "
    "a best layer strictly inside that beats both the first and the last layer by at least τ is 'peaked'; a "
    "worst layer strictly inside that both ends beat by at least τ is 'dipped' (if both hold, the sign of the "
    "curvature decides); otherwise 'rising' when the last layer scores above the first, else 'falling'. "
    "The claimed shape is the point class only when its defining differences hold over their whole 95% "
    "interval (corrected resampled t of the paired per-fold differences): flat needs every pair of layers "
    "within ±τ, peaked best − first ≥ τ and best − last ≥ τ, dipped first − worst ≥ τ and last − worst ≥ τ, "
    "rising last − first > 0, falling last − first < 0; otherwise the shape is 'undetermined'. Not tested for "
    "selection: the best and worst layers (and the curvature's sign) are read off the same folds the differences "
    "are scored on, so a claimed peak is optimistic by that choice. With too few units per class (fewer than 5 "
    "speakers or other groups of a class) no paired gap is computed and every shape is 'undetermined'."
)
SHAPE_COLUMNS = [
    "model",
    "task",
    "probe",
    "num_layers",
    "curvature",
    "concavity",
    "vertex",
    "peak_depth",
    "peak_height",
    "start",
    "end",
    "r2",
    "tau",
    "shape_point",
    "shape",
    "evidence",
]


def relative_depth(layer: int | np.ndarray, n_layers: int) -> float | np.ndarray:
    """``layer / (n_layers - 1)`` in [0, 1]; 0 for single-layer models."""
    if n_layers <= 1:
        return np.zeros_like(np.asarray(layer, dtype=float)) if np.ndim(layer) else 0.0
    return np.asarray(layer, dtype=float) / (n_layers - 1) if np.ndim(layer) else float(layer) / (n_layers - 1)


class _Differences:
    """95% intervals of differences between two layers of one curve (positions after sorting)."""

    def __init__(self, y: np.ndarray, ci: np.ndarray | None, folds: np.ndarray | None, ratio: float | None):
        self.y = y
        if folds is not None:
            folds = folds[np.isfinite(folds).all(axis=1)]
            diffs = folds[:, :, None] - folds[:, None, :]  # (J, L, L) paired per-fold differences
            n = len(folds)
            std = diffs.std(axis=0, ddof=1) if n > 1 else np.full(diffs.shape[1:], np.nan)
            r = (1 / (n - 1) if n > 1 else np.nan) if ratio is None else ratio
            self.half = np.nan_to_num(corrected_t_halfwidth(std, n, r), nan=np.inf)
        elif ci is not None:
            c = np.where(np.isfinite(ci), ci, np.inf)
            self.half = np.sqrt(c[:, None] ** 2 + c[None, :] ** 2)
        else:  # no uncertainty given: the scores are taken as exact
            self.half = np.zeros((len(y), len(y)))

    def interval(self, a: int, b: int) -> tuple[float, float, float]:
        """``(y[a] − y[b], lower, upper)``."""
        d = float(self.y[a] - self.y[b])
        return d, d - float(self.half[a, b]), d + float(self.half[a, b])

    def widest(self) -> float:
        """The largest ``|y_a − y_b| + half-width`` over all pairs: flat needs it below τ."""
        return float(np.max(np.abs(self.y[:, None] - self.y[None, :]) + self.half))


def _fmt_diff(name: str, d: tuple[float, float, float]) -> str:
    return f"{name} {d[0]:+.3f} [{d[1]:+.3f}, {d[2]:+.3f}]"


def _claim(point: str, y: np.ndarray, a: float, tau: float, diffs: _Differences) -> tuple[str, str]:
    """The claimed shape (the point class when its defining differences hold, else ``undetermined``) and the
    evidence: each defining difference with its 95% interval."""
    hi, lo, first, last = int(np.argmax(y)), int(np.argmin(y)), 0, len(y) - 1
    if point == "flat":
        widest = diffs.widest()
        return ("flat" if widest < tau else "undetermined"), f"largest |difference| + half-width {widest:.3f}"
    if point in ("peaked", "dipped"):
        peak = (diffs.interval(hi, first), diffs.interval(hi, last))
        dip = (diffs.interval(first, lo), diffs.interval(last, lo))
        holds = {
            "peaked": 0 < hi < last and min(peak[0][1], peak[1][1]) >= tau,
            "dipped": 0 < lo < last and min(dip[0][1], dip[1][1]) >= tau,
        }
        evidence = (
            f"{_fmt_diff('best − first', peak[0])}; {_fmt_diff('best − last', peak[1])}"
            if point == "peaked"
            else f"{_fmt_diff('first − worst', dip[0])}; {_fmt_diff('last − worst', dip[1])}"
        )
        if holds["peaked"] and holds["dipped"]:
            return ("peaked" if a < 0 else "dipped"), evidence
        established = [k for k, v in holds.items() if v]
        return (established[0] if established else "undetermined"), evidence
    d = diffs.interval(last, first)
    holds = d[1] > 0 if point == "rising" else d[2] < 0
    return (point if holds else "undetermined"), _fmt_diff("last − first", d)


def _point_shape(y: np.ndarray, a: float, tau: float) -> str:
    hi, lo = int(np.argmax(y)), int(np.argmin(y))
    first, last = y[0], y[-1]
    peaked = 0 < hi < len(y) - 1 and y[hi] - first >= tau and y[hi] - last >= tau
    dipped = 0 < lo < len(y) - 1 and first - y[lo] >= tau and last - y[lo] >= tau
    if float(y.max() - y.min()) < tau:
        return "flat"
    if peaked and dipped:
        return "peaked" if a < 0 else "dipped"
    if peaked or dipped:
        return "peaked" if peaked else "dipped"
    return "rising" if last > first else "falling"


def fit_curve_shape(
    depth: Sequence[float],
    scores: Sequence[float],
    tol: float = DEFAULT_TOL,
    ci95: Sequence[float] | None = None,
    folds: np.ndarray | None = None,
    ratio: float | None = None,
) -> dict:
    """Quadratic description, point class and claimed shape of one layer curve (rule: module docstring).

    ``folds`` ``(J, L)`` holds the per-fold scores of the same layers (columns in the order of ``depth``),
    ``ratio`` the test/train size ratio of those folds (default ``1 / (J − 1)``); without ``folds`` the
    per-layer ``ci95`` gives the intervals, and without either the scores are taken as exact.

    Returns ``curvature`` (2a), ``concavity`` (concave / convex / linear), ``vertex`` (−b/2a, NaN when
    linear), ``peak_depth`` and ``peak_height`` (maximum of the fit on [0, 1]), ``start``/``end`` (fit
    at 0 and 1), ``r2``, the tolerance ``tau``, ``shape_point``, ``shape`` (the claim) and ``evidence``.
    """
    x = np.asarray(depth, dtype=float)
    y = np.asarray(scores, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    order = np.argsort(x[keep], kind="stable")
    x, y = x[keep][order], y[keep][order]
    ci = None if ci95 is None else np.asarray(ci95, dtype=float)[keep][order]
    fold_scores = None if folds is None else np.asarray(folds, dtype=float)[:, keep][:, order]
    nan = float("nan")
    out = {
        "curvature": nan,
        "concavity": "",
        "vertex": nan,
        "peak_depth": nan,
        "peak_height": nan,
        "start": nan,
        "end": nan,
        "r2": nan,
        "tau": float(tol),
        "shape_point": "too few layers",
        "shape": "too few layers",
        "evidence": "",
    }
    if len(np.unique(x)) < 3:
        if len(y):
            i = int(np.argmax(y))
            out.update(peak_depth=float(x[i]), peak_height=float(y[i]))
        return out
    quad = _quadratic(x, y)
    point = _point_shape(y, quad["a"], tol)
    shape, evidence = _claim(point, y, quad.pop("a"), tol, _Differences(y, ci, fold_scores, ratio))
    out.update(quad, shape_point=point, shape=shape, evidence=evidence)
    return out


def _quadratic(x: np.ndarray, y: np.ndarray) -> dict:
    """The least-squares quadratic's coefficient ``a`` and description (curvature, vertex, peak, ends, r2)."""
    a, b, c = np.polyfit(x, y, 2)
    f = np.poly1d([a, b, c])
    total = float(np.sum((y - y.mean()) ** 2))
    is_linear = abs(a) < 1e-9 * max(1.0, float(np.max(np.abs(y))))
    vertex = float("nan") if is_linear else float(-b / (2 * a))
    candidates = [0.0, 1.0] + ([vertex] if np.isfinite(vertex) and 0.0 < vertex < 1.0 else [])
    values = [float(f(v)) for v in candidates]
    i = int(np.argmax(values))
    return {
        "a": float(a),
        "curvature": float(2 * a),
        "concavity": "linear" if is_linear else ("concave" if a < 0 else "convex"),
        "vertex": vertex,
        "peak_depth": float(candidates[i]),
        "peak_height": values[i],
        "start": float(f(0.0)),
        "end": float(f(1.0)),
        "r2": float(1 - np.sum((y - f(x)) ** 2) / total) if total > 0 else 1.0,
    }


def _fold_matrix(results: pd.DataFrame | None, metric: str) -> dict[tuple, pd.DataFrame]:
    """Per (model, task, probe): fold x layer table of ``metric`` (empty without fold-level results)."""
    if results is None or results.empty:
        return {}
    r = results[(results["metric"] == metric) & results["layer"].notna()]
    out = {}
    for key, rows in r.groupby(["model", "task", "probe"], sort=False):
        out[key] = rows.pivot_table(index="fold", columns="layer", values="value", aggfunc="first")
    return out


def curve_shapes(
    summary: pd.DataFrame,
    metric: str = "macro_f1",
    tol: float = DEFAULT_TOL,
    depths: Mapping[str, int] | None = None,
    results: pd.DataFrame | None = None,
    ratios: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """:func:`fit_curve_shape` for every multi-layer (model, task, probe) curve of ``metric``.

    ``depths`` (model → number of layers, e.g. from manifest.json) overrides the depth inferred from
    the highest layer seen, so a curve with missing top layers keeps the right relative depth.
    ``results`` (fold-level rows) and ``ratios`` (task → n_test / n_train) give the paired intervals of
    the claim; without ``results`` the summary's ``ci95`` is used.
    """
    rows = layer_rows(summary, metric).dropna(subset=["mean"])
    depth = num_layers(summary, depths)
    folds = _fold_matrix(results, metric)
    out = []
    for (model, task, probe), curve in rows.groupby(["model", "task", "probe"], sort=True):
        n = int(depth.get(model, 1))
        if n <= 1:
            continue
        layers = curve["layer"].astype(int).to_numpy()
        x = relative_depth(layers.astype(float), n)
        table = folds.get((model, task, probe))
        matrix = None if table is None else table.reindex(columns=layers).to_numpy(dtype=float)
        ratio = (ratios or {}).get(task)
        fit = fit_curve_shape(x, curve["mean"].to_numpy(float), tol, curve["ci95"].to_numpy(float), matrix, ratio)
        out.append({"model": model, "task": task, "probe": probe, "num_layers": n, **fit})
    return pd.DataFrame(out, columns=SHAPE_COLUMNS)


def _best_per_model_task(
    summary: pd.DataFrame, metric: str, depths: Mapping[str, int] | None, probe: str | None = None
) -> pd.DataFrame:
    best = best_layers(summary, metric, depths)
    if probe is not None:  # the primary probe alone (analysis.primary): no selection over probes
        best = best[best["probe"] == probe]
    return best.sort_values(
        ["model", "task", "mean", "layer", "probe"], ascending=[True, True, False, True, True], kind="mergesort"
    ).drop_duplicates(["model", "task"], keep="first")


LAYER_SCORE_COLUMNS = ["model", "task", "probe", "layer", "relative_depth", "score"]  # a layer's score, then facts
GAIN_COLUMNS = [
    *LAYER_SCORE_COLUMNS,
    "ci95",
    "baseline",
    "baseline_probe",
    "baseline_score",
    "baseline_ci95",
    "gain",
    "gain_ci95",
    "n_paired_folds",
]


def baseline_gain(
    summary: pd.DataFrame,
    baselines: Sequence[str] | None = None,
    metric: str = "macro_f1",
    results: pd.DataFrame | None = None,
    depths: Mapping[str, int] | None = None,
    probe: str | None = None,
    ratios: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Per (model, task): the model's best (layer, probe) minus the best hand-crafted baseline on that task.

    With ``probe`` (the primary probe), the model and the baselines are both taken at that probe's best layer.

    With fold-level ``results`` (results.csv), ``gain_ci95`` is the corrected resampled-t 95% CI
    half-width of the per-fold paired differences (folds are shared: same labels, groups and seed;
    ``ratios`` gives each task's n_test / n_train, default 1 / (J − 1)); else NaN. The best layer is
    chosen on the same folds, so the gain is optimistic by a selection effect. ``baselines``: None for
    the model registry's default baselines.
    """
    # Over 60 lines because each record spells out the 14 gain columns and the docstring states the interval.
    baselines = default_baselines() if baselines is None else baselines
    best = _best_per_model_task(summary, metric, depths, probe)
    is_base = best["model"].isin(list(baselines))
    base = best[is_base].sort_values(["task", "mean", "model"], ascending=[True, False, True], kind="mergesort")
    base = base.drop_duplicates("task").set_index("task")
    out = []
    folds = None
    if results is not None and not results.empty:
        r = results[results["metric"] == metric]
        folds = r.set_index(["model", "task", "layer", "probe"])["value"]
    for row in best[~is_base].itertuples(index=False):
        rec = {
            "model": row.model,
            "task": row.task,
            "probe": row.probe,
            "layer": row.layer,
            "relative_depth": row.relative_depth,
            "score": row.mean,
            "ci95": row.ci95,
            "baseline": pd.NA,
            "baseline_probe": pd.NA,
            "baseline_score": np.nan,
            "baseline_ci95": np.nan,
            "gain": np.nan,
            "gain_ci95": np.nan,
            "n_paired_folds": 0,
        }
        if row.task in base.index:
            b = base.loc[row.task]
            rec.update(
                baseline=b["model"],
                baseline_probe=b["probe"],
                baseline_score=float(b["mean"]),
                baseline_ci95=float(b["ci95"]),
                gain=float(row.mean - b["mean"]),
            )
            if folds is not None:
                rec.update(_paired_ci(results, metric, row, b, (ratios or {}).get(row.task)))
        out.append(rec)
    frame = pd.DataFrame(out, columns=GAIN_COLUMNS)
    frame["layer"] = frame["layer"].astype("Int64")
    return frame


def _paired_ci(results: pd.DataFrame, metric: str, row, base: pd.Series, ratio: float | None) -> dict:
    r = results[(results["metric"] == metric) & (results["task"] == row.task)]
    model = r[(r["model"] == row.model) & (r["probe"] == row.probe) & (r["layer"] == row.layer)]
    ref = r[(r["model"] == base["model"]) & (r["probe"] == base["probe"]) & (r["layer"] == base["layer"])]
    diff = (model.set_index("fold")["value"] - ref.set_index("fold")["value"]).dropna()
    n = len(diff)
    if n < 2:
        return {"n_paired_folds": n}
    half = float(corrected_t_halfwidth(diff.std(ddof=1), n, 1 / (n - 1) if ratio is None else ratio))
    return {"gain_ci95": half, "n_paired_folds": n}


PARA_COLUMNS = ["model", "group", "n_tasks", "mean_score", "mean_relative_depth", "mean_gain", "tasks"]


def task_group(task: str, tasks_meta: Mapping[str, Mapping] | None) -> str:
    """``paralinguistic``, ``non-paralinguistic`` or ``unknown`` from manifest.json's ``tasks`` entry."""
    info = (tasks_meta or {}).get(task)
    flag = None if info is None else info.get("paralinguistic")
    if flag is None:
        return "unknown"
    return "paralinguistic" if bool(flag) else "non-paralinguistic"


def paralinguistic_summary(gains: pd.DataFrame, tasks_meta: Mapping[str, Mapping] | None) -> pd.DataFrame:
    """Per model and task group (paralinguistic / non-paralinguistic / unknown): mean best score,
    mean relative depth of the best layer and mean gain over the baseline, from :func:`baseline_gain`."""
    if gains.empty:
        return pd.DataFrame(columns=PARA_COLUMNS)
    frame = gains.assign(group=gains["task"].map(lambda t: task_group(t, tasks_meta)))
    out = []
    for (model, group), rows in frame.groupby(["model", "group"], sort=True):
        out.append(
            {
                "model": model,
                "group": group,
                "n_tasks": len(rows),
                "mean_score": float(rows["score"].mean()),
                "mean_relative_depth": float(rows["relative_depth"].astype(float).mean()),
                "mean_gain": float(rows["gain"].mean()) if rows["gain"].notna().any() else np.nan,
                "tasks": ", ".join(sorted(map(str, rows["task"]))),
            }
        )
    return pd.DataFrame(out, columns=PARA_COLUMNS)
