"""Fine-tuning's files in the run directory (registered with :mod:`speechprobe.rundir`'s ``finetune`` stage).

- ``finetune/<model>__<task>__<probe>/fold<k>.json``: one finished fold (scores, curve, best epoch, seconds, the
  clip indices that reached each part), written atomically when the fold ends; a rerun skips the folds found
  here (resume per fold).
- ``finetune/<...>/fold<k>.safetensors``: the fold's trained tensors, only with ``--keep-checkpoints``.
- ``finetune.csv``: the tidy rows of every finished fold (``model, task, layer, probe, fold, metric, value``;
  ``probe`` is ``ft-<method>`` or ``ft-<method>-shuffled``; ``layer`` is the deepest layer the head reads,
  every layer up to it with ``--ft-layers all``), rebuilt from the fold files.
- ``finetune_curves.csv``: ``model, task, probe, fold, epoch, split, metric, value``: the fit loss and the
  validation Macro-F1 of every epoch.
- ``finetune_layers.csv``: ``model, task, probe, fold, layer, weight``: where each fold's trained head read from
  (its softmax weight of each layer, summing to 1 per fold; one row of weight 1 at the last layer with
  ``--ft-layers last``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..files import atomic_write
from ..rundir import (
    FINETUNE,
    FINETUNE_CURVES,
    FINETUNE_DIR,
    FINETUNE_LAYERS,
    RESULT_COLUMNS,
    RunDir,
    slug,
    sort_results,
)
from .train import FoldResult

CURVE_COLUMNS = ["model", "task", "probe", "fold", "epoch", "split", "metric", "value"]
LAYER_COLUMNS = ["model", "task", "probe", "fold", "layer", "weight"]


def pair_dir(run_dir: Path, model: str, task: str, probe: str) -> Path:
    return Path(run_dir) / FINETUNE_DIR / f"{slug(model)}__{slug(task)}__{slug(probe)}"


def fold_file(run_dir: Path, model: str, task: str, probe: str, fold: int) -> Path:
    return pair_dir(run_dir, model, task, probe) / f"fold{fold}.json"


def write_fold(run_dir: Path, key: dict, fold: int, result: FoldResult, keep_checkpoint: bool) -> None:
    """One finished fold (``key``: model, task, probe, layer), and its weights with ``keep_checkpoint``."""
    path = fold_file(run_dir, key["model"], key["task"], key["probe"], fold)
    path.parent.mkdir(parents=True, exist_ok=True)
    if keep_checkpoint:
        from safetensors.torch import save

        state = {k: v.detach().cpu().contiguous() for k, v in result.state.items()}
        atomic_write(path.with_suffix(".safetensors"), save(state))
    record = {
        **key,
        "fold": fold,
        "scores": result.scores,
        "best_epoch": result.best_epoch,
        "seconds": round(result.seconds, 3),
        "items": result.used,  # the clip indices (run's clip order) that reached fit, validation and test
        "curve": result.curve,
        "layer_weights": result.layer_weights,  # the head's weight of each layer it read (one: the last layer)
    }
    atomic_write(path, (json.dumps(record, indent=1) + "\n").encode())


def read_folds(run_dir: Path) -> list[dict]:
    """Every finished fold's record (unreadable files are left out: their folds run again)."""
    out = []
    for path in sorted((Path(run_dir) / FINETUNE_DIR).glob("*/fold*.json")):
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return out


def write_tables(run_dir: Path) -> pd.DataFrame:
    """``finetune.csv`` and ``finetune_curves.csv`` from the fold files; returns the rows of finetune.csv."""
    records = read_folds(run_dir)
    rows = [
        {**{k: r[k] for k in ("model", "task", "layer", "probe", "fold")}, "metric": metric, "value": value}
        for r in records
        for metric, value in r["scores"].items()
    ]
    results = sort_results(pd.DataFrame(rows, columns=RESULT_COLUMNS))
    curves = pd.DataFrame(
        [
            {"model": r["model"], "task": r["task"], "probe": r["probe"], "fold": r["fold"], **c}
            for r in records
            for c in r["curve"]
        ],
        columns=CURVE_COLUMNS,
    ).sort_values(["model", "task", "probe", "fold", "epoch", "split", "metric"], kind="mergesort")
    rd = RunDir(run_dir)
    rd.write_csv(FINETUNE, results)
    rd.write_csv(FINETUNE_CURVES, curves.reset_index(drop=True))
    rd.write_csv(FINETUNE_LAYERS, layer_table(records))
    return results


def layer_table(records: list[dict]) -> pd.DataFrame:
    """finetune_layers.csv's rows: each fold's head weight per layer (a one-layer head: weight 1 at ``layer``)."""
    rows = []
    for r in records:
        weights = r.get("layer_weights") or [1.0]
        first = r["layer"] + 1 - len(weights)  # the weights end at the fold's last layer
        rows += [
            {**{k: r[k] for k in ("model", "task", "probe", "fold")}, "layer": first + i, "weight": w}
            for i, w in enumerate(weights)
        ]
    table = pd.DataFrame(rows, columns=LAYER_COLUMNS)
    return table.sort_values(["model", "task", "probe", "fold", "layer"], kind="mergesort").reset_index(drop=True)
