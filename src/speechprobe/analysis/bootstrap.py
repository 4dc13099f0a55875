"""Bootstrap over clips of the out-of-fold predictions: score intervals and the best-layer distribution.

The probes are not refitted: each resample re-weights the stored out-of-fold predictions
(``predictions/<model>__<task>.npz``), so the bootstrap measures how much the score and the choice of
the best layer depend on which clips (speakers) happened to be in the data set, for fixed trained
probes. Training variability is in the corrected resampled-t interval of summary.csv instead.

Resampling unit (``unit`` column):

``group``  (groups, each carrying one label or nearly: the rule of :mod:`.units`, e.g. gender by speaker)
           groups are drawn with replacement within each class, keeping the number of groups per class;
``group*`` (groups whose clips carry several labels) groups are drawn with replacement from all groups;
``clip``   (no groups) clips are drawn with replacement within each class.

A clip drawn ``m`` times weighs ``m``. ``n_units`` and ``over`` ("bootstrap over 20 speakers") say what was
resampled. When a class has fewer than :data:`.units.MIN_UNITS_PER_CLASS` resampling units, no interval and
no best-layer shares are given (NaN) and ``note`` says why: a bootstrap over two speakers per class can only
shuffle those two, and its interval is narrower than the truth.

The statistic is ``macro_f1_oof``: the fixed-label macro-F1 of the predictions pooled over the folds of a
repeat, averaged over repeats, from weighted per-class counts (true, predicted, correct) computed for all
resamples, probes and layers at once as matrix products. The per-fold mean of summary.csv is not bootstrapped:
a resample can empty a test fold of a class (its one speaker not drawn), which would score that fold's class 0
although cross-validation on such data would have re-partitioned; pooled counts have no such artefact.

The same resamples (same ``seed``) are used for every model of a task, so comparisons between models are
paired. ``bootstrap.csv`` (:data:`BOOTSTRAP_COLUMNS`) holds, per (model, task, probe, layer): the observed
out-of-fold score, its 2.5 and 97.5 percentiles, ``p_best`` (the share of resamples in which this layer
has the probe's highest score, ties to the lowest layer) and ``p_best_overall`` (the share in which this
(layer, probe) has the model's highest score on the task).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ..files import atomic_write
from ..probes.predictions import OOFPredictions, read_predictions
from ..rundir import csv_bytes
from .units import MIN_UNITS_PER_CLASS, inference_unit, plural

BOOTSTRAP_COLUMNS = [
    "model",
    "task",
    "probe",
    "layer",
    "metric",
    "observed",
    "ci_low",
    "ci_high",
    "p_best",
    "p_best_overall",
    "n_boot",
    "unit",
    "n_units",
    "over",
    "note",
]
METRIC = "macro_f1_oof"
DEFAULT_N_BOOT = 1000
CHUNK = 200  # resamples per matrix product


def _units(y: np.ndarray, groups: np.ndarray | None) -> tuple[np.ndarray, list[np.ndarray], str]:
    """``(unit of each clip, strata of unit ids, unit kind)``."""
    if groups is None or not np.all(groups != ""):
        units = np.arange(len(y))
        return units, [np.flatnonzero(y == c) for c in np.unique(y)], "clip"
    unit = inference_unit(y, groups)
    if unit.kind == "clip":  # labels vary within groups: whole groups from all groups
        codes = np.unique(groups, return_inverse=True)[1]
        return codes, [np.arange(int(codes.max()) + 1)], "group*"
    labels = unit.unit_label
    return unit.codes, [np.flatnonzero(labels == c) for c in np.unique(labels)], "group"


def resample_weights(y: np.ndarray, groups: np.ndarray | None, n_boot: int, seed: int) -> tuple[np.ndarray, str]:
    """``(weights (n_boot, N), unit)``: how often each clip is drawn in each resample (see the module docstring)."""
    units, strata, unit = _units(np.asarray(y), groups)
    rng = np.random.default_rng(seed)
    n_units = int(units.max()) + 1
    counts = np.zeros((n_boot, n_units), dtype=np.float32)
    rows = np.arange(n_boot)[:, None]
    for stratum in strata:
        draws = stratum[rng.integers(0, len(stratum), size=(n_boot, len(stratum)))]
        np.add.at(counts, (np.broadcast_to(rows, draws.shape), draws), 1.0)
    return counts[:, units], unit


def resampling_facts(y: np.ndarray, groups: np.ndarray | None, noun: str = "group") -> tuple[int, str, str]:
    """``(n_units, over, note)``: how many units are resampled, "bootstrap over 20 speakers (10 per class)",
    and why no interval is given ("" when every class has enough units)."""
    units, _, kind = _units(np.asarray(y), groups)
    word = "clip" if kind == "clip" else noun
    per_class = {c: len(np.unique(units[y == c])) for c in np.unique(y)}
    n = int(units.max()) + 1
    fewest = min(per_class.values())
    how = "drawn from all classes" if kind == "group*" else "drawn within each class"
    over = f"bootstrap over {plural(word, n)} ({how}; at least {fewest} per class)"
    if fewest >= MIN_UNITS_PER_CLASS:
        return n, over, ""
    return (
        n,
        over,
        f"{plural(word, fewest)} in the smallest class: too few for a bootstrap "
        f"(needs {MIN_UNITS_PER_CLASS} per class)",
    )


def _f1(tp: np.ndarray, true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Macro-F1 over the last axis (classes) from counts; a class with no true and no predicted item scores 0."""
    tp, denom = tp.astype(np.float64), true.astype(np.float64) + pred  # exact integer counts, float64 ratios
    f1 = np.divide(2 * tp, denom, out=np.zeros(np.broadcast_shapes(tp.shape, denom.shape)), where=denom > 0)
    return f1.mean(axis=-1)


