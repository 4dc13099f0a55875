"""The report's findings, generated from the numbers, each with its uncertainty.

A table with one row per (model, task) at the primary probe's best layer (score ± corrected interval,
out-of-fold score with its bootstrap interval, baseline, chance, the claimed curve shape and the
selection-aware test; :func:`findings_table`), then short sentences: what the run probed, the best model per
task, tasks that nuisance baselines alone largely solve, paralinguistic against non-paralinguistic depth,
zero-shot collapse and correlation; and the warnings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..analysis.uncertainty import best_uncertainty, uncertainty_warnings
from ..analysis.units import plural
from ..models.registry import nuisance_baselines
from .load import RunData
from .paired import paired_difference
from .text import fmt, signed, task_start


def _perm_verdict(p: float, n: int, alpha: float = 0.05, q: float = float("nan"), n_layers: int = 1) -> str:
    """The selection-aware test of a best layer in words (p against the shuffled maxima over the layers)."""
    floor = 1 / (1 + n)
    chosen = f"the best of {n_layers} layers, tested as selected: " if n_layers > 1 else ""
    stats = f"p = {p:.3g}" + (f", q = {q:.3g}" if np.isfinite(q) else "") + f", {n} permutations"
    if p <= alpha:
        return f"is above shuffled labels ({chosen}{stats})"
    if p <= floor + 1e-12:
        return (
            f"beats every one of the {n} shuffles ({chosen}p = {p:.3g}, the smallest p that {n} permutations "
            f"allow; run at least {math.ceil(1 / alpha) - 1} for a {alpha:.0%} test)"
        )
    return f"is not distinguishable from shuffled labels at the {alpha:.0%} level ({chosen}{stats})"


def _cell(row: pd.Series, key: str, default=""):
    """A permutation.csv cell that older runs lack, or that pandas read as NaN."""
    value = row.get(key, default)
    return default if value is None or (isinstance(value, float) and np.isnan(value)) else value


def _unit_words(row: pd.Series) -> str:
    """What the test exchanged: "exact over all 32 labellings of 10 speakers", "1000 shuffles of 120 clips"."""
    unit, n_units = str(_cell(row, "unit", "clip")), int(_cell(row, "n_units", 0) or 0)
    what = plural(unit, n_units) if n_units else f"{unit}s"
    if str(_cell(row, "exact", "")).lower() in ("true", "1", "1.0"):
        return f"exact over all {int(row['n_permutations'])} labellings of {what}"
    return f"labels shuffled over {what}"


def _test_phrases(data: RunData, model: str, task: str) -> list[str]:
    """The selection-aware test of a (model, task)'s best layer and its layers above empirical chance, each
    naming its unit; no p-value (and why) when the task has too few units."""
    out = []
    perm = data.permutation
    if perm is not None and not perm.empty:
        rows = perm[(perm["model"] == model) & (perm["task"] == task)]
        if not rows.empty:
            p = rows.iloc[0]
            note = str(_cell(p, "note", ""))
            if note or not np.isfinite(float(p["p_value"])):
                out.append(
                    f"layer {int(p['layer'])} ({p['probe']}) is not tested against shuffled labels "
                    f"({note or 'no p-value'}; the interval is the corrected t over {_n_folds(p)} folds)"
                )
            else:
                q = float(p["q_value"]) if pd.notna(p.get("q_value")) else float("nan")
                verdict = _perm_verdict(
                    float(p["p_value"]), int(p["n_permutations"]), q=q, n_layers=int(p["num_layers"])
                )
                min_p = float(_cell(p, "min_p", float("nan")))
                floor = f"; smallest attainable p {min_p:.3g}" if np.isfinite(min_p) else ""
                out.append(f"layer {int(p['layer'])} ({p['probe']}) {verdict} ({_unit_words(p)}{floor})")
    chance = data.chance
    if chance is not None and not chance.empty:
        rows = chance[(chance["model"] == model) & (chance["task"] == task)]
        if len(rows) > 1:
            top = rows.loc[rows["above_chance"].idxmax()]
            tested = rows["p_holm"].notna().any()
            held = int((rows["p_holm"] <= 0.05).sum())
            verdict = (
                f"{held} of {len(rows)} layers are above chance after Holm's correction"
                if tested
                else "no layer is tested against it (too few units)"
            )
            out.append(
                f"score above empirical chance peaks at layer {int(top['layer'])} (+{top['above_chance']:.3f}); "
                + verdict
            )
    return out


def _n_folds(row: pd.Series) -> str:
    n = _cell(row, "n_folds", "")
    return str(int(n)) if n != "" else "the"


def findings(data: RunData, table: pd.DataFrame, para: pd.DataFrame) -> list[str]:
    """Plain sentences generated from the numbers, on what :func:`findings_table` does not hold."""
    probed = sorted(set(data.summary.loc[data.summary["layer"].notna(), "model"]))
    if not probed:
        return ["No probe scores are available, so no findings can be stated; see “Missing or partial data”."]
    out = [_overview_sentence(data, probed)]
    out.extend(best_model_findings(data, table))
    out.extend(nuisance_findings(table, nuisance_baselines()))
    out.extend(_depth_group_findings(para))
    return out


def _overview_sentence(data: RunData, probed: list[str]) -> str:
    """What the run probed: models, baselines, tasks, probes and folds."""
    bases = [m for m in probed if m in data.baselines or data.depths.get(m) == 1]
    models = [m for m in probed if m not in bases]
    probes = sorted(p for p in set(data.summary["probe"]) if not p.startswith("zeroshot:") and p != "kmeans")
    tasks = sorted(set(data.summary["task"]))
    folds = data.fold_plan
    seed = data.config.get("seed", data.manifest.get("seed", 0))
    return (
        f"This run probed {len(models)} model(s) ({', '.join(models) or 'none'})"
        + (f" and {len(bases)} hand-crafted baseline(s) ({', '.join(bases)})" if bases else "")
        + f" on {len(tasks)} task(s) ({', '.join(tasks)}) with the {', '.join(probes) or 'no'} probe(s)"
        + (f" over {folds} of cross-validation (seed {seed})." if folds else ".")
    )


FINDINGS_TABLE_TEXT = (
    "One row per model and task at the primary probe's best layer: Macro-F1 ± 95 % interval (corrected resampled t "
    "over n_folds folds); out-of-fold Macro-F1 with the spread of a bootstrap over the task's unit (probes not "
    "refitted) and the best layer over those resamples; the best hand-crafted baseline and the gain over it; chance; "
    "the claimed curve shape with the intervals of its defining differences (not tested for selection: the best and "
    "worst layers are read off the scored folds); the selection-aware test against shuffled labels and the layers "
    "above empirical chance. Sort by any column."
)


def findings_table(data: RunData, table: pd.DataFrame, shapes: pd.DataFrame) -> pd.DataFrame:
    """The per-(model, task) findings as a table (one number per cell; the main table's numbers)."""
    shape_of = shapes.set_index(["model", "task", "probe"]) if not shapes.empty else None
    rows = []
    for r in table.dropna(subset=["macro_f1"]).itertuples(index=False):
        facts = best_uncertainty(data.bootstrap, r.model, r.task, r.probe, r.layer)
        found = shape_of is not None and (r.model, r.task, r.probe) in shape_of.index
        shape = shape_of.loc[(r.model, r.task, r.probe)] if found else None
        rows.append(
            {
                "task": r.task,
                "model": r.model,
                "probe": r.probe,
                "layer": int(r.layer),
                "layers": int(r.num_layers),
                "depth": float(r.relative_depth),
                "macro_f1": float(r.macro_f1),
                "ci95": float(r.ci95),
                "n_folds": int(r.n_folds),
                "oof": facts["macro_f1_oof"],
                "oof_low": facts["oof_ci_low"],
                "oof_high": facts["oof_ci_high"],
                "best_layer_over_resamples": r.best_layer_distribution or facts["note"] or "",
                "baseline": r.best_baseline if isinstance(r.best_baseline, str) else "",
                "baseline_f1": float(r.baseline_macro_f1),
                "gain": float(r.gain),
                "chance": float(r.chance_macro_f1),
                "shape (not tested for selection)": _shape_cell(shape) if shape is not None else "",
                "test against shuffled labels": "; ".join(_test_phrases(data, r.model, r.task)),
            }
        )
    return pd.DataFrame(rows)


def _shape_cell(s: pd.Series) -> str:
    """A claimed curve shape with the intervals of its defining differences, e.g. "peaked (best − first
    +0.12 [+0.05, +0.19]; ...; concave, curvature -0.40)"; "undetermined (looks peaked; ...)"."""
    if s["shape"] == "undetermined":
        return f"undetermined (looks {s['shape_point']}; {s['evidence']})"
    extra = [str(s["evidence"])] if s["evidence"] else []
    if s["concavity"]:
        extra.append(f"{s['concavity']}, curvature {s['curvature']:+.2f}")
    return s["shape"] + (f" ({'; '.join(extra)})" if extra else "")


def _depth_group_findings(para: pd.DataFrame) -> list[str]:
    """Per model, where paralinguistic and non-paralinguistic tasks peak (mean relative depth)."""
    out = []
    for model, rows in para.groupby("model", sort=True):
        known = rows[rows["group"] != "unknown"].set_index("group")
        if {"paralinguistic", "non-paralinguistic"} <= set(known.index):
            a, b = known.loc["paralinguistic"], known.loc["non-paralinguistic"]
            out.append(
                f"In {model}, paralinguistic tasks peak at mean relative depth {a['mean_relative_depth']:.2f} "
                f"(mean Macro-F1 {fmt(a['mean_score'])}, mean gain {signed(a['mean_gain'])}) versus "
                f"{b['mean_relative_depth']:.2f} for non-paralinguistic tasks (mean Macro-F1 {fmt(b['mean_score'])}, "
                f"mean gain {signed(b['mean_gain'])})."
            )
        elif not known.empty:
            g = known.index[0]
            a = known.loc[g]
            out.append(
                f"In {model}, the {g} tasks peak at mean relative depth {a['mean_relative_depth']:.2f} "
                f"(mean Macro-F1 {fmt(a['mean_score'])}, mean gain {signed(a['mean_gain'])})."
            )
    return out


def best_model_findings(data: RunData, table: pd.DataFrame) -> list[str]:
    """Per task with two or more models: the top model is called best only when its lead over the
    runner-up (each at its own best layer of the primary probe) holds under the paired corrected-t
    interval of the per-fold differences; otherwise the two are said to be level."""
    out = []
    rows = table[~table["model"].isin(data.baselines) & (table["num_layers"] > 1)].dropna(subset=["macro_f1"])
    for task, part in rows.groupby("task", sort=True):
        if len(part) < 2:
            continue
        top, second = (r for r in part.sort_values("macro_f1", ascending=False).head(2).itertuples(index=False))
        few = data.withheld("a paired gap").get(task)
        if few:
            out.append(f"On {task}, {top.model} and {second.model} are not compared ({few}); no best model is claimed.")
            continue
        diff, half = paired_difference(data, task, top, second)
        paired = f"{top.n_folds} paired folds"
        lead = f"{signed(diff)} ± {fmt(half)} over {second.model}, {paired}" if np.isfinite(half) else ""
        if np.isfinite(half) and diff - half > 0:
            out.append(f"On {task}, {top.model} is the best model (Macro-F1 {fmt(top.macro_f1)}; {lead}).")
        else:
            why = f" ({lead})" if lead else " (no fold-level results to compare them)"
            out.append(
                f"On {task}, {top.model} and {second.model} are level within the uncertainty{why}; "
                "no best model is claimed."
            )
    return out


NUISANCE_SHARE = 0.5  # a nuisance baseline covering at least this share of the best model's lead over chance


def nuisance_findings(table: pd.DataFrame, nuisances: Mapping[str, str]) -> list[str]:
    """One sentence per task that nuisance baselines alone largely solve, the strongest first.

    With ``m`` the best model's Macro-F1 on the task, ``b`` the nuisance baseline's and ``c`` chance,
    the baseline "largely solves" the task when ``(b - c) / (m - c) >= NUISANCE_SHARE``: it covers at
    least half of the model's lead over chance. ``nuisances``: baseline name -> what it measures.
    """
    out = []
    for task, rows in table.dropna(subset=["macro_f1"]).groupby("task", sort=True):
        top = rows.loc[rows["macro_f1"].idxmax()]
        chance = float(top["chance_macro_f1"]) if pd.notna(top["chance_macro_f1"]) else 0.0
        lead = float(top["macro_f1"]) - chance
        found = [
            (share, name, what, float(top[name]))
            for name, what in nuisances.items()
            if lead > 0 and name in rows and pd.notna(top[name])
            for share in [(float(top[name]) - chance) / lead]
            if share >= NUISANCE_SHARE
        ]
        if not found:
            continue
        (share, name, what, score), *more = sorted(found, key=lambda f: (-f[0], f[1]))
        sentence = (
            f"{task_start(task)} is largely solvable from {what}: the {name} baseline alone reaches Macro-F1 "
            f"{fmt(score)} (chance {fmt(chance)}), {share:.0%} of the way from chance to the best model "
            f"({top['model']}, {fmt(top['macro_f1'])})"
        )
        also = [f"{w} ({n} {fmt(b)}, {s:.0%})" for s, n, w, b in more]
        if also:
            sentence += "; " + " and ".join([", ".join(also[:-1]), also[-1]] if len(also) > 1 else also)
            sentence += " also reach" + ("" if len(also) > 1 else "es") + " at least half of that lead"
        out.append(sentence + ".")
    return out


def zeroshot_findings(data: RunData) -> list[str]:
    """Sentences on collapsed zero-shot answer sets and on the zero-shot ↔ probe correlation."""
    out = []
    diag = data.zeroshot_diagnostics
    if diag is not None and not diag.empty:
        flagged = diag[diag["collapsed"].astype(str).str.lower().isin(["true", "1", "1.0"])]
        for (model, task), rows in flagged.groupby(["model", "task"], sort=True):
            total = int(((diag["model"] == model) & (diag["task"] == task)).sum())
            which = ", ".join(f"{r.mode}:{r.prompt} {float(r.top_share):.0%}" for r in rows.itertuples(index=False))
            out.append(
                f"Zero-shot {model} on {task} collapsed in {len(rows)} of {total} (mode, prompt) settings, one label "
                f"taking most answers ({which}): those scores measure the decoder's label prior, not the audio, and "
                "are kept out of the zero-shot ↔ probe correlation."
            )
    corr = data.zeroshot_correlation
    if corr is not None and not corr.empty:
        rows = corr[(corr["scope"] == "pooled") & (corr["method"] == "spearman")].set_index("selection")
        if "default" in rows.index and np.isfinite(float(rows.loc["default", "r"])):
            r = rows.loc["default"]
            ci = f"[{float(r['ci_low']):.2f}, {float(r['ci_high']):.2f}]"
            sentence = (
                f"Across {int(r['n_pairs'])} (model, task) pairs ({int(r['n_collapsed'])} collapsed left out), "
                f"chance-normalised zero-shot skill (default mode, mean over prompts) and best-layer probe score "
                f"correlate with Spearman ρ = {float(r['r']):.2f} {ci} (95% bootstrap over tasks)"
            )
            if "oracle" in rows.index and np.isfinite(float(rows.loc["oracle", "r"])):
                oracle = float(rows.loc["oracle", "r"])
                sentence += f"; with the best prompt chosen on the test labels (oracle) ρ = {oracle:.2f}"
            out.append(sentence + ".")
    return out


def warnings_for(data: RunData) -> list[str]:
    """Fold-grouping warnings per task plus the run's own warnings (deduplicated)."""
    run_warnings = [str(w) for w in data.manifest.get("warnings") or []]
    out = []
    for task, info in data.tasks_meta.items():
        if (info or {}).get("grouped_folds") is False:
            out.append(
                f"Folds for task {task} were not grouped by speaker (no speaker/group column): the same "
                f"speaker can appear in training and test folds, which may inflate its scores."
            )
    if data.permutation is not None and not data.permutation.empty and "grouped" in data.permutation:
        for r in data.permutation.itertuples(index=False):
            if str(r.grouped).lower() in ("false", "0") and r.task not in data.tasks_meta:
                out.append(f"Statistics for task {r.task} used folds not grouped by speaker.")
    for w in run_warnings:
        if not ("not grouped" in w and any(f"task {t}:" in w for t in data.tasks_meta)):
            out.append(w)
    out.extend(uncertainty_warnings(data.manifest))
    for key, items in (data.manifest.get("truncated") or {}).items():
        out.append(f"{key}: {len(items)} clip(s) were longer than the model's window and were truncated.")
    return list(dict.fromkeys(out))


__all__ = [
    "FINDINGS_TABLE_TEXT",
    "NUISANCE_SHARE",
    "findings",
    "findings_table",
    "nuisance_findings",
    "warnings_for",
    "zeroshot_findings",
]
