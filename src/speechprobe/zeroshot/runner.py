"""Run zero-shot evaluation: every (model, task, prompt, mode), cached and resumable.

For each model and task the clips stream in batches of ``batch_size``. A batch's answers are looked
up in the response cache first; only clips with something missing are encoded, once, and that one
encoding serves every prompt and both modes (:func:`answer_batch`).

Two engines answer the batches with that same function: ``local`` (:class:`LocalAnswers`, this
process) and ``ray`` (:class:`RayAnswers`: model actors on a Ray cluster, built and supervised by
:mod:`speechprobe.features.ray_engine`, on the driver's thread counts). Either way the driver reads
the clips, looks answers up, writes the cache and assembles the records in clip order, so both
engines write the same files; the engine is recorded in the manifest, outside the config.
Outputs in the run directory:

``results.csv``             zero-shot rows merged in (``layer`` empty, ``fold`` 0, ``probe`` =
                            ``zeroshot:<mode>:<prompt-id>``; modes ``generate``, ``likelihood``
                            (length-normalised log-probability), ``likelihood_raw`` (summed),
                            ``likelihood_cc`` and ``likelihood_pmi`` (calibrated on content-free inputs),
                            ``likelihood_bc`` (calibrated on the task's clips, :mod:`.calibration`) and
                            ``native`` (``zeroshot:native:<head>``, :mod:`.native`);
                            metrics ``macro_f1``, ``accuracy``, then ``parse_rate``, ``top_share``,
                            ``pred_entropy``, ``true_entropy``, ``collapsed`` and ``chance_macro_f1``
                            (see :mod:`.diagnostics`));
``summary.csv``             recomputed over all rows;
``zeroshot/<model>/<task>.csv``  one row per (clip, mode, prompt): the prompt, the answer, the
                            parsed label and parse rule, or the per-label scores;
``zeroshot/<model>/content_free/<task>.csv``  the label scores of each prompt on each content-free input;
``zeroshot_sensitivity.csv``, ``zeroshot_diagnostics.csv``, ``zeroshot_vs_probe.csv``, ``zeroshot_correlation.csv``,
``figures/zeroshot_correlation.png``  see :mod:`.compare`;
``manifest.json``           a ``zeroshot`` section: config, engine, prompts (texts), per model its
                            source, weights fingerprint and decoding settings (chat template on/off,
                            system prompt, batch size, ...), per task the prompts used and skipped, cache use.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..cache import cache_root
from ..config import check_engine, check_window
from ..data.audio import resample
from ..data.clip import Clip, audio_hash
from ..data.resolve import open_task
from ..data.tasks import Task
from ..errors import ConfigError
from ..rundir import RESULT_COLUMNS, ensure_writable, sort_results, write_csv
from .base import ZeroShotBackend
from .cache import ResponseCache, response_key
from .calibration import Verbalised, content_free_inputs
from .models import load_backend, resolve_zeroshot_model
from .native import native_targets
from .parser import AnswerParser, synonyms_for
from .prompts import PromptTemplate, check_template, resolve_prompts
from .responses import (
    FOLD,
    RESPONSE_COLUMNS,
    batch_priors,
    content_free_frame,
    metric_rows,
    parser_synonyms,
    response_rows,
    verbalised,
    with_verbalisers,
)
from .scoring import greedy_generate, label_tokens, score_prompts

if TYPE_CHECKING:
    from ..features.ray_engine import Recipe

log = logging.getLogger("speechprobe")

MODES = ("likelihood", "generate", "native")  # likelihood also gives the raw and calibrated modes
LOAD_BACKEND: str | Callable[..., ZeroShotBackend] = "speechprobe.zeroshot.models:load_backend"  # Ray actors' factory
ENGINE_FIELDS = ("engine", "ray_address", "ray_actors")  # where answers are computed: not in the manifest config

JobKey = tuple[str, str]  # (mode, template id)
Answered = tuple[dict[JobKey, list[dict]], int]  # answer_batch: records per job, clips truncated


@dataclass
class ZeroShotConfig:
    """Everything that determines a zero-shot run's numbers (written into manifest.json)."""

    models: list[str]
    tasks: list[str]
    out: Path
    prompts: list[str] = field(default_factory=lambda: ["all"])
    modes: list[str] = field(default_factory=lambda: list(MODES))
    seed: int = 0
    n_per_class: int | None = None
    cache: Path | None = None
    device: str = "cpu"
    dtype: str | None = None
    batch_size: int = 8
    max_new_tokens: int = 32
    chat_template: bool | None = None  # Qwen2-Audio: None = on for Instruct checkpoints
    system_prompt: str | None = None  # Qwen2-Audio: None = "You are a helpful assistant."
    language: str | None = "en"  # Whisper language token / SeamlessM4T target language
    window: str = "full"  # Whisper: full (30 s) or trimmed
    prompt_as: str | None = None  # Whisper: previous (<|startofprev|>, the default) or transcript
    verbalisers: dict[str, str] = field(default_factory=dict)  # task -> verbaliser JSON file (docs/zeroshot.md)
    synonyms: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # task -> label -> extra synonyms
    skip_unsupported: bool = False  # `speechprobe run`: skip encoder-only models instead of refusing
    progress: bool = True
    engine: str = "local"  # local, or ray (model actors on a Ray cluster; identical answers)
    ray_address: str | None = None  # None: a new local Ray instance (or $RAY_ADDRESS); "auto": the `ray start` cluster
    ray_actors: int | None = None  # model actors (default: one per GPU, else one per CPU but one)

    def validate(self) -> None:
        if not self.models:
            raise ConfigError("no models given; pass --models (zero-shot needs a model with a text decoder)")
        if not self.tasks:
            raise ConfigError("no tasks given; pass --tasks (see `speechprobe tasks`)")
        unknown = [m for m in self.modes if m not in MODES]
        if unknown or not self.modes:
            raise ConfigError(f"--mode {','.join(unknown or ['(none)'])}: choose from {', '.join(MODES)}")
        if self.batch_size < 1:
            raise ConfigError("--batch-size must be at least 1")
        if self.max_new_tokens < 1:
            raise ConfigError("--max-new-tokens must be at least 1")
        if self.n_per_class is not None and self.n_per_class < 1:
            raise ConfigError("--n-per-class must be at least 1")
        check_window(self.window)
        if self.prompt_as not in (None, "previous", "transcript"):
            raise ConfigError(f"--prompt-as {self.prompt_as!r}: choose previous or transcript")
        check_engine(self.engine, self.ray_address, self.ray_actors)

    @classmethod
    def from_run_config(
        cls, run, prompts: Sequence[str] = ("all",), modes: Sequence[str] = MODES, **overrides
    ) -> ZeroShotConfig:
        """The zero-shot part of ``speechprobe run``: same models, tasks, run directory, seed, data size,
        cache, device, dtype, Whisper window and engine as the probing run (a ``RunConfig``); encoder-only
        models are skipped (and recorded) rather than refused."""
        base = {
            "models": list(run.models),
            "tasks": list(run.tasks),
            "out": run.out,
            "prompts": list(prompts),
            "modes": list(modes),
            "seed": run.seed,
            "n_per_class": run.n_per_class,
            "cache": run.cache,
            "device": run.device,
            "dtype": run.dtype,
            "window": run.window,
            "skip_unsupported": True,
            "progress": run.progress,
            "engine": run.engine,
            "ray_address": run.ray_address,
            "ray_actors": run.ray_actors,
        }
        return cls(**{**base, **overrides})

    def to_json(self) -> dict:
        """What determines the numbers: not ``progress``, nor the engine (recorded beside, in ``engine``)."""
        d = dataclasses.asdict(self)
        d["out"] = str(self.out)
        d["cache"] = str(self.cache) if self.cache else None
        for key in ("progress", *ENGINE_FIELDS):
            d.pop(key)
        return d


