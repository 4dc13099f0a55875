"""The ladder: per model x task, what each way of reading the model reaches, on the run's own folds.

Rungs, in order (each only when the run holds it):

1. ``zero-shot``: the zero-shot score chosen without test labels (``zeroshot_vs_probe.csv``'s ``default`` row:
   the first mode of the zero-shot preference, mean over prompts). One evaluation over every clip, so no interval.
2. ``best frozen layer``: the primary probe at its best layer (chosen in hindsight: optimistic for this rung).
3. ``all-layer weighting``: the learned weighted sum of ``layer_weights`` (``all_layers.csv``).
4. ``head``: the frozen encoder with a trained attention-pooling head (``finetune.csv``, ``ft-head``).
5. ``fine-tuned``: ``ft-lora`` / ``ft-top-k`` of ``finetune.csv``.

The shuffled-label control (``ft-*-shuffled``) is a row of its own, outside the steps. Each rung's interval is the
corrected resampled t over its folds (:func:`.intervals.fold_interval`), clipped to Macro-F1's range [0, 1]; each
step up is the paired difference with the rung below it over the folds both hold, and ``gain`` the paired difference
with the best frozen layer (both clipped to [-1, 1]; as in layer_weights.csv). ``top_layer``/``top_weight``: where a
trained head read from (``finetune_layers.csv``: the layer of largest mean weight over the folds, and that weight);
``n_read``: how many layers it weighted (uniform weighting: ``1 / n_read`` each).
Written as ``ladder.csv``; a figure per model x task (:mod:`speechprobe.figures.ladder`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..rundir import FINETUNE, FINETUNE_LAYERS, read_results
from .contract import Analysis, AnalysisResult, Figure, Unit
from .inputs import read_table
from .intervals import fold_interval, fold_ratio
from .layer_weights import ALL_LAYERS_CSV
from .summary import chance_levels

LADDER_CSV = "ladder.csv"
COLUMNS = ["model", "task", "order", "rung", "source", "n_folds", "mean", "low", "high", "chance"]
COLUMNS += ["step", "step_low", "step_high", "gain", "gain_low", "gain_high", "top_layer", "top_weight"]
COLUMNS += ["n_read"]
FROZEN = "best frozen layer"
CONTROL = "shuffled control"


def _f1(frame: pd.DataFrame) -> pd.Series:
    """Macro-F1 per fold of rows of one cell."""
    rows = frame[frame["metric"] == "macro_f1"].copy()
    rows["value"] = pd.to_numeric(rows["value"], errors="coerce")
    return rows.groupby(pd.to_numeric(rows["fold"]).astype(int))["value"].mean()


def _rungs(unit: Unit) -> list[tuple[str, str, pd.Series | float]]:
    """(rung, source, per-fold Macro-F1, or one number for zero-shot) of the unit, in ladder order."""
    run, model, task = Path(unit.run_dir), unit.model, unit.task
    out: list[tuple[str, str, pd.Series | float]] = []
    zs_path = run / "zeroshot_vs_probe.csv"
    if zs_path.is_file():
        zs = read_table(zs_path, ["model", "task", "selection", "mode", "zeroshot_f1"])
        row = zs[(zs["model"] == model) & (zs["task"] == task) & (zs["selection"] == "default")]
        if len(row):
            out.append(("zero-shot", f"{row['mode'].iloc[0]}", float(row["zeroshot_f1"].iloc[0])))
    results = read_results(run / "results.csv")
    mine = results[(results["model"] == model) & (results["task"] == task)]
    layer, _ = unit.best_layer()
    probe = unit.settings.primary_probe
    frozen = mine[(mine["probe"] == probe) & (mine["layer"] == layer)]
    out.append((FROZEN, f"{probe} layer {layer}", _f1(frozen)))
    weights = run / ALL_LAYERS_CSV
    if weights.is_file():
        rows = read_table(weights, ["task", "model", "probe", "fold", "metric", "value"])
        rows = rows[(rows["model"] == model) & (rows["task"] == task) & (rows["probe"] == "weighted_sum")]
        if len(rows):
            out.append(("all-layer weighting", "weighted sum", _f1(rows)))
    if (run / FINETUNE).is_file():
        tuned = read_results(run / FINETUNE)
        tuned = tuned[(tuned["model"] == model) & (tuned["task"] == task)]
        for probe_name in sorted(tuned["probe"].unique(), key=lambda p: (p.endswith("-shuffled"), p != "ft-head", p)):
            rung = CONTROL if probe_name.endswith("-shuffled") else "head" if probe_name == "ft-head" else "fine-tuned"
            out.append((rung, probe_name, _f1(tuned[tuned["probe"] == probe_name])))
    return out


def score_interval(values: pd.Series, ratio: float) -> tuple[float, float, float]:
    """Mean and corrected interval of a rung's per-fold Macro-F1, clipped to its range [0, 1]."""
    return tuple(np.clip(fold_interval(values.to_numpy(), ratio), 0, 1))


def paired(a: pd.Series | float, b: pd.Series | float, ratio: float) -> tuple[float, float, float]:
    """Mean and interval of ``a - b`` over the folds both hold, in [-1, 1] (NaN when either is one evaluation)."""
    if not isinstance(a, pd.Series) or not isinstance(b, pd.Series):
        return float("nan"), float("nan"), float("nan")
    both = a.index.intersection(b.index)
    return tuple(np.clip(fold_interval((a[both] - b[both]).to_numpy(), ratio), -1, 1))


