"""One report across runs: ``speechprobe compare RUN_A RUN_B … --out DIR``.

Typical uses: the full against the trimmed window, float32 against bf16, or models probed in separate
runs. Numbers of two runs can be put side by side only when what defines them is the same: the clips of
a task (its fingerprint in manifest.json), the folds (seed, number of folds, cross-validation plan), the
probe settings and the primary probe. What a comparison is *about* (models, window, dtype, pooling,
device, batch size) may differ; settings that change no number (output paths, jobs, which analyses ran)
are ignored. Any other difference, including a setting this module does not know, makes the runs
**incomparable**: the report says so at the top, names the settings and tasks, and marks every affected
row; nothing is merged silently (``strict=True`` refuses instead).

Where a (model, task) appears in two comparable runs, the difference of their best-layer scores gets a
95 % interval from the per-fold paired differences (the folds are the same clips in both runs), with
the corrected resampled-t of Nadeau & Bengio (2003) (docs/statistics.md); otherwise an unpaired
interval ``sqrt(ci_a² + ci_b²)``, labelled so.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis.summary import num_layers
from ..config import NOT_NUMBERS
from ..csvsafe import read_csv
from ..errors import ConfigError, SpeechprobeError
from ..figures import curves, headline
from ..figures import ladder as ladder_figure
from ..files import write_text
from ..rundir import write_csv, write_json
from . import interactive
from .build import run_headline
from .headline import HEADLINE_COLUMNS
from .load import chance_table, load_run
from .page import bullet_box, page, section
from .paired import fold_values, paired_interval
from .tables import Table, html_table, md_table

# Settings whose difference is what a comparison is about (they change the features, knowingly).
COMPARED = ("models", "window", "dtype", "device", "pooling", "max_batch_seconds", "random_init", "baselines")
# Settings that change no score: the run directory's own list, and which analyses ran and what was probed.
NEUTRAL = (*NOT_NUMBERS, "embeddings", "fingerprints", "similarity", "mdl", "permutations", "probes", "tasks")
SHOWN = ("models", "window", "dtype", "pooling", "seed", "folds", "primary_probe", "n_per_class")
DIFF_COLUMNS = [
    "task",
    "model",
    "run_a",
    "run_b",
    "score_a",
    "score_b",
    "layer_a",
    "layer_b",
    "difference",
    "ci95",
    "interval",
    "comparable",
]


@dataclass
class Comparison:
    """The runs, what differs between them, and which pairs of runs can be compared on which task."""

    labels: list[str]
    settings: pd.DataFrame  # setting, kind, one column per run
    manifests: list[dict] = field(default_factory=list)

    def reasons(self, a: str, b: str, task: str | None = None) -> list[str]:
        """Why runs ``a`` and ``b`` (on ``task``, when given) cannot be compared; empty when they can."""
        ma, mb = (self.manifests[self.labels.index(x)] for x in (a, b))
        ca, cb = ma.get("config") or {}, mb.get("config") or {}
        out = [
            f"{key} differs ({a}: {_value(ca, key)}, {b}: {_value(cb, key)})"
            for key in sorted(set(ca) | set(cb))
            if key not in COMPARED and key not in NEUTRAL and _value(ca, key) != _value(cb, key)
        ]
        if task is not None:
            fa, fb = (((m.get("tasks") or {}).get(task) or {}).get("fingerprint") for m in (ma, mb))
            if not fa or fa != fb:
                out.append(f"task {task}: different clips (fingerprints {str(fa)[:12]} and {str(fb)[:12]})")
        return out

    def incomparable(self) -> list[str]:
        """One line per pair of runs (and task) that cannot be compared, with the reasons."""
        out = []
        for i, a in enumerate(self.labels):
            for b in self.labels[i + 1 :]:
                run_level = self.reasons(a, b)
                if run_level:
                    out.append(f"{a} vs {b}: " + "; ".join(run_level))
                shared = set(self.manifests[i].get("tasks") or {}) & set(
                    self.manifests[self.labels.index(b)].get("tasks") or {}
                )
                for task in sorted(shared):
                    extra = [r for r in self.reasons(a, b, task) if r not in run_level]
                    if extra:
                        out.append(f"{a} vs {b}: " + "; ".join(extra))
        return out


def _labels(runs: Sequence[Path], labels: Sequence[str] | None) -> list[str]:
    if labels:
        if len(labels) != len(runs):
            raise ConfigError(f"--labels gives {len(labels)} label(s) for {len(runs)} runs; give one per run")
        return list(labels)
    names = [Path(r).resolve().name or str(r) for r in runs]
    return [n if names.count(n) == 1 else f"{n} ({i + 1})" for i, n in enumerate(names)]


def _value(config: dict, key: str) -> str:
    return json.dumps(config.get(key), sort_keys=True, default=str)


def compare_settings(manifests: Sequence[dict], labels: Sequence[str]) -> Comparison:
    """The settings that differ between the runs (and the usual ones), each with its kind: ``compared``
    (what the comparison is about), ``neutral`` (changes no score), ``incomparable`` or ``same``."""
    configs = [m.get("config") or {} for m in manifests]
    keys = sorted(set().union(*configs)) if configs else []
    rows = []
    for key in keys:
        values = [_value(c, key) for c in configs]
        differs = len(set(values)) > 1
        if not differs and key not in SHOWN:
            continue
        kind = "compared" if key in COMPARED else "neutral" if key in NEUTRAL else "incomparable"
        rows.append({"setting": key, "kind": kind if differs else "same", **dict(zip(labels, values))})
    settings = pd.DataFrame(rows, columns=["setting", "kind", *labels])
    return Comparison(list(labels), settings, list(manifests))


def differences(heads: dict[str, pd.DataFrame], datas: dict, comparison: Comparison) -> pd.DataFrame:
    """Per (model, task) in two or more runs: each later run against the first that holds it."""
    rows = []
    labels = comparison.labels
    frame = pd.concat([h.assign(run=lab) for lab, h in heads.items()], ignore_index=True)
    for (task, model), part in frame[frame["kind"] == "model"].groupby(["task", "model"], sort=True):
        part = part.set_index("run").loc[[lab for lab in labels if lab in set(part["run"])]]
        if len(part) < 2:
            continue
        a_label, a = part.index[0], part.iloc[0]
        for b_label, b in part.iloc[1:].iterrows():
            ok = not comparison.reasons(a_label, b_label, task)
            fa = fold_values(datas[a_label], model, task, a.probe, int(a.layer))
            fb = fold_values(datas[b_label], model, task, b.probe, int(b.layer))
            both = fa.index.intersection(fb.index)
            if not ok:
                diff, ci, how = np.nan, np.nan, "not comparable"
            elif len(both) >= 2:
                diff = float(b.score - a.score)
                ratio = datas[a_label].ratios.get(task)
                ci, how = paired_interval((fb[both] - fa[both]).to_numpy(), ratio), "paired folds (corrected t)"
            else:
                diff, ci, how = float(b.score - a.score), float(np.hypot(a.ci95, b.ci95)), "unpaired"
            rows.append(
                {
                    "task": task,
                    "model": model,
                    "run_a": a_label,
                    "run_b": b_label,
                    "score_a": float(a.score),
                    "score_b": float(b.score),
                    "layer_a": int(a.layer),
                    "layer_b": int(b.layer),
                    "difference": diff,
                    "ci95": ci,
                    "interval": how,
                    "comparable": ok,
                }
            )
    return pd.DataFrame(rows, columns=DIFF_COLUMNS)


def _curves(datas: dict, task: str) -> dict | None:
    """The task's layer curves of every run, each model named ``<run> · <model>``."""
    parts, depth, chance = [], {}, None
    for label, data in datas.items():
        rows = data.summary[(data.summary["task"] == task) & (data.summary["metric"] == "macro_f1")]
        rows = rows[rows["probe"] == data.primary]
        if rows.empty:
            continue
        named = rows.assign(model=label + " · " + rows["model"].astype(str))
        parts.append(named)
        for model, n in num_layers(data.summary, data.depths).items():
            depth[f"{label} · {model}"] = int(n)
        chance = chance if chance is not None else chance_table(data).set_index("task")["chance_macro_f1"].get(task)
    if not parts:
        return None
    primary = next(iter(datas.values())).primary
    spec = curves.curve_spec(pd.concat(parts), depth, primary, chance)
    return curves.plotly(spec) if spec is not None else None


