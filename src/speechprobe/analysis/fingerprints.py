"""Depth fingerprints: where along a model's depth a task (or an acoustic cue) becomes readable.

For one layer curve (per-layer mean score over folds, ``m_l``, at relative depth ``x_l = l / (L − 1)``;
0 = input embedding, 1 = last layer) with a floor ``c`` (the task's chance Macro-F1 from manifest.json;
0 for R² of cue probes):

- *peak depth*: ``x`` of ``argmax_l m_l`` (the lowest layer on ties);
- *90 % depth*: ``x`` of the first layer with ``m_l − c ≥ 0.9 · max_l (m_l − c)``: the depth where the
  score has covered 90 % of its rise above chance. Measured above chance, because 90 % of a raw
  Macro-F1 of 0.5 on a task whose chance is 0.33 is below chance. Undefined when no layer beats ``c``.

*Uncertainty*: a bootstrap over folds. The folds are resampled with replacement (the same folds for
every layer, since a fold's layers share training data), the mean curve recomputed and both depths
found again; the 95 % interval is the 2.5–97.5 percentile range and ``peak_share`` the fraction of
resamples whose peak is the observed peak layer. With 5 folds the intervals are coarse; a clustered
bootstrap over clips of out-of-fold predictions would be finer and is not used yet. No interval and no
share are given (NaN, ``note`` says why) when a class of the task has too few units (:mod:`.units`, from
manifest.json ``cv[task].unit``) or the curve has fewer than :data:`MIN_FOLDS` folds to resample.

Curves: every (model, task, probe) with ``macro_f1`` rows in results.csv, and every acoustic-cue curve
(rows with probe ``ridge`` and metric ``r2`` in the cue probes' cues.csv, or in results.csv; one curve
per ``target``, the cue). Single-layer models (hand-crafted baselines) have no depth and are left out.

Writes ``fingerprints.csv`` (:data:`FINGERPRINT_COLUMNS`) and ``figures/fingerprints.png`` (every model
and task on relative depth): a registered run-scope analysis (:data:`ANALYSIS`), run after the cue
probes (it reads cues.csv); ``analyse(run, "fingerprints", n_boot=200)`` alone.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..csvsafe import read_csv
from ..errors import SpeechprobeError
from .contract import Analysis, AnalysisResult, AnalysisSettings, Figure, Unit
from .contrast import is_random, run_depths, run_seed
from .inputs import read_manifest
from .primary import primary_probe
from .units import too_few_text, unit_from_manifest

FINGERPRINT_COLUMNS = [
    "model",
    "task",
    "target",
    "probe",
    "metric",
    "num_layers",
    "floor",
    "peak_layer",
    "peak_score",
    "peak_depth",
    "peak_depth_lo",
    "peak_depth_hi",
    "peak_share",
    "d90_layer",
    "d90_depth",
    "d90_depth_lo",
    "d90_depth_hi",
    "n_folds",
    "n_boot",
    "note",
]
FRACTION = 0.9
MIN_FOLDS = 5  # fewer folds: no bootstrap over folds (2 folds give 3 distinct resamples)
INTERVAL_COLUMNS = ("peak_depth_lo", "peak_depth_hi", "peak_share", "d90_depth_lo", "d90_depth_hi")
CUE_PROBE, CUE_METRIC, CUE_CSV = "ridge", "r2", "cues.csv"  # the acoustic-cue probes' rows (analysis/cues.py)


def depth_points(means: np.ndarray, floor: float, fraction: float = FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """Peak layer and first layer reaching ``fraction`` of the peak's rise above ``floor``, for each
    row of ``means`` (curves × layers); -1 for the 90 % layer where no layer rises above ``floor``."""
    means = np.atleast_2d(np.asarray(means, dtype=float))
    filled = np.where(np.isfinite(means), means, -np.inf)
    peak = filled.argmax(axis=1)
    rise = filled.max(axis=1) - floor
    reached = (filled - floor) >= fraction * rise[:, None] - 1e-12
    first = np.where(rise > 0, reached.argmax(axis=1), -1)
    return peak, first


def fold_bootstrap(values: np.ndarray, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The mean curve of ``values`` (layers × folds) and ``n_boot`` curves with the folds resampled
    with replacement, the same folds for every layer (n_boot × layers)."""
    values = np.asarray(values, dtype=float)
    picks = np.random.default_rng(seed).integers(0, values.shape[1], size=(n_boot, values.shape[1]))
    with warnings.catch_warnings():  # a layer whose resampled folds are all NaN stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=1), np.nanmean(values[:, picks], axis=2).T


