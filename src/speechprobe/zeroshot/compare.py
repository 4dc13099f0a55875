"""Prompt sensitivity and the link between zero-shot skill and probe separability.

``sensitivity_table``   per (model, task, mode): how Macro-F1 spreads across prompts (n_prompts, min,
                        max, mean, std with ddof=1 (0 for one prompt), max - min, best and worst prompt),
                        plus ``mode = "all"`` over every (mode, prompt) of the pair.
``zeroshot_vs_probe``   per (model, task) with both: the best zero-shot Macro-F1 (over modes and
                        prompts; which one) and the best-layer probe Macro-F1 of the same model
                        (mean over folds; which layer and probe).
``correlations``        Pearson and Spearman across those (model, task) pairs, with a percentile
                        bootstrap 95% CI (pairs resampled with replacement, ``n_boot`` draws, seeded;
                        draws where either side is constant are dropped) and the usual p-value; also
                        per zero-shot mode (best prompt within the mode). NaN below 3 pairs.

Both maxima are picked on the evaluated data (no held-out selection), so the best zero-shot and the
best-layer scores are optimistic in the same way; the correlation compares them like for like.

Files (in the run directory): ``zeroshot_sensitivity.csv``, ``zeroshot_vs_probe.csv``,
``zeroshot_correlation.csv`` and ``figures/zeroshot_correlation.png``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..files import atomic_write
from ..rundir import RunDir, is_zeroshot, sort_results, versions

SENSITIVITY_COLUMNS = [
    "model",
    "task",
    "mode",
    "n_prompts",
    "min",
    "max",
    "mean",
    "std",
    "range",
    "best_prompt",
    "worst_prompt",
]
PAIR_COLUMNS = ["model", "task", "zeroshot_f1", "zeroshot_probe", "probe_f1", "probe_layer", "probe"]
CORRELATION_COLUMNS = ["selection", "method", "r", "ci_low", "ci_high", "p_value", "n_pairs", "n_boot"]


def _means(results: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean over folds of ``metric`` per (model, task, layer, probe)."""
    rows = results[results["metric"] == metric].copy()
    rows["layer"] = pd.to_numeric(rows["layer"].astype("string").replace("", pd.NA), errors="coerce").astype("Int64")
    rows["value"] = pd.to_numeric(rows["value"], errors="coerce")
    return rows.groupby(["model", "task", "layer", "probe"], dropna=False, sort=True)["value"].mean().reset_index()


def sensitivity_table(results: pd.DataFrame, metric: str = "macro_f1") -> pd.DataFrame:
    """The spread of ``metric`` across prompts per (model, task, mode), and over all (mode, prompt)."""
    means = _means(results, metric)
    zs = means[is_zeroshot(means["probe"])].dropna(subset=["value"]).copy()
    if zs.empty:
        return pd.DataFrame(columns=SENSITIVITY_COLUMNS)
    parts = zs["probe"].str.split(":", n=2, expand=True)
    zs["mode"], zs["prompt"] = parts[1], parts[2]
    out = []
    for (model, task), pair in zs.groupby(["model", "task"], sort=True):
        groups = [(mode, g) for mode, g in pair.groupby("mode", sort=True)] + [
            ("all", pair.assign(prompt=pair["mode"] + ":" + pair["prompt"]))
        ]
        for mode, g in groups:
            v = g["value"].to_numpy(dtype=float)
            best, worst = g.iloc[int(np.argmax(v))]["prompt"], g.iloc[int(np.argmin(v))]["prompt"]
            std = float(np.std(v, ddof=1)) if len(v) > 1 else 0.0
            out.append(
                (
                    model,
                    task,
                    mode,
                    len(v),
                    float(v.min()),
                    float(v.max()),
                    float(v.mean()),
                    std,
                    float(v.max() - v.min()),
                    best,
                    worst,
                )
            )
    return pd.DataFrame(out, columns=SENSITIVITY_COLUMNS)


def zeroshot_vs_probe(results: pd.DataFrame, metric: str = "macro_f1", mode: str | None = None) -> pd.DataFrame:
    """Per (model, task): best zero-shot ``metric`` (within ``mode`` if given) and the best-layer probe score."""
    means = _means(results, metric).dropna(subset=["value"])
    zs_mask = is_zeroshot(means["probe"])
    zs = means[zs_mask]
    if mode is not None:
        zs = zs[zs["probe"].str.split(":", n=2).str[1] == mode]
    probes = means[~zs_mask & means["layer"].notna()]
    out = []
    for (model, task), z in zs.groupby(["model", "task"], sort=True):
        p = probes[(probes["model"] == model) & (probes["task"] == task)]
        if p.empty:
            continue
        zb = z.sort_values(["value", "probe"], ascending=[False, True], kind="mergesort").iloc[0]
        pb = p.sort_values(["value", "layer", "probe"], ascending=[False, True, True], kind="mergesort").iloc[0]
        out.append((model, task, float(zb["value"]), zb["probe"], float(pb["value"]), int(pb["layer"]), pb["probe"]))
    return pd.DataFrame(out, columns=PAIR_COLUMNS)


def _corr(x: np.ndarray, y: np.ndarray, method: str) -> tuple[float, float]:
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.pearsonr(x, y) if method == "pearson" else stats.spearmanr(x, y)
    return float(res[0]), float(res[1])