def compare_runs(runs: Sequence[Path], out: Path, labels: Sequence[str] | None = None, strict: bool = False) -> Path:
    """Write ``OUT/compare.html`` (one self-contained file), ``compare.md``, ``compare.csv`` (every run's
    headline rows), ``differences.csv`` and ``compare.json`` (settings and flags); return the HTML path.

    Raises ConfigError for fewer than two runs, a run that is not a directory, or (``strict``) runs whose
    numbers cannot be compared."""
    if len(runs) < 2:
        raise ConfigError("compare needs at least two run directories")
    for run in runs:
        if not Path(run).is_dir():
            raise ConfigError(f"{run}: no such run directory")
    names = _labels(runs, labels)
    datas = {lab: load_run(Path(r)) for lab, r in zip(names, runs)}
    comparison = compare_settings([d.manifest for d in datas.values()], names)
    flags = comparison.incomparable()
    if strict and flags:
        raise SpeechprobeError("runs are not comparable: " + " | ".join(flags))
    heads = {lab: run_headline(d) for lab, d in datas.items()}
    diffs = differences(heads, datas, comparison)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    combined = pd.concat([h.assign(run=lab) for lab, h in heads.items()], ignore_index=True)
    combined = combined[["run", *HEADLINE_COLUMNS]]
    write_csv(out / "compare.csv", combined)
    write_csv(out / "differences.csv", diffs)
    facts = {
        "runs": {lab: str(Path(r).resolve()) for lab, r in zip(names, runs)},
        "incomparable": flags,
        "problems": {lab: d.problems for lab, d in datas.items() if d.problems},
    }
    write_json(out / "compare.json", facts)
    ladder = ladders(runs, names)
    if len(ladder):
        write_csv(out / "compare_ladder.csv", ladder)
    write_text(out / "compare.md", _markdown(comparison, flags, combined, diffs, ladder))
    return write_text(out / "compare.html", _html(comparison, flags, combined, diffs, datas, ladder))


