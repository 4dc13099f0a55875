"""Seed-level statistics of an ablation: the pre-training seed is the unit, not the fold.

Each (objective, seed) checkpoint gets one score per task and layer: the mean over the run's folds of the primary
probe's Macro-F1 (the fold spread is within-seed noise and is not the question). Over seeds:

- per objective, task and layer: the mean of the per-seed scores and its t interval (n - 1 degrees of freedom);
- per pair of objectives, task and layer: the seed-paired differences (seed s of A against seed s of B, which
  started from the same weights and saw the same crops and masks) with their t interval; at the best layer the
  statistic is each seed's maximum over layers minus the other's, so the selection is inside the unit;
- a finding is claimed only where its interval excludes 0: at the best layer with a 95 % interval, and "by layer
  L" (the shallowest layer whose paired difference is above 0) with a Bonferroni interval over the layers tried.
With fewer than 2 seeds there is no interval and no claim.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

LEVEL = 0.95
BEST = "best"  # the layer value of the best-layer rows


def t_interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float, float, int]:
    """(mean, low, high, n) of ``values`` with a t interval; low/high are NaN below 2 values."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n = len(v)
    if n == 0:
        return np.nan, np.nan, np.nan, 0
    if n < 2:
        return float(v.mean()), np.nan, np.nan, n
    half = stats.t.ppf(0.5 + level / 2, n - 1) * v.std(ddof=1) / np.sqrt(n)
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half), n


def seed_scores(summary: pd.DataFrame, models: dict[str, tuple[str, int]], probe: str) -> pd.DataFrame:
    """``objective, seed, task, layer, score`` from summary.csv rows (``models``: run model -> (objective, seed)),
    plus each seed's best layer as ``layer = "best"``."""
    rows = summary[(summary["metric"] == "macro_f1") & (summary["probe"] == probe) & summary["model"].isin(models)]
    out = pd.DataFrame(
        {
            "objective": rows["model"].map(lambda m: models[m][0]),
            "seed": rows["model"].map(lambda m: models[m][1]),
            "task": rows["task"],
            "layer": rows["layer"].astype(int).astype(str),
            "score": rows["mean"].astype(float),
        }
    )
    best = out.groupby(["objective", "seed", "task"], as_index=False)["score"].max().assign(layer=BEST)
    return pd.concat([out, best], ignore_index=True)


def objective_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Per (task, objective, layer): mean over seeds, t interval, number of seeds."""
    rows = []
    for (task, obj, layer), g in scores.groupby(["task", "objective", "layer"], sort=True):
        mean, lo, hi, n = t_interval(g["score"].to_numpy())
        rows.append({"task": task, "objective": obj, "layer": layer, "mean": mean, "low": lo, "high": hi, "seeds": n})
    return pd.DataFrame(rows, columns=["task", "objective", "layer", "mean", "low", "high", "seeds"])


def paired_table(scores: pd.DataFrame, pairs: list[tuple[str, str]]) -> pd.DataFrame:
    """Per (task, a, b, layer): the seed-paired difference a - b, its 95 % and Bonferroni (over layers) intervals."""
    wide = scores.pivot_table(index=["task", "layer", "seed"], columns="objective", values="score")
    rows = []
    for a, b in pairs:
        if a not in wide or b not in wide:
            continue
        diff = (wide[a] - wide[b]).rename("diff").reset_index()
        for task, t in diff.groupby("task"):
            n_layers = t.loc[t["layer"] != BEST, "layer"].nunique()
            for layer, g in t.groupby("layer"):
                mean, lo, hi, n = t_interval(g["diff"].to_numpy())
                _, blo, bhi, _ = t_interval(g["diff"].to_numpy(), 1 - (1 - LEVEL) / max(n_layers, 1))
                rows.append(
                    {"task": task, "a": a, "b": b, "layer": layer, "diff": mean, "low": lo, "high": hi}
                    | {"low_bonferroni": blo, "high_bonferroni": bhi, "seeds": n}
                )
    cols = ["task", "a", "b", "layer", "diff", "low", "high", "low_bonferroni", "high_bonferroni", "seeds"]
    return pd.DataFrame(rows, columns=cols)


def _depth_key(layer: str) -> int:
    return int(layer) if layer != BEST else -1


def findings(paired: pd.DataFrame, label: dict[str, str]) -> list[str]:
    """One sentence per (task, pair): what the seed-paired intervals support, and nothing more."""
    out = []
    for (task, a, b), g in paired.groupby(["task", "a", "b"], sort=False):
        best = g[g["layer"] == BEST].iloc[0]
        n = int(best["seeds"])
        if n < 2:
            out.append(f"{task}: {label[a]} vs {label[b]}: {n} seed(s) paired; no interval, no claim.")
            continue
        shown = f"{best['diff']:+.3f} Macro-F1 [{best['low']:+.3f}, {best['high']:+.3f}], {n} seeds"
        if best["low"] > 0:
            verdict = f"{label[a]} beats {label[b]} at its best layer ({shown})"
        elif best["high"] < 0:
            verdict = f"{label[a]} is below {label[b]} at its best layer ({shown})"
        else:
            verdict = f"{label[a]} does not beat {label[b]} at this scale ({shown}: the interval includes 0)"
        layers = g[g["layer"] != BEST].sort_values("layer", key=lambda s: s.map(_depth_key))
        above = layers[layers["low_bonferroni"] > 0]
        if not above.empty:
            verdict += f"; it is above {label[b]} by layer {above.iloc[0]['layer']} (Bonferroni over layers)"
        out.append(f"{task}: {verdict}.")
    return out


def cue_peaks(cues: pd.DataFrame, models: dict[str, tuple[str, int]], targets: tuple[str, ...]) -> pd.DataFrame:
    """Per (objective, cue): the layer where each seed's cue curve peaks (R², mean over folds and tasks), as the
    mean over seeds with a t interval (cut to the layers there are), and the peak R²."""
    rows = cues[(cues["metric"] == "r2") & cues["model"].isin(models) & cues["target"].isin(targets)]
    curve = rows.groupby(["model", "target", "layer"], as_index=False)["value"].mean()
    peaks = curve.loc[curve.groupby(["model", "target"])["value"].idxmax()]
    peaks = peaks.assign(objective=peaks["model"].map(lambda m: models[m][0]))
    out = []
    for (obj, target), g in peaks.groupby(["objective", "target"]):
        mean, lo, hi, n = t_interval(g["layer"].to_numpy(float))
        lo, hi = max(lo, 0.0), min(hi, float(curve["layer"].max()))
        r2 = float(g["value"].mean())
        out.append({"objective": obj, "cue": target, "peak_layer": mean, "low": lo, "high": hi, "r2": r2, "seeds": n})
    return pd.DataFrame(out, columns=["objective", "cue", "peak_layer", "low", "high", "r2", "seeds"])
