"""Each feature-level analysis's findings in the report, one collapsed group per analysis.

Most analyses' own sentences (``analyses/<name>.json``) are shown as they are. Where they run long, the report
gives a short form and puts the numbers in a table built from the analysis's own CSV (the same numbers):

- cue erasure (``erasure_summary.csv``): per (task, model), the best layer with its score (naming the folds when
  they are not the headline's, :func:`speechprobe.analysis.cues.cue_plan`) and only the cue groups whose
  erasure moves it beyond its 95 % interval; every group is in the table;
- depth fingerprints (``fingerprints.csv``): the table alone (90 % depth and peak with their bootstrap intervals).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..analysis.cues import cue_plan
from ..analysis.erasure import GROUP_LABELS, NONE
from ..analysis.erasure import SUMMARY_COLUMNS as ERASURE_COLUMNS
from ..analysis.erasure import SUMMARY_CSV as ERASURE_CSV
from ..analysis.fingerprints import FINGERPRINT_COLUMNS
from ..analysis.inputs import read_table
from ..analysis.outputs import AnalysisOutput
from ..errors import SpeechprobeError
from .tables import Table

TITLES = {
    "fingerprints": "Depth fingerprints",
    "cues": "Acoustic cues",
    "erasure": "Cue erasure",
    "layer_weights": "All-layers reference",
    "mdl": "Minimum description length",
    "similarity": "Layer similarity",
}


@dataclass
class FindingGroup:
    """One analysis's findings: short sentences and tables, shown in a collapsed group of "All findings"."""

    title: str
    sentences: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


def erasure_group(run_dir: Path, baselines: list[str]) -> FindingGroup | None:
    """Cue erasure in short sentences and one table (None when the run has no erasure summary)."""
    path = Path(run_dir) / ERASURE_CSV
    if not path.is_file():
        return None
    summary = read_table(path, ERASURE_COLUMNS)
    best = summary[summary["best"].astype(str).str.lower() == "true"]
    best = best[~best["model"].isin(baselines)]
    plan = cue_plan(run_dir)
    sentences = []
    for (task, model), part in best.groupby(["task", "model"], sort=True):
        base, erased = part[part["target"] == NONE], part[(part["target"] != NONE) & np.isfinite(part["delta"])]
        if base.empty or erased.empty:
            continue
        where = f" {plan}" if plan else ""
        head = (
            f"{task} in {model} layer {int(base['layer'].iloc[0])} (its best layer, {base['probe'].iloc[0]} "
            f"Macro-F1 {float(base['macro_f1'].iloc[0]):.2f}{where})"
        )
        moved = erased[(erased["lo"] > 0) | (erased["hi"] < 0)]
        if moved.empty:
            sentences.append(f"{head}: no cue group of {len(erased)} moves it beyond its 95 % interval.")
            continue
        named = ", ".join(
            f"{GROUP_LABELS.get(r.target, r.target)}{' changes Macro-F1' if k == 0 else ''} by {r.delta:+.2f} "
            f"[{r.lo:+.2f}, {r.hi:+.2f}]"
            for k, r in enumerate(moved.itertuples(index=False))
        )
        rest = len(erased) - len(moved)
        sentences.append(f"{head}: erasing {named}; the other {rest} group(s) stay within their 95 % intervals.")
    table = best[best["target"] != NONE].assign(group=lambda f: f["target"].map(GROUP_LABELS).fillna(f["target"]))
    table = table[["task", "model", "layer", "probe", "group", "macro_f1", "delta", "lo", "hi", "n"]]
    note = (
        "ΔMacro-F1 of the probe at each model's best layer when LEACE erases a cue group (fitted in each training "
        f"fold); lo, hi: 95 % interval over the n folds{' ' + plan if plan else ''}; macro_f1: the unerased score "
        "on those folds. Every group is listed, so none is selected for its size."
    )
    return FindingGroup(TITLES["erasure"], sentences, [Table("Cue erasure at the best layer", table, note)])


def fingerprint_group(run_dir: Path) -> FindingGroup | None:
    """Depth fingerprints as a table (None when the run has none)."""
    path = Path(run_dir) / "fingerprints.csv"
    if not path.is_file():
        return None
    table = read_table(path, FINGERPRINT_COLUMNS)
    keep = ["model", "task", "target", "probe", "metric", "d90_depth", "d90_depth_lo", "d90_depth_hi"]
    keep += ["peak_depth", "peak_depth_lo", "peak_depth_hi", "peak_share", "n_folds", "note"]
    note = (
        "Where each curve reaches 90 % of its rise above chance (d90) and where it peaks, in relative depth, with "
        "95 % intervals from a bootstrap over the folds; peak_share: the share of resamples with this peak layer; "
        "target: a cue (ridge R² within the task's clips) or empty for the task's labels. A d90_depth below 0: "
        "never above chance."
    )
    formats = {c: 2 for c in keep if "depth" in c or c == "peak_share"}
    tables = [Table("Depth and peak of every curve", table[keep], note, formats)]
    return FindingGroup(TITLES["fingerprints"], [], tables)


def analysis_groups(run_dir: Path, outputs: list[AnalysisOutput], baselines: list[str]) -> list[FindingGroup]:
    """One group per analysis with findings, in the order of ``outputs``: the short form where there is one."""
    short = {"erasure": lambda: erasure_group(run_dir, baselines), "fingerprints": lambda: fingerprint_group(run_dir)}
    groups = []
    for out in outputs:
        try:
            group = short[out.analysis]() if out.analysis in short else None
        except (SpeechprobeError, OSError, ValueError):  # an unreadable table: the analysis's own sentences
            group = None
        if group is None and out.findings:
            group = FindingGroup(TITLES.get(out.analysis, out.analysis), list(out.findings))
        if group is not None:
            groups.append(group)
    return groups


__all__ = ["TITLES", "FindingGroup", "analysis_groups", "erasure_group", "fingerprint_group"]
