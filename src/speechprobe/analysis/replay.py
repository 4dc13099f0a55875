"""A bounded sample of a task's clips, their audio and the model, re-opened from a finished run.

Most analyses work from stored features; the attention analyses (context mixing, attribution) must watch the
model itself on a few clips. This module re-opens what the run recorded in manifest.json: the task's input
(``tasks[task].input``: spec, or its resolved path) and the model's recipe (name, ``+random``, window,
dtype, seed, device), and finds the sampled clips by their content hash.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import SpeechprobeError
from .inputs import read_manifest


def replay_options(switches) -> dict[str, dict]:
    """The options of the analyses that replay clips, from a run's analysis switches
    (:class:`speechprobe.config.AnalysisSwitches`; None: the analysis's default)."""
    given = {
        "context_mixing": {
            "clips": switches.mixing_clips,
            "frames": switches.mixing_frames,
            "seconds": switches.mixing_seconds,
        },
        "attribution": {
            "clips": switches.attribution_clips,
            "steps": switches.attribution_steps,
            "layers": switches.attribution_layers,
        },
    }
    return {name: {k: v for k, v in options.items() if v is not None} for name, options in given.items()}


def sample_clips(clips: pd.DataFrame, n: int, seed: int, groups: Sequence[str] | None = None) -> pd.DataFrame:
    """At most ``n`` clips, as even over the labels as they allow (seeded), in the table's order. With the clips'
    ``groups`` (speakers, …: the unit of the intervals) each pick takes a clip of a group not drawn yet while
    its class has one, so the sample spans as many groups as it can."""
    rng = np.random.default_rng(seed)
    labels = clips["label"].astype(str).to_numpy()
    classes = sorted(set(labels))
    picks = {c: list(rng.permutation(np.flatnonzero(labels == c))) for c in classes}
    drawn: set[str] = set()
    chosen: list[int] = []
    while len(chosen) < min(n, len(clips)):
        for c in classes:
            if picks[c] and len(chosen) < n:
                fresh = [k for k, i in enumerate(picks[c]) if groups is None or groups[i] not in drawn]
                chosen.append(int(picks[c].pop(fresh[0] if fresh else 0)))
                drawn.add(groups[chosen[-1]] if groups is not None else "")
    return clips.iloc[sorted(chosen)].reset_index(drop=True)


def clip_audio(run_dir: Path, task: str, hashes: Sequence[str], rate: int) -> dict[str, np.ndarray]:
    """The audio of the clips ``hashes`` of ``task`` at ``rate`` Hz, read again from the task's source."""
    from ..cache import cache_root
    from ..data.audio import resample
    from ..data.resolve import open_task

    manifest = read_manifest(run_dir)
    config = manifest.get("config") or {}
    info = (manifest.get("tasks") or {}).get(task) or {}
    given = info.get("input") or {}
    spec = given.get("resolved") or given.get("spec") or task
    _, source = open_task(
        spec,
        cache_root(Path(config["cache"]) if config.get("cache") else None),
        int(config.get("seed") or 0),
        config.get("n_per_class"),
        max_seconds=config.get("max_clip_seconds"),
        group_by=config.get("group_by"),
    )
    wanted, out = set(hashes), {}
    for clip in source:
        if clip.content_hash in wanted and clip.content_hash not in out:
            out[clip.content_hash] = resample(np.asarray(clip.audio, dtype=np.float32), clip.sample_rate, rate)
            if len(out) == len(wanted):
                break
    missing = len(wanted) - len(out)
    if missing:
        raise SpeechprobeError(f"task {task}: {missing} sampled clip(s) no longer in its source {spec}")
    return out


def run_model(run_dir: Path, model: str):
    """The run's adapter of ``model`` (``+random``: its random-init twin), as the run loaded it."""
    from ..models.base import RANDOM_SUFFIX
    from ..models.registry import checkpoints

    manifest = read_manifest(run_dir)
    config = manifest.get("config") or {}
    base = model.removesuffix(RANDOM_SUFFIX)
    random = bool(config.get("random_init")) or base != model
    source = ((manifest.get("models") or {}).get(model) or {}).get("source")
    name = base if base in checkpoints() or not source else source  # a local checkpoint: its folder
    return _load(
        name, config.get("window"), config.get("device") or "cpu", config.get("dtype"), random, config.get("seed") or 0
    )


_KEPT: OrderedDict[tuple, object] = OrderedDict()  # the adapters kept in this process, least recently used first
KEEP_BYTES, KEEP_MAX = 1 << 30, 4  # their weights kept up to 1 GiB (always the last one), at most 4 of them


def _load(name: str, window, device: str, dtype, random_init: bool, seed: int):
    """An adapter kept between units and jobs (a worker given the models of a task in turn loads each once):
    the most recently used ones, while their weights stay within :data:`KEEP_BYTES`."""
    from ..models.registry import load_model
    from ..parallel import keep_resident

    keep_resident()  # in a worker process: kept models are not a leak to restart it for
    key = (name, window, device, dtype, random_init, int(seed))
    if key not in _KEPT:
        _KEPT[key] = load_model(
            name=name, window=window, device=device, dtype=dtype, random_init=random_init, seed=int(seed)
        )
    _KEPT.move_to_end(key)
    while len(_KEPT) > 1 and (len(_KEPT) > KEEP_MAX or sum(map(_weight_bytes, _KEPT.values())) > KEEP_BYTES):
        _KEPT.popitem(last=False)
    return _KEPT[key]


def _weight_bytes(adapter) -> int:
    """The bytes of the parameters of the torch modules an adapter holds."""
    import torch

    modules = [m for m in vars(adapter).values() if isinstance(m, torch.nn.Module)]
    params = {id(p): p for m in modules for p in m.parameters()}
    return sum(p.numel() * p.element_size() for p in params.values())
