"""Per-clip response rows and result rows of one (model, task), from the answers' records.

One record per (clip, template or head, mode) comes back from the engine or the cache:
``generate`` a text, parsed onto the label set; ``likelihood`` every phrasing's summed log-probability
and token count, aggregated per label (:class:`.calibration.Verbalised`) into the evidence each likelihood
mode asked for scores (:mod:`.modes`: with the prompt's content-free scores and the label distribution of all
clips asked the same template); ``native`` a head's score per label. Each becomes a response row (``RESPONSE_COLUMNS``;
``scores`` is a JSON object label -> score) and the rows of one (mode, prompt) give the result rows.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.tasks import Task, load_verbalisers
from ..errors import ConfigError
from ..rundir import RESULT_COLUMNS
from .calibration import Verbalised, batch_prior, prior_match
from .diagnostics import answer_diagnostics
from .modes import Evidence, Mode
from .parser import AnswerParser
from .scoring import zeroshot_metrics

FOLD = 0  # zero-shot has no training folds: one evaluation over every clip, written as fold 0
RESPONSE_COLUMNS = [
    "id",
    "content_hash",
    "label",
    "group",
    "mode",
    "prompt_id",
    "prompt",
    "answer",
    "prediction",
    "parse_rule",
    "correct",
    "scores",
]
CONTENT_FREE_COLUMNS = ["prompt_id", "prompt", "input", "label", "score_raw", "p_label"]


def probe_name(mode: str, prompt_id: str) -> str:
    return f"zeroshot:{mode}:{prompt_id}"


def with_verbalisers(task: Task, files: Mapping[str, str]) -> Task:
    """``task`` with the display names and verbalisers of ``files[task.name]`` (a JSON file), if any."""
    path = files.get(task.name)
    if not path:
        return task
    display, phrasings = load_verbalisers(path, [str(x) for x in task.labels])
    return dataclasses.replace(
        task, display_names={**task.display_names, **display}, verbalisers={**task.verbalisers, **phrasings}
    )


def verbalised(task: Task) -> Verbalised:
    """The task's labels and phrasings; a phrasing given to two labels is refused (it cannot tell them apart)."""
    labels = tuple(str(x) for x in task.labels)
    forms = tuple(task.phrasings(x) for x in labels)
    seen: dict[str, str] = {}
    for label, phrasings in zip(labels, forms):
        for v in phrasings:
            other = seen.setdefault(v.strip().casefold(), label)
            if other != label:
                raise ConfigError(f"task {task.name}: the phrasing {v!r} is given to both {other!r} and {label!r}")
    return Verbalised(labels, forms)


def response_rows(
    meta: Mapping,
    tid: str,
    mode: str,
    rec: Mapping,
    words: Verbalised,
    parser: AnswerParser,
    content_free: Mapping[tuple[str, str], np.ndarray],
    priors: Mapping[str, np.ndarray],
    modes: Sequence[Mode],
    weights: Mapping[str, np.ndarray] | None = None,
) -> list[dict]:
    """The response rows of one record (``meta``: the clip's id, content_hash, label and group), one per mode
    of ``modes`` that asks for its kind; ``content_free``: raw label scores per (template, prompt) on the
    content-free inputs; ``priors``: batch calibration's log prior per template (:func:`batch_priors`);
    ``weights``: prior matching's log class weights per template (:func:`matched_weights`)."""
    common = {**{k: meta[k] for k in ("id", "content_hash", "label", "group")}, "prompt_id": tid}
    common["prompt"] = rec.get("prompt")
    if mode == "generate":
        parsed = parser(rec["text"])
        row = {"mode": mode, "answer": rec["text"], "prediction": parsed.label, "parse_rule": parsed.rule}
        return [{**common, **row, "correct": parsed.label == meta["label"], "scores": None}]
    if mode == "native":
        scored = {"native": np.asarray(rec["scores"], dtype=float)}
    else:
        both = words.likelihoods(rec["raw"], rec["n_tokens"])
        cf = content_free.get((tid, rec.get("prompt")))
        evidence = Evidence(both["likelihood"], both["likelihood_raw"], cf, priors.get(tid), (weights or {}).get(tid))
        scored = {m.name: s for m in modes if m.asks == "likelihood" and (s := m.score(evidence)) is not None}
    out = []
    for name, scores in scored.items():
        pred = words.labels[int(np.argmax(scores))]  # first label on ties
        out.append(
            {
                **common,
                "mode": name,
                "answer": None,
                "prediction": pred,
                "parse_rule": None,
                "correct": pred == meta["label"],
                "scores": json.dumps({lab: round(float(s), 6) for lab, s in zip(words.labels, scores)}),
            }
        )
    return out


