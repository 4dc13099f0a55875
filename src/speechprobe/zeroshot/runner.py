"""Run zero-shot evaluation: every (model, task, prompt, mode), cached and resumable.

For each model and task the clips stream in batches of ``batch_size``. A batch's answers are looked
up in the response cache first; only clips with something missing are encoded, once, and that one
encoding serves every prompt and both modes. Outputs in the run directory:

``results.csv``             zero-shot rows merged in (``layer`` empty, ``fold`` 0, ``probe`` =
                            ``zeroshot:<mode>:<prompt-id>``; modes ``generate``, ``likelihood``
                            (length-normalised log-probability) and ``likelihood_raw`` (summed);
                            metrics ``macro_f1``, ``accuracy`` and, for generate, ``parse_failure_rate``);
``summary.csv``             recomputed over all rows;
``zeroshot/<model>/<task>.csv``  one row per (clip, mode, prompt): the prompt, the answer, the
                            parsed label and parse rule, or the per-label scores;
``zeroshot_sensitivity.csv``, ``zeroshot_vs_probe.csv``, ``zeroshot_correlation.csv``,
``figures/zeroshot_correlation.png``  see :mod:`.compare`;
``manifest.json``           a ``zeroshot`` section: config, prompts (texts), per model its source,
                            weights fingerprint and decoding settings (chat template on/off, system
                            prompt, batch size, ...), per task the prompts used and skipped, cache use.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..cache import cache_root
from ..data.audio import resample
from ..data.clip import Clip
from ..data.resolve import open_task
from ..data.tasks import Task
from ..errors import ConfigError
from ..rundir import RESULT_COLUMNS, ensure_writable, sort_results, write_csv
from .base import ZeroShotBackend
from .cache import ResponseCache, response_key
from .models import load_backend, resolve_zeroshot_model
from .parser import AnswerParser, synonyms_for
from .prompts import PromptTemplate, check_template, resolve_prompts
from .scoring import greedy_generate, label_tokens, score_labels, zeroshot_metrics

log = logging.getLogger("speechprobe")

MODES = ("likelihood", "generate")
FOLD = 0  # zero-shot has no training folds: one evaluation over every clip, written as fold 0


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
    synonyms: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # task -> label -> extra synonyms
    skip_unsupported: bool = False  # `speechprobe run`: skip encoder-only models instead of refusing
    progress: bool = True

    def validate(self) -> None:
        if not self.models:
            raise ConfigError("no models given; pass --models (zero-shot needs a model with a text decoder)")
        if not self.tasks:
            raise ConfigError("no tasks given; pass --tasks (see `speechprobe tasks`)")
        unknown = [m for m in self.modes if m not in MODES]
        if unknown or not self.modes:
            raise ConfigError(f"--mode {','.join(unknown or ['(none)'])}: choose likelihood, generate or both")
        if self.batch_size < 1:
            raise ConfigError("--batch-size must be at least 1")
        if self.max_new_tokens < 1:
            raise ConfigError("--max-new-tokens must be at least 1")
        if self.n_per_class is not None and self.n_per_class < 1:
            raise ConfigError("--n-per-class must be at least 1")
        if self.window not in ("full", "trimmed"):
            raise ConfigError(f"--window {self.window!r}: choose full or trimmed")

    @classmethod
    def from_run_config(cls, run, prompts: Sequence[str] = ("all",), modes: Sequence[str] = MODES, **overrides) -> ZeroShotConfig:
        """The zero-shot part of ``speechprobe run``: same models, tasks, run directory, seed, data size,
        cache, device, dtype and Whisper window as the probing run (a ``RunConfig``); encoder-only models
        are skipped (and recorded) rather than refused."""
        base = {
            "models": list(run.models), "tasks": list(run.tasks), "out": run.out, "prompts": list(prompts),
            "modes": list(modes), "seed": run.seed, "n_per_class": run.n_per_class, "cache": run.cache,
            "device": run.device, "dtype": run.dtype, "window": run.window, "skip_unsupported": True,
            "progress": run.progress,
        }
        return cls(**{**base, **overrides})

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["out"] = str(self.out)
        d["cache"] = str(self.cache) if self.cache else None
        d.pop("progress")
        return d


def probe_name(mode: str, prompt_id: str) -> str:
    return f"zeroshot:{mode}:{prompt_id}"


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
    ensure_writable(cfg.out)
    root = cache_root(cfg.cache)
    store = ResponseCache(root / "zeroshot")
    tasks = [open_task(t, root, cfg.seed, cfg.n_per_class, cfg.progress) for t in dict.fromkeys(cfg.tasks)]
    state: dict[str, Any] = {
        "config": cfg.to_json(),
        "fold": FOLD,
        "prompts": {t.id: {"text": t.text or "(each clip's instruction)", "origin": t.origin} for t in templates},
        "models": {}, "tasks": {}, "skipped_models": skipped_models,
    }
    frames = []
    for name in models:
        backend = load_backend(
            name, cfg.device, cfg.dtype, cfg.batch_size, cfg.chat_template, cfg.system_prompt, cfg.language, cfg.window
        )
        state["models"][backend.name] = {
            "requested": name, "family": backend.family, "source": backend.source,
            "fingerprint": backend.fingerprint, "settings": backend.settings(),
        }
        for task, source in tasks:
            t0 = time.perf_counter()
            rows, responses, info = evaluate_task(backend, task, source, templates, cfg, store, explicit)
            info["seconds"] = round(time.perf_counter() - t0, 3)
            state["tasks"].setdefault(task.name, {"labels": list(task.labels), "source": task.source})
            state["tasks"][task.name].setdefault("by_model", {})[backend.name] = info
            write_csv(cfg.out / "zeroshot" / _slug(backend.name) / f"{_slug(task.name)}.csv", responses)
            frames.append(rows)
        del backend
        _release_memory()
    state["cache"] = {"root": str(store.root), "hits": store.hits, "writes": store.writes}
    results = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=RESULT_COLUMNS)
    results = sort_results(results)
    from .compare import write_zeroshot_outputs

    write_zeroshot_outputs(cfg.out, results, state)
    return results


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


def evaluate_task(
    backend: ZeroShotBackend,
    task: Task,
    source,
    templates: Sequence[PromptTemplate],
    cfg: ZeroShotConfig,
    store: ResponseCache,
    explicit: set[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Answers and metrics of one backend on one task: (result rows, per-clip responses, manifest info)."""
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
    lik_settings = {**base, "labels": labels, "scored": "label tokens + end token",
                    "label_tokens": label_tokens(backend, labels)}
    gen_settings = {**base, "max_new_tokens": cfg.max_new_tokens, "decoding": "greedy"}
    records: list[dict] = []
    missing_instruction, computed, cached, encoded, truncated = 0, 0, 0, 0, 0
    for clips in _batches(source, backend.batch_size):
        audios = [resample(c.audio, c.sample_rate, backend.sample_rate) for c in clips]
        jobs: dict[tuple[str, str], list[tuple[int, str, str]]] = {}  # (mode, template) -> (clip, prompt, key)
        found: dict[tuple[int, str, str], dict] = {}
        for i, clip in enumerate(clips):
            if not clip.instruction and any(t.per_clip for t in used):
                missing_instruction += 1
            for t in used:
                if t.per_clip and not clip.instruction:
                    continue
                prompt = t.render(task.name, labels, clip.instruction)
                for mode in cfg.modes:
                    settings = lik_settings if mode == "likelihood" else gen_settings
                    key = response_key(backend.name, backend.fingerprint, prompt, clip.content_hash, mode, settings)
                    hit = store.get(key)
                    if hit is not None:
                        found[(i, t.id, mode)] = {**hit, "prompt": prompt}
                        cached += 1
                    else:
                        jobs.setdefault((mode, t.id), []).append((i, prompt, key))
        if jobs:
            need = sorted({i for items in jobs.values() for i, _, _ in items})
            enc = backend.encode([audios[i] for i in need])  # once per clip, for every prompt and mode
            encoded += len(need)
            truncated += sum(enc.truncated)
            row_of = {clip_i: r for r, clip_i in enumerate(need)}
            for (mode, tid), items in jobs.items():
                sub = enc.select([row_of[i] for i, _, _ in items])
                prompts = [p for _, p, _ in items]
                if mode == "likelihood":
                    scores = score_labels(backend, sub, prompts, labels)
                    for r, (i, prompt, key) in enumerate(items):
                        rec = {"labels": labels, "raw": scores.raw[r].tolist(), "n_tokens": scores.n_tokens.tolist()}
                        store.put(key, rec)
                        found[(i, tid, mode)] = {**rec, "prompt": prompt}
                else:
                    answers = greedy_generate(backend, sub, prompts, cfg.max_new_tokens)
                    for (i, prompt, key), text in zip(items, answers):
                        rec = {"text": text}
                        store.put(key, rec)
                        found[(i, tid, mode)] = {**rec, "prompt": prompt}
                computed += len(items)
        for (i, tid, mode), rec in sorted(found.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
            records.extend(_records(clips[i], tid, mode, rec, parser))
    responses = pd.DataFrame(records, columns=RESPONSE_COLUMNS)
    rows = _metric_rows(backend.name, task.name, responses, labels)
    info = {
        "prompts_used": [t.id for t in used],
        "prompts_skipped": {tid: "the task's clips have no instruction" for tid in dropped},
        "clips": int(responses["id"].nunique()) if len(responses) else 0,
        "clips_without_instruction": missing_instruction,
        "answers_computed": computed,
        "answers_from_cache": cached,
        "clips_encoded": encoded,
        "clips_truncated": truncated,  # longer than the model's audio window (30 s for Whisper / Qwen2-Audio)
        "skipped": [dataclasses.asdict(s) for s in getattr(source, "skipped", [])],
    }
    return rows, responses, info


RESPONSE_COLUMNS = [
    "id", "content_hash", "label", "group", "mode", "prompt_id", "prompt", "answer", "prediction", "parse_rule",
    "correct", "scores",
]


def _records(clip: Clip, tid: str, mode: str, rec: dict, parser: AnswerParser) -> list[dict]:
    common = {"id": clip.id, "content_hash": clip.content_hash, "label": clip.label, "group": clip.group,
              "prompt_id": tid, "prompt": rec["prompt"]}
    if mode == "generate":
        parsed = parser(rec["text"])
        return [{**common, "mode": "generate", "answer": rec["text"], "prediction": parsed.label,
                 "parse_rule": parsed.rule, "correct": parsed.label == clip.label, "scores": None}]
    raw = np.asarray(rec["raw"], dtype=float)
    norm = raw / np.asarray(rec["n_tokens"], dtype=float)
    out = []
    for name, scores in (("likelihood", norm), ("likelihood_raw", raw)):
        pred = rec["labels"][int(np.argmax(scores))]
        out.append({**common, "mode": name, "answer": None, "prediction": pred, "parse_rule": None,
                    "correct": pred == clip.label,
                    "scores": json.dumps({lab: round(float(s), 6) for lab, s in zip(rec["labels"], scores)})})
    return out


def _metric_rows(model: str, task: str, responses: pd.DataFrame, labels: Sequence[str]) -> pd.DataFrame:
    rows = []
    for (mode, tid), group in responses.groupby(["mode", "prompt_id"], sort=True):
        preds = [None if (isinstance(p, float) and np.isnan(p)) else p for p in group["prediction"]]
        metrics = zeroshot_metrics(list(group["label"]), preds, with_failures=(mode == "generate"))
        for metric, value in metrics.items():
            rows.append((model, task, pd.NA, probe_name(mode, tid), FOLD, metric, value))
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)
