"""Zero-shot modes, declared once: what each asks the backend and how its answer becomes label scores.

A mode asks for one of three kinds of answer, computed once per (clip, prompt) and shared by every mode
that asks for it (one response-cache record): ``likelihood`` (each phrasing's summed log-probability and
token count), ``generate`` (greedy text, parsed onto the label set) or ``native`` (a model's own head). A
likelihood mode turns a clip's record into label scores (:class:`Evidence`); the prediction is their argmax.
Only the modes asked for (``--mode``) are written; ``all`` asks every registered mode.

Adding a mode is one :func:`register` call (e.g. in a plugin module imported before the run): it is accepted
by ``--mode``, its rows land in results.csv and the per-clip responses as ``zeroshot:<mode>:<prompt>``, and
the report's zero-shot tables list it (after the modes of ``link.MODE_PREFERENCE``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .calibration import calibrated, label_log_shares

KINDS = ("likelihood", "generate", "native")  # what a backend computes (engines.answer_batch)


@dataclass(frozen=True)
class Evidence:
    """What a likelihood mode scores one clip from: ``per_token`` and ``raw`` (labels,) label scores (log-mean-exp
    over each label's phrasings of the length-normalised and summed log-probabilities), the prompt's raw
    label scores on the content-free inputs (inputs, labels), batch calibration's log prior (labels,) and prior
    matching's log class weights (labels,), each None where not computed."""

    per_token: np.ndarray
    raw: np.ndarray
    content_free: np.ndarray | None = None
    prior: np.ndarray | None = None
    weights: np.ndarray | None = None


@dataclass(frozen=True)
class Mode:
    """One zero-shot mode: its name, the answer kind it asks for, and (likelihood modes) its label scores
    (None where its evidence is missing); ``content_free``: it needs the content-free inputs scored."""

    name: str
    asks: str
    score: Callable[[Evidence], np.ndarray | None] | None = None
    content_free: bool = False
    help: str = ""


_MODES: dict[str, Mode] = {}


def register(mode: Mode) -> Mode:
    """Declare a mode (its rows come in registration order); a name already taken is refused."""
    if mode.asks not in KINDS:
        raise ValueError(f"zero-shot mode {mode.name!r} asks for {mode.asks!r}; one of {', '.join(KINDS)}")
    if (mode.asks == "likelihood") != (mode.score is not None):
        raise ValueError(f"zero-shot mode {mode.name!r}: likelihood modes, and only they, have a score")
    if mode.name in _MODES or mode.name == "all":
        raise ValueError(f"zero-shot mode {mode.name!r} is already registered")
    _MODES[mode.name] = mode
    return mode


def modes() -> dict[str, Mode]:
    """Every registered mode, in registration order."""
    return dict(_MODES)


def resolve_modes(names: Iterable[str]) -> list[Mode]:
    """The modes of ``--mode`` entries (``all``: every one), in registration order; unknown names refused."""
    names = [n.strip() for n in names if n.strip()]
    unknown = [n for n in names if n != "all" and n not in _MODES]
    if unknown or not names:
        raise ConfigError(f"--mode {','.join(unknown or ['(none)'])}: choose all or from {', '.join(_MODES)}")
    return [m for m in _MODES.values() if "all" in names or m.name in names]


def _cc(e: Evidence) -> np.ndarray | None:
    return None if e.content_free is None else calibrated(e.raw, e.content_free)["likelihood_cc"]


def _pmi(e: Evidence) -> np.ndarray | None:
    return None if e.content_free is None else calibrated(e.raw, e.content_free)["likelihood_pmi"]


def _bc(e: Evidence) -> np.ndarray | None:
    return None if e.prior is None else label_log_shares(e.raw) - e.prior


def _pm(e: Evidence) -> np.ndarray | None:
    return None if e.weights is None else label_log_shares(e.raw + e.weights)


register(Mode("likelihood", "likelihood", lambda e: e.per_token, help="per-token (length-normalised) likelihood"))
register(Mode("likelihood_raw", "likelihood", lambda e: e.raw, help="summed log-probability"))
register(Mode("likelihood_cc", "likelihood", _cc, True, "contextual calibration on content-free inputs"))
register(Mode("likelihood_pmi", "likelihood", _pmi, True, "domain-conditional PMI on content-free inputs"))
register(Mode("likelihood_bc", "likelihood", _bc, help="batch calibration on the task's clips"))
register(Mode("likelihood_pm", "likelihood", _pm, help="prior matching (EM) on the task's clips"))
register(Mode("generate", "generate", help="greedy text, parsed onto the labels"))
register(Mode("native", "native", help="a model's own head (no prompt)"))

BUILTIN_MODES = tuple(_MODES)  # the built-in modes, before any plugin registers more
