"""Where a zero-shot batch is answered: :func:`answer_batch` (every engine runs it), in this process
(:class:`LocalAnswers`) or on Ray model actors (:class:`RayAnswers`, built and supervised by
:mod:`speechprobe.ray_pool` on the driver's thread counts), and :class:`BackendInfo`, what the
driver knows of a backend that lives on the actors.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .base import ZeroShotBackend
from .decoder_states import STATES, decoder_records
from .scoring import greedy_generate, label_tokens, score_prompts

if TYPE_CHECKING:
    from ..ray_pool import Recipe

JobKey = tuple[str, str]  # (mode, template id or native head)
Answered = tuple[dict[JobKey, list[dict]], int]  # answer_batch: records per job, clips truncated


@dataclass(frozen=True)
class Questions:
    """What every clip of a task is asked besides its prompts (travels to Ray actors with each batch).

    ``phrasings``: every label's phrasings, flat, scored in likelihood mode; ``native``: per native head,
    the head's target of each label (in label order); ``max_new_tokens``: generate mode's length.
    """

    phrasings: tuple[str, ...]
    native: dict[str, tuple[str, ...]] = field(default_factory=dict)
    max_new_tokens: int = 32


def answer_batch(
    backend: ZeroShotBackend, audios: Sequence[np.ndarray], jobs: dict[JobKey, list[tuple[int, str]]], ask: Questions
) -> Answered:
    """Answer one batch, whichever engine runs it: encode ``audios`` once, then score, generate or read heads.

    ``jobs``: (mode, template id or native head) -> [(row of ``audios``, prompt), ...]. Every likelihood
    job is scored in one pass (:func:`.scoring.score_prompts`: per clip, all its prompts and phrasings
    together). Returns each job's records in its order (likelihood: every phrasing's summed
    log-probability and token count; generate: the text; native: the head's score per label; states: the
    decoder's per-layer states and logit lens, :func:`.decoder_states.decoder_records`) and how
    many clips were longer than the encoder's window.
    """
    audios = [np.array(a, dtype=np.float32) for a in audios]  # writable copies (Ray passes read-only views)
    enc = backend.encode(audios)  # once per clip, for every prompt and mode
    out: dict[JobKey, list[dict]] = {}
    scored = [job for job in jobs if job[0] == "likelihood"]
    if scored:
        items = [item for job in scored for item in jobs[job]]
        raw = iter(score_prompts(backend, enc, items, ask.phrasings).tolist())
        n_tokens = [len(c) for c in label_tokens(backend, ask.phrasings)]
        for job in scored:
            out[job] = [{"raw": next(raw), "n_tokens": n_tokens} for _ in jobs[job]]
    for (mode, tid), items in jobs.items():
        sub = enc.select([row for row, _ in items])
        if mode == "generate":
            texts = greedy_generate(backend, sub, [p for _, p in items], ask.max_new_tokens)
            out[(mode, tid)] = [{"text": text} for text in texts]
        elif mode == "native":
            out[(mode, tid)] = [{"scores": row} for row in backend.native_scores(sub, tid, ask.native[tid]).tolist()]
        elif mode == STATES:  # one decoder prefix pass on the same encoding (decoder_states.py)
            firsts = [tokens[0] for tokens in label_tokens(backend, ask.phrasings)]
            out[(mode, tid)] = decoder_records(backend, sub, [p for _, p in items], firsts)
    return out, int(sum(enc.truncated))


class LocalAnswers:
    """The local engine: :func:`answer_batch` in this process, one batch at a time."""

    capacity = 1  # batches submitted and not yet collected

    def __init__(self, backend: ZeroShotBackend) -> None:
        self.backend = backend
        self._done: deque[tuple[Any, Answered]] = deque()

    def submit(
        self, tag: Any, audios: list[np.ndarray], jobs: dict[JobKey, list[tuple[int, str]]], ask: Questions
    ) -> None:
        self._done.append((tag, answer_batch(self.backend, audios, jobs, ask)))

    def collect(self) -> tuple[Any, Answered]:
        """A submitted batch's ``tag`` and :func:`answer_batch` result."""
        return self._done.popleft()

    def close(self) -> None:
        self._done.clear()


@dataclass(frozen=True)
class BackendInfo:
    """What the driver needs of a backend it does not hold: identity, decoding settings, batching, label
    tokens, native heads and whether it takes a prompt without audio.

    Duck-types the backend for :func:`evaluate_task` (``settings()``, ``native_heads()``; ``answer_ids`` /
    ``end_ids`` for :func:`label_tokens`) over the phrasings it was built for.
    """

    name: str
    family: str
    source: str
    fingerprint: str
    sample_rate: int
    batch_size: int
    decoding: dict[str, Any]
    label_ids: dict[str, list[int]]
    end_ids: tuple[int, ...]
    heads: dict[str, dict[str, str]] = field(default_factory=dict)
    accepts_no_audio: bool = False
    position_rules: tuple[str, ...] = ("last",)

    def settings(self) -> dict[str, Any]:
        return dict(self.decoding)

    def native_heads(self) -> dict[str, dict[str, str]]:
        return {head: dict(table) for head, table in self.heads.items()}

    def answer_ids(self, label: str) -> list[int]:
        return list(self.label_ids[label])


def backend_info(backend: ZeroShotBackend, labels: Iterable[str]) -> BackendInfo:
    """A backend's :class:`BackendInfo` (run where the backend lives, e.g. on a Ray actor)."""
    return BackendInfo(
        backend.name,
        backend.family,
        backend.source,
        backend.fingerprint,
        int(backend.sample_rate),
        int(backend.batch_size),
        backend.settings(),
        {lab: list(backend.answer_ids(lab)) for lab in labels},
        tuple(backend.end_ids),
        backend.native_heads(),
        bool(backend.accepts_no_audio),
        tuple(backend.position_rules),
    )


class RayAnswers:
    """The Ray engine: :func:`answer_batch` on model actors, each holding ``recipe.build()`` (a backend).

    Ray must be connected (``ray_connect.connect``). The actors use the driver's torch and BLAS thread
    counts; at most ``INFLIGHT_PER_ACTOR`` batches per actor are in flight; a dead actor's batch is
    retried (:class:`~speechprobe.ray_pool.ActorPool`). ``backend`` is a :class:`BackendInfo`
    over ``labels``, the same on every actor.
    """

    def __init__(
        self, recipe: Recipe, labels: Sequence[str], num_actors: int | None = None, timeout_s: float = 30.0
    ) -> None:
        from ..ray_pool import INFLIGHT_PER_ACTOR, model_pool

        self.pool = model_pool(recipe, num_actors, timeout_s)
        try:
            self.backend: BackendInfo = self.pool.agree(
                backend_info, list(labels), what=lambda b: f"{b.name} weights {b.fingerprint} {b.decoding}"
            )
        except BaseException:
            self.pool.close()
            raise
        self.capacity = INFLIGHT_PER_ACTOR * self.pool.n
        self._inflight: list = []

    def submit(
        self, tag: Any, audios: list[np.ndarray], jobs: dict[JobKey, list[tuple[int, str]]], ask: Questions
    ) -> None:
        from ..ray_pool import Job

        call = Job(answer_batch, (audios, jobs, ask), {}, payload=tag)
        self._inflight.append(self.pool.submit(call))

    def collect(self) -> tuple[Any, Answered]:
        """The first batch to finish: its ``tag`` and :func:`answer_batch` result."""
        call, value = self.pool.next_done(self._inflight)
        return call.payload, value

    def close(self) -> None:
        self._inflight.clear()
        self.pool.close()  # kills the actors, and with them any queued batch
