"""The ``--random-init`` contrast: which model of a run is the random-weights twin of which.

A ``--random-init`` model is named ``<model>+random`` (:class:`speechprobe.models.family.LoadContext`).
Figures that show a model draw its twin beside it whenever the run has both, so effects of the
architecture alone (present in the random twin too) are visible.
"""

from __future__ import annotations

from collections.abc import Iterable

RANDOM_SUFFIX = "+random"


def random_pairs(models: Iterable[str]) -> dict[str, str | None]:
    """Each model to show -> its ``+random`` twin when present (else None), in the given order.

    A twin is folded into its trained model's entry; a random model without its trained model is shown
    on its own (mapped to None).
    """
    models = list(models)
    names = set(models)
    out: dict[str, str | None] = {}
    for m in models:
        if m.endswith(RANDOM_SUFFIX) and m.removesuffix(RANDOM_SUFFIX) in names:
            continue
        out[m] = m + RANDOM_SUFFIX if m + RANDOM_SUFFIX in names else None
    return out
