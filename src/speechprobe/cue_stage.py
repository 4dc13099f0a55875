"""The cue analyses' two places in the pipeline (beside :mod:`.pipeline`, which calls them).

After the models, each clip's acoustic cues (:mod:`.models.acoustic_cues`, a registered family) go
through the pipeline's extraction path like a model (:func:`cue_targets` gives it the engine) into the
content-keyed feature store, but are recorded under manifest.json ``targets``: the cue analyses'
targets, never probed as a model. When the run has the ``prosody`` baseline (the same recipe and
revision), its stored items are copied rather than computed again.
After the probes, the cue probes and erasure (registered analyses, :mod:`.analysis.cues`,
:mod:`.analysis.erasure`) read them from the store (:func:`cue_options` names their space).
"""

from __future__ import annotations

import dataclasses
import logging
import time

from .config import RunConfig
from .features.engine import LocalEngine
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


def wants_cues(cfg: RunConfig) -> bool:
    """Whether ``cfg`` runs an analysis that needs each clip's acoustic cues (cue probes or erasure)."""
    return bool(cfg.analyses.cue_probes or cfg.analyses.erasure)


def cue_targets(cfg: RunConfig, state, store: FeatureStore) -> list[tuple[LocalEngine, dict, FeatureSpace | None]]:
    """The acoustic cues as an extraction target when ``cfg`` wants them (:func:`wants_cues`), local and CPU-only
    (no Ray actor): its engine, its record in ``state.targets``, and the ``prosody`` baseline's space when that
    holds the same vectors (same revision)."""
    if not wants_cues(cfg):
        return []
    engine = LocalEngine(load_model(NAME))
    info = state.targets[engine.name] = {**dataclasses.asdict(engine.info), "options": engine.options()}
    twin = state.models.get(PROSODY)
    same = twin and twin["revision"] == info["revision"]
    return [(engine, info, FeatureSpace(store.root / twin["space"], {}) if same else None)]


def copy_items(source: FeatureSpace | None, target: FeatureSpace, hashes: list[str]) -> None:
    """Items of ``hashes`` that ``source`` (if any) holds and ``target`` lacks, copied (verified) into ``target``."""
    for h in dict.fromkeys(hashes if source is not None else []):
        if not target.has(h) and source.has(h):
            target.put(h, source.get(h))


def cue_options(analyses: list, targets: dict) -> tuple[list, dict]:
    """The chosen ``analyses`` less the cue probes and erasure when the run stored no acoustic cues (a
    warning), and their options: the cues' feature space (``targets``: manifest.json ``targets``), part of
    their fingerprint, so new cues recompute."""
    space = (targets.get(NAME) or {}).get("space")
    cue_analyses = [a for a in analyses if a.name in ("cues", "erasure")]
    if cue_analyses and not space:
        log.warning("cue probes and erasure skipped: this run stored no acoustic cues (rerun `speechprobe extract`)")
        return [a for a in analyses if a not in cue_analyses], {}
    return analyses, {a.name: {"targets": space} for a in cue_analyses}
