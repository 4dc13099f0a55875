"""What the commands print: the best layer per (model, task) with its uncertainty, on standard output.

Reads the run directory only (:func:`speechprobe.report.load_run` and the report's main table), so the
console shows the same numbers as report.html.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table


def stdout() -> Console:
    """Standard output; wide when piped so tables stay greppable."""
    return Console() if sys.stdout.isatty() else Console(width=240)


def print_takeaways(sentences: list[str], console: Console) -> None:
    """The "what this shows" paragraph: the lead, then one line per task by effect size (as in report.html)."""
    if not sentences:
        return
    console.print("\nWhat this shows", style="bold")
    for line in sentences:
        console.print(line, highlight=False)


def _num(value) -> str:
    return "–" if value is None or value != value else f"{value:.3g}"  # NaN: not computed (see the plan lines)


def plan_lines(data, tasks: list[str]) -> list[str]:
    """Per task: the fold plan and the unit of inference in words, and what too few units leave out (and why)."""
    from ..analysis.units import too_few_text

    out = []
    for task in tasks:
        cv = (data.manifest.get("cv") or {}).get(task) or {}
        line = "; ".join(x for x in (cv.get("plan"), cv.get("unit_text")) if x)
        few = too_few_text(data.unit(task), "a permutation test, a bootstrap interval or a paired gap")
        if few:
            line += f". {few}; the interval is the corrected t over {cv.get('n_folds_total', '?')} folds"
        if line:
            out.append(f"{task}: {line}")
    return out


def print_best(out: Path) -> None:
    """The primary probe's best layer per (model, task) beside the baselines and the selection-aware p,
    then the other probes' best scores (secondary), and where the outputs are."""
    import pandas as pd

    from ..report import load_run, main_table, run_headline
    from ..report.takeaways import what_this_shows

    data = load_run(out)
    table = main_table(data)
    shows = what_this_shows(run_headline(data), data.primary)
    table = table[~table["model"].isin(data.baselines)]
    base = [c for c in data.baselines if c in table and table[c].notna().any()]
    second = [c for c in table.columns if c.startswith("secondary_") and c.endswith("_macro_f1")]
    tested = "p_value" in table and table["p_value"].notna().any()
    zs = _zeroshot_default(out)
    view = Table(
        "model",
        "task",
        "layer",
        "depth",
        f"Macro-F1 {data.primary} (95% CI)",
        "best in",
        *(["p (selection-aware)", "q", "min p"] if tested else []),
        *base,
        "gain (over the best baseline)",
        *[f"{c.split('_')[1]} (secondary, not tested for selection)" for c in second],
        *(["zero-shot Macro-F1 (default mode)"] if zs else []),
        title=f"Best layer per task (primary probe: {data.primary})",
    )
    for r in table.to_dict("records"):
        view.add_row(
            str(r["model"]),
            str(r["task"]),
            str(r["layer"]),
            f"{r['relative_depth']:.2f}",
            f"{r['macro_f1']:.3f} ± {r['ci95']:.3f}",
            "–" if pd.isna(r["p_best"]) else f"{100 * r['p_best']:.0f}%",
            *([_num(r["p_value"]), _num(r["q_value"]), _num(r.get("min_p"))] if tested else []),
            *[f"{r[c]:.3f}" for c in base],
            "–" if pd.isna(r["gain"]) else f"{r['gain']:+.3f} ({r['best_baseline']})",
            *[f"{r[c]:.3f}" for c in second],
            *([zs.get((str(r["model"]), str(r["task"])), "–")] if zs else []),
        )
    out_console = stdout()
    out_console.print(view)
    out_console.print(
        "95% CI: corrected resampled t over the folds; best in: share of bootstrap resamples (bootstrap.csv)"
    )
    for line in plan_lines(data, sorted(set(table["task"]))):
        out_console.print(line, highlight=False, soft_wrap=True)
    print_takeaways(shows, out_console)
    for what in ("results.csv", "summary.csv", "bootstrap.csv", "figures", "manifest.json", "report.html"):
        out_console.print(f"{what:>14}: {out / what}")


def _zeroshot_default(out: Path) -> dict[tuple[str, str], str]:
    """Per (model, task): the default zero-shot score of zeroshot_vs_probe.csv (chosen without test labels)."""
    from ..csvsafe import read_csv

    path = out / "zeroshot_vs_probe.csv"
    if not path.is_file():
        return {}
    rows = read_csv(path)
    rows = rows[rows["selection"] == "default"]
    return {
        (str(r.model), str(r.task)): f"{r.zeroshot_f1:.3f} ({r.mode}{', collapsed' if r.collapsed else ''})"
        for r in rows.itertuples(index=False)
    }


def print_zeroshot(rows) -> None:
    """The zero-shot Macro-F1 per (model, task, mode and prompt) of ``rows`` (zero-shot result rows)."""
    f1 = rows[rows.metric == "macro_f1"]
    view = Table("model", "task", "probe", "Macro-F1", title="Zero-shot")
    for r in f1.to_dict("records"):
        view.add_row(str(r["model"]), str(r["task"]), str(r["probe"]), f"{r['value']:.3f}")
    stdout().print(view)
