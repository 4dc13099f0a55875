"""Run zero-shot evaluation: every (model, task, prompt, mode), cached and resumable.

For each model and task the clips stream in batches of ``batch_size``. A batch's answers are looked
up in the response cache first; only clips with something missing are encoded, once, and that one
encoding serves every prompt and both modes (:func:`answer_batch`).

Two engines answer the batches with that same function: ``local`` (:class:`LocalAnswers`, this
process) and ``ray`` (:class:`RayAnswers`: model actors on a Ray cluster, built and supervised by
:mod:`speechprobe.ray_pool`, on the driver's thread counts). Either way the driver reads
the clips, looks answers up, writes the cache and assembles the records in clip order, so both
engines write the same files; the engine is recorded in the manifest, outside the config.
Outputs in the run directory:

``results.csv``             zero-shot rows merged in (``layer`` empty, ``fold`` 0, ``probe`` =
                            ``zeroshot:<mode>:<prompt-id>``; modes ``generate``, ``likelihood``
                            (length-normalised log-probability) and ``likelihood_raw`` (summed);
                            metrics ``macro_f1``, ``accuracy``, then ``parse_rate``, ``top_share``,
                            ``pred_entropy``, ``true_entropy``, ``collapsed`` and ``chance_macro_f1``
                            (see :mod:`.diagnostics`));
``summary.csv``             recomputed over all rows;
``zeroshot/<model>/<task>.csv``  one row per (clip, mode, prompt): the prompt, the answer, the
                            parsed label and parse rule, or the per-label scores;
``zeroshot_sensitivity.csv``, ``zeroshot_diagnostics.csv``, ``zeroshot_vs_probe.csv``, ``zeroshot_correlation.csv``,
``figures/zeroshot_correlation.png``  see :mod:`.compare`;
``manifest.json``           a ``zeroshot`` section: config, engine, prompts (texts), per model its
                            source, weights fingerprint and decoding settings (chat template on/off,
                            system prompt, batch size, ...), per task the prompts used and skipped, cache use.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..cache import using_cache
from ..config import ComputeOptions
from ..data.audio import resample
from ..data.clip import Clip
from ..data.resolve import open_task
from ..data.tasks import Task
from ..errors import ConfigError
from ..rundir import RESULT_COLUMNS, RunDir, slug, sort_results
from ..warnlog import capture_warnings
from .base import ZeroShotBackend
from .cache import ResponseCache, response_key
from .diagnostics import answer_diagnostics
from .models import load_backend, resolve_zeroshot_model
from .parser import AnswerParser, synonyms_for
from .prompts import PromptTemplate, check_template, resolve_prompts
from .scoring import greedy_generate, label_tokens, score_labels, zeroshot_metrics

if TYPE_CHECKING:
    from ..ray_pool import Recipe

log = logging.getLogger("speechprobe")

MODES = ("likelihood", "generate")
FOLD = 0  # zero-shot has no training folds: one evaluation over every clip, written as fold 0
LOAD_BACKEND: str | Callable[..., ZeroShotBackend] = "speechprobe.zeroshot.models:load_backend"  # Ray actors' factory
ENGINE_FIELDS = ("engine", "ray_address", "ray_actors")  # where answers are computed: not in the manifest config

JobKey = tuple[str, str]  # (mode, template id)
Answered = tuple[dict[JobKey, list[dict]], int]  # answer_batch: records per job, clips truncated


@dataclass
class ZeroShotConfig(ComputeOptions):
    """Everything that determines a zero-shot run's numbers (written into manifest.json).

    Device, dtype, Whisper window, seed, cache and engine come from :class:`~speechprobe.config.ComputeOptions`,
    shared with ``RunConfig``.
    """

    models: list[str]
    tasks: list[str]
    out: Path
    prompts: list[str] = field(default_factory=lambda: ["all"])
    modes: list[str] = field(default_factory=lambda: list(MODES))
    n_per_class: int | None = None
    batch_size: int = 8
    max_new_tokens: int = 32
    chat_template: bool | None = None  # Qwen2-Audio: None = on for Instruct checkpoints
    system_prompt: str | None = None  # Qwen2-Audio: None = "You are a helpful assistant."
    language: str | None = "en"  # Whisper language token / SeamlessM4T target language
    synonyms: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # task -> label -> extra synonyms
    skip_unsupported: bool = False  # `speechprobe run`: skip encoder-only models instead of refusing

    def validate(self) -> None:
        if not self.models:
            raise ConfigError("no models given; pass --models (zero-shot needs a model with a text decoder)")
        if not self.tasks:
            raise ConfigError("no tasks given; pass --tasks (see `speechprobe tasks`)")
        unknown = [m for m in self.modes if m not in MODES]
        if unknown or not self.modes:
            raise ConfigError(f"--mode {','.join(unknown or ['(none)'])}: choose likelihood, generate or both")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size {self.batch_size}: must be at least 1")
        if self.max_new_tokens < 1:
            raise ConfigError(f"--max-new-tokens {self.max_new_tokens}: must be at least 1")
        if self.n_per_class is not None and self.n_per_class < 1:
            raise ConfigError(f"--n-per-class {self.n_per_class}: must be at least 1")
        self.check_compute()

    @classmethod
    def from_run_config(
        cls, run, prompts: Sequence[str] = ("all",), modes: Sequence[str] = MODES, **overrides
    ) -> ZeroShotConfig:
        """The zero-shot part of ``speechprobe run``: same models, tasks, run directory, data size and
        compute options (device, dtype, window, seed, cache, engine) as the probing run (a ``RunConfig``);
        encoder-only models are skipped (and recorded) rather than refused."""
        base = {
            "models": list(run.models),
            "tasks": list(run.tasks),
            "out": run.out,
            "prompts": list(prompts),
            "modes": list(modes),
            "n_per_class": run.n_per_class,
            "skip_unsupported": True,
            **run.compute_kwargs(),
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

    def stage_config(self) -> dict:
        """The settings that decide the zero-shot numbers: the run directory's fingerprint of this stage."""
        return {k: v for k, v in self.to_json().items() if k not in ("out", "cache")}