def _read_from(unit: Unit) -> dict[str, tuple[int, float, int]]:
    """Per fine-tuned probe of the unit: the layer its heads weighted most (mean over folds), that weight and how many
    layers they weighted."""
    path = Path(unit.run_dir) / FINETUNE_LAYERS
    if not path.is_file():
        return {}
    rows = read_table(path, ["model", "task", "probe", "fold", "layer", "weight"])
    rows = rows[(rows["model"] == unit.model) & (rows["task"] == unit.task)]
    mean = rows.groupby(["probe", "layer"])["weight"].mean()
    return {probe: (int(w.idxmax()[1]), float(w.max()), len(w)) for probe, w in mean.groupby(level="probe")}


def compute(unit: Unit) -> AnalysisResult:
    """The ladder table and figure of one model x task (empty without fine-tuning results)."""
    rungs = _rungs(unit)
    if not any(r in ("head", "fine-tuned") for r, _, _ in rungs):
        return AnalysisResult(tables={LADDER_CSV: pd.DataFrame(columns=COLUMNS)})
    ratio = fold_ratio(unit.folds)
    chance = chance_levels(list(unit.labels))["macro_f1"]
    frozen = next(v for r, _, v in rungs if r == FROZEN)
    read_from = _read_from(unit)
    rows, below = [], None
    for order, (rung, source, values) in enumerate(rungs):
        if isinstance(values, pd.Series):
            mean, low, high = score_interval(values, ratio)
            n = int(values.notna().sum())
        else:
            mean, low, high, n = float(values), float("nan"), float("nan"), 0
        step = paired(values, below, ratio) if below is not None and rung != CONTROL else (np.nan,) * 3
        gain = paired(values, frozen, ratio) if rung not in ("zero-shot", FROZEN) else (np.nan,) * 3
        top = read_from.get(source, (np.nan, np.nan, np.nan))
        rows.append([unit.model, unit.task, order, rung, source, n, mean, low, high, chance, *step, *gain, *top])
        if rung != CONTROL:
            below = values
    table = pd.DataFrame(rows, columns=COLUMNS)
    from ..figures.ladder import caption, draw, ladder_spec

    spec = ladder_spec(table, unit.model, unit.task)
    png = draw(spec, unit.figure_path("ladder"))
    return AnalysisResult(tables={LADDER_CSV: table}, figures=[Figure(png, caption(spec))])


def _interval(mean, low, high, signed: bool = False) -> str:
    sign = "+" if signed else ""
    if not np.isfinite(low):
        return f"{mean:{sign}.2f}"
    return f"{mean:{sign}.2f} [{low:.2f}, {high:.2f}]"


def _where(r) -> str:
    """Where a trained head read from, against the uniform weighting it started from."""
    return f", read mostly from layer {r.top_layer:.0f}: weight {r.top_weight:.2f}, uniform {1 / r.n_read:.2f}"


def findings(run_dir: Path) -> list[str]:
    """One sentence per model x task: what fine-tuning and the head add over the best frozen layer (95% paired
    intervals over the folds), where zero-shot stands against chance, and the shuffled control."""
    path = Path(run_dir) / LADDER_CSV
    if not path.is_file():
        return []
    table = read_table(path, COLUMNS)
    out = []
    for (model, task), rows in table.groupby(["model", "task"], sort=True):
        by = {r.rung: r for r in rows.itertuples()}
        frozen = by.get(FROZEN)
        parts = []
        for r in rows.itertuples():
            if r.rung in ("fine-tuned", "head", "all-layer weighting") and np.isfinite(r.gain):
                verdict = (
                    "adds" if r.gain_low > 0 else "loses" if r.gain_high < 0 else "differs (interval includes 0) by"
                )
                where = _where(r) if r.top_weight < 1 else ""
                gain = _interval(r.gain, r.gain_low, r.gain_high, True)
                parts.append(f"{r.rung} ({r.source}{where}) {verdict} {gain}")
        sentence = f"On {task} ({model}): " + "; ".join(parts) + " over the best frozen layer"
        if frozen is not None:
            sentence += f" ({frozen.source}, {_interval(frozen.mean, frozen.low, frozen.high)})"
        zs = by.get("zero-shot")
        if zs is not None:
            where = "at or below chance" if zs.mean <= zs.chance else f"{zs.mean - zs.chance:+.2f} over chance"
            sentence += f"; zero-shot is {where} ({zs.mean:.2f}, chance {zs.chance:.2f}; one evaluation, no interval)"
        control = by.get(CONTROL)
        if control is not None:
            sentence += (
                f"; the shuffled-label control scores {_interval(control.mean, control.low, control.high)} "
                f"(chance {control.chance:.2f})"
            )
        out.append(sentence + ".")
    return out


ANALYSIS = Analysis.of(
    __name__,
    {LADDER_CSV: COLUMNS},
    scope="model_task",
    after=("layer_weights",),
    default=False,
    cost="seconds (reads finetune.csv; the training is `speechprobe finetune`)",
    section="Fine-tuning ladder",
)
