"""The uncertainty shown beside every best layer and shape: fold coverage, bootstrap shares, caveats.

Works from manifest.json (``cv``: the fold plan and per-fold class coverage written by the pipeline;
``tasks``: grouping facts) and ``bootstrap.csv`` (:mod:`.bootstrap`); the report calls these helpers,
so the report itself only places their tables and sentences.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .bootstrap import best_layer_distribution

COVERAGE_COLUMNS = [
    "task",
    "scheme",
    "n_splits",
    "repeats",
    "n_groups",
    "min_groups_per_class",
    "singleton_groups",
    "folds_missing_test_class",
    "folds_missing_train_class",
    "missing",
]
COVERAGE_TEXT = (
    "Per task: the fold plan and, per fold, the classes absent from its training or test part (fold ids "
    "repeat × folds + k). A class absent from a test fold scores F1 = 0 there (Macro-F1 over the fixed label "
    "set); a class absent from training cannot be predicted. min_groups_per_class: fewest speakers/groups of "
    "any class; singleton_groups: clips without a group, each folded as a group of its own."
)
BOOTSTRAP_COLUMNS = [
    "model",
    "task",
    "probe",
    "layer",
    "macro_f1",
    "macro_f1_oof",
    "oof_ci_low",
    "oof_ci_high",
    "p_best",
    "best_layer_distribution",
    "unit",
]
BOOTSTRAP_TEXT = (
    "Per (model, task, probe), its best layer by mean Macro-F1 over folds (macro_f1). Bootstrap over the unit "
    "(clips, or whole groups when the label is constant within groups; stratified by class) of the stored out-of-"
    "fold predictions, probes not refitted: macro_f1_oof is the Macro-F1 of the predictions pooled over folds, "
    "oof_ci its 2.5–97.5 percentiles: the spread of the out-of-fold score at this layer for these fitted probes, "
    "not an interval of the best-layer score (that is the corrected t); none when a class has fewer than 5 units;"
    " p_best: share of resamples in which this layer has the probe's highest out-of-fold Macro-F1; "
    "best_layer_distribution: every layer that is best in at least 5 % of resamples."
)


def _missing_text(folds: list[dict], limit: int = 4) -> str:
    parts = []
    for f in folds:
        for side in ("test", "train"):
            lost = f.get(f"missing_{side}") or []
            if lost:
                parts.append(f"fold {f.get('fold')} {side} lacks {', '.join(map(str, lost))}")
    more = f"; +{len(parts) - limit} more" if len(parts) > limit else ""
    return "; ".join(parts[:limit]) + more


def coverage_table(manifest: Mapping) -> pd.DataFrame:
    """One row per task from manifest.json's ``cv`` section (empty for runs written before it existed)."""
    rows = []
    for task, info in sorted(((manifest or {}).get("cv") or {}).items()):
        per_class = info.get("groups_per_class") or {}
        rows.append(
            {
                "task": task,
                "scheme": info.get("scheme", ""),
                "n_splits": info.get("n_splits", pd.NA),
                "repeats": info.get("repeats", pd.NA),
                "n_groups": info.get("n_groups", pd.NA),
                "min_groups_per_class": min(per_class.values()) if per_class else pd.NA,
                "singleton_groups": info.get("singleton_groups", 0),
                "folds_missing_test_class": info.get("folds_missing_test_class", 0),
                "folds_missing_train_class": info.get("folds_missing_train_class", 0),
                "missing": _missing_text(info.get("folds") or []),
            }
        )
    frame = pd.DataFrame(rows, columns=COVERAGE_COLUMNS)
    for col in ("n_splits", "repeats", "n_groups", "min_groups_per_class"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("Int64")
    return frame


def best_uncertainty(boot: pd.DataFrame | None, model: str, task: str, probe: str, layer) -> dict:
    """Bootstrap facts of one chosen (model, task, probe, layer): its out-of-fold score and interval,
    ``p_best`` (within the probe), ``p_best_overall`` (over the model's probes) and the best-layer
    distribution text; NaN / "" without them."""
    out = {k: np.nan for k in ("macro_f1_oof", "oof_ci_low", "oof_ci_high", "p_best", "p_best_overall")}
    out.update(best_layer_distribution="", unit="", over="", note="")
    if boot is None or boot.empty or pd.isna(layer):
        return out
    rows = boot[(boot["model"] == model) & (boot["task"] == task) & (boot["probe"] == probe)]
    hit = rows[rows["layer"] == int(layer)]
    if hit.empty:
        return out
    r = hit.iloc[0]
    out.update(
        macro_f1_oof=float(r["observed"]),
        oof_ci_low=float(r["ci_low"]),
        oof_ci_high=float(r["ci_high"]),
        p_best=float(r["p_best"]),
        p_best_overall=float(r["p_best_overall"]),
        best_layer_distribution=best_layer_distribution(rows, model, task, probe),
        unit=str(r["unit"]),
        over=_text(r.get("over")),
        note=_text(r.get("note")),
    )
    return out


def _text(value) -> str:
    """A CSV cell as text ("" for an empty cell, which pandas reads as NaN)."""
    return value if isinstance(value, str) else ""


def bootstrap_best_table(boot: pd.DataFrame | None, best: pd.DataFrame) -> pd.DataFrame:
    """Per (model, task, probe) best layer (from :func:`.summary.best_layers`): its out-of-fold score with
    the bootstrap interval, ``p_best`` and the best-layer distribution."""
    rows = []
    for b in best.itertuples(index=False):
        facts = best_uncertainty(boot, b.model, b.task, b.probe, b.layer)
        if np.isnan(facts["p_best"]):
            continue
        rows.append(
            {"model": b.model, "task": b.task, "probe": b.probe, "layer": int(b.layer), "macro_f1": float(b.mean)}
            | {k: facts[k] for k in BOOTSTRAP_COLUMNS[5:]}
        )
    return pd.DataFrame(rows, columns=BOOTSTRAP_COLUMNS)


def uncertainty_warnings(manifest: Mapping) -> list[str]:
    """Group caveats (speakers shared across groups), clips without a group, and folds lacking a class."""
    out = []
    for task, info in ((manifest or {}).get("tasks") or {}).items():
        info = info or {}
        if info.get("group_caveat"):
            out.append(f"Task {task}: {info['group_caveat']}.")
        singles = int(info.get("singleton_groups") or 0)
        if singles:
            out.append(
                f"Task {task}: {singles} clip(s) have no speaker/group (e.g. a file name the group pattern does "
                f"not match); each was folded as a group of its own."
            )
    for task, info in ((manifest or {}).get("cv") or {}).items():
        unit, noun = (info or {}).get("unit") or {}, (info or {}).get("group_name") or ""
        if unit.get("kind") == "clip" and (info or {}).get("grouped") and noun != "speaker":
            out.append(
                f"Task {task}: the label varies within each {noun or 'group'}, so clips are the unit of its tests "
                f"and bootstraps; if the label is a property of a smaller unit inside each {noun or 'group'} (a "
                "speaker), give that unit as the group, or the p-values and intervals are too small."
            )
        n_test = int((info or {}).get("folds_missing_test_class") or 0)
        n_train = int((info or {}).get("folds_missing_train_class") or 0)
        if n_test or n_train:
            total = info.get("n_folds_total", "?")
            out.append(
                f"Task {task}: {n_test} of {total} test folds and {n_train} training folds lack a class "
                f"(see the coverage table); per-fold Macro-F1 counts an absent class as F1 = 0, so prefer "
                f"macro_f1_oof there."
            )
    return out
