"""Which analyses run beside the probes: the ``analyses`` group of the run configuration (``config.RunConfig``).

Each switch is a setting (``settings.setting``): its default, help text, flag and check declared once.
"""

from __future__ import annotations

from dataclasses import dataclass

from .settings import positive, setting


@dataclass
class AnalysisSwitches:
    """Which analyses run beside the probes (each one's module is named in its help)."""

    permutations: int = setting(
        1000,
        "Label shuffles for the selection-aware test of each best layer and the empirical chance (0: skip). "
        "KNN re-votes cheaply; a refitted primary probe (mlp, linear) fits once per shuffle: lower it there.",
        check=positive(0, integer=True),
    )
    embeddings: bool = setting(True, "t-SNE/UMAP of the first, best and last layers.")
    report: bool = setting(True, "Write report.html at the end.")
    cue_probes: bool = setting(True, "Ridge probes of acoustic cues per layer (analysis/cues.py; cheap).")
    erasure: bool = setting(
        False, "LEACE-erase each cue group and re-probe the tasks (analysis/erasure.py; a probe fit per group)."
    )
    layer_weights: bool = setting(True, "Learned weighting of all layers vs the best single layer.")
    fingerprints: bool = setting(True, "Depth fingerprints: 90 % and peak depth per model and task.")
    similarity: bool = setting(True, "Layer similarity: debiased CKA and mutual k-NN between all layers.")
    mdl: bool = setting(True, "MDL probes: online code length and compression per layer.")
    pooling_variants: bool = setting(False, "Edge (first/last k frames) and max pooling vs the mean per layer.")
    edge_ms: float | None = setting(None, "Pooling variants: edge window in ms [default: 100].", check=positive())
    # the attention analyses' sizes (None: the analysis's own default, in brackets)
    mixing_clips: int | None = setting(None, "Clips per task for context mixing [6].", check=positive(1, integer=True))
    mixing_frames: int | None = setting(
        None, "Value zeroing on a stratified sample of this many query frames per clip [every frame].",
        check=positive(2, integer=True),
    )  # fmt: skip
    mixing_seconds: float | None = setting(
        None, "Context mixing on each clip's centred window of at most this many seconds [2].", check=positive()
    )
    attribution_clips: int | None = setting(
        None, "Clips per task for attribution [4].", check=positive(1, integer=True)
    )
    attribution_steps: int | None = setting(None, "Integrated-gradients steps [8].", check=positive(2, integer=True))
    attribution_layers: int | None = setting(
        None, "Layers attribution explains: the best and evenly spaced others [3].", check=positive(1, integer=True)
    )
    # --analyses edits of analyses without a flag above (speechprobe.analysis.registry.settle; its option is
    # declared by the commands, which check it against the registry)
    chosen: str = setting("", name="analyses")