def probe_name(mode: str, prompt_id: str) -> str:
    return f"zeroshot:{mode}:{prompt_id}"


def run_zeroshot(cfg: ZeroShotConfig, existing: str = "auto") -> pd.DataFrame:
    """Evaluate every (model, task, prompt, mode); write the run directory; return the zero-shot rows.

    ``existing``: what to do with earlier zero-shot results of other settings in ``cfg.out`` (see
    :meth:`speechprobe.rundir.RunDir.claim`)."""
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
        from ..ray_connect import connect

        connect(cfg.ray_address)
    run_dir = RunDir(cfg.out)
    run_dir.claim("zeroshot", cfg.stage_config(), existing)
    with using_cache(cfg.cache) as root, capture_warnings():
        return _run(cfg, run_dir, root, templates, explicit, models, skipped_models)


def _run(
    cfg: ZeroShotConfig,
    run_dir: RunDir,
    root: Path,
    templates: list[PromptTemplate],
    explicit: set[str],
    models: list[str],
    skipped_models: dict[str, str],
) -> pd.DataFrame:
    """The work of :func:`run_zeroshot` once every input is checked and the run directory claimed."""
    store = ResponseCache(root / "zeroshot")
    tasks = [open_task(t, root, cfg.seed, cfg.n_per_class, cfg.progress) for t in dict.fromkeys(cfg.tasks)]
    state: dict[str, Any] = {
        "config": cfg.to_json(),
        "engine": {"name": cfg.engine, **({"address": cfg.ray_address, "actors": {}} if cfg.engine == "ray" else {})},
        "fold": FOLD,
        "prompts": {t.id: {"text": t.text or "(each clip's instruction)", "origin": t.origin} for t in templates},
        "models": {},
        "tasks": {},
        "skipped_models": skipped_models,
    }
    labels = sorted({str(x) for task, _ in tasks for x in task.labels})
    frames = []
    for name in models:
        answers = _answers(cfg, name, labels)
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
                state["tasks"].setdefault(task.name, {"labels": list(task.labels), "source": task.source})
                state["tasks"][task.name].setdefault("by_model", {})[backend.name] = info
                run_dir.write_csv(f"zeroshot/{slug(backend.name)}/{slug(task.name)}.csv", responses)
                frames.append(rows)
        finally:
            answers.close()  # Ray: stop this model's actors (frees their GPUs for the next model)
        del backend, answers
        _release_memory()
    state["cache"] = {"root": str(store.root), "hits": store.hits, "writes": store.writes}
    results = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=RESULT_COLUMNS)
    results = sort_results(results)
    from .compare import write_zeroshot_outputs

    write_zeroshot_outputs(run_dir, results, state)
    return results