def run_zeroshot(cfg: ZeroShotConfig) -> pd.DataFrame:
    """Evaluate every (model, task, prompt, mode); write the run directory; return the zero-shot rows."""
    cfg.validate()
    templates = resolve_prompts(cfg.prompts)
    for t in templates:
        check_template(t, cfg.modes)
    explicit = {p.strip() for p in cfg.prompts}
    models, skipped_models = [], {}
    for name in dict.fromkeys(cfg.models):
        try:
            resolve_zeroshot_model(name, convert=False)  # refusals and unknown names before any work
        except ConfigError as e:
            if not cfg.skip_unsupported:
                raise
            skipped_models[name] = str(e)
            continue
        models.append(name)
    if not models:
        raise ConfigError(next(iter(skipped_models.values())))
    if cfg.engine == "ray":  # an unreachable cluster fails here, in seconds, before any work
        from ..features.ray_engine import connect

        connect(cfg.ray_address)
    ensure_writable(cfg.out)
    root = cache_root(cfg.cache)
    store = ResponseCache(root / "zeroshot")
    tasks = [open_task(t, root, cfg.seed, cfg.n_per_class, cfg.progress) for t in dict.fromkeys(cfg.tasks)]
    tasks = [(with_verbalisers(task, cfg.verbalisers), source) for task, source in tasks]
    state: dict[str, Any] = {
        "config": cfg.to_json(),
        "engine": {"name": cfg.engine, **({"address": cfg.ray_address, "actors": {}} if cfg.engine == "ray" else {})},
        "fold": FOLD,
        "prompts": {t.id: {"text": t.text or "(each clip's instruction)", "origin": t.origin} for t in templates},
        "models": {},
        "tasks": {},
        "skipped_models": skipped_models,
    }
    phrasings = sorted({v for task, _ in tasks for x in task.labels for v in task.phrasings(str(x))})
    frames = []
    for name in models:
        answers = _answers(cfg, name, phrasings)
        try:
            backend = answers.backend  # the backend itself, or on Ray a BackendInfo from the actors
            state["models"][backend.name] = {
                "requested": name,
                "family": backend.family,
                "source": backend.source,
                "fingerprint": backend.fingerprint,
                "settings": backend.settings(),
            }
            if isinstance(answers, RayAnswers):
                state["engine"]["actors"][backend.name] = answers.pool.n
            for task, source in tasks:
                t0 = time.perf_counter()
                rows, responses, info = evaluate_task(backend, task, source, templates, cfg, store, explicit, answers)
                info["seconds"] = round(time.perf_counter() - t0, 3)
                state["tasks"].setdefault(task.name, _task_state(task))
                state["tasks"][task.name].setdefault("by_model", {})[backend.name] = info
                folder = cfg.out / "zeroshot" / _slug(backend.name)
                write_csv(folder / f"{_slug(task.name)}.csv", responses)
                write_csv(folder / "content_free" / f"{_slug(task.name)}.csv", info.pop("content_free_scores"))
                frames.append(rows)
        finally:
            answers.close()  # Ray: stop this model's actors (frees their GPUs for the next model)
        del backend, answers
        _release_memory()
    state["cache"] = {"root": str(store.root), "hits": store.hits, "writes": store.writes}
    results = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=RESULT_COLUMNS)
    results = sort_results(results)
    from .compare import write_zeroshot_outputs

    write_zeroshot_outputs(cfg.out, results, state)
    return results


