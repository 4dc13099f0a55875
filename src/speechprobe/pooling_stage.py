"""The pooling-variants analysis's place in the extraction (beside :mod:`.pipeline`, which calls it).

With ``--pooling-variants`` every model whose adapter pools its own frames (``pools_frames``: Whisper,
the wav2vec2 family, SeamlessM4T, Qwen2-Audio) is extracted once into several feature spaces: the run's
pooling, the mean, the mean of the first and of the last ``k`` real frames and the max over real frames
(:mod:`.models.pooling`), each content-keyed by its pooling. ``k`` is ``--edge-ms`` at the model's frame
rate. The extra spaces are recorded under the model's manifest.json entry (``pooling_spaces``); the
analysis (:mod:`.analysis.pooling_variants`) reads them from the store. Recipes are left out (a note).
"""

from __future__ import annotations

from .config import RunConfig
from .features.engine import Engine
from .features.store import FeatureSpace, FeatureStore
from .models.pooling import variant_name

POOLING_OPTIONS = ("pooling_variants", "edge_ms")  # RunConfig fields that change no probe row
EDGE_MS = 100.0  # --edge-ms unset: 100 ms edge windows (5 frames at 50 Hz)


def edge_frames(edge_ms: float, frame_rate: float) -> int:
    """Frames in an edge window of ``edge_ms`` at ``frame_rate`` frames per second (at least one)."""
    return max(1, round(edge_ms * frame_rate / 1000))


def pooling_spaces(cfg: RunConfig, engine: Engine, entry: dict, store: FeatureStore, space: FeatureSpace) -> dict:
    """Pooling → feature space that one extraction pass of ``engine`` fills: the run's ``space`` alone, or with
    ``--pooling-variants`` and a frame-pooling adapter also the variants' spaces (recorded in ``entry``)."""
    if not cfg.analyses.pooling_variants or not getattr(engine, "pools_frames", False):
        return {cfg.pooling: space}
    k = edge_frames(cfg.analyses.edge_ms or EDGE_MS, float(engine.info.frame_rate))
    names = ["mean", variant_name("first", k), variant_name("last", k), variant_name("max")]
    spaces = {cfg.pooling: space}
    for name in names:
        spaces.setdefault(name, store.space(engine.name, entry["revision"], {**entry["options"], "pooling": name}))
    entry["pooling_spaces"] = {name: spaces[name].root.name for name in names}
    entry["edge_frames"] = k
    return spaces


def variant_options(models: dict) -> dict:
    """The pooling-variants analysis's options: each model's variant spaces (manifest.json ``pooling_spaces``)."""
    spaces = {name: entry["pooling_spaces"] for name, entry in models.items() if entry.get("pooling_spaces")}
    return {"pooling_variants": {"spaces": spaces}} if spaces else {}
