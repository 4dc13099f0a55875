"""The primary probe: the one probe whose best layer is "the best layer" everywhere.

The console table, the main table, the t-SNE panels, the findings and the selection-aware
permutation test all ask :func:`primary_best` for the best layer of a (model, task), so they can never
disagree. The other probes appear beside it as secondary columns (:func:`secondary_best`).

Why KNN by default (:data:`DEFAULT_PRIMARY_PROBE`): it has no training randomness and no iteration
budget, it reads what the geometry of a layer makes directly accessible (neighbours in standardised
space), and its permutation null is exact and cheap (the neighbour lists do not
depend on the labels, :class:`speechprobe.probes.null.KNNNull`), so the test of its best layer always
draws every shuffle. ``--primary-probe mlp`` or ``linear`` is allowed; their tests refit the probe per
shuffle and stop early by Besag–Clifford's rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from .summary import best_layers

DEFAULT_PRIMARY_PROBE = "knn"


def primary_probe(config: Mapping | None, probes_run: Iterable[str]) -> str:
    """The run's primary probe: ``config["primary_probe"]`` (default ``knn``) when it was run, else the
    first probe that was (runs written before the option existed, or probed without it)."""
    run = [p for p in dict.fromkeys(probes_run) if p != "kmeans" and not str(p).startswith("zeroshot:")]
    wanted = (config or {}).get("primary_probe") or DEFAULT_PRIMARY_PROBE
    if wanted in run or not run:
        return wanted
    return run[0]


def primary_best(
    summary: pd.DataFrame, primary: str, depths: Mapping[str, int] | None = None, metric: str = "macro_f1"
) -> pd.DataFrame:
    """The best layer of every (model, task) by the primary probe's mean ``metric`` (ties: lowest layer);
    columns as :func:`best_layers`."""
    best = best_layers(summary, metric, depths)
    return best[best["probe"] == primary].reset_index(drop=True)


def secondary_best(
    summary: pd.DataFrame, primary: str, depths: Mapping[str, int] | None = None, metric: str = "macro_f1"
) -> pd.DataFrame:
    """Per (model, task), each other probe's own best layer and score as columns
    ``secondary_<probe>_layer`` and ``secondary_<probe>_<metric>`` (they never define "the best layer")."""
    best = best_layers(summary, metric, depths)
    others = best[best["probe"] != primary]
    frame = pd.DataFrame(columns=["model", "task"])
    for probe, rows in others.groupby("probe", sort=True):
        part = rows[["model", "task", "layer", "mean"]].rename(
            columns={"layer": f"secondary_{probe}_layer", "mean": f"secondary_{probe}_{metric}"}
        )
        frame = part if frame.empty else frame.merge(part, on=["model", "task"], how="outer")
    return frame.reset_index(drop=True)
