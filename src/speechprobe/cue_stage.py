"""The cue analyses' two places in the pipeline (beside :mod:`.pipeline`, which calls them).

After the models, each clip's acoustic cues (:mod:`.models.acoustic_cues`) are extracted once and
stored in the content-keyed feature store like a model's features, but recorded under manifest.json
``targets``: the cue analyses' targets, never probed as a model. When the run has the ``prosody``
baseline (the same recipe and revision), its stored items are copied rather than computed again.
After the probes, the cue analyses (:mod:`.analysis.cue_analyses`: cue probes, erasure, the
all-layers reference) run on the stored features, before the layer analyses (the depth fingerprints
read cues.csv).
"""

from __future__ import annotations

import dataclasses
import logging
import time

from .config import RunConfig
from .errors import SpeechprobeError
from .features.engine import LocalEngine
from .features.extract import extract
from .features.store import FeatureSpace, FeatureStore
from .models.acoustic_cues import NAME, PROSODY
from .models.registry import load_model

log = logging.getLogger("speechprobe")
CUE_OPTIONS = ("cue_probes", "erasure", "layer_weights", "cue_repeats")  # RunConfig fields that change no probe row


def record_extraction(extraction: dict, key: str, report, t0: float, budget: float) -> None:
    """manifest.json ``extraction[key]`` of one (model or target, task) whose extraction started at ``t0``."""
    seconds = round(time.perf_counter() - t0, 3)
    extraction[key] = {
        "computed": report.computed,
        "reused": report.reused,
        "seconds": seconds,
        "max_batch_seconds": budget,
        "warnings": report.warnings,
    }


def extract_cues(cfg: RunConfig, records, state, store: FeatureStore) -> None:
    """Each clip of every task record (``.task``, ``.source``, ``.clips``) into the cues' feature space;
    ``state.targets`` gets the space, ``state.extraction`` the counts. Local and CPU-only (no Ray actor).
    Nothing unless ``cfg`` runs cue probes or erasure."""
    if not (cfg.analyses.cue_probes or cfg.analyses.erasure):
        return
    engine = LocalEngine(load_model(NAME))
    info = {**dataclasses.asdict(engine.info), "options": engine.options()}
    space = store.space(NAME, info["revision"], {**info["options"], "pooling": cfg.pooling})
    state.targets[NAME] = {**info, "space": space.root.name}
    twin = state.models.get(PROSODY)  # the prosody baseline: the same vector when its revision is the same
    twin = FeatureSpace(store.root / twin["space"], {}) if twin and twin["revision"] == info["revision"] else None
    for rec in records:
        t0, key = time.perf_counter(), f"{NAME}/{rec.task.name}"
        if twin is not None:
            copy_items(twin, space, [c.content_hash for c in rec.clips])
        report = extract(engine, rec.source, space, cfg.pooling, cfg.batch_seconds, cfg.compute.progress, key)
        record_extraction(state.extraction, key, report, t0, cfg.batch_seconds)
        if [c.content_hash for c in rec.clips] != [c.content_hash for c in report.clips]:
            raise SpeechprobeError(f"task {rec.task.name}: the source changed between models; rerun")


def copy_items(source: FeatureSpace, target: FeatureSpace, hashes: list[str]) -> None:
    """Items of ``hashes`` that ``source`` holds and ``target`` lacks, copied (verified) into ``target``."""
    for h in dict.fromkeys(hashes):
        if not target.has(h) and source.has(h):
            target.put(h, source.get(h))


def run_cue_analyses(cfg: RunConfig, targets: dict, load) -> None:
    """Acoustic-cue probes, cue erasure and the all-layers reference as ``cfg`` asks, on features read by
    ``load(model, hashes)``; ``targets`` is the run's manifest.json ``targets``."""
    if not (cfg.analyses.cue_probes or cfg.analyses.erasure or cfg.analyses.layer_weights):
        return
    from .analysis.cue_analyses import run_cue_analyses as run_all

    space = (targets.get(NAME) or {}).get("space")
    if (cfg.analyses.cue_probes or cfg.analyses.erasure) and not space:
        log.warning("cue probes and erasure skipped: this run stored no acoustic cues (rerun `speechprobe extract`)")
    on = dict(cue_probes=cfg.analyses.cue_probes and bool(space), erasure=cfg.analyses.erasure and bool(space))
    run_all(
        cfg.out,
        load,
        **on,
        layer_weights=cfg.analyses.layer_weights,
        targets=space,
        n_jobs=cfg.n_jobs,
        progress=cfg.compute.progress,
    )
