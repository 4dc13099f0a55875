"""Prompt templates for zero-shot evaluation, selectable by id.

Built-in ids (``--prompts all`` takes every one that applies to the task):

``instruction``  the dataset's own Dynamic-SUPERB ``instruction`` column, per clip, verbatim (it already
                 names the options); a clip without one (every task but Dynamic-SUPERB's) gets the task's
                 instruction in Dynamic-SUPERB's form: ``{question} The answer could be {labels_or}.``;
``choose``       the label list: ``Choose one of: {labels}.``;
``question``     a short question about the task's cue, with the options in brackets:
                 ``{question} ({labels_or})`` (e.g. "What emotion does the speaker express? (neutral,
                 happy, sad or angry)");

and user templates: ``file:PATH`` (or a path ending in ``.txt``/``.json``). A ``.txt`` file holds one
template (its whole text), id ``file-<stem>``; a ``.json`` file maps ids to templates
(``{"terse": "Label: {labels}"}``), ids ``file-<key>``.

Slots: ``{labels}`` (``a, b, c``), ``{labels_or}`` (``a, b or c``), ``{question}`` (the task's short
question), ``{task}`` (the task name, spaced). Literal braces are doubled (``{{``). ``generate`` mode
needs the options in the prompt, so there a template must have ``{labels}`` or ``{labels_or}``;
``likelihood`` mode scores every label itself and takes any template.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

SLOTS = ("labels", "labels_or", "question", "task")
LABEL_SLOTS = ("labels", "labels_or")
BUILTIN_IDS = ("instruction", "choose", "question")
MODES_NEEDING_LABELS = ("generate",)

#: Short questions per task (the ``question`` template); other tasks get their registered ``Task.question``
#: (the Dynamic-SUPERB tasks), else ``What is the <task> ...?``
QUESTIONS: dict[str, str] = {
    "accent": "Which accent does the speaker have?",
    "emotion": "What emotion does the speaker express?",
    "stress": "Which syllable of the word is stressed: one, two or three?",
    "emphasis": "Which word of the six-word sentence is stressed, counting from 0?",
    "speaker_count": "How many people are speaking?",
    "speaker_count_ext": "How many people are speaking?",
    "gender": "Is the speaker male or female?",
    "distance": "How far is the speaker from the microphone?",
    "multi_speaker": "Is more than one person speaking at once?",
    "dialogue_act": "Is this a question, a statement or a command?",
    "spoof": "Is this recording authentic or spoofed?",
    "speaker_id": "Which voice is speaking?",
    "spoken_word": "Which word is spoken?",
    "language": "Which language is spoken?",
}


@dataclass(frozen=True)
class PromptTemplate:
    """A prompt template; ``per_clip`` ones (the dataset instruction) take their text from each clip that has
    one, else this template's."""

    id: str
    text: str
    origin: str  # "builtin", "dataset" or the file it came from
    per_clip: bool = False

    def slots(self) -> set[str]:
        return _slots(self.text, self.id)

    def has_labels(self) -> bool:
        return self.per_clip or bool(self.slots() & set(LABEL_SLOTS))

    def render(self, task: str, labels: Sequence[str], instruction: str | None = None) -> str:
        """The prompt text for one clip of ``task``."""
        if self.per_clip and instruction:
            return instruction.strip()
        return self.text.format(**slot_values(task, labels)).strip()


def _slots(text: str, where: str) -> set[str]:
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
    except ValueError as e:
        raise ConfigError(
            f"prompt {where!r}: malformed template ({e}); write literal braces as {{{{ and }}}}"
        ) from None
    for f in fields:
        name = f.split(".")[0].split("[")[0]
        if name not in SLOTS:
            raise ConfigError(
                f"prompt {where!r}: unknown slot {{{f}}}; templates may use {', '.join('{' + s + '}' for s in SLOTS)}"
            )
    return fields


def join_or(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def slot_values(task: str, labels: Sequence[str]) -> dict[str, str]:
    spaced = task.replace("_", " ").replace("-", " ")
    return {
        "labels": ", ".join(labels),
        "labels_or": join_or(labels),
        "question": QUESTIONS.get(task) or _registered_question(task) or f"What is the {spaced} of this recording?",
        "task": spaced,
    }


def _registered_question(task: str) -> str:
    """A registered task's own short question (``Task.question``; the Dynamic-SUPERB tasks declare one)."""
    from ..data.registry import registered_tasks

    known = registered_tasks().get(task)
    return getattr(known, "question", "") if known is not None else ""


BUILTIN: dict[str, PromptTemplate] = {
    "instruction": PromptTemplate(
        "instruction", "{question} The answer could be {labels_or}.", "dataset, else the task's", per_clip=True
    ),
    "choose": PromptTemplate("choose", "Choose one of: {labels}.", "builtin"),
    "question": PromptTemplate("question", "{question} ({labels_or})", "builtin"),
}


def load_template_file(path: str | Path) -> list[PromptTemplate]:
    """User templates from a ``.txt`` (one template) or ``.json`` (id -> template) file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"prompt file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            entries = json.loads(text)
        except ValueError as e:
            raise ConfigError(f"prompt file {path}: not valid JSON ({e})") from None
        if not isinstance(entries, dict) or not entries or not all(isinstance(v, str) for v in entries.values()):
            raise ConfigError(
                f'prompt file {path}: expected a JSON object of id -> template, e.g. {{"terse": "{{labels}}?"}}'
            )
        out = [PromptTemplate(f"file-{_slug(k)}", v.strip(), str(path)) for k, v in entries.items()]
    else:
        if not text.strip():
            raise ConfigError(f"prompt file {path} is empty")
        out = [PromptTemplate(f"file-{_slug(path.stem)}", text.strip(), str(path))]
    for t in out:
        t.slots()  # malformed or unknown slots fail here, naming the file
    return out


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in str(name)) or "prompt"


def resolve_prompts(specs: Iterable[str]) -> list[PromptTemplate]:
    """Templates for ``--prompts`` entries: ``all``, built-in ids, ``file:PATH`` or a template file path."""
    out: dict[str, PromptTemplate] = {}
    for spec in specs:
        spec = spec.strip()
        if not spec:
            continue
        if spec == "all":
            out.update(BUILTIN)
        elif spec in BUILTIN:
            out[spec] = BUILTIN[spec]
        elif spec.startswith("file:") or spec.lower().endswith((".txt", ".json")):
            for t in load_template_file(spec.removeprefix("file:")):
                out[t.id] = t
        else:
            raise ConfigError(
                f"unknown prompt {spec!r}; use all, {', '.join(BUILTIN_IDS)}, "
                "or file:PATH (a .txt template or .json id -> template)"
            )
    if not out:
        raise ConfigError("no prompts given; pass --prompts all (or choose, question, instruction, file:PATH)")
    return list(out.values())


def check_template(template: PromptTemplate, modes: Iterable[str]) -> None:
    """Fail with a clear message when ``template`` lacks a label slot that one of ``modes`` needs."""
    template.slots()
    needing = [m for m in modes if m in MODES_NEEDING_LABELS]
    if needing and not template.has_labels():
        raise ConfigError(
            f"prompt {template.id!r} ({template.origin}) has no {{labels}} slot, which {needing[0]} mode needs: "
            f"the model must see the options to answer in words. Add {{labels}} (a, b, c) or {{labels_or}} "
            f"(a, b or c) to the template, e.g. {template.text.rstrip()!r} + ' Options: {{labels}}.', "
            f"or use it in likelihood mode only"
        )
