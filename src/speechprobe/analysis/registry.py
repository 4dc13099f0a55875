"""The analyses every run gets, in the order they run. Plugging in a new analysis is one line here:
``register(<module>.ANALYSIS)``, or ``register(Analysis(name=..., compute=<pure function>, tables=...))``
(the contract: :mod:`.contract`)."""

from __future__ import annotations

from . import cues, embeddings, erasure, layer_weights, mdl, selection
from .contract import Analysis, register, registered_so_far

register(selection.ANALYSIS)
register(embeddings.ANALYSIS)
register(cues.ANALYSIS)
register(erasure.ANALYSIS)
register(layer_weights.ANALYSIS)
register(mdl.ANALYSIS)


def registered() -> list[Analysis]:
    """Every registered analysis (the built-in ones above first), in registration order."""
    return registered_so_far()