def _release_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _batches(source, size: int) -> Iterator[list[Clip]]:
    batch: list[Clip] = []
    for clip in source:
        batch.append(clip)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _answers(cfg: ZeroShotConfig, name: str, labels: Sequence[str]) -> LocalAnswers | RayAnswers:
    """Where ``name``'s batches are answered, per ``cfg.engine``; the backend is built from the same arguments."""
    args = {
        "name": name,
        "device": cfg.device,
        "dtype": cfg.dtype,
        "batch_size": cfg.batch_size,
        "chat_template": cfg.chat_template,
        "system_prompt": cfg.system_prompt,
        "language": cfg.language,
        "window": cfg.window,
    }
    if cfg.engine == "ray":
        from ..ray_pool import Recipe

        return RayAnswers(Recipe(LOAD_BACKEND, args), labels, cfg.ray_actors)
    return LocalAnswers(load_backend(**args))


def answer_batch(
    backend: ZeroShotBackend,
    audios: Sequence[np.ndarray],
    jobs: dict[JobKey, list[tuple[int, str]]],
    labels: Sequence[str],
    max_new_tokens: int,
) -> Answered:
    """Answer one batch, whichever engine runs it: encode ``audios`` once, then score or generate each job.

    ``jobs``: (mode, template id) -> [(row of ``audios``, prompt), ...]. Returns each job's records in
    its order (likelihood: every label's summed log-probability and token count; generate: the text)
    and how many clips were longer than the encoder's window.
    """
    audios = [np.array(a, dtype=np.float32) for a in audios]  # writable copies (Ray passes read-only views)
    enc = backend.encode(audios)  # once per clip, for every prompt and mode
    out: dict[JobKey, list[dict]] = {}
    for (mode, tid), items in jobs.items():
        sub = enc.select([row for row, _ in items])
        prompts = [p for _, p in items]
        if mode == "likelihood":
            scores = score_labels(backend, sub, prompts, labels)
            n_tokens = scores.n_tokens.tolist()
            out[(mode, tid)] = [
                {"labels": list(labels), "raw": raw.tolist(), "n_tokens": n_tokens} for raw in scores.raw
            ]
        else:
            out[(mode, tid)] = [{"text": text} for text in greedy_generate(backend, sub, prompts, max_new_tokens)]
    return out, int(sum(enc.truncated))


class LocalAnswers:
    """The local engine: :func:`answer_batch` in this process, one batch at a time."""

    capacity = 1  # batches submitted and not yet collected

    def __init__(self, backend: ZeroShotBackend) -> None:
        self.backend = backend
        self._done: deque[tuple[Any, Answered]] = deque()

    def submit(
        self,
        tag: Any,
        audios: list[np.ndarray],
        jobs: dict[JobKey, list[tuple[int, str]]],
        labels: Sequence[str],
        max_new_tokens: int,
    ) -> None:
        self._done.append((tag, answer_batch(self.backend, audios, jobs, labels, max_new_tokens)))

    def collect(self) -> tuple[Any, Answered]:
        """A submitted batch's ``tag`` and :func:`answer_batch` result."""
        return self._done.popleft()

    def close(self) -> None:
        self._done.clear()


