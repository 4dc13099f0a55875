"""Run zero-shot evaluation: every (model, task, prompt, mode), cached and resumable.

For each model and task the clips stream in batches of ``batch_size``. A batch's answers are looked
up in the response cache first; only clips with something missing are encoded, once, and that one
encoding serves every prompt and mode (:func:`.engines.answer_batch`).

Two engines answer the batches with that same function (:mod:`.engines`): ``local`` (:class:`LocalAnswers`, this
process) and ``ray`` (:class:`RayAnswers`: model actors on a Ray cluster, built and supervised by
:mod:`speechprobe.ray_pool`, on the driver's thread counts). Either way the driver reads
the clips, looks answers up, writes the cache and assembles the records in clip order (:mod:`.driver`), so both
engines write the same files; the engine is recorded in the manifest, outside the config.
Outputs in the run directory:

``results.csv``             zero-shot rows merged in (``layer`` empty, ``fold`` 0, ``probe`` =
                            ``zeroshot:<mode>:<prompt-id>``, for the modes asked for (:mod:`.modes`;
                            ``native`` as ``zeroshot:native:<head>``, :mod:`.native`);
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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..cache import using_cache
from ..data.clip import Clip
from ..data.resolve import open_task
from ..data.tasks import Task
from ..errors import ConfigError
from ..rundir import RESULT_COLUMNS, RunDir, slug, sort_results
from ..warnlog import capture_warnings
from .base import ZeroShotBackend
from .cache import ResponseCache
from .config import ZeroShotConfig
from .decoder_states import DecoderStore, decoder_template
from .driver import Driver, make_plan
from .engines import BackendInfo, LocalAnswers, RayAnswers
from .models import load_backend, resolve_zeroshot_model
from .modes import BUILTIN_MODES, resolve_modes
from .native import native_targets
from .parser import AnswerParser, synonyms_for
from .prompts import PromptTemplate, check_template, resolve_prompts
from .responses import (
    FOLD,
    RESPONSE_COLUMNS,
    batch_priors,
    content_free_frame,
    matched_weights,
    metric_rows,
    parser_synonyms,
    response_rows,
    target_prior,
    template_scores,
    with_verbalisers,
)
from .scoring import label_tokens

log = logging.getLogger("speechprobe")

MODES = BUILTIN_MODES  # the built-in modes (:mod:`.modes`; a plugin may register more)
LOAD_BACKEND: str | Callable[..., ZeroShotBackend] = "speechprobe.zeroshot.models:load_backend"  # Ray actors' factory


def run_zeroshot(cfg: ZeroShotConfig, existing: str = "auto") -> pd.DataFrame:
    """Evaluate every (model, task, prompt, mode); write the run directory; return the zero-shot rows.

    ``existing``: what to do with earlier zero-shot results of other settings in ``cfg.out`` (see
    :meth:`speechprobe.rundir.RunDir.claim`)."""
    cfg.validate()
    templates = resolve_prompts(cfg.prompts)
    for t in templates:
        check_template(t, [m.asks for m in resolve_modes(cfg.modes)])
    if cfg.decoder_states:
        decoder_template(templates, cfg.decoder_prompt)  # before any work
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
        return _run(cfg, run_dir, root, templates, models, skipped_models)


def _run(
    cfg: ZeroShotConfig,
    run_dir: RunDir,
    root: Path,
    templates: list[PromptTemplate],
    models: list[str],
    skipped_models: dict[str, str],
) -> pd.DataFrame:
    """The work of :func:`run_zeroshot` once every input is checked and the run directory claimed."""
    store = ResponseCache(root / "zeroshot")
    tasks = [
        open_task(t, root, cfg.seed, cfg.n_per_class, cfg.progress, label_map=cfg.label_map)
        for t in dict.fromkeys(cfg.tasks)
    ]
    tasks = [(with_verbalisers(task, cfg.verbalisers), source) for task, source in tasks]
    for task, _ in tasks:
        target_prior(task, cfg.target_prior)  # a bad target file fails before any model work
    state: dict[str, Any] = {
        "config": cfg.to_json(),
        "engine": {"name": cfg.engine, **({"address": cfg.ray_address, "actors": {}} if cfg.engine == "ray" else {})},
        "fold": FOLD,
        "modes": {m.name: m.help for m in resolve_modes(cfg.modes)},  # what each written mode is
        "prompts": {t.id: {"text": t.text, "origin": t.origin} for t in templates},
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
                rows, responses, info = evaluate_task(backend, task, source, templates, cfg, store, answers)
                info["seconds"] = round(time.perf_counter() - t0, 3)
                state["tasks"].setdefault(task.name, _task_state(task))
                state["tasks"][task.name]["revision"] = getattr(source, "revision_record", None)  # data/revision.py
                state["tasks"][task.name].setdefault("by_model", {})[backend.name] = info
                folder = f"zeroshot/{slug(backend.name)}"
                run_dir.write_csv(f"{folder}/{slug(task.name)}.csv", responses)
                run_dir.write_csv(f"{folder}/content_free/{slug(task.name)}.csv", info.pop("content_free_scores"))
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
    """Where ``name``'s batches are answered, per ``cfg.engine``; the backend is built with ``cfg`` as its options.
    ``phrasings``: every phrasing a task will score (their tokens go into the driver's cache keys on Ray)."""
    if cfg.engine == "ray":  # the config is the backend's options (a BackendOptions), checked by validate
        from ..ray_pool import Recipe

        return RayAnswers(Recipe(LOAD_BACKEND, {"name": name, "options": cfg}), phrasings, cfg.ray_actors)
    return LocalAnswers(load_backend(name, cfg))


def evaluate_task(
    backend: ZeroShotBackend | BackendInfo,
    task: Task,
    source,
    templates: Sequence[PromptTemplate],
    cfg: ZeroShotConfig,
    store: ResponseCache,
    answers: LocalAnswers | RayAnswers | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Answers and metrics of one backend on one task: (result rows, per-clip responses, manifest info).

    ``answers`` computes the batches (default: ``LocalAnswers(backend)``); :class:`.driver.Driver` does the rest
    for both engines. Likelihood prompts are then scored on the content-free inputs for the calibrated
    modes. ``info["content_free_scores"]`` holds those scores as a table (the caller writes it).
    """
    answers = answers or LocalAnswers(backend)
    if next(iter(source), None) is None:
        raise ConfigError(f"task {task.name}: no usable clips")
    modes = resolve_modes(cfg.modes)
    states = decoder_template(templates, cfg.decoder_prompt).id if cfg.decoder_states else None
    plan = make_plan(backend, task, templates, modes, cfg.max_new_tokens, states)
    labels = list(plan.words.labels)
    synonyms = parser_synonyms(task, (cfg.synonyms or {}).get(task.name, {}))
    parser = AnswerParser(labels, synonyms_for(task.name, labels, synonyms))
    decoder = None
    if states:
        firsts = [tokens[0] for tokens in label_tokens(backend, plan.words.flat)]
        decoder = DecoderStore(store.root.parent / "features", backend, firsts)
    driver = Driver(backend, plan, store, answers, decoder)
    for clips in _batches(source, backend.batch_size):
        driver.add(clips)
    driver.finish()
    cf, inputs = ({}, [])
    if any(m.content_free for m in modes):
        cf, inputs = driver.content_free(
            (tid, rec["prompt"]) for _, tid, mode, rec in driver.assembled if mode == "likelihood"
        )
    scores = template_scores(driver.assembled, plan.words)
    priors = batch_priors(scores)
    target = target_prior(task, cfg.target_prior)
    weights = matched_weights(scores, target) if any(m.name == "likelihood_pm" for m in modes) else {}
    records = [
        row
        for entry in driver.assembled
        for row in response_rows(*entry, plan.words, parser, cf, priors, modes, weights)
    ]
    responses = pd.DataFrame(records, columns=RESPONSE_COLUMNS)
    count = driver.count
    info = {
        "prompts_used": [t.id for t in plan.used],
        "native_heads": {h: t for h, t in plan.heads.items()},
        "native_skipped": native_targets(backend.native_heads(), task)[1]
        if any(m.asks == "native" for m in modes)
        else {},
        "content_free_inputs": inputs,
        "target_prior": None if target is None else dict(zip(labels, target.round(6).tolist())),  # None: uniform
        "clips": int(responses["id"].nunique()) if len(responses) else 0,
        "clips_without_instruction": count["missing_instruction"],
        "answers_computed": count["computed"],
        "answers_from_cache": count["cached"],
        "clips_encoded": count["encoded"],
        "clips_truncated": count["truncated"],  # longer than the model's audio window (30 s for Whisper / Qwen2-Audio)
        "skipped": [dataclasses.asdict(s) for s in getattr(source, "skipped", [])],
        "content_free_scores": content_free_frame(plan.words, cf, inputs),
    }
    if decoder is not None:  # where the decoder_layers analysis finds the states (decoder_states.py)
        shown = [forms[0] for forms in plan.words.phrasings]
        template = next(t for t in plan.used if t.id == states)
        info["decoder"] = decoder.describe(template.render(task.name, shown, None), states)
        info["decoder"]["labels"] = labels
        info["decoder"]["phrasings"] = [list(forms) for forms in plan.words.phrasings]
    return metric_rows(backend.name, task.name, responses), responses, info