def ladders(runs: Sequence[Path], labels: Sequence[str]) -> pd.DataFrame:
    """Every run's fine-tuning ladder (``ladder.csv``, docs/finetune.md) with a ``run`` column; empty without."""
    paths = [(Path(r) / "ladder.csv", lab) for r, lab in zip(runs, labels)]
    frames = [read_csv(path).assign(run=lab) for path, lab in paths if path.is_file()]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame()
    cols = ["run", "model", "task", "rung", "source", "mean", "low", "high", "gain", "gain_low", "gain_high"]
    cols += ["order", "chance"]  # the rungs' order and the task's chance (the figure's)
    return pd.concat(frames, ignore_index=True)[cols]


def _named_headline(combined: pd.DataFrame) -> pd.DataFrame:
    return combined.assign(model=combined["run"] + " · " + combined["model"].astype(str)).drop(columns="run")


SUMMARY_LINES = 10  # the comparison's summary, at most (its table holds every pair)


def _summary_lines(comparison: Comparison, diffs: pd.DataFrame) -> list[str]:
    """What the runs are and how they differ, then the (model, task) differences that hold beyond their 95 %
    interval, largest first, and those not compared; the others counted in one sentence (all in the table)."""
    out = [f"{len(comparison.labels)} runs: {', '.join(comparison.labels)}."]
    compared = comparison.settings[comparison.settings["kind"] == "compared"]
    if not compared.empty:
        out.append("They differ in " + ", ".join(compared["setting"]) + " (what this comparison is about).")
    held, level = [], 0
    for r in diffs.itertuples(index=False):
        scores = f"{r.run_b} {r.score_b:.3f}, {r.run_a} {r.score_a:.3f}"
        if not r.comparable:
            why = "; ".join(comparison.reasons(r.run_a, r.run_b, r.task))
            held.append((np.inf, f"{r.model} on {r.task}: {scores}, not compared ({why})."))
        elif np.isfinite(r.ci95) and abs(r.difference) > r.ci95:
            verdict = f"{r.run_b} is {'higher' if r.difference > 0 else 'lower'}"
            held.append(
                (
                    abs(r.difference),
                    f"{r.model} on {r.task}: {verdict} beyond the 95 % interval ({scores}; difference "
                    f"{r.difference:+.3f} ± {r.ci95:.3f}, {r.interval}).",
                )
            )
        elif np.isfinite(r.ci95):
            level += 1
    held.sort(key=lambda h: -h[0])
    room = SUMMARY_LINES - len(out) - 1
    out += [line for _, line in held[:room]]
    rest = len(held) - min(room, len(held))
    if level or rest:
        more = f"; {rest} more difference(s)" if rest else ""
        out.append(
            f"{level} (model, task) pair(s) show no difference beyond the 95 % interval{more}: see "
            "'Differences between runs'."
        )
    return out


