"""The report's tables: the main table (primary probe's best layer per model and task), the statistics
tables behind the findings, the run's own tables (configuration, versions, models, skipped items), and
their HTML (sortable) and Markdown forms."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..analysis.curves import CURVE_RULE, DEFAULT_TOL, baseline_gain
from ..analysis.primary import secondary_best
from ..analysis.selection import CHANCE_TEXT, PERMUTATION_TEXT
from ..analysis.summary import best_layers
from ..analysis.uncertainty import BOOTSTRAP_TEXT, COVERAGE_TEXT, best_uncertainty, bootstrap_best_table, coverage_table
from ..figures.zeroshot_scatter import zeroshot_points
from .load import RunData, chance_table
from .text import fmt, md_escape

ZS_DIAG_TEXT = (
    "Per zero-shot (model, task, mode, prompt): parse_rate = share of answers naming exactly one label; top_share = "
    "share of clips given the most frequent label; entropies in bits of the predicted and true labels; collapsed: "
    "top_share > max(0.5, (1 + largest true class share) / 2), a score that measures the label prior, not the audio."
)
# The task's own class distribution beside every score: always-majority and stratified random guessing.
CHANCE_COLUMNS = ["majority_macro_f1", "majority_accuracy", "stratified_macro_f1", "stratified_accuracy"]
MAIN_TABLE_COLUMNS = [
    "task",
    "model",
    "probe",
    "layer",
    "num_layers",
    "relative_depth",
    "macro_f1",
    "ci95",
    "n_folds",
    "macro_f1_oof",
    "oof_ci_low",
    "oof_ci_high",
    "p_best",
    "best_layer_distribution",
    "shape",
    "best_baseline",
    "baseline_macro_f1",
    "gain",
    "chance_macro_f1",
    *CHANCE_COLUMNS,
]
MAIN_TABLE_TEXT = (
    "Best layer of the primary probe ({primary}) by mean Macro-F1 (over the task's fixed label set) over folds, "
    "± 95% CI (corrected resampled t, Nadeau & Bengio 2003); macro_f1_oof: out-of-fold Macro-F1 (predictions "
    "pooled over folds) with the spread of the out-of-fold score at this layer from a bootstrap over the task's unit "
    "(oof_ci; none when a class has fewer than 5 units); p_best: share of resamples in which this "
    "layer has the probe's highest out-of-fold Macro-F1; shape: the claimed curve shape (undetermined when its "
    "defining differences are within the uncertainty); baseline columns: each hand-crafted feature set with the "
    "same probe; gain: model − best baseline; chance: max(majority, uniform) Macro-F1; majority_*: always the most "
    "frequent class (Macro-F1 2p/(1+p)/k, accuracy p, p its share, k classes); stratified_*: a random class drawn "
    "with the class shares (expected Macro-F1 1/k, accuracy Σ share²), both from the task's scored clips; "
    "p_value / q_value: the "
    "selection-aware permutation test of the best layer and its Benjamini–Hochberg q across the run (min_p: the "
    "smallest p that test can give; p empty when a class has fewer than 5 units); "
    "secondary_*: the other probes' own best layer and score (secondary: they do not define the best layer; "
    "not tested for selection: the maximum over layers, chosen on the test folds, without a permutation test)."
)


def main_table(data: RunData, chance: pd.DataFrame | None = None, shapes: pd.DataFrame | None = None) -> pd.DataFrame:
    """The primary probe's best layer and Macro-F1 ± CI per model and task, its out-of-fold score with the
    bootstrap interval and share of resamples as the probe's best layer, the claimed curve shape, the best
    baseline (same probe), gain and chance; then the selection-aware p and q when tested, and each other
    probe's best layer and score as ``secondary_<probe>_*`` columns."""
    gains = baseline_gain(
        data.summary, data.baselines, "macro_f1", data.results, data.depths, data.primary, ratios=data.ratios
    )
    if gains.empty:
        return pd.DataFrame(columns=MAIN_TABLE_COLUMNS)
    best = best_layers(data.summary, "macro_f1", data.depths).set_index(["model", "task", "probe"])
    chance = chance_table(data) if chance is None else chance
    levels = chance.set_index("task") if not chance.empty else pd.DataFrame()
    shape_of = shapes.set_index(["model", "task", "probe"])["shape"] if shapes is not None and len(shapes) else {}
    rows = []
    for g in gains.itertuples(index=False):
        info = best.loc[(g.model, g.task, g.probe)]
        facts = best_uncertainty(data.bootstrap, g.model, g.task, g.probe, g.layer)
        rows.append(
            {
                "task": g.task,
                "model": g.model,
                "probe": g.probe,
                "layer": g.layer,
                "num_layers": int(info["num_layers"]),
                "relative_depth": g.relative_depth,
                "macro_f1": g.score,
                "ci95": g.ci95,
                "n_folds": int(info["n"]),
                "macro_f1_oof": facts["macro_f1_oof"],
                "oof_ci_low": facts["oof_ci_low"],
                "oof_ci_high": facts["oof_ci_high"],
                "p_best": facts["p_best"],
                "best_layer_distribution": facts["best_layer_distribution"],
                "shape": shape_of.get((g.model, g.task, g.probe), ""),
                "best_baseline": g.baseline,
                "baseline_macro_f1": g.baseline_score,
                "gain": g.gain,
                **{c: _level(levels, g.task, c) for c in ["chance_macro_f1", *CHANCE_COLUMNS]},
            }
        )
    table = pd.DataFrame(rows, columns=MAIN_TABLE_COLUMNS)
    all_best = best.reset_index()
    all_best = all_best[all_best["probe"] == data.primary]
    for name in data.baselines:
        scores = all_best[all_best["model"] == name].groupby("task")["mean"].max()
        if not scores.empty:
            table[name] = table["task"].map(scores).astype(float)
    if data.permutation is not None and not data.permutation.empty:
        cols = ["model", "task", "p_value", "q_value", *(["min_p"] if "min_p" in data.permutation else [])]
        tested = data.permutation[data.permutation["probe"] == data.primary][cols]
        table = table.merge(tested.drop_duplicates(["model", "task"]), on=["model", "task"], how="left")
    secondary = secondary_best(data.summary, data.primary, data.depths)
    if not secondary.empty:
        table = table.merge(secondary, on=["model", "task"], how="left")
    table["layer"] = table["layer"].astype("Int64")
    return table.sort_values(["task", "model"], kind="mergesort").reset_index(drop=True)