@dataclass(frozen=True)
class BackendInfo:
    """What the driver needs of a backend it does not hold: identity, decoding settings, batching, label tokens.

    Duck-types the backend for :func:`evaluate_task` (``settings()``; ``answer_ids`` / ``end_ids`` for
    :func:`label_tokens`) over the labels it was built for.
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

    def settings(self) -> dict[str, Any]:
        return dict(self.decoding)

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
        self,
        tag: Any,
        audios: list[np.ndarray],
        jobs: dict[JobKey, list[tuple[int, str]]],
        labels: Sequence[str],
        max_new_tokens: int,
    ) -> None:
        from ..ray_pool import Job

        call = Job(answer_batch, (audios, jobs, list(labels), max_new_tokens), {}, payload=tag)
        self._inflight.append(self.pool.submit(call))

    def collect(self) -> tuple[Any, Answered]:
        """The first batch to finish: its ``tag`` and :func:`answer_batch` result."""
        call, value = self.pool.next_done(self._inflight)
        return call.payload, value

    def close(self) -> None:
        self._inflight.clear()
        self.pool.close()  # kills the actors, and with them any queued batch


@dataclass
class _Batch:
    """One batch on the driver: its clips, the answers found so far and the answers it waits for."""

    clips: list[Clip]
    found: dict[tuple[int, str, str], dict] = field(default_factory=dict)  # (clip, template, mode) -> record
    jobs: dict[JobKey, list[tuple[int, str, str]]] = field(default_factory=dict)  # -> (clip, prompt, key)
    later: list[tuple[int, str, str, str, str]] = field(default_factory=list)  # (clip, template, mode, prompt, key)
    done: bool = False


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

    ``answers`` computes the batches (default: ``LocalAnswers(backend)``). This driver does the rest
    for both engines: cache lookups, cache writes as batches come back, records in clip order. An
    answer whose key an earlier batch still in flight will write is read back once that batch is in,
    as a cache hit, exactly as when batches run one after the other.
    """
    answers = answers or LocalAnswers(backend)
    labels = [str(x) for x in task.labels]
    if len(labels) < 2:
        raise ConfigError(f"task {task.name}: zero-shot needs at least 2 labels, got {labels}")
    parser = AnswerParser(labels, synonyms_for(task.name, labels, cfg.synonyms.get(task.name)))
    first = next(iter(source), None)
    if first is None:
        raise ConfigError(f"task {task.name}: no usable clips")
    used = [t for t in templates if not t.per_clip or first.instruction]
    dropped = [t.id for t in templates if t not in used]
    if dropped and "instruction" in (explicit or set()):
        raise ConfigError(
            f"prompt 'instruction' asked for, but task {task.name} has no instruction column; "
            f"use --prompts choose,question (or all, which skips it where absent)"
        )
    base = backend.settings()
    lik_settings = {
        **base,
        "labels": labels,
        "scored": "label tokens + end token",
        "label_tokens": label_tokens(backend, labels),
    }
    gen_settings = {**base, "max_new_tokens": cfg.max_new_tokens, "decoding": "greedy"}
    records: list[dict] = []
    count = dict.fromkeys(("missing_instruction", "computed", "cached", "encoded", "truncated"), 0)
    window: deque[_Batch] = deque()  # batches not yet assembled, in clip order
    pending: set[str] = set()  # keys of answers in flight

    def receive() -> None:
        batch, (answered, truncated) = answers.collect()
        for (mode, tid), items in batch.jobs.items():
            for (i, prompt, key), rec in zip(items, answered[(mode, tid)]):
                store.put(key, rec)
                pending.discard(key)
                batch.found[(i, tid, mode)] = {**rec, "prompt": prompt}
        count["truncated"] += truncated
        batch.done = True

    def assemble() -> None:
        while window and window[0].done:
            batch = window.popleft()
            for i, tid, mode, prompt, key in batch.later:
                batch.found[(i, tid, mode)] = {**store.get(key), "prompt": prompt}
                count["cached"] += 1
            for (i, tid, mode), rec in sorted(batch.found.items()):
                records.extend(_records(batch.clips[i], tid, mode, rec, parser))

    for clips in _batches(source, backend.batch_size):
        batch = _Batch(clips)
        for i, clip in enumerate(clips):
            if not clip.instruction and any(t.per_clip for t in used):
                count["missing_instruction"] += 1
            for t in used:
                if t.per_clip and not clip.instruction:
                    continue
                prompt = t.render(task.name, labels, clip.instruction)
                for mode in cfg.modes:
                    settings = lik_settings if mode == "likelihood" else gen_settings
                    key = response_key(backend.name, backend.fingerprint, prompt, clip.content_hash, mode, settings)
                    if key in pending:
                        batch.later.append((i, t.id, mode, prompt, key))
                        continue
                    hit = store.get(key)
                    if hit is not None:
                        batch.found[(i, t.id, mode)] = {**hit, "prompt": prompt}
                        count["cached"] += 1
                    else:
                        batch.jobs.setdefault((mode, t.id), []).append((i, prompt, key))
        if batch.jobs:
            need = sorted({i for items in batch.jobs.values() for i, _, _ in items})
            row = {i: r for r, i in enumerate(need)}
            audios = [resample(clips[i].audio, clips[i].sample_rate, backend.sample_rate) for i in need]
            jobs = {job: [(row[i], p) for i, p, _ in items] for job, items in batch.jobs.items()}
            answers.submit(batch, audios, jobs, labels, cfg.max_new_tokens)
            pending.update(key for items in batch.jobs.values() for _, _, key in items)
            count["encoded"] += len(need)
            count["computed"] += sum(len(items) for items in batch.jobs.values())
        else:
            batch.done = True
        window.append(batch)
        assemble()
        while len(window) >= answers.capacity:  # bounded: the head batch is still in flight
            receive()
            assemble()
    while window:
        receive()
        assemble()
    responses = pd.DataFrame(records, columns=RESPONSE_COLUMNS)
    rows = _metric_rows(backend.name, task.name, responses, labels)
    info = {
        "prompts_used": [t.id for t in used],
        "prompts_skipped": {tid: "the task's clips have no instruction" for tid in dropped},
        "clips": int(responses["id"].nunique()) if len(responses) else 0,
        "clips_without_instruction": count["missing_instruction"],
        "answers_computed": count["computed"],
        "answers_from_cache": count["cached"],
        "clips_encoded": count["encoded"],
        "clips_truncated": count["truncated"],  # longer than the model's audio window (30 s for Whisper / Qwen2-Audio)
        "skipped": [dataclasses.asdict(s) for s in getattr(source, "skipped", [])],
    }
    return rows, responses, info


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