def template_scores(entries: Iterable[tuple[Mapping, str, str, Mapping]], words: Verbalised) -> dict[str, np.ndarray]:
    """(clips, labels) raw label scores of each template's likelihood records, in record order."""
    raw: dict[str, list[np.ndarray]] = {}
    for _, tid, mode, rec in entries:
        if mode == "likelihood":
            raw.setdefault(tid, []).append(words.label_scores(rec["raw"]))
    return {tid: np.stack(rows) for tid, rows in raw.items()}


def batch_priors(scores: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Batch calibration's log prior per template: the mean label distribution of its clips (template_scores)."""
    return {tid: batch_prior(table) for tid, table in scores.items()}


def matched_weights(scores: Mapping[str, np.ndarray], target: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Prior matching's log class weights per template, fitted on its clips towards ``target`` (None: uniform)."""
    return {tid: prior_match(table, target) for tid, table in scores.items()}


def target_prior(task: Task, files: Mapping[str, str]) -> np.ndarray | None:
    """The target label distribution of ``files[task.name]`` (JSON ``{label: weight}``, every label, weights > 0),
    normalised, in label order; None (uniform) where the task has none. A bad file is a one-line error naming it."""
    path = files.get(task.name)
    if not path:
        return None
    labels = [str(x) for x in task.labels]
    try:
        given = json.loads(Path(path).read_text(encoding="utf-8"))
        weights = np.array([float(given[x]) for x in labels])
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise ConfigError(
            f"--target-prior {path}: expected {{label: weight}} for every label of {task.name} ({err})"
        ) from None
    if extra := sorted(set(given) - set(labels)):
        raise ConfigError(f"--target-prior {path}: labels not in task {task.name}: {', '.join(extra)}")
    if not (np.isfinite(weights).all() and (weights > 0).all()):
        raise ConfigError(f"--target-prior {path}: every weight must be a positive number")
    return weights / weights.sum()


def content_free_frame(
    words: Verbalised, scores: Mapping[tuple[str, str], np.ndarray], inputs: Sequence[str]
) -> pd.DataFrame:
    """One row per (prompt, content-free input, label): the raw label score and its share of the label set."""
    rows = []
    for (tid, prompt), table in scores.items():
        p = np.exp(table - table.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        for i, name in enumerate(inputs):
            for j, label in enumerate(words.labels):
                rows.append((tid, prompt, name, label, round(float(table[i, j]), 6), round(float(p[i, j]), 6)))
    return pd.DataFrame(rows, columns=CONTENT_FREE_COLUMNS)


def metric_rows(model: str, task: str, responses: pd.DataFrame) -> pd.DataFrame:
    """Per (mode, prompt): Macro-F1 and accuracy, then the parse rate and collapse diagnostics (:mod:`.diagnostics`)."""
    rows = []
    for (mode, tid), group in responses.groupby(["mode", "prompt_id"], sort=True):
        preds = [None if (isinstance(p, float) and np.isnan(p)) or p is None else p for p in group["prediction"]]
        metrics = zeroshot_metrics(list(group["label"]), preds) | answer_diagnostics(list(group["label"]), preds)
        for metric, value in metrics.items():
            rows.append((model, task, pd.NA, probe_name(mode, tid), FOLD, metric, value))
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def parser_synonyms(task: Task, base: Mapping[str, Iterable[str]]) -> dict[str, tuple[str, ...]]:
    """Parser synonyms: ``base`` plus each label's display name and phrasings (what the prompt showed)."""
    out = {}
    for label in task.labels:
        label = str(label)
        extra = [task.display(label), *task.phrasings(label)]
        out[label] = tuple(dict.fromkeys([*base.get(label, ()), *(e for e in extra if e != label)]))
    return out
