"""Does zero-shot skill track how separable a model's layers are? Chance-normalised, chosen without test
labels, collapsed answer sets kept apart (see :mod:`.compare` for the files and ``docs/statistics.md``).

Score normalisation: ``n(s) = (s − chance) / (1 − chance)`` with ``chance`` the task's chance Macro-F1
(max of majority-class and uniform guessing): 0 at chance, 1 perfect, comparable across label sets.

The zero-shot score of a (model, task) is chosen without looking at test labels: the first mode of
:data:`MODE_PREFERENCE` the pair was run with, and the mean Macro-F1 over that mode's prompts. The best
(mode, prompt) on the test labels is reported only as a row labelled ``oracle``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from scipy import stats

#: Modes in the order the default zero-shot score prefers them: a model's own head for the task, then label
#: likelihoods calibrated without labels: batch calibration, then prior matching (both transductive: they read
#: the other clips' scores), then on content-free inputs (contextual calibration, then domain-conditional PMI),
#: then the raw likelihoods, then free generation. Modes not listed come after them, alphabetically. Batch
#: calibration leads the content-free modes on a measurement (whisper-base, synthetic suite; docs/zeroshot.md,
#: Measured): higher mean Macro-F1 and no collapsed answer set, where the content-free modes collapsed on 3 of 8.
#: Prior matching's edge over it on a second one (mean Macro-F1 0.432 vs 0.423 over 8 answer sets) is far inside
#: one seed's spread, so it does not displace batch calibration as the default.
MODE_PREFERENCE = (
    "native",
    "likelihood_bc",
    "likelihood_pm",
    "likelihood_cc",
    "likelihood_pmi",
    "likelihood",
    "likelihood_raw",
    "generate",
)
DIAG_COLUMNS = [
    "model",
    "task",
    "mode",
    "prompt",
    "macro_f1",
    "accuracy",
    "parse_rate",
    "top_share",
    "pred_entropy",
    "true_entropy",
    "chance_macro_f1",
    "collapsed",
]
PAIR_COLUMNS = [
    "model",
    "task",
    "selection",
    "mode",
    "prompt",
    "zeroshot_f1",
    "zeroshot_chance",
    "zeroshot_norm",
    "collapsed",
    "probe",
    "probe_layer",
    "probe_f1",
    "probe_chance",
    "probe_norm",
]
CORRELATION_COLUMNS = [
    "scope",
    "selection",
    "method",
    "r",
    "ci_low",
    "ci_high",
    "p_value",
    "n_pairs",
    "n_models",
    "n_tasks",
    "n_collapsed",
    "n_boot",
    "resampled",
]


def normalise(score, chance):
    """Chance-normalised score ``(s − chance) / (1 − chance)`` (NaN when chance is 1 or unknown)."""
    score, chance = np.asarray(score, dtype=float), np.asarray(chance, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(chance < 1, (score - chance) / (1 - chance), np.nan)


def default_mode(modes: Iterable[str]) -> str:
    """The first of ``modes`` in :data:`MODE_PREFERENCE` order (unlisted modes after, alphabetically)."""
    rank = {m: i for i, m in enumerate(MODE_PREFERENCE)}
    return min(modes, key=lambda m: (rank.get(m, len(rank)), m))


def diagnostics_table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, task, mode, prompt) of zero-shot rows: scores, parse rate and collapse diagnostics."""
    rows = results[results["probe"].astype(str).str.startswith("zeroshot:")].copy()
    if rows.empty:
        return pd.DataFrame(columns=DIAG_COLUMNS)
    rows["value"] = pd.to_numeric(rows["value"], errors="coerce")
    wide = rows.pivot_table(index=["model", "task", "probe"], columns="metric", values="value", aggfunc="mean")
    wide = wide.reset_index()
    parts = wide["probe"].str.split(":", n=2, expand=True)
    wide["mode"], wide["prompt"] = parts[1], parts[2]
    wide = wide.reindex(columns=DIAG_COLUMNS)
    wide["collapsed"] = wide["collapsed"].fillna(0).astype(float) > 0.5
    return wide.sort_values(["model", "task", "mode", "prompt"], kind="mergesort").reset_index(drop=True)


