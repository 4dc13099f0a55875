"""The zero-shot driver of one (backend, task): what to ask (:class:`Plan`), and the batches streamed
through an engine (:class:`Driver`: cache lookups, submissions, cache writes, records in clip order,
then the content-free inputs' scores for the calibrated modes). The driver holds no model: the same
code serves the local and the Ray engine (:mod:`.engines`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..data.audio import resample
from ..data.clip import Clip, audio_hash
from ..data.tasks import Task
from ..errors import ConfigError
from .cache import ResponseCache, response_key
from .calibration import Verbalised, content_free_inputs
from .decoder_states import STATES, DecoderStore
from .engines import JobKey, LocalAnswers, Questions, RayAnswers
from .modes import Mode
from .native import native_targets
from .prompts import PromptTemplate
from .responses import verbalised
from .scoring import label_tokens


@dataclass
class Plan:
    """What one task asks one backend: labels and phrasings, prompts, native heads, cache-key settings."""

    task: Task
    words: Verbalised
    used: list[PromptTemplate]
    modes: list[Mode]  # the modes asked for (what is written)
    heads: dict[str, dict[str, str]]  # native head -> label -> target
    settings: dict[str, dict]  # "likelihood", "generate", "native:<head>" -> decoding settings (cache key)
    ask: Questions
    states: str | None = None  # the template whose decoder states and logit lens are kept (decoder_states.py)

    def requests(self, clip: Clip) -> Iterator[tuple[str, str, str, str]]:
        """(mode, template id or head, prompt, cache-key mode) of every answer ``clip`` needs."""
        shown = [forms[0] for forms in self.words.phrasings]
        kinds = {m.asks for m in self.modes}
        for t in self.used:
            prompt = t.render(self.task.name, shown, clip.instruction)
            for kind in ("likelihood", "generate"):
                if kind in kinds:
                    yield kind, t.id, prompt, kind
            if t.id == self.states:
                yield STATES, t.id, prompt, STATES
        for head in self.heads:
            yield "native", head, "", f"native:{head}"


def make_plan(
    backend,
    task: Task,
    templates: Sequence[PromptTemplate],
    modes: Sequence[Mode],
    max_new_tokens: int,
    states: str | None = None,
) -> Plan:
    """What ``task`` asks ``backend`` (``states``: the template whose decoder states are kept, if any)."""
    labels = [str(x) for x in task.labels]
    if len(labels) < 2:
        raise ConfigError(f"task {task.name}: zero-shot needs at least 2 labels, got {labels}")
    words = verbalised(task)
    heads = native_targets(backend.native_heads(), task)[0] if any(m.asks == "native" for m in modes) else {}
    base = backend.settings()
    settings = {
        "likelihood": {
            **base,
            "labels": labels,
            "phrasings": [list(f) for f in words.phrasings],
            "scored": "phrasing tokens + end token",
            "label_tokens": label_tokens(backend, words.flat),
        },
        "generate": {**base, "max_new_tokens": max_new_tokens, "decoding": "greedy"},
        **{f"native:{h}": {**base, "head": h, "targets": [t[x] for x in labels]} for h, t in heads.items()},
    }
    ask = Questions(words.flat, {h: tuple(t[x] for x in labels) for h, t in heads.items()}, max_new_tokens)
    return Plan(task, words, list(templates), list(modes), heads, settings, ask, states)


@dataclass
class Batch:
    """One batch on the driver: its clips, the answers found so far and the answers it waits for."""

    clips: list[Clip]
    found: dict[tuple[int, str, str], dict] = field(default_factory=dict)  # (clip, template, mode) -> record
    jobs: dict[JobKey, list[tuple[int, str, str]]] = field(default_factory=dict)  # -> (clip, prompt, key)
    later: list[tuple[int, str, str, str, str]] = field(default_factory=list)  # (clip, template, mode, prompt, key)
    done: bool = False


class Driver:
    """Streams a task's batches through an engine: cache lookups, submissions, cache writes, and the
    records in clip order (``assembled``: clip metadata, template or head, mode, record).

    An answer whose key an earlier batch still in flight will write is read back once that batch is in,
    as a cache hit, exactly as when batches run one after the other.
    """

    def __init__(
        self,
        backend,
        plan: Plan,
        store: ResponseCache,
        answers: LocalAnswers | RayAnswers,
        decoder: DecoderStore | None = None,
    ) -> None:
        self.backend, self.plan, self.store, self.answers = backend, plan, store, answers
        self.decoder = decoder  # where the decoder states go (the feature store), when the plan keeps them
        self.count = dict.fromkeys(("missing_instruction", "computed", "cached", "encoded", "truncated"), 0)
        self.window: deque[Batch] = deque()  # batches not yet assembled, in clip order
        self.pending: set[str] = set()  # keys of answers in flight
        self.assembled: list[tuple[dict, str, str, dict]] = []

    def key(self, prompt: str, clip_hash: str, key_mode: str) -> str:
        b = self.backend
        return response_key(b.name, b.fingerprint, prompt, clip_hash, key_mode, self.plan.settings[key_mode])

    def add(self, clips: list[Clip]) -> None:
        batch = Batch(clips)
        for i, clip in enumerate(clips):
            if not clip.instruction and any(t.per_clip for t in self.plan.used):
                self.count["missing_instruction"] += 1
            for mode, tid, prompt, key_mode in self.plan.requests(clip):
                if mode == STATES:  # kept in the feature store, by the clip's content
                    if self.decoder is not None and not self.decoder.has(prompt, clip.content_hash):
                        batch.jobs.setdefault((mode, tid), []).append((i, prompt, clip.content_hash))
                    continue
                key = self.key(prompt, clip.content_hash, key_mode)
                if key in self.pending:
                    batch.later.append((i, tid, mode, prompt, key))
                elif (hit := self.store.get(key)) is not None:
                    batch.found[(i, tid, mode)] = {**hit, "prompt": prompt}
                    self.count["cached"] += 1
                else:
                    batch.jobs.setdefault((mode, tid), []).append((i, prompt, key))
        self.submit(batch, [resample(c.audio, c.sample_rate, self.backend.sample_rate) for c in clips])
        self.assemble()
        while len(self.window) >= self.answers.capacity:  # bounded: the head batch is still in flight
            self.receive()
            self.assemble()

    def submit(self, batch: Batch, audios: list[np.ndarray]) -> None:
        """Send the clips ``batch`` still needs (re-indexed); a batch with nothing to compute is done."""
        if batch.jobs:
            need = sorted({i for items in batch.jobs.values() for i, _, _ in items})
            row = {i: r for r, i in enumerate(need)}
            jobs = {job: [(row[i], p) for i, p, _ in items] for job, items in batch.jobs.items()}
            self.answers.submit(batch, [audios[i] for i in need], jobs, self.plan.ask)
            answers = {job: items for job, items in batch.jobs.items() if job[0] != STATES}
            self.pending.update(key for items in answers.values() for _, _, key in items)
            self.count["encoded"] += len(need)
            self.count["computed"] += sum(len(items) for items in answers.values())
        else:
            batch.done = True
        self.window.append(batch)

    def receive(self) -> None:
        batch, (answered, truncated) = self.answers.collect()
        for (mode, tid), items in batch.jobs.items():
            for (i, prompt, key), rec in zip(items, answered[(mode, tid)]):
                if mode == STATES:
                    self.decoder.put(prompt, key, rec)
                    continue
                self.store.put(key, rec)
                self.pending.discard(key)
                batch.found[(i, tid, mode)] = {**rec, "prompt": prompt}
        self.count["truncated"] += truncated
        batch.done = True

    def assemble(self) -> None:
        while self.window and self.window[0].done:
            batch = self.window.popleft()
            for i, tid, mode, prompt, key in batch.later:
                batch.found[(i, tid, mode)] = {**self.store.get(key), "prompt": prompt}
                self.count["cached"] += 1
            for (i, tid, mode), rec in sorted(batch.found.items()):
                c = batch.clips[i]
                meta = {"id": c.id, "content_hash": c.content_hash, "label": c.label, "group": c.group}
                self.assembled.append((meta, tid, mode, rec))

    def finish(self) -> None:
        while self.window:
            self.receive()
            self.assemble()

    def content_free(self, prompts: Iterable[tuple[str, str]]) -> tuple[dict[tuple[str, str], np.ndarray], list[str]]:
        """Raw label scores of every (template id, prompt) on each content-free input: {(tid, prompt):
        (inputs, labels)} and the input names. Cached like clips, keyed by the inputs' audio content."""
        inputs = content_free_inputs(self.backend.sample_rate, self.backend.accepts_no_audio)
        hashes = [audio_hash(c.audio, self.backend.sample_rate) for c in inputs]
        prompts = list(dict.fromkeys(prompts))
        records: dict[tuple[int, int], dict] = {}
        for lo in range(0, len(prompts), CONTENT_FREE_PROMPTS):
            chunk = range(lo, min(lo + CONTENT_FREE_PROMPTS, len(prompts)))
            jobs: dict[JobKey, list[tuple[int, str]]] = {}
            keys: dict[JobKey, list[tuple[int, int, str]]] = {}
            for p in chunk:
                tid, prompt = prompts[p]
                for r, h in enumerate(hashes):
                    key = self.key(prompt, h, "likelihood")
                    if (hit := self.store.get(key)) is not None:
                        records[(p, r)] = hit
                        continue
                    jobs.setdefault(("likelihood", tid), []).append((r, prompt))
                    keys.setdefault(("likelihood", tid), []).append((p, r, key))
            if jobs:
                self.answers.submit(None, [c.audio for c in inputs], jobs, self.plan.ask)
                answered, _ = self.answers.collect()[1]
                for job, items in keys.items():
                    for (p, r, key), rec in zip(items, answered[job]):
                        self.store.put(key, rec)
                        records[(p, r)] = rec
        words = self.plan.words
        scores = {
            prompts[p]: np.stack([words.label_scores(records[(p, r)]["raw"]) for r in range(len(inputs))])
            for p in range(len(prompts))
        }
        return scores, [c.name for c in inputs]


CONTENT_FREE_PROMPTS = 16  # prompts per content-free batch (the instruction prompt can differ per clip)