def _level(levels: pd.DataFrame, task: str, column: str) -> float:
    """A task's chance level from :func:`~.load.chance_table` (NaN when unknown)."""
    return float(levels.at[task, column]) if task in levels.index and column in levels else np.nan


@dataclass
class Table:
    title: str
    frame: pd.DataFrame
    note: str = ""
    formats: dict[str, int] = field(default_factory=dict)  # column -> decimals


def detail_tables(
    data: RunData,
    table: pd.DataFrame,
    shapes: pd.DataFrame,
    gains: pd.DataFrame,
    para: pd.DataFrame,
    chance: pd.DataFrame,
) -> list[Table]:
    """The report's detail tables: those every run has (possibly empty), then those only some runs have."""
    best = best_layers(data.summary, "macro_f1", data.depths)
    out = [
        Table(
            "Main table: best layer and Macro-F1 per model and task",
            table,
            MAIN_TABLE_TEXT.format(primary=data.primary),
        ),
        Table(
            "Best layer per model, task and probe",
            best.rename(columns={"mean": "macro_f1", "n": "n_folds"}),
            f'Every probe\'s own best layer (the primary probe, {data.primary}, defines "the best layer"); '
            "ties go to the lowest layer; relative depth = layer / (layers − 1); ci95: corrected resampled t. Only the "
            "primary probe's best layer is tested for selection (permutation.csv); the others are not.",
        ),
        Table("Best-layer uncertainty", bootstrap_best_table(data.bootstrap, best), BOOTSTRAP_TEXT),
        Table(
            "Layer-curve shapes",
            shapes,
            CURVE_RULE.format(tol=DEFAULT_TOL),
            {"curvature": 2, "vertex": 2, "peak_depth": 2, "r2": 2},
        ),
        Table(
            "Gain over the hand-crafted baselines",
            gains,
            "gain_ci95: corrected resampled-t 95% CI half-width of the per-fold paired differences (same folds "
            "for every model); "
            "the best layer is picked on the same folds, so gains are slightly optimistic.",
        ),
        Table(
            "Paralinguistic vs non-paralinguistic tasks",
            para,
            "Task groups from the paralinguistic flag in manifest.json; means over the tasks of each group.",
        ),
        Table(
            "Chance levels and task facts",
            chance,
            "Majority: always the most frequent class; uniform: a uniformly random class; stratified: a random class "
            "drawn with the class shares (expected Macro-F1 1/k, accuracy Σ share²); from the scored clips.",
        ),
        Table("Rare classes", rare_classes_frame(data.manifest), RARE_TEXT),
        Table("Cross-validation and class coverage", coverage_table(data.manifest), COVERAGE_TEXT),
    ]
    return out + _optional_tables(data)


RARE_TEXT = (
    "Classes with fewer clips, or (grouped folds) fewer groups, than the folds need, and what --rare-classes did "
    "with them: dropped (their clips skipped; they leave the label set Macro-F1 averages over) or merged into a "
    "rest class; absent: a declared class with no clip, not scored."
)
RARE_COLUMNS = ["task", "class", "clips", "groups", "action", "into", "reason"]


