"""Native heads: a model's own answer to a task, without a prompt (the zero-shot mode ``native``).

A backend lists its heads (``native_heads()``: head -> {spelling: target}); this module decides which
head, if any, answers a task, by mapping every label onto one target of the head:

``language-id``  a language-identification head (Whisper multilingual). A label maps through the
                 head's own language table (ISO code, English name or alias, lower-cased): the label
                 itself, its base code (``en-029`` -> ``en``), its display name or a phrasing. Applies
                 when every label maps to a *different* language (so ``accent``, all English, does not).
``no-speech``    a speech / no-speech detector (Whisper's ``<|nocaptions|>`` probability). Applies to a
                 two-label task with one label meaning speech and the other its absence (silence,
                 noise, music, ...), by the words in ``SPEECH`` and ``NO_SPEECH``.

Heads that exist per family (docs/zeroshot.md): Whisper multilingual both, Whisper English-only
``no-speech`` only; SeamlessM4T v2 and Qwen2-Audio none (SeamlessM4T's target-language token is given,
never predicted; Qwen2-Audio answers every task through its prompt).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..data.tasks import Task

LANGUAGE_ID = "language-id"
NO_SPEECH = "no-speech"

SPEECH = ("speech", "speaking", "talking", "voice", "voiced", "speech present", "has speech")
NO_SPEECH_WORDS = (
    "no speech",
    "non speech",
    "nonspeech",
    "silence",
    "silent",
    "noise",
    "music",
    "background",
    "no voice",
    "unvoiced",
)


def _spellings(task: Task, label: str) -> list[str]:
    """What a label may be called: itself, its display name and phrasings, lower-cased, ``_``/``-`` as spaces too."""
    out = []
    for form in (label, task.display(label), *task.phrasings(label)):
        low = form.strip().lower()
        out += [low, re.sub(r"[_-]+", " ", low)]
    return list(dict.fromkeys(out))


def language_targets(task: Task, table: Mapping[str, str]) -> tuple[dict[str, str] | None, str]:
    """Each label's language code through ``table`` (spelling -> code), or None and why not."""
    targets: dict[str, str] = {}
    for label in task.labels:
        forms = _spellings(task, str(label))
        forms += [re.split(r"[-_]", f)[0] for f in forms]  # en-029 -> en, pt_br -> pt
        code = next((table[f] for f in forms if f in table), None)
        if code is None:
            return None, f"label {label!r} is not a language of the model's language table"
        targets[str(label)] = code
    if len(set(targets.values())) < len(targets):
        return None, "two labels map to the same language"
    return targets, ""


def speech_targets(task: Task) -> tuple[dict[str, str] | None, str]:
    """``speech`` / ``no-speech`` per label of a two-label speech-detection task, or None and why not."""
    if len(task.labels) != 2:
        return None, "not a two-label speech / no-speech task"
    targets = {}
    for label in task.labels:
        forms = _spellings(task, str(label))
        if any(f in NO_SPEECH_WORDS for f in forms):
            targets[str(label)] = "no-speech"
        elif any(f in SPEECH for f in forms):
            targets[str(label)] = "speech"
    if sorted(targets.values()) != ["no-speech", "speech"]:
        return None, "the labels do not name speech and its absence"
    return targets, ""


def native_targets(heads: Mapping[str, Mapping[str, str]], task: Task) -> tuple[dict[str, dict[str, str]], dict]:
    """The heads of ``heads`` that answer ``task`` (head -> label -> target) and, for the others, why not."""
    found: dict[str, dict[str, str]] = {}
    why: dict[str, str] = {}
    for head, table in heads.items():
        if head == LANGUAGE_ID:
            targets, reason = language_targets(task, table)
        elif head == NO_SPEECH:
            targets, reason = speech_targets(task)
        else:  # pragma: no cover - a backend with a head this module does not know
            targets, reason = None, "unknown head"
        if targets:
            found[head] = targets
        else:
            why[head] = reason
    return found, why