def depth_summary(means: np.ndarray, boot: np.ndarray, floor: float) -> dict:
    """Both depths of the curve ``means`` and their 95 % intervals over the resampled curves ``boot``
    (any resampling: folds here; a bootstrap over clips would plug in the same way)."""
    n_layers = len(means)
    denom = max(n_layers - 1, 1)
    (peak,), (first,) = depth_points(means, floor)
    b_peak, b_first = depth_points(boot, floor)
    b_first = b_first[b_first >= 0]

    def interval(layers: np.ndarray) -> tuple[float, float]:
        if not len(layers):
            return float("nan"), float("nan")
        lo, hi = np.percentile(layers / denom, [2.5, 97.5])
        return float(lo), float(hi)

    return {
        "peak_layer": int(peak),
        "peak_score": float(means[peak]),
        "peak_depth": peak / denom,
        "peak_depth_lo": interval(b_peak)[0],
        "peak_depth_hi": interval(b_peak)[1],
        "peak_share": float(np.mean(b_peak == peak)),
        "d90_layer": int(first),
        "d90_depth": first / denom if first >= 0 else float("nan"),
        "d90_depth_lo": interval(b_first)[0],
        "d90_depth_hi": interval(b_first)[1],
        "n_boot": len(boot),
    }


def fingerprint(values: np.ndarray, floor: float, n_boot: int = 1000, seed: int = 0) -> dict:
    """Both depths of one curve and their fold-bootstrap intervals; ``values`` is layers × folds."""
    means, boot = fold_bootstrap(values, n_boot, seed)
    return depth_summary(means, boot, floor) | {"n_folds": int(np.shape(values)[1])}


def read_curves(run_dir: Path) -> pd.DataFrame:
    """The layer rows fingerprints use: probe Macro-F1 from results.csv, and cue R² (probe ``ridge``,
    with a ``target`` column) from the cue probes' cues.csv or from results.csv."""
    run_dir = Path(run_dir)
    if not (run_dir / "results.csv").is_file():
        raise SpeechprobeError(f"{run_dir}: no results.csv; run the probes first")
    frames = [
        read_csv(run_dir / name, dtype=str, keep_default_na=False)
        for name in ("results.csv", CUE_CSV)
        if (run_dir / name).is_file()
    ]
    frame = pd.concat([f if "target" in f.columns else f.assign(target="") for f in frames], ignore_index=True)
    frame["layer"] = pd.to_numeric(frame["layer"], errors="coerce")
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    task_rows = (frame["metric"] == "macro_f1") & ~frame["probe"].str.startswith("zeroshot:")
    cue_rows = (frame["probe"] == CUE_PROBE) & (frame["metric"] == CUE_METRIC)
    return frame[(task_rows | cue_rows) & frame["layer"].notna()]


def _floor(metric: str, task: str, chance: dict) -> float:
    if metric == "macro_f1":
        value = (chance.get(task) or {}).get("macro_f1")
        return float(value) if value is not None else float("nan")
    return 0.0


def fingerprint_table(
    curves: pd.DataFrame, manifest: dict, n_boot: int = 1000, seed: int = 0
) -> tuple[pd.DataFrame, list[str]]:
    """:data:`FINGERPRINT_COLUMNS` rows, one per multi-layer curve, and notes on curves left out."""
    depths, chance = run_depths(manifest), manifest.get("chance") or {}
    rows, notes = [], []
    keys = ["model", "task", "target", "probe", "metric"]
    for key, rows_of in curves.groupby(keys, sort=True):
        model, task, target, probe, metric = key
        n_layers = max(int(depths.get(model, 0)), int(rows_of["layer"].max()) + 1)
        if n_layers < 2:
            continue
        floor = _floor(metric, task, chance)
        if not np.isfinite(floor):
            notes.append(f"{model} × {task}: no chance level in manifest.json; floor 0 used")
            floor = 0.0
        grid = rows_of.pivot_table(index="layer", columns="fold", values="value", aggfunc="mean")
        grid = grid.reindex(index=range(n_layers))
        record = fingerprint(grid.to_numpy(float), floor, n_boot, seed)
        record["note"] = _no_interval(manifest, task, record["n_folds"]) if metric == "macro_f1" else ""
        if record["note"]:
            record.update(dict.fromkeys(INTERVAL_COLUMNS, float("nan")))
        if record["d90_layer"] < 0:
            cue = f", cue {target}" if target else ""  # a cue curve is one of many on the task's clips
            notes.append(f"{model} × {task}{cue} ({probe}) never rises above chance")
        rows.append(dict(zip(keys, key)) | {"num_layers": n_layers, "floor": floor} | record)
    return pd.DataFrame(rows, columns=FINGERPRINT_COLUMNS), notes


