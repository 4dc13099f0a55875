"""Pooling that can miss a cue: each layer probed under edge and max-over-time pooling against its mean.

Mean pooling may average away a cue carried by a few frames (gender sits in the first and last frames of
wav2vec2's and HuBERT's final layers: Krishnan et al., Interspeech 2024). With ``--pooling-variants`` the
extraction stores, from the same forward, each layer's mean over real frames, the mean of its first ``k``
and of its last ``k`` real frames and its max over real frames (:mod:`speechprobe.pooling_stage`;
``k`` = ``--edge-ms`` at the model's frame rate). This analysis probes, per (model, task), every layer
under five poolings, ``mean``, ``first``, ``last``, ``edges`` (first and last side by side) and ``max``,
with the run's primary probe (its settings and ``--tune``) on the run's own cross-validation plan (with
``--cue-repeats N`` its first ``N`` partitions, as the cue analyses; the mean's scores are results.csv's on those
folds when the run pooled with the mean: the same folds and probe), and compares
each with the mean fold by fold:

- score: the fold mean of Macro-F1 with its 95 % interval (corrected resampled t, as summary.csv);
- gap: ``variant - mean`` per fold, the same interval over the paired differences, and the interval
  Bonferroni-adjusted over the ``4 x layers`` gaps of the (model, task, probe) (``delta_lo_adj``), which the
  findings use: they name the largest gap, a choice made over all of them.

Writes ``pooling_variants.csv`` (``model, task, probe, variant, layer, fold, value``: Macro-F1 per fold),
``pooling_variants_summary.csv`` and ``figures/pooling_variants_<model>_<task>.png`` (with its Plotly twin
``.plotly.json``, drawn interactive in the report). Formulas:
docs/analyses.md. Models without stored variants (hand-crafted recipes, or runs extracted without the
option) are left out with a note.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import SpeechprobeError
from ..figures.base import save_plotly
from ..figures.pooling_variants import plot_pooling_variants, plotly, variant_spec
from ..probes import PROBE_SCORERS, probe_layers
from ..rundir import RESULTS, read_results
from .contract import Analysis, AnalysisResult, AnalysisSettings, Figure, Unit
from .inputs import read_manifest, read_table, store_loader
from .intervals import fold_interval, fold_ratio
from .units import unit_note

FOLDS_CSV = "pooling_variants.csv"
SUMMARY_CSV = "pooling_variants_summary.csv"
VARIANTS = ("mean", "first", "last", "edges", "max")
COLUMNS = ["model", "task", "probe", "variant", "layer", "fold", "value"]
SUMMARY_COLUMNS = ["model", "task", "probe", "variant", "layer", "edge_frames"]
SUMMARY_COLUMNS += [f"{what}{end}" for what in ("score", "delta") for end in ("", "_lo", "_hi")]
SUMMARY_COLUMNS += ["delta_lo_adj", "delta_hi_adj"]
WORDS = {
    "first": "its first {k} frames",
    "last": "its last {k} frames",
    "edges": "its first and last {k} frames",
    "max": "its max over time",
}


def variant_features(run_dir, model: str, hashes: list[str]) -> tuple[dict[str, np.ndarray], int]:
    """The five poolings' ``(N, L, D)`` features of ``model`` from the store, and the edge length ``k`` (frames)."""
    entry = (read_manifest(run_dir).get("models") or {}).get(model) or {}
    if not entry.get("pooling_spaces"):
        raise SpeechprobeError(
            "no pooling variants stored: it pools no frames of its own (a recipe), or the run was extracted "
            "without --pooling-variants"
        )
    names = {name.partition(":")[0]: name for name in entry["pooling_spaces"]}
    feats = {kind: store_loader(run_dir, pooling=names[kind])(model, hashes) for kind in VARIANTS if kind != "edges"}
    feats["edges"] = np.concatenate([feats["first"], feats["last"]], axis=-1)
    return feats, int(entry.get("edge_frames") or 0)


