"""Helpers for the analysis tests: a hand-made run directory (results.csv, manifest.json, clips/)
with layer curves of known shape, and matching in-memory features."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from speechprobe.analysis import chance_levels

COLUMNS = ["model", "task", "layer", "probe", "fold", "metric", "value"]
MODELS = {"whisper-base": 7, "whisper-tiny": 5, "mfcc": 1, "librosa": 1}
TASKS = {
    # task: (paralinguistic, grouped folds, labels, curve)
    "emotion": (True, True, ["angry", "happy", "neutral", "sad"], "peaked"),
    "gender": (True, True, ["female", "male"], "rising"),
    "keyword": (False, False, ["no", "yes"], "dipped"),
}
BASE = {"emotion": 0.40, "gender": 0.70, "keyword": 0.55}


def curve(shape: str, x: np.ndarray) -> np.ndarray:
    if shape == "peaked":
        return 0.35 + 0.35 * np.sin(np.pi * x)
    if shape == "rising":
        return 0.6 + 0.35 * x
    if shape == "dipped":
        return 0.85 - 0.3 * np.sin(np.pi * x)
    raise ValueError(shape)


def make_results(folds: int = 5, seed: int = 0, zeroshot: bool = True, tasks=None, models=None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for model in models or MODELS:
        depth = MODELS[model]
        for task in tasks or TASKS:
            shape = TASKS[task][3]
            for probe, offset in (("knn", 0.0), ("mlp", 0.03)):
                for layer in range(depth):
                    mean = (
                        BASE[task] + (0.02 if model == "librosa" else 0.0)
                        if depth == 1
                        else curve(shape, np.array(layer / (depth - 1)))
                    )
                    for fold in range(folds):
                        v = float(np.clip(mean + offset + rng.normal(0, 0.015), 0, 1))
                        rows.append((model, task, layer, probe, fold, "macro_f1", v))
                        rows.append((model, task, layer, probe, fold, "accuracy", min(1.0, v + 0.02)))
            for layer in range(depth):
                for fold in range(folds):
                    rows.append((model, task, layer, "kmeans", fold, "nmi", 0.1 + 0.01 * layer))
    if zeroshot and "whisper-base" in (models or MODELS):
        rows.append(("whisper-base", "emotion", None, "zeroshot:qa:p1", 0, "macro_f1", 0.31))
        rows.append(("whisper-base", "gender", None, "zeroshot:qa:p1", 0, "macro_f1", 0.88))
    return pd.DataFrame(rows, columns=COLUMNS)


def make_clips(task: str, n_per_class: int = 12, n_groups: int = 6) -> pd.DataFrame:
    _, grouped, labels, _ = TASKS[task]
    rows = []
    for k, label in enumerate(labels):
        for i in range(n_per_class):
            rows.append(
                {
                    "id": f"{task}-{label}-{i}",
                    "label": label,
                    "group": f"spk{i % n_groups}" if grouped else "",
                    "duration": 1.0,
                    "content_hash": f"{task}{k:02d}{i:04d}".ljust(16, "0"),
                }
            )
    return pd.DataFrame(rows)


def make_manifest(folds: int = 5, tasks=None, models=None) -> dict:
    task_names, model_names = list(tasks or TASKS), list(models or MODELS)
    tasks, chance = {}, {}
    for task in task_names:
        para, grouped, _, _ = TASKS[task]
        clips = make_clips(task)
        counts = clips["label"].value_counts().sort_index().to_dict()
        tasks[task] = {
            "source": "synthetic",
            "fingerprint": "x",
            "paralinguistic": para,
            "cue": f"{task} cue",
            "labels": {k: int(v) for k, v in counts.items()},
            "labels_outside_label_set": [],
            "n_clips": len(clips),
            "n_skipped": 0,
            "grouped_folds": grouped,
            "clips_file": f"clips/{task}.csv",
        }
        chance[task] = chance_levels(list(clips["label"]))
    models = {
        m: {
            "name": m,
            "family": "whisper" if d > 1 else "handcrafted",
            "source": "test",
            "revision": "abc",
            "sample_rate": 16000,
            "num_layers": d,
            "hidden_size": 8,
            "frame_rate": 50.0,
            "padding": "none",
            "options": {},
            "space": f"space-{m}",
        }
        for m, d in MODELS.items()
        if m in model_names
    }
    return {
        "config": {
            "models": [m for m in model_names if MODELS[m] > 1],
            "tasks": task_names,
            "out": "RUN",
            "probes": ["knn", "mlp"],
            "folds": folds,
            "seed": 0,
            "baselines": ["mfcc", "librosa"],
            "cache": None,
        },
        "seed": 0,
        "versions": {"python": "3.11", "speechprobe": "0.1.0", "sklearn": "1.x"},
        "models": models,
        "tasks": tasks,
        "chance": chance,
        "skipped": {"count": 1, "items": [{"task": "emotion", "item": "bad.wav", "reason": "empty audio"}]},
        "truncated": {},
        "warnings": [
            f"task {t}: no speaker/group column, folds are not grouped; speaker leakage may inflate scores"
            for t in task_names
            if not TASKS[t][1]
        ],
        "extraction": {},
        "figures": [],
    }


SMALL = {"tasks": ["emotion"], "models": ["whisper-tiny", "mfcc"]}  # few figures: fast reports


def write_run(
    run: Path, results: pd.DataFrame | None = None, manifest: dict | None = None, tasks=None, models=None
) -> Path:
    run.mkdir(parents=True, exist_ok=True)
    results = make_results(tasks=tasks, models=models) if results is None else results
    results.to_csv(run / "results.csv", index=False)
    manifest = make_manifest(tasks=tasks, models=models) if manifest is None else manifest
    (run / "manifest.json").write_text(json.dumps(manifest, indent=2))
    (run / "clips").mkdir(exist_ok=True)
    for task in tasks or TASKS:
        make_clips(task).to_csv(run / "clips" / f"{task}.csv", index=False)
    return run


def make_features(run: Path, dim: int = 6, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """Per model, content hash -> (layers, dim): the label is linearly visible in the middle layers."""
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, np.ndarray]] = {}
    for model, depth in MODELS.items():
        store = out.setdefault(model, {})
        for task in TASKS:
            clips = make_clips(task)
            codes = pd.factorize(clips["label"], sort=True)[0]
            for h, code in zip(clips["content_hash"], codes):
                x = rng.normal(size=(depth, dim))
                for layer in range(depth):
                    strength = 4 * np.sin(np.pi * layer / (depth - 1)) if depth > 1 else 1.0
                    x[layer, code % dim] += strength
                store[h] = x.astype(np.float32)
    return out


PAIR_FOR_BROWSER = {"tasks": ["emotion", "gender"], "models": ["whisper-base", "whisper-tiny", "mfcc"]}
