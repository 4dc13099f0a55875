"""The ablation's report: seed-level tables, the per-depth figure per task, the pretext-loss curves, the cue peaks
and the findings the intervals support (:mod:`.seeds`), rendered with the report's building blocks.

Writes into ``OUT``: ``ablate_scores.csv`` (objective, seed, task, layer, score), ``ablate_objectives.csv``,
``ablate_paired.csv``, ``ablate_cue_peaks.csv``, ``pretext_losses.csv``, ``figures/ablate_<task>.png``,
``figures/pretext_loss.png``, ``report.html`` and ``report.md``.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import pandas as pd

from ..figures import lab as figures
from ..files import atomic_write, write_text
from ..report.render import Figure, Report, render_html, render_markdown
from ..report.tables import Table
from . import checkpoint as ck
from .seeds import BEST, cue_peaks, findings, objective_table, paired_table, seed_scores

CONTROL = "random"
PEAK_CUES = ("f0_mean", "energy_mean", "duration")
LABELS = {
    "contrastive": "contrastive (wav2vec 2.0)",
    "masked": "masked prediction (HuBERT)",
    "random": "the random control",
}


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    atomic_write(path, frame.to_csv(index=False).encode())


def _pairs(objectives: list[str]) -> list[tuple[str, str]]:
    trained = [o for o in objectives if o != CONTROL]
    return [(o, CONTROL) for o in trained if CONTROL in objectives] + list(combinations(trained, 2))


def _losses(out: Path, models: dict[str, tuple[str, int]]) -> pd.DataFrame:
    frames = []
    for name, (objective, seed) in models.items():
        path = out / "models" / name / ck.LOSS_CSV
        if path.is_file() and path.stat().st_size:
            frame = pd.read_csv(path)
            frames.append(frame[["step", "loss"]].assign(objective=objective, seed=seed))
    return (
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["step", "loss", "objective", "seed"])
    )


def loss_sentences(losses: pd.DataFrame) -> list[str]:
    """Per objective: the pretext loss over the first and the last tenth of the steps, mean over seeds."""
    out = []
    for obj, g in losses.groupby("objective"):
        steps = int(g["step"].max())
        tenth = max(1, steps // 10)
        first = g[g["step"] <= tenth].groupby("seed")["loss"].mean()
        last = g[g["step"] > steps - tenth].groupby("seed")["loss"].mean()
        fell = int((last < first).sum())
        out.append(
            f"{LABELS.get(obj, obj)}: pretext loss {first.mean():.3f} over the first tenth of {steps} steps, "
            f"{last.mean():.3f} over the last (fell in {fell} of {len(first)} seeds)."
        )
    return out


def _peak(r) -> str:
    """One objective's cue peak; no depth where no layer predicts the cue (peak R² at most 0)."""
    if not r.r2 > 0:
        return f"{r.objective}: no layer predicts it (peak R² {r.r2:.2f})"
    interval = f" [{r.low:.1f}, {r.high:.1f}]" if pd.notna(r.low) else ""
    return f"{r.objective} at layer {r.peak_layer:.1f}{interval} (R² {r.r2:.2f})"


def cue_sentences(peaks: pd.DataFrame) -> list[str]:
    out = []
    for cue, g in peaks.groupby("cue"):
        parts = [_peak(r) for r in g.itertuples()]
        out.append(f"Cue curve of {cue} peaks (mean over seeds, t interval): " + "; ".join(parts) + ".")
    return out


def write_report(s, models: dict[str, tuple[str, int]], progress: bool = False) -> Path:
    """Read the ablation's run and checkpoints, write its tables, figures and report; returns report.html."""
    out, run_dir, probe = s.out, s.out / "run", s.probes[0]
    scores = seed_scores(pd.read_csv(run_dir / "summary.csv"), models, probe)
    objectives = objective_table(scores)
    paired = paired_table(scores, _pairs(s.objectives))
    cues = pd.read_csv(run_dir / "cues.csv") if (run_dir / "cues.csv").is_file() else None
    peaks = cue_peaks(cues, models, PEAK_CUES) if cues is not None else pd.DataFrame()
    losses = _losses(out, models)
    for frame, name in ((scores, "scores"), (objectives, "objectives"), (paired, "paired"), (peaks, "cue_peaks")):
        _write_csv(frame, out / f"ablate_{name}.csv")
    _write_csv(losses, out / "pretext_losses.csv")
    figs = []
    for task in sorted(scores["task"].unique()):
        spec = figures.depth_spec(objectives, paired, task, CONTROL)
        png = figures.draw_depth(spec, out / "figures" / f"ablate_{task}.png")
        caption = (
            f"{task}: left, Macro-F1 of the {probe} probe per layer for each objective, mean over {s.seeds} "
            f"pre-training seeds with its 95 % t interval over seeds shaded; right, the seed-paired difference to "
            f"{CONTROL} (the same starting weights, untrained) with its interval."
        )
        figs.append(Figure(caption, "Layer curves", png))
    if not losses.empty:
        png = figures.draw_losses(losses, out / "figures" / "pretext_loss.png")
        figs.append(
            Figure(
                "Pretext loss per step, one line per pre-training seed (the objectives' units differ).",
                "Layer curves",
                png,
            )
        )
    label = {o: LABELS.get(o, o) for o in s.objectives}
    sentences = findings(paired, label)
    best = objectives[objectives["layer"] == BEST].drop(columns="layer")
    tables = [
        Table(
            "Best layer per objective (mean over seeds)",
            best,
            "Each seed's best layer; 95 % t interval over seeds.",
            {"mean": 3, "low": 3, "high": 3},
        ),
        Table(
            "Seed-paired differences",
            paired,
            "a - b per seed; 95 % and Bonferroni (over layers) t intervals.",
            {c: 3 for c in ("diff", "low", "high", "low_bonferroni", "high_bonferroni")},
        ),
        Table(
            "Per-layer scores",
            objectives[objectives["layer"] != BEST],
            "Mean over seeds, 95 % t interval.",
            {"mean": 3, "low": 3, "high": 3},
        ),
    ]
    if not peaks.empty:
        tables.append(
            Table(
                "Cue peaks",
                peaks,
                "Layer of each seed's peak cue R², mean and t interval over seeds.",
                {"peak_layer": 1, "low": 1, "high": 1, "r2": 3},
            )
        )
    t = s.train
    report = Report(
        title="Objective lab: " + ", ".join(s.objectives),
        meta=(
            f"arch {t.arch}, {t.steps} steps, batch {t.batch_size} x {t.crop_seconds} s crops, lr {t.lr}, "
            f"data {','.join(t.data)}; {s.seeds} seeds per objective; tasks {', '.join(s.tasks)}; probe {probe}"
        ),
        takeaways=[
            f"Every interval here is over the {s.seeds} pre-training seeds, not over folds: each (objective, seed) "
            f"checkpoint is one unit, scored by the mean over the run's folds, and the t interval has "
            f"{s.seeds - 1} degree(s) of freedom; a claim needs its interval to exclude 0.",
            *sentences,
        ],
        findings=[*loss_sentences(losses), *cue_sentences(peaks)] if not peaks.empty else loss_sentences(losses),
        tables=tables,
        figures=figs,
        notes=[f"The probes' own run directory and report: {run_dir}", "Method: docs/lab.md."],
    )
    write_text(out / "report.md", render_markdown(report, out))
    return write_text(out / "report.html", render_html(report))
