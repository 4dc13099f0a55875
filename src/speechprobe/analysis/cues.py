"""Acoustic cues: how well each layer linearly encodes each clip's own F0, energy, rate, duration,
spectral tilt, jitter, shimmer and HNR (the cues of :mod:`speechprobe.models.acoustic_cues`).

Besides the stored cues, two targets are derived per task: ``f0_mean_rel`` and ``f0_range_rel``, F0 mean
and range relative to the mean of the clip's own group (speaker): prosody as the listener hears it
against the speaker's own level (undefined when a task has no groups).

Per (model, task, layer, fold): a ridge regression (``StandardScaler`` + ``RidgeCV`` with a penalty per
cue chosen by leave-one-out on the training fold) is fitted on the training fold of the run's own folds
and scored on the test fold by out-of-sample R², ``1 - SS_res / sum((y - mean_train)^2)`` (against the
best constant a probe could know, the training mean: with grouped folds the test fold's own mean is
shifted by its held-out speakers and would make every R² look poor), and by Pearson r between prediction
and cue. The hand-crafted baselines are probed the same way.

A task-scope analysis (every model of a task in one unit, so each figure can set a model beside its
``--random-init`` twin and the baselines). Writes ``cues.csv`` (tidy: ``task, model, target, layer, probe,
fold, metric, value``; ``target`` is the cue, ``probe="ridge"``, metric ``r2`` or ``pearson``; a cue
undefined or constant on a fold gives an empty value) and ``figures/cues_<task>.png`` (a layer × cue
heatmap per model). Formulas: docs/analyses.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy import stats
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

from ..errors import SpeechprobeError
from ..figures.base import random_pairs
from ..figures.heatmaps import plot_panel_heatmaps
from ..models.acoustic_cues import CUES, NAME, PROSODY, split_cues
from ..parallel import single_threaded
from ..probes.cv import Fold
from .contract import Analysis, AnalysisResult, AnalysisSettings, Figure, Unit
from .inputs import read_manifest, read_table
from .intervals import fold_ratio
from .summary import run_ratios, summarize
from .units import group_noun

CUE_CSV = "cues.csv"
CUE_COLUMNS = ["task", "model", "target", "layer", "probe", "fold", "metric", "value"]
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


def unit_targets(unit: Unit) -> np.ndarray:
    """The unit's clips' :data:`TARGETS` (the run's stored cues; SpeechprobeError when it stored none). The
    speaker-relative cues are computed only when the task's groups are speakers (manifest.json says so, or an
    older run says nothing): relative to a language or a dialogue they are not "re speaker", so they stay NaN."""
    try:
        stored = unit.features(NAME)
    except SpeechprobeError as e:
        raise SpeechprobeError(
            f"no stored acoustic cues ({e}); rerun `speechprobe run` with the cue analyses on"
        ) from None
    noun = group_noun(unit.run_dir, unit.task)
    return cue_targets(split_cues(stored), unit.groups if noun in (None, "speaker") else None)


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
                        row = {"target": TARGETS[c], "layer": layer, "probe": "ridge", "fold": k}
                        rows.append({**row, "metric": metric, "value": value})
    return rows


def per_model(
    unit: Unit, work, *args, models: Sequence[str] | None = None, by_layer: bool = False, what: str = ""
) -> tuple[pd.DataFrame, list[str]]:
    """``work(features, *args)`` -> tidy rows for every model of a task unit (or ``models``; ``settings.n_jobs``
    at once, in processes), stacked with ``task`` and ``model``; a model whose features cannot be loaded is left
    out with a note. ``by_layer``: ``work`` sees one layer at a time (its rows' ``layer`` shifted back), so the
    progress bar (``what`` on the unit, with settings.progress) moves every layer, not every model."""
    loaded, notes = {}, []
    for model in cue_models(unit.models) if models is None else models:
        try:
            loaded[model] = unit.features(model)
        except SpeechprobeError as e:
            notes.append(f"{model} × {unit.task} left out: {e}")
    cells = [(m, slice(i, i + 1) if by_layer else slice(None)) for m, f in loaded.items() for i in range(f.shape[1])]
    cells = cells if by_layer else list(dict(cells).items())  # one cell per model
    jobs = (delayed(work)(loaded[m][:, part], *args) for m, part in cells)
    unit_name = "layer" if by_layer else "model"
    desc = f"{what} {unit.task}".strip()
    bar = tqdm(total=len(cells), desc=desc, unit=unit_name, leave=False, disable=not unit.settings.progress)
    rows: dict[str, list[dict]] = {m: [] for m in loaded}
    for (model, part), done in zip(cells, Parallel(n_jobs=unit.settings.n_jobs, return_as="generator")(jobs)):
        rows[model] += [{**r, "layer": r["layer"] + (part.start or 0)} if by_layer else r for r in done]
        bar.update()
    bar.close()
    frames = [pd.DataFrame(r).assign(task=unit.task, model=m) for m, r in rows.items() if r]
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), notes


def compute(unit: Unit) -> AnalysisResult:
    """Ridge cue probes of every model of one task, and the task's heatmap figure."""
    targets = unit_targets(unit)
    alphas = _option(unit.settings, "alphas", RIDGE_ALPHAS)
    rows, notes = per_model(unit, probe_cues, targets, unit.cue_folds, alphas, by_layer=True, what="cue probes")
    rows = rows.reindex(columns=CUE_COLUMNS)
    out = AnalysisResult(tables={CUE_CSV: rows}, notes=[f"cues {n}" for n in notes])
    constant = [t for t, col in zip(TARGETS, targets.T) if not _varies(col)]
    if constant:
        out.notes.append(f"cues on {unit.task}: {', '.join(constant)} constant or undefined on every clip (no score)")
    baselines = baseline_models(unit.run_dir)
    png = plot_cues(cue_summary(rows, fold_ratio(unit.cue_folds)), unit, baselines)
    if png:
        out.figures.append(Figure(png, _caption(unit, baselines)))
    return out


def _option(settings: AnalysisSettings, key: str, default):
    return (settings.options.get("cues") or {}).get(key, default)


def cue_models(models: Sequence[str]) -> list[str]:
    """``models`` but the ``prosody`` baseline: its features are the cues themselves (R² 1 by construction)."""
    return [m for m in models if m != PROSODY]


def baseline_models(run_dir: Path) -> list[str]:
    """The run's baselines but ``prosody``, in manifest order (from its config; else the models of one layer)."""
    manifest = read_manifest(run_dir)
    models = manifest.get("models") or {}
    names = (manifest.get("config") or {}).get("baselines")
    if isinstance(names, list):
        return cue_models([m for m in models if m in names])
    return cue_models([m for m, info in models.items() if int(info.get("num_layers") or 0) == 1])


def cue_summary(rows: pd.DataFrame, ratio: float | Mapping[str, float] | None = None) -> pd.DataFrame:
    """Mean, std, n and 95 % CI over folds per (model, task, target, layer, probe, metric); the CI is
    summary.csv's corrected resampled t with the run's ``n_test / n_train`` ``ratio`` (per task or one float,
    :func:`.summary.summarize`)."""
    parts = [summarize(part.drop(columns="target"), ratio).assign(target=t) for t, part in rows.groupby("target")]
    if not parts:
        return pd.DataFrame(columns=["model", "task", "target", "layer", "probe", "metric", "mean", "std", "n", "ci95"])
    return pd.concat(parts, ignore_index=True)


def _r2_grid(summary: pd.DataFrame, model: str, n_layers: int) -> np.ndarray:
    """(targets, layers) mean R² of one model (NaN where missing)."""
    part = summary[(summary["model"] == model) & (summary["metric"] == "r2")]
    grid = part.pivot_table(index="target", columns="layer", values="mean", dropna=False)
    return grid.reindex(index=list(TARGETS), columns=range(n_layers)).to_numpy(float)


def plot_cues(summary: pd.DataFrame, unit: Unit, baselines: list[str]) -> Path | None:
    """``figures/cues_<task>.png``: per non-baseline model a cue × layer heatmap of mean R², the baselines
    as extra columns, the model's ``+random`` twin beside it."""
    depth = model_depths(unit.run_dir)
    base = [b for b in baselines if b in set(summary["model"])]
    shown = random_pairs([m for m in unit.models if m not in baselines and m in set(summary["model"])])
    if not shown:
        return None
    panels = []
    for model, twin in shown.items():
        row = []
        for m in (model, twin) if twin else (model,):
            grid = _r2_grid(summary, m, depth.get(m, 1))
            matrix = np.column_stack([grid, *(_r2_grid(summary, b, 1) for b in base)])
            row.append((f"{m} · {unit.task}", np.clip(matrix, -1, 1), [*map(str, range(grid.shape[1])), *base]))
        panels.append(row)
    return plot_panel_heatmaps(
        panels,
        [CUE_LABELS[c] for c in TARGETS],
        unit.figure_path("cues"),
        (0.0, 1.0),
        "ridge R² (mean over folds; colours clipped at 0)",
        xlabel="layer, then baselines",
    )


def cue_plan(run_dir: Path) -> str:
    """How the cue analyses' folds differ from the headline's, for sentences that quote a layer's score
    (``"on the first of 5 repeats"``); empty when they use every fold of the run (the headline's numbers)."""
    path = Path(run_dir) / "analysis.json"
    settings = json.loads(path.read_text()) if path.is_file() else {}
    repeats, first = int(settings.get("repeats") or 1), settings.get("cue_repeats")
    if first is None or int(first) >= repeats:
        return ""
    return f"on the first {'' if int(first) == 1 else f'{int(first)} '}of {repeats} repeats"


def model_depths(run_dir: Path) -> dict[str, int]:
    return {m: int(i.get("num_layers") or 1) for m, i in (read_manifest(run_dir).get("models") or {}).items()}


def _caption(unit: Unit, baselines: list[str]) -> str:
    twins = [m for m in random_pairs(unit.models).values() if m]
    extra = f" Right of each model: {', '.join(twins)}, the same architecture with random weights." if twins else ""
    return (
        f"How well each layer linearly encodes each clip's acoustic cues on {unit.task}: ridge-regression R² on "
        f"held-out clips (mean over the run's {unit.settings.n_folds} folds; standardised and penalised inside each "
        f"training fold), one panel per model; the last columns are the baselines ({', '.join(baselines) or 'none'}) "
        "probed the same way. R² is out of sample (against the training fold's mean; below 0: worse than that "
        f"constant; values below -1 are shown as -1). Grey: cue undefined or constant on that task.{extra}"
    )


def _mean_over_tasks(summary: pd.DataFrame, model: str, cue: str, layer: int) -> float:
    part = summary[
        (summary["model"] == model)
        & (summary["target"] == cue)
        & (summary["metric"] == "r2")
        & (summary["layer"] == layer)
    ]["mean"].dropna()
    return float(part.mean()) if len(part) else float("nan")


def findings(run_dir: Path) -> list[str]:
    """Per model: R² of the headline cues at layer 0 and at the last layer, beside the best baseline (means
    over tasks of the fold-mean R²; no layer is selected, so none is claimed as best)."""
    path = Path(run_dir) / CUE_CSV
    if not path.is_file():
        return []
    summary = cue_summary(read_table(path, CUE_COLUMNS), run_ratios(run_dir))
    baselines, depth = baseline_models(run_dir), model_depths(run_dir)
    out = []
    for model in [m for m in depth if m not in baselines and m in set(summary["model"])]:
        last, parts = depth[model] - 1, []
        for cue in HEADLINE_CUES:
            first, end = _mean_over_tasks(summary, model, cue, 0), _mean_over_tasks(summary, model, cue, last)
            base = max((_mean_over_tasks(summary, b, cue, 0) for b in baselines), default=float("nan"))
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


def _options(settings: AnalysisSettings) -> dict:
    options = settings.options.get("cues") or {}
    alphas = list(options.get("alphas", RIDGE_ALPHAS))
    return {"alphas": alphas, "targets": options.get("targets"), "cue_repeats": settings.cue_repeats}


ANALYSIS = Analysis.of(
    __name__, {CUE_CSV: CUE_COLUMNS}, flag="cue_probes", cost="seconds; a ridge probe per cue and layer"
)