def headline_mean(unit: Unit, probes: list[str], n_layers: int, pooling: str) -> pd.DataFrame | None:
    """The mean's Macro-F1 rows of results.csv (``probe, layer, fold, value``) when the run pooled with the
    mean and holds every (probe, layer, fold): the same folds and probes, so probing it again would give them."""
    path = unit.run_dir / RESULTS
    if pooling != "mean" or not path.is_file():
        return None
    rows = read_results(path)
    rows = rows[(rows["model"] == unit.model) & (rows["task"] == unit.task) & (rows["metric"] == "macro_f1")]
    rows = rows[rows["probe"].isin(probes) & rows["layer"].notna()]
    rows = rows[rows["fold"] < len(unit.cue_folds)]  # the folds the variants are probed on (variant_rows)
    complete = len(rows) == len(probes) * n_layers * len(unit.cue_folds)
    return rows.assign(layer=rows["layer"].astype(int))[["probe", "layer", "fold", "value"]] if complete else None


def variant_rows(
    feats: dict[str, np.ndarray], unit: Unit, probes: list[str], tune: bool, mean: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Macro-F1 per (probe, variant, layer, fold) on the run's folds with the run's probes (``settings.n_jobs``
    jobs at once: the same rows), with ``cue_repeats`` on its first that many repeats (``unit.cue_folds``: fold ids
    ``0 .. cue_repeats x folds - 1``, the same partitions, so paired with the mean's folds of results.csv);
    ``mean``: the mean's rows already scored (:func:`headline_mean`), else it is probed like the variants."""
    s = unit.settings
    repeats = s.repeats if s.cue_repeats is None else s.cue_repeats
    frames = [] if mean is None else [mean.assign(variant="mean", metric="macro_f1")]
    for variant in VARIANTS[1:] if mean is not None else VARIANTS:
        rows = probe_layers(
            feats[variant],
            unit.labels,
            unit.groups,
            probes,
            s.n_folds,
            s.seed,
            device=s.device,
            repeats=repeats,
            cv=s.cv,
            n_jobs=s.n_jobs,
            settings=unit.probe_settings,
            tune=tune,
            scorers={"macro_f1": PROBE_SCORERS["macro_f1"]},
            cluster_scorers={},
            oof_scorers={},
        )
        frames.append(pd.DataFrame(rows).assign(variant=variant))
    out = pd.concat(frames, ignore_index=True).assign(model=unit.model, task=unit.task)
    return out[out["metric"] == "macro_f1"].reindex(columns=COLUMNS)


def summary_table(rows: pd.DataFrame, ratio: float, k: int, too_few: str = "") -> pd.DataFrame:
    """Per (probe, variant, layer): the score and its gap to the mean with 95 % intervals over folds, and the
    gap's interval Bonferroni-adjusted over the probe's (variant != mean) x layer gaps; no gap intervals when
    ``too_few`` says the task has too few units."""
    out = []
    for (model, task, probe), part in rows.groupby(["model", "task", "probe"], sort=False):
        table = part.pivot_table(index="fold", columns=["variant", "layer"], values="value")
        n_gaps = (len(VARIANTS) - 1) * part["layer"].nunique()
        adjusted = 1 - 0.05 / max(n_gaps, 1)
        for variant, layer in table.columns:
            values = table[(variant, layer)].to_numpy(float)
            gap = values - table[("mean", layer)].to_numpy(float)
            score = np.clip(fold_interval(values, ratio), 0, 1)
            delta = np.clip(fold_interval(gap, ratio), -1, 1)
            adj = np.clip(fold_interval(gap, ratio, adjusted)[1:], -1, 1)
            if too_few or variant == "mean":
                delta[1:], adj = np.nan, np.array([np.nan, np.nan])
            out.append((model, task, probe, variant, int(layer), k, *score, *delta, *adj))
    return pd.DataFrame(out, columns=SUMMARY_COLUMNS)


def compute(unit: Unit) -> AnalysisResult:
    """Every pooling variant of one (model, task) probed per layer, its table and figure."""
    config = read_manifest(unit.run_dir).get("config") or {}
    hashes = list(unit.clips["content_hash"])
    try:
        feats, k = variant_features(unit.run_dir, unit.model, hashes)
    except SpeechprobeError as e:  # a recipe, a run extracted without the variants, or missing items: a note
        return AnalysisResult(notes=[f"pooling_variants: {unit.model} × {unit.task} left out ({e})"])
    probes = [unit.settings.primary_probe]  # what the findings and the figure read: the run's other probes cost 2-4x
    mean = headline_mean(unit, probes, feats["mean"].shape[1], config.get("pooling") or "mean")
    rows = variant_rows(feats, unit, probes, bool(config.get("tune")), mean)
    too_few = unit_note(unit.run_dir, unit.task, "a paired gap")
    table = summary_table(rows, fold_ratio(unit.cue_folds), k, too_few)
    out = AnalysisResult(tables={FOLDS_CSV: rows, SUMMARY_CSV: table})
    if too_few:
        out.notes.append(f"pooling_variants: {unit.model} × {unit.task}: no gap intervals ({too_few})")
    drawn = plot_pooling_variants(table, unit.settings.primary_probe, unit.figure_path("pooling_variants"))
    if drawn:
        out.figures.append(Figure(*drawn))
        save_plotly(plotly(variant_spec(table, unit.settings.primary_probe)), drawn[0])  # the report's interactive form
    return out


def _span(lo: float, hi: float, sign: str = "") -> str:
    return f" [{lo:{sign}.2f}, {hi:{sign}.2f}]" if np.isfinite(lo) and np.isfinite(hi) else ""


def pooling_findings(run_dir) -> list[str]:
    """Per (model, task), at the primary probe: the largest gap of a variant over the mean and whether its
    Bonferroni-adjusted interval excludes 0."""
    path = run_dir / SUMMARY_CSV
    if not path.is_file():
        return []
    table = read_table(path, SUMMARY_COLUMNS)
    config = read_manifest(run_dir).get("config") or {}
    primary = config.get("primary_probe") or "knn"
    table = table[table["probe"] == (primary if (table["probe"] == primary).any() else table["probe"].iloc[0])]
    out = []
    for (model, task), part in table.groupby(["model", "task"], sort=True):
        gaps = part[(part["variant"] != "mean") & part["delta"].notna()]
        if gaps.empty:
            continue
        top = gaps.loc[gaps["delta"].idxmax()]
        mean = part[(part["variant"] == "mean") & (part["layer"] == top["layer"])].iloc[0]
        k, n = int(top["edge_frames"]), len(gaps)
        words = WORDS[top["variant"]].format(k=k)
        chosen = (
            f"the largest of {n} layer × variant gaps, its interval Bonferroni-adjusted for that choice; "
            f"probe {top['probe']}, k = {k} frames"
        )
        gap = f"{top['delta']:+.2f}{_span(top['delta_lo_adj'], top['delta_hi_adj'], '+')}"
        if not np.isfinite(top["delta_lo_adj"]):
            out.append(
                f"{model} × {task}: largest gap of a pooling variant over the mean at layer {top['layer']}, "
                f"{top['variant']}, {gap}: no interval (too few units or folds), so not claimed."
            )
        elif top["delta_lo_adj"] > 0:
            out.append(
                f"{model} × {task}: layer {top['layer']} reads {task} from {words} "
                f"({top['score']:.2f}{_span(top['score_lo'], top['score_hi'])}) better than from its mean "
                f"({mean['score']:.2f}{_span(mean['score_lo'], mean['score_hi'])}): gap {gap} ({chosen})."
            )
        else:
            out.append(
                f"{model} × {task}: no pooling variant reads {task} better than the mean at any layer "
                f"(largest gap: layer {top['layer']}, {top['variant']}, {gap}; {chosen})."
            )
    return out


def _options(settings: AnalysisSettings) -> dict:
    """The models' variant spaces (``speechprobe.pooling_stage.variant_options``): new features recompute."""
    return dict(settings.options.get("pooling_variants") or {})


ANALYSIS = Analysis(
    name="pooling_variants",
    compute=compute,
    tables={FOLDS_CSV: COLUMNS, SUMMARY_CSV: SUMMARY_COLUMNS},
    flag="pooling_variants",
    default=False,
    options=_options,
    cost="a probe pass per layer for each of 5 poolings; extraction stores 3 more spaces from the same forward",
    findings=pooling_findings,
    section="Pooling variants",
    description="Each layer probed under edge (first/last k frames) and max pooling against its mean, fold-paired.",
)