def _task_state(task: Task) -> dict:
    """A task's manifest entry: labels, source, display names and the phrasings scored per label."""
    return {
        "labels": list(task.labels),
        "source": task.source,
        "display_names": {str(x): task.display(str(x)) for x in task.labels},
        "verbalisers": {str(x): list(task.phrasings(str(x))) for x in task.labels},
        "phrasing_average": "log-mean-exp (log of the mean probability over a label's phrasings)",
    }


def _release_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def _batches(source, size: int) -> Iterator[list[Clip]]:
    batch: list[Clip] = []
    for clip in source:
        batch.append(clip)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _answers(cfg: ZeroShotConfig, name: str, phrasings: Sequence[str]) -> LocalAnswers | RayAnswers:
    """Where ``name``'s batches are answered, per ``cfg.engine``; the backend is built from the same arguments.
    ``phrasings``: every phrasing a task will score (their tokens go into the driver's cache keys on Ray)."""
    args = {
        "name": name,
        "device": cfg.device,
        "dtype": cfg.dtype,
        "batch_size": cfg.batch_size,
        "chat_template": cfg.chat_template,
        "system_prompt": cfg.system_prompt,
        "language": cfg.language,
        "window": cfg.window,
        "prompt_as": cfg.prompt_as,
    }
    if cfg.engine == "ray":
        from ..features.ray_engine import Recipe

        return RayAnswers(Recipe(LOAD_BACKEND, args), phrasings, cfg.ray_actors)
    return LocalAnswers(load_backend(**args))


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
    log-probability and token count; generate: the text; native: the head's score per label) and how
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
    )


class RayAnswers:
    """The Ray engine: :func:`answer_batch` on model actors, each holding ``recipe.build()`` (a backend).

    Ray must be connected (``ray_engine.connect``). The actors use the driver's torch and BLAS thread
    counts; at most ``INFLIGHT_PER_ACTOR`` batches per actor are in flight; a dead actor's batch is
    retried (:class:`~speechprobe.features.ray_engine.ActorPool`). ``backend`` is a :class:`BackendInfo`
    over ``labels``, the same on every actor.
    """

    def __init__(
        self, recipe: Recipe, labels: Sequence[str], num_actors: int | None = None, timeout_s: float = 30.0
    ) -> None:
        from ..features.ray_engine import INFLIGHT_PER_ACTOR, model_pool

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
        from ..features.ray_engine import Job

        call = Job(answer_batch, (audios, jobs, ask), {}, payload=tag)
        self._inflight.append(self.pool.submit(call))

    def collect(self) -> tuple[Any, Answered]:
        """The first batch to finish: its ``tag`` and :func:`answer_batch` result."""
        call, value = self.pool.next_done(self._inflight)
        return call.payload, value

    def close(self) -> None:
        self._inflight.clear()
        self.pool.close()  # kills the actors, and with them any queued batch


