"""The cue analyses of a finished run in one call: acoustic-cue probes, cue erasure and the all-layers
reference (registered task-scope analyses, :mod:`.cues`, :mod:`.erasure`, :mod:`.layer_weights`).

:func:`run_cue_analyses` is what ``speechprobe run`` / ``probe`` / ``demo`` call after the probes (before
the layer analyses, whose depth fingerprints read cues.csv). It runs the chosen analyses through the
analysis plan (a task already done with the same inputs and options is reused), then hands each one's
figures (with their report section), findings and notes to the report in ``analyses/<name>.json``.
"""

from __future__ import annotations

from pathlib import Path

from . import cues, erasure, layer_weights
from .inputs import FeatureLoader
from .outputs import AnalysisOutput, FigureNote
from .plan import analyse_features

SECTIONS = {"cues": "Acoustic cues", "erasure": "Cue erasure", "layer_weights": "All-layers reference"}
FINDINGS = {
    "cues": cues.cue_findings,
    "erasure": erasure.erasure_findings,
    "layer_weights": layer_weights.reference_findings,
}
ANALYSES = {"cues": cues.ANALYSIS, "erasure": erasure.ANALYSIS, "layer_weights": layer_weights.ANALYSIS}


def run_cue_analyses(
    run_dir: Path,
    load_features: FeatureLoader | None = None,
    *,
    cue_probes: bool = True,
    erasure: bool = False,
    layer_weights: bool = True,
    targets: str | None = None,
    n_jobs: int = 1,
    options: dict | None = None,
    reuse: bool = True,
    progress: bool = False,
) -> list[AnalysisOutput]:
    """Run the chosen cue analyses on ``run_dir`` (``load_features(model, hashes)`` defaults to its feature
    store, the acoustic cues included) and write their ``analyses/<name>.json``; returns those outputs.

    ``targets`` names the stored cues' feature space (part of the options, so new cues recompute);
    ``options`` adds per-analysis settings (e.g. ``{"erasure": {"probe": "linear"}}``); ``progress``: a bar per
    analysis and task, and one per layer (cue probes, erasure) or model (all-layers) inside it.
    """
    chosen = {"cues": cue_probes, "erasure": erasure, "layer_weights": layer_weights}
    merged = {name: {**(options or {}).get(name, {}), "enabled": on} for name, on in chosen.items()}
    for name in ("cues", "erasure"):
        merged[name].setdefault("targets", targets)
    analyses = [ANALYSES[name] for name, on in chosen.items() if on]
    if not analyses:
        return []
    run_dir = Path(run_dir)
    info = analyse_features(
        run_dir, load_features, analyses=analyses, options=merged, n_jobs=n_jobs, reuse=reuse, progress=progress
    )
    outputs = []
    for analysis in analyses:
        name = analysis.name
        entries = (info.get("done") or {}).get(name, {}).values()
        captions = {p: text for e in entries for p, text in e.get("captions", {}).items() if (run_dir / p).is_file()}
        out = AnalysisOutput(
            analysis=name,
            params=merged[name],
            tables=list(analysis.tables),
            figures=[FigureNote(path, text, SECTIONS[name]) for path, text in sorted(captions.items())],
            findings=FINDINGS[name](run_dir),
            notes=[n for n in info.get("notes", []) if n.startswith(f"{name} ")],
            seconds=float((info.get("seconds") or {}).get(name, 0.0)),
        )
        out.write(run_dir)
        outputs.append(out)
    return outputs
