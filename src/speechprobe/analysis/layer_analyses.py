"""The layer analyses of a finished run in one call: depth fingerprints, layer similarity and MDL probes.

:func:`run_layer_analyses` is what ``speechprobe run`` / ``probe`` / ``demo`` call after the probes; each
analysis that fails leaves a note for the report (``analyses/<name>.json``) and the others go on.
MDL goes through the analysis plan (:mod:`.plan`; a task already coded with the same inputs is
reused), similarity and fingerprints are run-level (see docs/analyses.md).
"""

from __future__ import annotations

import logging
from pathlib import Path

from tqdm.auto import tqdm

from ..errors import SpeechprobeError
from .fingerprints import depth_fingerprints
from .inputs import FeatureLoader
from .mdl import ANALYSIS, DEFAULT_ORDERS, mdl_summary
from .outputs import AnalysisOutput
from .plan import analyse_features
from .similarity import layer_similarity

log = logging.getLogger("speechprobe")


def mdl_probes(
    run_dir: Path,
    load_features: FeatureLoader | None = None,
    n_orders: int = DEFAULT_ORDERS,
    device: str | None = None,
    reuse: bool = True,
    progress: bool = False,
) -> AnalysisOutput:
    """Online code length and compression for every (model, task, layer) of a finished run, through the
    analysis plan (a task already done with the same inputs is reused): ``mdl.csv``,
    ``figures/mdl_<task>.png`` and the findings in ``analyses/mdl.json`` (see :mod:`.mdl`). The probes
    run on ``device`` (torch; a GPU gives the same codes up to float rounding)."""
    options = {"mdl": {"enabled": True, "n_orders": n_orders}}
    info = analyse_features(
        run_dir, load_features, analyses=[ANALYSIS], reuse=reuse, options=options, device=device, progress=progress
    )
    output = mdl_summary(run_dir)
    output.notes = [n for n in info["notes"] if n.startswith("mdl ")]
    output.seconds = float(info["seconds"].get("mdl", 0.0))
    output.write(run_dir)
    return output


def run_layer_analyses(
    run_dir: Path,
    load_features: FeatureLoader | None = None,
    *,
    fingerprints: bool = True,
    similarity: bool = True,
    mdl: bool = True,
    device: str | None = None,
    progress: bool = False,
) -> list[AnalysisOutput]:
    """The chosen layer analyses of a finished run, in report order; ``load_features(model, hashes)``
    defaults to the run's feature store. ``progress``: a bar over the analyses (with MDL's own bar over
    its tasks), since similarity and MDL take seconds to minutes."""
    steps = (
        ("fingerprints", fingerprints, lambda: depth_fingerprints(run_dir)),
        ("similarity", similarity, lambda: layer_similarity(run_dir, load_features)),
        ("mdl", mdl, lambda: mdl_probes(run_dir, load_features, device=device, progress=progress)),
    )
    chosen = [(name, step) for name, enabled, step in steps if enabled]
    out = []
    for name, step in tqdm(chosen, desc="layer analyses", unit="analysis", disable=not progress):
        try:
            out.append(step())
        except SpeechprobeError as e:
            log.warning("%s analysis skipped: %s", name, e)
            skipped = AnalysisOutput(analysis=name, notes=[f"skipped: {e}"])
            skipped.write(run_dir)
            out.append(skipped)
    return out