@dataclass
class _Plan:
    """What one task asks one backend: labels and phrasings, prompts, native heads, cache-key settings."""

    task: Task
    words: Verbalised
    used: list[PromptTemplate]
    modes: list[str]
    heads: dict[str, dict[str, str]]  # native head -> label -> target
    settings: dict[str, dict]  # "likelihood", "generate", "native:<head>" -> decoding settings (cache key)
    ask: Questions

    def requests(self, clip: Clip) -> Iterator[tuple[str, str, str, str]]:
        """(mode, template id or head, prompt, cache-key mode) of every answer ``clip`` needs."""
        shown = [forms[0] for forms in self.words.phrasings]
        for t in self.used:
            if t.per_clip and not clip.instruction:
                continue
            prompt = t.render(self.task.name, shown, clip.instruction)
            for mode in ("likelihood", "generate"):
                if mode in self.modes:
                    yield mode, t.id, prompt, mode
        for head in self.heads:
            yield "native", head, "", f"native:{head}"


def _plan(
    backend, task: Task, templates: Sequence[PromptTemplate], first: Clip, cfg: ZeroShotConfig, explicit
) -> _Plan:
    labels = [str(x) for x in task.labels]
    if len(labels) < 2:
        raise ConfigError(f"task {task.name}: zero-shot needs at least 2 labels, got {labels}")
    words = verbalised(task)
    used = [t for t in templates if not t.per_clip or first.instruction]
    if len(used) < len(templates) and "instruction" in (explicit or set()):
        raise ConfigError(
            f"prompt 'instruction' asked for, but task {task.name} has no instruction column; "
            f"use --prompts choose,question (or all, which skips it where absent)"
        )
    heads = native_targets(backend.native_heads(), task)[0] if "native" in cfg.modes else {}
    base = backend.settings()
    settings = {
        "likelihood": {
            **base,
            "labels": labels,
            "phrasings": [list(f) for f in words.phrasings],
            "scored": "phrasing tokens + end token",
            "label_tokens": label_tokens(backend, words.flat),
        },
        "generate": {**base, "max_new_tokens": cfg.max_new_tokens, "decoding": "greedy"},
        **{f"native:{h}": {**base, "head": h, "targets": [t[x] for x in labels]} for h, t in heads.items()},
    }
    ask = Questions(words.flat, {h: tuple(t[x] for x in labels) for h, t in heads.items()}, cfg.max_new_tokens)
    return _Plan(task, words, used, list(cfg.modes), heads, settings, ask)


@dataclass
class _Batch:
    """One batch on the driver: its clips, the answers found so far and the answers it waits for."""

    clips: list[Clip]
    found: dict[tuple[int, str, str], dict] = field(default_factory=dict)  # (clip, template, mode) -> record
    jobs: dict[JobKey, list[tuple[int, str, str]]] = field(default_factory=dict)  # -> (clip, prompt, key)
    later: list[tuple[int, str, str, str, str]] = field(default_factory=list)  # (clip, template, mode, prompt, key)
    done: bool = False