def bootstrap_scores(oof: OOFPredictions, weights: np.ndarray) -> np.ndarray:
    """Out-of-fold macro-F1 ``(n_weights, P, L)`` under each row of clip weights ``weights`` ``(B, N)``."""
    n_rep, n_probes, n_layers, n = oof.pred.shape
    n_classes = len(oof.classes)
    eye = np.eye(n_classes, dtype=np.float32)
    B = len(weights)
    true = (weights @ eye[oof.y]).reshape(B, 1, 1, n_classes)
    total = np.zeros((B, n_probes, n_layers))
    for r in range(n_rep):
        codes = oof.pred[r].astype(np.int64)  # (P, L, N)
        guessed = eye[codes].transpose(2, 0, 1, 3).reshape(n, -1)  # (N, P*L*C) one-hot predictions
        correct = (codes == oof.y).transpose(2, 0, 1).reshape(n, -1).repeat(n_classes, axis=1)
        shape = (B, n_probes, n_layers, n_classes)
        tp = (weights @ (guessed * correct)).reshape(shape)
        predicted = (weights @ guessed).reshape(shape)
        total += _f1(tp, true, predicted)
    return total / n_rep


def _best_shares(stat: np.ndarray, probes: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``(p_best (P, L), p_best_overall (P, L))`` from resampled scores ``stat`` ``(B, P, L)``."""
    B, P, L = stat.shape
    per_probe = np.zeros((P, L))
    for p in range(P):
        per_probe[p] = np.bincount(np.argmax(stat[:, p], axis=1), minlength=L) / B
    order = np.argsort(probes, kind="stable")  # ties: lowest layer, then probe name (as best_table)
    flat = stat[:, order].transpose(0, 2, 1).reshape(B, L * P)
    shares = (np.bincount(np.argmax(flat, axis=1), minlength=L * P) / B).reshape(L, P)
    overall = np.zeros((P, L))
    overall[order] = shares.T
    return per_probe, overall


def bootstrap_table(
    oof: OOFPredictions, model: str, task: str, n_boot: int = DEFAULT_N_BOOT, seed: int = 0, noun: str = "group"
):
    """``bootstrap.csv`` rows of one (model, task) (see the module docstring); ``noun``: what a group is."""
    groups = None if oof.groups is None or not np.all(oof.groups != "") else oof.groups
    weights, unit = resample_weights(oof.y, groups, n_boot, seed)
    n_units, over, note = resampling_facts(oof.y, groups, noun)
    observed = bootstrap_scores(oof, np.ones((1, len(oof.y)), dtype=np.float32))[0]
    stat = np.concatenate([bootstrap_scores(oof, weights[i : i + CHUNK]) for i in range(0, n_boot, CHUNK)])
    low, high = np.percentile(stat, [2.5, 97.5], axis=0)
    p_best, p_overall = _best_shares(stat, oof.probes)
    if note:  # too few units: no interval, no shares
        low, high, p_best, p_overall = (np.full_like(a, np.nan, dtype=float) for a in (low, high, p_best, p_overall))
    rows = [
        {
            "model": model,
            "task": task,
            "probe": probe,
            "layer": layer,
            "metric": METRIC,
            "observed": float(observed[p, layer]),
            "ci_low": float(low[p, layer]),
            "ci_high": float(high[p, layer]),
            "p_best": float(p_best[p, layer]),
            "p_best_overall": float(p_overall[p, layer]),
            "n_boot": n_boot,
            "unit": unit,
            "n_units": n_units,
            "over": over,
            "note": note,
        }
        for p, probe in enumerate(oof.probes)
        for layer in range(stat.shape[2])
    ]
    return pd.DataFrame(rows, columns=BOOTSTRAP_COLUMNS)


def bootstrap_run(
    run_dir: Path,
    pairs: Iterable[tuple[str, str]] | None = None,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    nouns: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Bootstrap every (model, task) with stored predictions (default: manifest.json's models x tasks)
    and write ``RUN/bootstrap.csv``; returns its rows (empty when there are no predictions). ``nouns``:
    task -> what a group is (default "group")."""
    run_dir = Path(run_dir)
    if pairs is None:
        manifest = json.loads((run_dir / "manifest.json").read_text())
        pairs = [(m, t) for m in manifest.get("models") or {} for t in manifest.get("tasks") or {}]
    frames = []
    for model, task in pairs:
        oof = read_predictions(run_dir, model, task)
        if oof is not None:
            frames.append(bootstrap_table(oof, model, task, n_boot, seed, (nouns or {}).get(task) or "group"))
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=BOOTSTRAP_COLUMNS)
    data = csv_bytes(table)
    atomic_write(run_dir / "bootstrap.csv", lambda fh: fh.write(data))
    return table


def best_layer_distribution(table: pd.DataFrame, model: str, task: str, probe: str, metric: str = METRIC) -> str:
    """ "layer 2 in 81 % of resamples, layer 3 in 15 %" from :func:`bootstrap_table` rows (layers >= 5 %)."""
    rows = table[
        (table["model"] == model) & (table["task"] == task) & (table["probe"] == probe) & (table["metric"] == metric)
    ]
    rows = rows[rows["p_best"] >= 0.05].sort_values(["p_best", "layer"], ascending=[False, True])
    parts = [f"layer {int(r.layer)} in {100 * r.p_best:.0f} %" for r in rows.itertuples()]
    if not parts:
        return ""
    parts[0] += " of resamples"
    return ", ".join(parts)