def _pair(model, task, selection, mode, prompt, zs: pd.DataFrame, chance: float, collapsed: bool, probe) -> dict:
    f1 = float(zs["macro_f1"].mean())
    return {
        "model": model,
        "task": task,
        "selection": selection,
        "mode": mode,
        "prompt": prompt,
        "zeroshot_f1": f1,
        "zeroshot_chance": chance,
        "zeroshot_norm": float(normalise(f1, chance)),
        "collapsed": bool(collapsed),
        "probe": probe["probe"],
        "probe_layer": int(probe["layer"]),
        "probe_f1": float(probe["mean"]),
        "probe_chance": probe["chance"],
        "probe_norm": float(normalise(probe["mean"], probe["chance"])),
    }


def zeroshot_vs_probe(
    results: pd.DataFrame, primary: str = "knn", probe_chance: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """Per (model, task) with both: the default and the oracle zero-shot score against the primary probe's
    best layer (see the module docstring). ``probe_chance``: task → chance Macro-F1 of the probed clips
    (default: the zero-shot clips' chance)."""
    from ..analysis import primary_best, summarize

    diag = diagnostics_table(results)
    best = primary_best(summarize(results[~results["probe"].astype(str).str.startswith("zeroshot:")]), primary)
    out = []
    for (model, task), zs in diag.dropna(subset=["macro_f1"]).groupby(["model", "task"], sort=True):
        probe = best[(best["model"] == model) & (best["task"] == task)]
        if probe.empty:
            continue
        chance = float(zs["chance_macro_f1"].mean())
        probe = probe.iloc[0].to_dict()
        probe["chance"] = float((probe_chance or {}).get(task, chance))
        mode = default_mode(zs["mode"].unique())
        own = zs[zs["mode"] == mode]
        prompts = f"mean of {len(own)}" if len(own) > 1 else str(own["prompt"].iloc[0])
        out.append(_pair(model, task, "default", mode, prompts, own, chance, own["collapsed"].mean() > 0.5, probe))
        top = zs.sort_values(["macro_f1", "mode", "prompt"], ascending=[False, True, True], kind="mergesort")
        top = top.head(1)
        row = top.iloc[0]
        out.append(_pair(model, task, "oracle", row["mode"], row["prompt"], top, chance, row["collapsed"], probe))
    return pd.DataFrame(out, columns=PAIR_COLUMNS)


#: decoder_layers.csv curves a pair can take its representation side from, and the selection they are listed as
DECODER_SIDES = {"decoder_probe:last": "default · decoder-state probe", "lens_bc": "default · logit lens"}


def decoder_pairs(pairs: pd.DataFrame, decoder: pd.DataFrame) -> pd.DataFrame:
    """Each default pair again with its representation side from ``decoder`` (decoder_layers.csv): the decoder
    layer where the decoder-state probe, then the batch-calibrated logit lens, scores highest (chosen on the
    same clips, like the best encoder layer); ``probe_layer`` is its depth (encoder layers first)."""
    out = []
    for pair in pairs[pairs["selection"] == "default"].to_dict("records"):
        mine = decoder[(decoder["model"] == pair["model"]) & (decoder["task"] == pair["task"])]
        for side, selection in DECODER_SIDES.items():
            rows = mine[mine["side"] == side]
            if rows.empty:
                continue
            best = rows.loc[rows["macro_f1"].astype(float).idxmax()]
            f1 = float(best["macro_f1"])
            probe = {"probe": side, "probe_layer": int(best["depth"]), "probe_f1": f1}
            out.append(
                {**pair, **probe, "selection": selection, "probe_norm": float(normalise(f1, pair["probe_chance"]))}
            )
    return pd.DataFrame(out, columns=PAIR_COLUMNS)


def _corr(x: np.ndarray, y: np.ndarray, method: str) -> tuple[float, float]:
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.pearsonr(x, y) if method == "pearson" else stats.spearmanr(x, y)
    return float(res[0]), float(res[1])


def bootstrap_correlation(
    x, y, method: str = "spearman", n_boot: int = 2000, seed: int = 0, level: float = 0.95, clusters=None
) -> dict[str, float]:
    """Correlation of paired ``x``, ``y`` with a percentile bootstrap CI. Without ``clusters`` the pairs
    are resampled; with them, whole clusters (e.g. tasks) are, with replacement, keeping their pairs
    together. Draws where either side is constant are dropped."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    groups = np.arange(len(x)) if clusters is None else pd.factorize(np.asarray(clusters))[0]
    members = [np.flatnonzero(groups == g) for g in range(groups.max() + 1)] if len(x) else []
    r, p = _corr(x, y, method)
    lo = hi = float("nan")
    if np.isfinite(r):
        rng = np.random.default_rng(seed)
        draws = []
        for _ in range(n_boot):
            idx = np.concatenate([members[k] for k in rng.integers(0, len(members), len(members))])
            rb, _ = _corr(x[idx], y[idx], method)
            if np.isfinite(rb):
                draws.append(rb)
        if draws:
            alpha = (1 - level) / 2
            lo, hi = (float(q) for q in np.quantile(draws, [alpha, 1 - alpha]))
    return {"r": r, "ci_low": lo, "ci_high": hi, "p_value": p, "n_pairs": len(x), "n_boot": int(n_boot)}


def _rows(pairs: pd.DataFrame, scope: str, selection: str, n_collapsed: int, resampled: str, n_boot, seed) -> list:
    out = []
    for method in ("spearman", "pearson"):
        clusters = pairs["task"] if resampled == "tasks" else None
        x, y = pairs["zeroshot_norm"], pairs["probe_norm"]
        res = bootstrap_correlation(x, y, method, n_boot, seed, clusters=clusters)
        out.append(
            {
                "scope": scope,
                "selection": selection,
                "method": method,
                **res,
                "n_models": pairs["model"].nunique(),
                "n_tasks": pairs["task"].nunique(),
                "n_collapsed": n_collapsed,
                "resampled": resampled,
            }
        )
    return out


def correlations(pairs: pd.DataFrame, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Correlations of the chance-normalised scores (see the module docstring of :mod:`.compare`): pooled
    (bootstrap over tasks) and within each task across models (bootstrap over models), for the default
    selection without collapsed pairs; then the default with them, and the oracle, pooled only."""
    out = []
    for selection in ("default", "oracle"):
        sel = pairs[(pairs["selection"] == selection)].dropna(subset=["zeroshot_norm", "probe_norm"])
        kept = sel[~sel["collapsed"].astype(bool)]
        n_collapsed = len(sel) - len(kept)
        out += _rows(kept, "pooled", selection, n_collapsed, "tasks", n_boot, seed)
        if selection == "default":
            out += _rows(sel, "pooled", "default, collapsed included", 0, "tasks", n_boot, seed)
            for task, rows in kept.groupby("task", sort=True):
                lost = int(sel[sel["task"] == task]["collapsed"].astype(bool).sum())
                out += _rows(rows, f"task {task}", selection, lost, "models", n_boot, seed)
    for selection in [s for s in DECODER_SIDES.values() if s in set(pairs["selection"])]:  # pooled only
        sel = pairs[pairs["selection"] == selection].dropna(subset=["zeroshot_norm", "probe_norm"])
        kept = sel[~sel["collapsed"].astype(bool)]
        out += _rows(kept, "pooled", selection, len(sel) - len(kept), "tasks", n_boot, seed)
    return pd.DataFrame(out, columns=CORRELATION_COLUMNS)