class _Driver:
    """Streams a task's batches through an engine: cache lookups, submissions, cache writes, and the
    records in clip order (``assembled``: clip metadata, template or head, mode, record).

    An answer whose key an earlier batch still in flight will write is read back once that batch is in,
    as a cache hit, exactly as when batches run one after the other.
    """

    def __init__(self, backend, plan: _Plan, store: ResponseCache, answers: LocalAnswers | RayAnswers) -> None:
        self.backend, self.plan, self.store, self.answers = backend, plan, store, answers
        self.count = dict.fromkeys(("missing_instruction", "computed", "cached", "encoded", "truncated"), 0)
        self.window: deque[_Batch] = deque()  # batches not yet assembled, in clip order
        self.pending: set[str] = set()  # keys of answers in flight
        self.assembled: list[tuple[dict, str, str, dict]] = []

    def key(self, prompt: str, clip_hash: str, key_mode: str) -> str:
        b = self.backend
        return response_key(b.name, b.fingerprint, prompt, clip_hash, key_mode, self.plan.settings[key_mode])

    def add(self, clips: list[Clip]) -> None:
        batch = _Batch(clips)
        for i, clip in enumerate(clips):
            if not clip.instruction and any(t.per_clip for t in self.plan.used):
                self.count["missing_instruction"] += 1
            for mode, tid, prompt, key_mode in self.plan.requests(clip):
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

    def submit(self, batch: _Batch, audios: list[np.ndarray]) -> None:
        """Send the clips ``batch`` still needs (re-indexed); a batch with nothing to compute is done."""
        if batch.jobs:
            need = sorted({i for items in batch.jobs.values() for i, _, _ in items})
            row = {i: r for r, i in enumerate(need)}
            jobs = {job: [(row[i], p) for i, p, _ in items] for job, items in batch.jobs.items()}
            self.answers.submit(batch, [audios[i] for i in need], jobs, self.plan.ask)
            self.pending.update(key for items in batch.jobs.values() for _, _, key in items)
            self.count["encoded"] += len(need)
            self.count["computed"] += sum(len(items) for items in batch.jobs.values())
        else:
            batch.done = True
        self.window.append(batch)

    def receive(self) -> None:
        batch, (answered, truncated) = self.answers.collect()
        for (mode, tid), items in batch.jobs.items():
            for (i, prompt, key), rec in zip(items, answered[(mode, tid)]):
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
            prompts[p]: np.stack(
                [
                    words.likelihoods(records[(p, r)]["raw"], records[(p, r)]["n_tokens"])["likelihood_raw"]
                    for r in range(len(inputs))
                ]
            )
            for p in range(len(prompts))
        }
        return scores, [c.name for c in inputs]


CONTENT_FREE_PROMPTS = 16  # prompts per content-free batch (the instruction prompt can differ per clip)


def evaluate_task(
    backend: ZeroShotBackend | BackendInfo,
    task: Task,
    source,
    templates: Sequence[PromptTemplate],
    cfg: ZeroShotConfig,
    store: ResponseCache,
    explicit: set[str] | None = None,
    answers: LocalAnswers | RayAnswers | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Answers and metrics of one backend on one task: (result rows, per-clip responses, manifest info).

    ``answers`` computes the batches (default: ``LocalAnswers(backend)``); :class:`_Driver` does the rest
    for both engines. Likelihood prompts are then scored on the content-free inputs for the calibrated
    modes. ``info["content_free_scores"]`` holds those scores as a table (the caller writes it).
    """
    answers = answers or LocalAnswers(backend)
    first = next(iter(source), None)
    if first is None:
        raise ConfigError(f"task {task.name}: no usable clips")
    plan = _plan(backend, task, templates, first, cfg, explicit)
    labels = list(plan.words.labels)
    synonyms = parser_synonyms(task, (cfg.synonyms or {}).get(task.name, {}))
    parser = AnswerParser(labels, synonyms_for(task.name, labels, synonyms))
    driver = _Driver(backend, plan, store, answers)
    for clips in _batches(source, backend.batch_size):
        driver.add(clips)
    driver.finish()
    cf, inputs = ({}, [])
    if "likelihood" in cfg.modes:
        cf, inputs = driver.content_free(
            (tid, rec["prompt"]) for _, tid, mode, rec in driver.assembled if mode == "likelihood"
        )
    priors = batch_priors(driver.assembled, plan.words)
    records = [row for entry in driver.assembled for row in response_rows(*entry, plan.words, parser, cf, priors)]
    responses = pd.DataFrame(records, columns=RESPONSE_COLUMNS)
    count = driver.count
    info = {
        "prompts_used": [t.id for t in plan.used],
        "prompts_skipped": {t.id: "the task's clips have no instruction" for t in templates if t not in plan.used},
        "native_heads": {h: t for h, t in plan.heads.items()},
        "native_skipped": native_targets(backend.native_heads(), task)[1] if "native" in cfg.modes else {},
        "content_free_inputs": inputs,
        "clips": int(responses["id"].nunique()) if len(responses) else 0,
        "clips_without_instruction": count["missing_instruction"],
        "answers_computed": count["computed"],
        "answers_from_cache": count["cached"],
        "clips_encoded": count["encoded"],
        "clips_truncated": count["truncated"],  # longer than the model's audio window (30 s for Whisper / Qwen2-Audio)
        "skipped": [dataclasses.asdict(s) for s in getattr(source, "skipped", [])],
        "content_free_scores": content_free_frame(plan.words, cf, inputs),
    }
    return metric_rows(backend.name, task.name, responses), responses, info