def rare_classes_frame(manifest: dict) -> pd.DataFrame:
    """One row per task and class affected by the rare-class rule, or declared and absent (manifest.json)."""
    rows = []
    for task, info in (manifest.get("tasks") or {}).items():
        info = info if isinstance(info, dict) else {}
        rare = info.get("rare_classes") or {}
        for c, r in sorted((rare.get("classes") or {}).items()):
            rows.append({"task": task, "class": c, **{k: r.get(k) for k in RARE_COLUMNS[2:]}})
        for c in info.get("absent_classes") or []:
            rows.append({"task": task, "class": c, "clips": 0, "action": "absent", "reason": "no clip in the data"})
    frame = pd.DataFrame(rows, columns=RARE_COLUMNS)
    frame["groups"] = pd.to_numeric(frame["groups"], errors="coerce").astype("Int64")
    return frame


def _optional_tables(data: RunData) -> list[Table]:
    """Tables only for runs that have them: permutation tests, empirical chance, zero-shot."""
    out = []
    if data.permutation is not None and not data.permutation.empty:
        out.append(
            Table(
                "Selection-aware permutation tests of the best layer",
                data.permutation,
                PERMUTATION_TEXT,
                {"p_value": 4, "q_value": 4},
            )
        )
    if data.chance is not None and not data.chance.empty:
        out.append(Table("Empirical chance per layer", data.chance, CHANCE_TEXT, {"p_layer": 4, "p_holm": 4}))
    if data.zeroshot_diagnostics is not None and not data.zeroshot_diagnostics.empty:
        out.append(Table("Zero-shot answers: parse rate and collapse", data.zeroshot_diagnostics, ZS_DIAG_TEXT))
    zs = zeroshot_points(data.summary, probe=data.primary)
    if not zs.empty:
        out.append(
            Table(
                "Zero-shot vs probes",
                zs,
                f"probe_score: the best-layer Macro-F1 of the primary probe ({data.primary}) it is compared with "
                "(reference).",
            )
        )
    return out


def _cell(v, decimals: int = 3) -> tuple[str, str, bool]:
    """(display text, sort key, numeric) of one cell."""
    if isinstance(v, (float, np.floating)) and np.isfinite(v):
        return f"{float(v):.{decimals}f}", repr(float(v)), True
    if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
        return str(int(v)), str(int(v)), True
    text = fmt(v, decimals)
    return text, text, False


def html_table(t: Table, index: int | str) -> str:
    frame = t.frame
    if frame.empty:
        body = "<p class='empty'>No rows.</p>"
    else:
        head = "".join(f"<th scope='col' title='click to sort'>{html.escape(str(c))}</th>" for c in frame.columns)
        rows = []
        for rec in frame.itertuples(index=False):
            cells = []
            for col, v in zip(frame.columns, rec):
                text, key, numeric = _cell(v, t.formats.get(col, 3))
                flag = " data-n" if numeric else ""
                cells.append(f"<td data-v='{html.escape(key, quote=True)}'{flag}>{html.escape(text)}</td>")
            rows.append("<tr>" + "".join(cells) + "</tr>")
        body = (
            f"<div class='scroll'><table class='sortable' id='table-{index}'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>"
        )
    note = f"<p class='note'>{html.escape(t.note)}</p>" if t.note else ""
    return f"<section><h3>{html.escape(t.title)}</h3>{note}{body}</section>"


def md_table(frame: pd.DataFrame, formats: dict[str, int] | None = None) -> str:
    if frame.empty:
        return "_No rows._"
    formats = formats or {}

    esc = md_escape
    lines = [
        "| " + " | ".join(esc(str(c)) for c in frame.columns) + " |",
        "|" + "|".join("---" for _ in frame.columns) + "|",
    ]
    for rec in frame.itertuples(index=False):
        lines.append("| " + " | ".join(esc(_cell(v, formats.get(c, 3))[0]) for c, v in zip(frame.columns, rec)) + " |")
    return "\n".join(lines)


def kv_table(items: dict, title: str) -> Table:
    rows = [(str(k), json.dumps(v, default=str) if isinstance(v, (dict, list)) else fmt(v)) for k, v in items.items()]
    return Table(title, pd.DataFrame(rows, columns=["key", "value"]))


def models_frame(manifest: dict) -> pd.DataFrame:
    rows = []
    for name, info in (manifest.get("models") or {}).items():
        info = info or {}
        rows.append(
            {k: info.get(k, "") for k in ("family", "source", "revision", "num_layers", "hidden_size", "sample_rate")}
            | {"model": name}
        )
    cols = ["model", "family", "source", "revision", "num_layers", "hidden_size", "sample_rate"]
    return pd.DataFrame(rows, columns=cols)


def skipped_frame(manifest: dict) -> pd.DataFrame:
    skipped = manifest.get("skipped") or {}
    items = skipped.get("items", []) if isinstance(skipped, dict) else skipped if isinstance(skipped, list) else []
    rows = [
        {"task": i.get("task", ""), "item": i.get("item", ""), "reason": i.get("reason", "")}
        for i in items
        if isinstance(i, dict)
    ]
    return pd.DataFrame(rows, columns=["task", "item", "reason"])


def skipped_count(manifest: dict) -> int:
    skipped = manifest.get("skipped")
    return int(skipped.get("count", 0)) if isinstance(skipped, dict) else 0