def _records(clip: Clip, tid: str, mode: str, rec: dict, parser: AnswerParser) -> list[dict]:
    common = {
        "id": clip.id,
        "content_hash": clip.content_hash,
        "label": clip.label,
        "group": clip.group,
        "prompt_id": tid,
        "prompt": rec["prompt"],
    }
    if mode == "generate":
        parsed = parser(rec["text"])
        return [
            {
                **common,
                "mode": "generate",
                "answer": rec["text"],
                "prediction": parsed.label,
                "parse_rule": parsed.rule,
                "correct": parsed.label == clip.label,
                "scores": None,
            }
        ]
    raw = np.asarray(rec["raw"], dtype=float)
    norm = raw / np.asarray(rec["n_tokens"], dtype=float)
    out = []
    for name, scores in (("likelihood", norm), ("likelihood_raw", raw)):
        pred = rec["labels"][int(np.argmax(scores))]
        out.append(
            {
                **common,
                "mode": name,
                "answer": None,
                "prediction": pred,
                "parse_rule": None,
                "correct": pred == clip.label,
                "scores": json.dumps({lab: round(float(s), 6) for lab, s in zip(rec["labels"], scores)}),
            }
        )
    return out


def _metric_rows(model: str, task: str, responses: pd.DataFrame, labels: Sequence[str]) -> pd.DataFrame:
    """Per (mode, prompt): Macro-F1 and accuracy, then the parse rate and collapse diagnostics (:mod:`.diagnostics`)."""
    rows = []
    for (mode, tid), group in responses.groupby(["mode", "prompt_id"], sort=True):
        preds = [None if (isinstance(p, float) and np.isnan(p)) or p is None else p for p in group["prediction"]]
        metrics = zeroshot_metrics(list(group["label"]), preds) | answer_diagnostics(list(group["label"]), preds)
        for metric, value in metrics.items():
            rows.append((model, task, pd.NA, probe_name(mode, tid), FOLD, metric, value))
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)