def bootstrap_correlation(
    x, y, method: str = "spearman", n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> dict[str, float]:
    """Correlation of paired ``x``, ``y`` with a percentile bootstrap CI over resampled pairs."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    r, p = _corr(x, y, method)
    lo = hi = float("nan")
    if np.isfinite(r):
        rng = np.random.default_rng(seed)
        draws = []
        for _ in range(n_boot):
            idx = rng.integers(0, len(x), len(x))
            rb, _ = _corr(x[idx], y[idx], method)
            if np.isfinite(rb):
                draws.append(rb)
        if draws:
            alpha = (1 - level) / 2
            lo, hi = (float(q) for q in np.quantile(draws, [alpha, 1 - alpha]))
    return {"r": r, "ci_low": lo, "ci_high": hi, "p_value": p, "n_pairs": len(x), "n_boot": int(n_boot)}


def correlations(results: pd.DataFrame, metric: str = "macro_f1", n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Pearson and Spearman (bootstrap CI) between best zero-shot and best-layer probe scores."""
    modes = sorted({p.split(":")[1] for p in results["probe"].astype(str) if p.startswith("zeroshot:")})
    out = []
    for selection in ["best", *modes]:
        pairs = zeroshot_vs_probe(results, metric, None if selection == "best" else selection)
        for method in ("spearman", "pearson"):
            res = bootstrap_correlation(pairs["zeroshot_f1"], pairs["probe_f1"], method, n_boot, seed)
            out.append({"selection": selection, "method": method, **res})
    return pd.DataFrame(out, columns=CORRELATION_COLUMNS)


def plot_zeroshot_vs_probe(pairs: pd.DataFrame, corr: pd.DataFrame, out_path: Path) -> Path | None:
    """Scatter of best zero-shot (y) against best-layer probe (x) Macro-F1 per (model, task)."""
    if pairs.empty:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 5.0), dpi=120)
    models = sorted(pairs["model"].unique())
    cmap = plt.get_cmap("tab10")
    for k, model in enumerate(models):
        sel = pairs[pairs["model"] == model]
        ax.scatter(sel["probe_f1"], sel["zeroshot_f1"], color=cmap(k % 10), label=model, s=36, zorder=3)
        for r in sel.itertuples(index=False):
            ax.annotate(r.task, (r.probe_f1, r.zeroshot_f1), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, zorder=1)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("best-layer probe Macro-F1")
    ax.set_ylabel("best zero-shot Macro-F1 (over prompts and modes)")
    best = corr[corr["selection"] == "best"].set_index("method")

    def fmt(method: str, symbol: str) -> str:
        if method not in best.index or not np.isfinite(best.loc[method, "r"]):
            return f"{symbol} = n/a"
        r = best.loc[method]
        return f"{symbol} = {r['r']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"

    ax.set_title(
        f"Zero-shot vs probes, n = {len(pairs)} (model, task) pairs\n"
        f"{fmt('spearman', 'Spearman ρ')}; {fmt('pearson', 'Pearson r')} (95% bootstrap CI)",
        fontsize=9,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right", frameon=False)
    fig.tight_layout()
    from ..analysis.plots import figure_bytes

    data = figure_bytes(fig, "png")
    plt.close(fig)
    atomic_write(Path(out_path), data)
    return Path(out_path)


# -- the run directory ----------------------------------------------------------------------------


def write_zeroshot_outputs(
    out: Path | RunDir, zeroshot: pd.DataFrame, state: dict[str, Any], n_boot: int = 2000
) -> dict[str, Any]:
    """Put the zero-shot rows in results.csv (replacing earlier ones; a zero-shot-only copy goes to
    ``zeroshot/results.csv``), refresh summary.csv, the comparison tables and figure, and the manifest's
    ``zeroshot`` section. Returns the correlation records."""
    run_dir = out if isinstance(out, RunDir) else RunDir(out)
    run_dir.write_csv("zeroshot/results.csv", sort_results(zeroshot))
    run_dir.replace_rows("zeroshot", zeroshot)
    return refresh_zeroshot_tables(run_dir, state, n_boot)


def refresh_zeroshot_tables(run_dir: RunDir, state: dict[str, Any] | None = None, n_boot: int = 2000) -> list:
    """Recompute summary.csv, the sensitivity and probe-link tables and the scatter figure from results.csv
    (after either stage wrote its rows), and record them in the manifest's ``zeroshot`` section."""
    from ..analysis import summarize

    manifest = run_dir.read_manifest()
    state = dict(manifest.get("zeroshot") or {}) if state is None else dict(state)
    results = run_dir.read_results()
    run_dir.write_csv("summary.csv", summarize(results))
    run_dir.write_csv("zeroshot_sensitivity.csv", sensitivity_table(results))
    pairs = zeroshot_vs_probe(results)
    run_dir.write_csv("zeroshot_vs_probe.csv", pairs)
    corr = correlations(results, n_boot=n_boot, seed=int(state.get("config", {}).get("seed", 0) or 0))
    run_dir.write_csv("zeroshot_correlation.csv", corr)
    figure = plot_zeroshot_vs_probe(pairs, corr, run_dir.path("figures", "zeroshot_correlation.png"))
    state["correlation"] = json.loads(corr.to_json(orient="records"))
    state["figure"] = str(figure.relative_to(run_dir.root)) if figure else None
    figures = [f for f in manifest.get("figures", []) if f != state["figure"]] + ([state["figure"]] if figure else [])
    defaults = {"versions": versions(), "seed": state.get("config", {}).get("seed")}
    run_dir.update_manifest({"zeroshot": state, "figures": figures}, defaults)
    return state["correlation"]
