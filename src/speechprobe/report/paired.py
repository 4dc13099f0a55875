"""Paired per-fold differences between two (model, layer) cells scored on the same folds.

Two cells of one run (or two runs of the same task, seed and folds) are scored on the same clips in
every fold, so their per-fold differences are paired; their mean's 95 % interval is the corrected
resampled t of Nadeau & Bengio (2003) (docs/statistics.md), which accounts for the training data the
folds share. Used by the best-model finding and by ``speechprobe compare``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..analysis.summary import corrected_t_halfwidth


def fold_values(data, model: str, task: str, probe: str, layer: int) -> pd.Series:
    """Macro-F1 per fold of one (model, task, probe, layer) from ``data.results`` (empty without them)."""
    r = data.results
    if r is None:
        return pd.Series(dtype=float)
    sel = r[(r.model == model) & (r.task == task) & (r.probe == probe) & (r.layer == layer) & (r.metric == "macro_f1")]
    return sel.groupby("fold")["value"].mean()


def paired_interval(diff: np.ndarray, ratio: float | None = None) -> float:
    """Half-width of the corrected resampled-t 95 % interval of ``J`` per-fold differences
    (:func:`~speechprobe.analysis.summary.corrected_t_halfwidth`); ``ratio`` is ``n_test / n_train``
    (``1 / (J − 1)``, one J-fold partition, when unknown)."""
    diff = np.asarray(diff, dtype=float)
    j = len(diff)
    if j < 2:
        return float("nan")
    return float(corrected_t_halfwidth(diff.std(ddof=1), j, 1 / (j - 1) if ratio is None else ratio))


def paired_difference(data, task: str, a, b) -> tuple[float, float]:
    """Mean and 95 % half-width of ``a − b`` over the folds both hold; ``a``, ``b``: main-table rows
    (model, probe, layer). NaN when fewer than two folds are shared."""
    fa = fold_values(data, a.model, task, a.probe, int(a.layer))
    fb = fold_values(data, b.model, task, b.probe, int(b.layer))
    both = fa.index.intersection(fb.index)
    if len(both) < 2:
        return float("nan"), float("nan")
    diff = (fa[both] - fb[both]).to_numpy()
    return float(diff.mean()), paired_interval(diff, data.ratios.get(task))
