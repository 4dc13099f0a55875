"""The main table for papers: ``main_table.csv`` (long form) and ``main_table.tex`` (booktabs)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..files import atomic_write, write_text
from ..models.registry import default_baselines
from ..rundir import csv_bytes


def _tex(s: str) -> str:
    repl = {
        "\\": r"\textbackslash{}",
        "&": r"\&",
        "%": r"\%",
        "$": r"\$",
        "#": r"\#",
        "_": r"\_",
        "{": r"\{",
        "}": r"\}",
        "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}",
    }
    return "".join(repl.get(ch, ch) for ch in str(s))


def _chance(rows: pd.DataFrame, kind: str) -> str:
    """``F1 / acc`` of a chance guesser (``majority`` or ``stratified``) for one task's rows, ``--`` if unknown."""
    cols = [f"{kind}_macro_f1", f"{kind}_accuracy"]
    if not set(cols) <= set(rows.columns) or rows[cols].isna().all(axis=None):
        return "--"
    f1, acc = (float(rows[c].dropna().iloc[0]) for c in cols)
    return f"{f1:.3f} / {acc:.2f}"


def main_table_latex(table: pd.DataFrame, baselines: Sequence[str]) -> str:
    """booktabs table: one row per task; per model the best layer (relative depth) and Macro-F1 ± CI;
    then each baseline's Macro-F1, then the task's majority and stratified chance (Macro-F1 / accuracy);
    the best score of each row in bold."""
    models = sorted(table["model"].dropna().unique()) if not table.empty else []
    bases = [b for b in baselines if b in table.columns and table[b].notna().any()]
    tasks = sorted(table["task"].unique()) if not table.empty else []
    spec = "l" + "rr" * len(models) + "r" * len(bases) + "rr"
    head1 = ["Task"] + [rf"\multicolumn{{2}}{{c}}{{{_tex(m)}}}" for m in models] + [_tex(b) for b in bases]
    head1 += ["Majority", "Stratified"]
    rules = " ".join(rf"\cmidrule(lr){{{2 + 2 * i}-{3 + 2 * i}}}" for i in range(len(models)))
    head2 = [""] + ["layer", "Macro-F1"] * len(models) + ["Macro-F1"] * len(bases) + ["F1 / acc"] * 2
    body = []
    for task in tasks:
        rows = table[table["task"] == task].set_index("model")
        scores = [float(rows.loc[m, "macro_f1"]) if m in rows.index else np.nan for m in models]
        base_scores = [float(rows[b].dropna().iloc[0]) if rows[b].notna().any() else np.nan for b in bases]
        finite = [s for s in scores + base_scores if np.isfinite(s)]
        top = max(finite) if finite else np.nan
        cells = [_tex(task)]
        for m, s in zip(models, scores):
            if not np.isfinite(s):
                cells += ["--", "--"]
                continue
            r = rows.loc[m]
            value = f"{s:.3f}"
            value = rf"\textbf{{{value}}}" if np.isclose(s, top) else value
            ci = f" $\\pm$ {float(r['ci95']):.3f}" if pd.notna(r["ci95"]) else ""
            cells += [f"{int(r['layer'])} ({float(r['relative_depth']):.2f})", value + ci]
        for s in base_scores:
            cells.append("--" if not np.isfinite(s) else (rf"\textbf{{{s:.3f}}}" if np.isclose(s, top) else f"{s:.3f}"))
        cells += [_chance(rows, kind) for kind in ("majority", "stratified")]
        body.append(" & ".join(cells) + r" \\")
    lines = [
        "% speechprobe main table; needs \\usepackage{booktabs}",
        r"\begin{table}[t]",
        r"\centering",
        (
            r"\caption{Best layer (relative depth) and Macro-F1 (mean $\pm$ 95\% CI over folds) per model and task, "
            r"with hand-crafted baselines, and the chance of always the majority class and of a stratified random "
            r"guess (Macro-F1 / accuracy). Bold: best per task.}"
        ),
        r"\label{tab:speechprobe-main}",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(head1) + r" \\",
    ]
    if rules:
        lines.append(rules)
    lines += [
        " & ".join(head2) + r" \\",
        r"\midrule",
        *(body or [r"\multicolumn{1}{l}{(no results)} \\"]),
        r"\bottomrule",
        r"\end{tabular}",
        r"\end{table}",
        "",
    ]
    return "\n".join(lines)


def write_main_table(run_dir: Path, table: pd.DataFrame, baselines: Sequence[str] | None = None) -> tuple[Path, Path]:
    """``main_table.csv`` (long form, :data:`MAIN_TABLE_COLUMNS` plus one column per baseline) and
    ``main_table.tex``; ``baselines``: None for the model registry's default baselines."""
    baselines = default_baselines() if baselines is None else baselines
    run_dir = Path(run_dir)
    csv_path = atomic_write(run_dir / "main_table.csv", csv_bytes(table))
    tex_path = write_text(run_dir / "main_table.tex", main_table_latex(table, baselines))
    return csv_path, tex_path


__all__ = ["main_table_latex", "write_main_table"]
