"""The analyses a run can choose, in the order they run, and the choice itself.

Plugging in a new analysis is one line here, ``register(<module>.ANALYSIS)`` (the contract:
:mod:`.contract`), or, from another package, an entry point in the ``speechprobe.analyses`` group
pointing at an :class:`~.contract.Analysis` (or a list of them), with no speechprobe file edited.

:func:`choose` decides which run: each analysis's flag (``--mdl/--no-mdl``, ...) or default, then the
``--analyses`` edits: ``all``, ``none``, ``+name`` (on), ``-name`` (off), or bare names (exactly those).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import fields
from functools import cache
from typing import Any

from ..config import AnalysisSwitches
from ..errors import ConfigError
from ..plugins import declared
from . import (
    cues,
    decoder_layers,
    embeddings,
    erasure,
    fingerprints,
    ladder,
    layer_weights,
    mdl,
    pooling_variants,
    selection,
    similarity,
)
from .attribution import ANALYSIS as ATTRIBUTION
from .contract import Analysis, register, registered_so_far
from .mixing import ANALYSIS as CONTEXT_MIXING

ENTRY_POINT_GROUP = "speechprobe.analyses"

for _module in (selection, embeddings, cues, erasure, layer_weights, mdl, fingerprints, similarity):
    register(_module.ANALYSIS)
register(pooling_variants.ANALYSIS)  # opt-in (--pooling-variants): stored at extraction
register(ladder.ANALYSIS)  # the fine-tuning ladder (reads finetune.csv; run by `speechprobe finetune`)
for _analysis in (CONTEXT_MIXING, ATTRIBUTION):  # opt-in: --analyses +context_mixing,+attribution
    register(_analysis)
register(decoder_layers.ANALYSIS)  # opt-in: reads the decoder states of the zero-shot stage


@cache
def _load_plugins() -> None:
    """Every installed plugin's analyses (entry points in :data:`ENTRY_POINT_GROUP`), once."""
    for analysis in declared(ENTRY_POINT_GROUP, "analysis", Analysis):
        register(analysis)


def registered() -> list[Analysis]:
    """Every registered analysis (the built-in ones above, then plugins), each after those it reads."""
    _load_plugins()
    return ordered(registered_so_far())


def ordered(analyses: Iterable[Analysis]) -> list[Analysis]:
    """``analyses`` in registration order, each moved after those of them it reads (``after``)."""
    todo, out = list(analyses), []
    while todo:
        names = {a.name for a in todo}
        ready = next((a for a in todo if not names & set(a.after)), None)
        if ready is None:
            raise ConfigError(f"analyses {', '.join(sorted(names))} each wait for another (a cycle in `after`)")
        todo.remove(ready)
        out.append(ready)
    return out


def by_name(names: Iterable[str | Analysis]) -> list[Analysis]:
    """The registered analyses of ``names`` (an Analysis passes as itself), in run order."""
    known, names = {a.name: a for a in registered()}, list(names)
    choose({}, ",".join(n for n in names if isinstance(n, str)))  # an unknown name: a one-line error
    return ordered(known[n] if isinstance(n, str) else n for n in names)


def choose(settings: Mapping[str, Any], edits: str = "") -> dict[str, bool]:
    """Analysis name -> on, from the run ``settings`` (each analysis's flag, else the run's default for it;
    a count such as ``permutations`` is on when above 0) or the analysis's own default (one without a
    flag), then the ``edits`` (see the module docstring)."""
    settings = {**{f.name: f.default for f in fields(AnalysisSwitches)}, **settings}
    on = {a.name: bool(settings.get(a.flag)) if a.flag in settings else a.default for a in registered()}
    items = [item.strip() for item in str(edits or "").split(",") if item.strip()]
    if any(item == "none" or item[0] not in "+-" and item != "all" for item in items):
        on = dict.fromkeys(on, False)
    for item in items:
        if item == "all":
            on = dict.fromkeys(on, True)
            continue
        name = item.lstrip("+-")
        if name not in on and item != "none":
            raise ConfigError(f"--analyses {item}: choose from all, none, {', '.join(on)} (each with + or -)")
        if item != "none":
            on[name] = not item.startswith("-")
    return on


def settle(switches: Any) -> list[Analysis]:
    """Apply ``switches.chosen`` (the ``--analyses`` edits) to a run's analysis switches
    (:class:`speechprobe.config.AnalysisSwitches`): each chosen analysis's flag is set (a count back to its
    default when it was 0), and ``chosen`` keeps only the edits of analyses without a flag (``+name``/``-name``
    against their defaults), so the stored settings read the same however they were spelt. Returns the
    analyses that run, in run order."""
    on = choose(vars(switches), switches.chosen)
    defaults = {f.name: f.default for f in fields(switches)}
    for analysis in registered():
        value = getattr(switches, analysis.flag) if analysis.flag in defaults else None
        if analysis.flag in defaults and bool(value) != on[analysis.name]:
            setattr(switches, analysis.flag, (defaults[analysis.flag] or True) if on[analysis.name] else type(value)(0))
    switches.chosen = ",".join(
        f"{'+' if on[a.name] else '-'}{a.name}"
        for a in registered()
        if a.flag not in defaults and on[a.name] != a.default
    )
    return [a for a in registered() if on[a.name]]


def describe() -> str:
    """One line per registered analysis: name, switch and default, cost, and what its numbers are."""
    lines = []
    for a in registered():
        switch = f"--{a.flag.replace('_', '-')}" if a.flag else ("on" if a.default else "off") + " by default"
        lines.append(f"{a.name} ({switch}; {a.cost}): {re.split(r'(?<=[.?!]) ', a.description, maxsplit=1)[0]}")
    return "\n".join(lines)