def _no_interval(manifest: dict, task: str, n_folds: int) -> str:
    """Why a task curve gets no fingerprint interval ("" when it does)."""
    few = too_few_text(unit_from_manifest(manifest, task), "a fingerprint interval")
    if few:
        return few
    return f"{n_folds} folds: too few for a bootstrap over folds (needs {MIN_FOLDS})" if n_folds < MIN_FOLDS else ""


def _span(lo: float, hi: float) -> str:
    return f"{lo:.2f}–{hi:.2f}"


def fingerprint_findings(table: pd.DataFrame, probe: str | None) -> list[str]:
    """One sentence per task (primary probe) and one per cue, with bootstrap intervals."""
    out = []
    tasks = table[(table["probe"] == probe) & (table["metric"] == "macro_f1")]
    cues = table[(table["probe"] == CUE_PROBE) & (table["metric"] == CUE_METRIC)]
    cue_name = cues["target"].where(cues["target"] != "", cues["task"])
    groups = [(f"On {t} ({probe} probe, Macro-F1)", r, False) for t, r in tasks.groupby("task", sort=True)]
    groups += [(f"For the cue {c} (ridge R²)", r, True) for c, r in cues.groupby(cue_name, sort=True)]
    for what, rows, per_task in groups:
        parts = []
        order = rows.sort_values(["model", "task"], key=lambda s: s.map(lambda m: (is_random(m), m)))
        for r in order.itertuples():
            who = f"{r.model} on the {r.task} clips" if per_task else r.model  # a cue is probed within each task
            if r.d90_layer < 0:
                parts.append(f"{who} never rises above chance")
                continue
            note = getattr(r, "note", "")
            if isinstance(note, str) and note:
                parts.append(
                    f"{who} reaches 90 % of its rise at relative depth {r.d90_depth:.2f} and peaks at "
                    f"{r.peak_depth:.2f} (no interval: {note})"
                )
                continue
            parts.append(
                f"{who} reaches 90 % of its rise at relative depth {r.d90_depth:.2f} "
                f"({_span(r.d90_depth_lo, r.d90_depth_hi)}) and peaks at {r.peak_depth:.2f} "
                f"({_span(r.peak_depth_lo, r.peak_depth_hi)}; this peak layer in {r.peak_share:.0%} of resamples)"
            )
        n_folds = int(rows["n_folds"].max())
        bootstrapped = "note" not in rows or bool(rows["note"].fillna("").astype(str).eq("").any())
        how = f"95 % intervals from a bootstrap over the {n_folds} folds; " if bootstrapped else ""
        out.append(f"{what}, {'; '.join(parts)} ({how}rise measured above chance).")
    return out


def compute(unit: Unit) -> AnalysisResult:
    """Fingerprint every curve of a finished run from results.csv, cues.csv and manifest.json, with the
    figure and the sentences; options (``settings.options["fingerprints"]``): ``n_boot``, ``seed``."""
    from ..figures.fingerprints import plot_fingerprints

    manifest = read_manifest(unit.run_dir)
    options = _options(unit.settings)
    seed = run_seed(manifest, options["seed"])
    table, notes = fingerprint_table(read_curves(unit.run_dir), manifest, options["n_boot"], seed)
    probe = primary_probe(manifest.get("config") or {}, table.loc[table["metric"] == "macro_f1", "probe"])
    drawn = plot_fingerprints(table, probe, unit.run_dir / "figures" / "fingerprints.png")
    figures = [Figure(*drawn)] if drawn else []
    return AnalysisResult({FINGERPRINT_CSV: table}, figures, notes, fingerprint_findings(table, probe))


def _options(settings: AnalysisSettings) -> dict:
    return {"fraction": FRACTION, "n_boot": 1000, "seed": None, **(settings.options.get("fingerprints") or {})}


FINGERPRINT_CSV = "fingerprints.csv"
ANALYSIS = Analysis.of(
    __name__,
    {FINGERPRINT_CSV: FINGERPRINT_COLUMNS},
    scope="run",
    after=("cues",),
    summary=True,
    cost="seconds; from the scores",
)
