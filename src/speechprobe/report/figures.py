"""The report's figures: the summary figures (headline heatmap, depth fingerprints) and the detail figures
(layer curves per task, heatmaps, zero-shot scatter, the analyses' and embeddings' PNGs), each with its caption.

A figure the report can draw interactively carries its Plotly specification (hover: exact values, CI, n;
legend: toggle models and probes) and the path of its static PNG for papers and report.md (both from one
module of :mod:`speechprobe.figures`; the layer curves' PNG is the probe stage's, drawn here only when
missing); the page carries it once, as the specification. The others are PNGs. Only
figures of this run are shown: those drawn here, those its analyses handed over
(``analyses/*.json``) and those other stages listed (manifest.json); ``figures/`` is never globbed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from ..analysis.summary import best_layers, layer_rows, num_layers
from ..csvsafe import read_csv
from ..figures import curves, fingerprints, headline, ladder
from ..figures.base import PLOTLY_SUFFIX
from ..figures.heatmaps import plot_best_heatmap, plot_layer_heatmaps
from ..figures.zeroshot_scatter import plot_zeroshot_scatter
from ..rundir import slug
from .load import RunData
from .render import Figure

OTHER_CAPTIONS = {
    "zeroshot_correlation.png": (
        "Zero-shot against best-layer probe Macro-F1 per (model, task), both chance-normalised, with the pooled "
        "Spearman and Pearson correlations and their 95% bootstrap intervals over tasks (zeroshot_correlation.csv)."
    ),
}

HEADLINE_CAPTION = (
    "Best-layer Macro-F1 of the primary probe ({primary}) per model (rows) and task (columns), on a "
    "chance-normalised colour scale ((score − chance) / (1 − chance): 0 = chance, 1 = perfect; clipped to "
    "[{lo}, {hi}]). Each cell: the score ± its 95% interval (corrected resampled t) and, for models, the gain over "
    "the best hand-crafted baseline with its 95% interval; hover for the layer, depth, n and the out-of-fold score."
)
FINGERPRINT_CAPTION = (
    "Depth fingerprints on relative depth (0 = input embedding, 1 = last layer): per task and model, the peak "
    "layer of the primary probe ({primary}; dot) and the first layer reaching 90% of the rise above chance (bar), "
    "each with its 95% bootstrap interval over folds where a class has at least 5 units and there are 5 folds "
    "(else no interval; fingerprints.csv's note says why)."
)


def summary_figures(data: RunData, head: pd.DataFrame) -> tuple[Figure | None, Figure | None]:
    """The headline heatmap and the depth fingerprints (interactive, with their static PNGs)."""
    fig_dir = data.run_dir / "figures"
    lead = None
    spec = headline.headline_spec(head)
    if spec is not None:
        png = headline.draw(spec, fig_dir / "headline.png")
        lo, hi = headline.NORMALISED_RANGE
        caption = HEADLINE_CAPTION.format(primary=data.primary, lo=lo, hi=hi)
        lead = Figure(caption, "Summary", path=png, spec=headline.plotly(spec), key="headline")
    finger = None
    table = _fingerprints(data.run_dir)
    spec = fingerprints.fingerprint_spec(table, data.primary) if table is not None else None
    plot = fingerprints.plotly(spec, order=sorted(data.depths)) if spec is not None else None
    if plot is not None:
        png = fig_dir / "fingerprints.png"  # drawn by the analysis
        caption = FINGERPRINT_CAPTION.format(primary=data.primary)
        finger = Figure(caption, "Summary", path=png if png.is_file() else None, spec=plot, key="fingerprints")
    return lead, finger


def _fingerprints(run_dir: Path) -> pd.DataFrame | None:
    return _table(run_dir / "fingerprints.csv")


def _table(path: Path) -> pd.DataFrame | None:
    """An analysis table of the run, or None when it is missing or unreadable."""
    if not path.is_file():
        return None
    try:
        return read_csv(path, dtype={"model": str, "task": str, "probe": str, "metric": str})
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, OSError):
        return None


def curve_figures(data: RunData, chance_line: dict[str, float]) -> list[Figure]:
    """Per task: the layer curves, interactive (all models, bands of the primary probe), with the static
    panel-per-model ``figures/layers_<task>.png`` the probe stage drew (drawn here when it is missing)."""
    out = []
    specs = curves.task_specs(data.summary, data.depths, data.primary, chance_line)
    for task, png in curves.draw_tasks(data.run_dir, specs, redraw=False).items():
        spec = specs[task]
        plot = curves.plotly(spec)
        if plot is None:  # no model with layers: the baselines' figure
            out.append(Figure(f"Macro-F1 of the baselines on {task}; dotted: chance.", "Layer curves", path=png))
            continue
        caption = curves_caption(task, data.primary, spec.relative, spec.below, data.fold_plan, png.name)
        out.append(Figure(caption, "Layer curves", path=png, spec=plot, key=f"curves-{slug(task)}"))
    return out


def curves_caption(task: str, primary: str, relative: bool, below: list[str], folds: str, png: str) -> str:
    """The caption of a task's interactive layer curves (the static panels are described in their file);
    ``folds`` is the fold plan in words (:attr:`.load.RunData.fold_plan`)."""
    over = f"over {folds}" if folds else "over folds"
    axis = "relative depth (0 = input embedding, 1 = last layer)" if relative else "the layer index"
    text = (
        f"Macro-F1 per layer on {task}, against {axis}: one line per model for the primary probe ({primary}), "
        f"mean {over} with its 95% interval (corrected resampled t, clipped to [0, 1]); secondary probes dashed and "
        "hidden until clicked in the legend; dash-dotted: the best hand-crafted baseline (the others in the legend); "
        f"dotted: chance. figures/{png} has one panel per model, for papers."
    )
    if below:
        text += f" Circled in red: layers whose mean is below chance ({', '.join(below)})."
    return text


def detail_figures(data: RunData, chance: pd.DataFrame) -> tuple[list[Figure], list[str]]:
    """The detail figures in page order and the problems met drawing them."""
    fig_dir = data.run_dir / "figures"
    entries: list[Figure] = []
    problems: list[str] = []
    summary = data.summary
    chance_line = {r.task: float(r.chance_macro_f1) for r in chance.itertuples() if pd.notna(r.chance_macro_f1)}
    try:
        entries += curve_figures(data, chance_line)
        best, depth = best_layers(summary, "macro_f1", data.depths), num_layers(summary, data.depths)
        png = plot_best_heatmap(best, depth, fig_dir / "heatmap_best.png", "macro_f1", data.primary)
        if png:
            caption = (
                f"Best Macro-F1 per model (rows) and task (columns), at each pair's best layer of the "
                f"primary probe ({data.primary}); grey: no result."
            )
            entries.append(Figure(caption, "Heatmaps", path=png))
        for png in plot_layer_heatmaps(layer_rows(summary, "macro_f1"), depth, fig_dir, "macro_f1"):
            model = _name_from(png.stem.removeprefix("heatmap_layers_"), summary["model"])
            caption = f"Macro-F1 of {model} per layer (rows) and task (columns), one panel per probe; grey: no result."
            entries.append(Figure(caption, "Heatmaps", path=png))
        png = plot_zeroshot_scatter(summary, fig_dir / "zeroshot_vs_probe.png", probe=data.primary)
        if png:
            caption = (
                "Zero-shot Macro-F1 (one point per model, task and prompt) against the best-layer Macro-F1 of "
                f"the primary probe ({data.primary}) of the same model (hollow: of any model); points below the "
                "dashed diagonal are tasks where probing the layers recovers more than prompting."
            )
            entries.append(Figure(caption, "Zero-shot vs probes", path=png))
        entries += ladder_figures(data)
    except Exception as e:  # a figure that cannot be drawn is reported, the rest of the report goes on
        problems.append(f"some figures could not be drawn ({type(e).__name__}: {e})")
    entries += _listed_figures(data, {e.path.name for e in entries if e.path is not None})
    return entries, problems


def ladder_figures(data: RunData) -> list[Figure]:
    """The fine-tuning ladders (analysis/ladder.py drew the PNGs), interactive, one per model × task."""
    table = _table(data.run_dir / "ladder.csv")
    out = []
    for (model, task), _ in [] if table is None else table.groupby(["model", "task"], sort=True):
        spec = ladder.ladder_spec(table, model, task)
        png = data.run_dir / "figures" / f"ladder_{slug(model)}_{slug(task)}.png"
        key = f"ladder-{slug(model)}-{slug(task)}"
        out.append(
            Figure(
                ladder.caption(spec),
                "Fine-tuning ladder",
                path=png if png.is_file() else None,
                spec=ladder.plotly(spec),
                key=key,
            )
        )
    return out


def _listed_figures(data: RunData, drawn: set[str]) -> list[Figure]:
    """The analyses' figures (their own captions and sections; those of a ``summary`` analysis, the depth
    fingerprints, are on the summary instead) and the other PNGs manifest.json lists."""
    out = []
    for o in data.outputs:
        if o.summary:
            drawn |= {Path(f.path).name for f in o.figures}
            continue
        for f in o.figures:
            if (data.run_dir / f.path).is_file() and Path(f.path).name not in drawn:
                drawn.add(Path(f.path).name)
                out.append(Figure(f.caption, f.section, path=data.run_dir / f.path, **_twin(data.run_dir / f.path)))
    for rel in data.manifest.get("figures") or []:
        png = data.run_dir / rel
        if png.name in drawn or png.suffix != ".png" or not png.is_file():
            continue
        drawn.add(png.name)
        text = OTHER_CAPTIONS.get(png.name, f"Figure {png.name} of this run.")
        out.append(Figure(text, "Other figures", path=png))
    return out


def _twin(png: Path) -> dict:
    """The interactive twin an analysis wrote beside its PNG (``figures.base.save_plotly``), if any."""
    path = png.with_suffix(PLOTLY_SUFFIX)
    try:
        return {"spec": json.loads(path.read_text()), "key": f"a-{slug(png.stem)}"} if path.is_file() else {}
    except (OSError, ValueError):  # unreadable: the PNG stands alone
        return {}


def _name_from(name_slug: str, names: Iterable[str]) -> str:
    for name in sorted(set(names)):
        if slug(str(name)) == name_slug:
            return str(name)
    return name_slug


__all__ = ["OTHER_CAPTIONS", "curve_figures", "detail_figures", "summary_figures"]