def _html(
    comparison: Comparison,
    flags: list[str],
    combined: pd.DataFrame,
    diffs: pd.DataFrame,
    datas: dict,
    ladder: pd.DataFrame | None = None,
) -> str:
    body = [f"<h1>speechprobe comparison: {html.escape(', '.join(comparison.labels))}</h1>"]
    body.append(bullet_box("Not comparable", flags, "missing"))
    problems = [f"{lab}: {p}" for lab, d in datas.items() for p in d.problems]
    body.append(bullet_box("Missing or partial data", problems, "warn"))
    body.append(
        "<ul class='findings'>"
        + "".join(f"<li>{html.escape(s)}</li>" for s in _summary_lines(comparison, diffs))
        + "</ul>"
    )
    spec = headline.headline_spec(_named_headline(combined))
    spec = headline.plotly(spec) if spec is not None else None
    n = 1
    if spec:
        body.append(
            interactive.figure_html(
                "compare-headline",
                spec,
                "Best-layer Macro-F1 of each run's primary probe on the chance-normalised scale (colour: "
                "(F1 − chance) / (1 − chance)); cells: Macro-F1 and, for models, the gain over that run's best "
                "baseline ± its 95 % interval. Hover for layer, interval and folds.",
                n,
            )
        )
        n += 1
    figures = []
    for task in sorted(set(combined["task"])):
        spec = _curves(datas, task)
        if spec:
            held = [lab for lab, d in datas.items() if task in set(d.summary["task"])]
            bad = any(comparison.reasons(a, b, task) for i, a in enumerate(held) for b in held[i + 1 :])
            flag = " Some of these runs are not comparable on this task (see the top)." if bad else ""
            figures.append(
                interactive.figure_html(
                    f"compare-{task}", spec, f"Macro-F1 per layer on {task}, every run (primary probe).{flag}", n
                )
            )
            n += 1
    body.append(section("Layer curves per task", figures, "curves", count=f"{len(figures)} figures"))
    if ladder is not None and len(ladder):
        body.append(section("Fine-tuning ladders", ladder_figures(ladder, n), "ladders", is_open=True))
    tables = [
        Table("Differences between runs", diffs, "difference: run_b − run_a at each run's own best layer."),
        Table("Settings", comparison.settings, "kind: compared (the subject), incomparable, neutral or same."),
        Table("Headline rows of every run", combined),
    ]
    if ladder is not None and len(ladder):
        tables.append(
            Table("Fine-tuning ladders", ladder, "gain: over that run's best frozen layer, paired 95 % interval.")
        )
    body.append(section("Tables", [html_table(t, k) for k, t in enumerate(tables)], "tables", is_open=True))
    return page("speechprobe comparison", body, interactive=True)


def ladder_figures(ladder: pd.DataFrame, first: int) -> list[str]:
    """One figure per task: every run's ladder side by side (figures/ladder.py), numbered from ``first``."""
    specs = [(task, ladder_figure.plotly_runs(ladder, task)) for task in sorted(set(ladder["task"]))]
    caption = (
        "Macro-F1 of each rung of each run's fine-tuning ladder with its 95 % interval over that run's folds "
        "(zero-shot: one evaluation, no interval). Dashed: chance. Each run's rungs are on its own folds: "
        "compare runs' rungs when the runs are comparable (see the top)."
    )
    return [
        interactive.figure_html(f"compare-ladder-{task}", spec, f"The ladders on {task}. {caption}", first + i)
        for i, (task, spec) in enumerate(specs)
    ]


def _markdown(
    comparison: Comparison, flags: list[str], combined: pd.DataFrame, diffs: pd.DataFrame, ladder: pd.DataFrame
) -> str:
    lines = [f"# speechprobe comparison: {', '.join(comparison.labels)}", ""]
    if flags:
        lines += ["## Not comparable", "", *[f"- {r}" for r in flags], ""]
    lines += ["## Summary", "", *[f"- {s}" for s in _summary_lines(comparison, diffs)], ""]
    for title, frame in (("Differences", diffs), ("Settings", comparison.settings), ("Headline rows", combined)):
        lines += [f"## {title}", "", md_table(frame), ""]
    if len(ladder):
        lines += ["## Fine-tuning ladders", "", md_table(ladder), ""]
    return "\n".join(lines)


__all__ = ["Comparison", "compare_runs", "compare_settings", "differences", "paired_interval"]
