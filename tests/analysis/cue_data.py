"""Helpers for the cue-analysis tests: features in which known cues carry known tasks, and a run directory
(manifest.json, clips/, results.csv with real KNN scores) that the analysis plan accepts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from speechprobe.models.acoustic_cues import CUES, pack
from speechprobe.probes import probe_layers


def cue_world(n_groups: int = 8, per_group: int = 8, seed: int = 0) -> dict:
    """Clips with random cues; ``pitch`` labels follow F0 mean, ``loud`` labels follow energy mean, and two
    models: ``deep`` (3 layers; F0 linearly in layer 1 only, energy in every layer) and ``flat`` (1 layer)."""
    rng = np.random.default_rng(seed)
    n = n_groups * per_group
    cues = rng.normal(size=(n, len(CUES)))
    cues[:, CUES.index("duration")] = 2.0  # constant on this task: no score
    cues[rng.random(n) < 0.1, CUES.index("jitter")] = np.nan  # undefined on some clips
    f0, energy = cues[:, CUES.index("f0_mean")], cues[:, CUES.index("energy_mean")]
    noise = rng.normal(size=(n, 3, 40))
    deep = noise.copy()
    deep[:, 1, :4] += 3.0 * f0[:, None]
    deep[:, :, 4:8] += 3.0 * energy[:, None, None]
    flat = np.concatenate([np.nan_to_num(cues), rng.normal(size=(n, 10))], axis=1)[:, None, :]
    return {
        "groups": np.repeat([f"g{i}" for i in range(n_groups)], per_group),
        "cues": cues,
        "pitch": np.where(f0 > np.median(f0), "high", "low"),
        "loud": np.where(energy > np.median(energy), "loud", "soft"),
        "features": {"deep": deep.astype(np.float32), "flat": flat.astype(np.float32)},
    }


def with_random_twin(world: dict) -> dict:
    """The world plus ``deep+random``: the deep model's shape, pure noise."""
    noise = np.random.default_rng(5).normal(size=world["features"]["deep"].shape).astype(np.float32)
    world["features"]["deep+random"] = noise
    return world


def write_cue_run(root: Path, world: dict, tasks=("pitch", "loud"), folds: int = 4) -> Path:
    """A run directory with ``tasks`` over the world's clips (content hashes ``h0000``...), its models'
    KNN results (the primary probe) and acoustic cues recorded as a target."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "clips").mkdir(exist_ok=True)
    hashes = [f"h{i:04d}" for i in range(len(world["groups"]))]
    results = []
    for task in tasks:
        frame = pd.DataFrame({"id": hashes, "label": world[task], "group": world["groups"], "content_hash": hashes})
        frame.to_csv(root / "clips" / f"{task}.csv", index=False)
        for model, feats in world["features"].items():
            rows = pd.DataFrame(probe_layers(feats, world[task], world["groups"], ["knn"], folds, 0))
            results.append(rows.assign(model=model, task=task))
    cols = ["model", "task", "layer", "probe", "fold", "metric", "value"]
    pd.concat(results)[cols].to_csv(root / "results.csv", index=False)
    manifest = {
        "config": {"folds": folds, "seed": 0, "baselines": ["flat"], "primary_probe": "knn", "probes": ["knn"]},
        "models": {m: {"num_layers": f.shape[1], "space": f"space-{m}"} for m, f in world["features"].items()},
        "targets": {"cues": {"num_layers": 1, "space": "space-cues"}},
        "tasks": {t: {"clips_file": f"clips/{t}.csv"} for t in tasks},
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def loader(world: dict):
    """``load_features(model, hashes)`` over the world (``cues``: the stored cue vectors)."""

    def load(model, hashes):
        index = [int(h[1:]) for h in hashes]
        if model == "cues":
            return pack(world["cues"][index])[:, None, :]
        return world["features"][model][index]

    return load
