"""Decoder states as probed models: ``<model>:decoder@<prompt-id>`` beside the encoder's layers (issue 29).

The zero-shot stage with ``--decoder-states`` stores, per (model, task), every decoder layer's state for one
prompt (:mod:`speechprobe.zeroshot.decoder_states`; manifest.json ``zeroshot.tasks.<task>.by_model.<model>.
decoder``). Each (model, prompt, position rule) becomes a feature space of its own under a derived name,
``<model>:decoder@<prompt-id>`` for the ``last`` rule and ``<model>:decoder@<prompt-id>/<rule>`` for the others
(Qwen2-Audio's ``audio_mean``), whose layers are the decoder's (0 = the token embeddings). After the zero-shot
stage, :func:`probe_decoder_models` probes them with the run's probe settings and folds (the probe stage's
partial results and out-of-fold predictions: resumable, a rerun computes nothing), so their rows enter
results.csv, summary.csv, bootstrap.csv, the selection-aware best-layer test (``--permutations``), the layer
curves and the report like any model's. manifest.json ``models.<name>`` records ``decoder`` (the model, prompt,
rule) and ``spaces`` (task -> feature space: the prompt's text names the task's labels). No registry name or hub
id holds ``:decoder@``; a run whose ``--models`` entry does is refused.

A probe stage run again drops these rows with the rest of its own (saying so: ``zeroshot.decoder_states.warn_dropped``);
the zero-shot stage puts them back.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from .analysis import analyse_features, summarize_run
from .analysis.bootstrap import bootstrap_run
from .analysis.primary import primary_probe
from .cache import cache_root, using_cache
from .clip_checks import fold_inputs
from .config import RunConfig
from .errors import ConfigError
from .features.store import FeatureSpace, FeatureStore
from .figures import curves
from .models.base import DECODER_MARK, decoder_model
from .pipeline import _probe_pair, load_extracted, probe_key, run_zeroshot_stage
from .rundir import RESULTS, RunDir, check_unique, sort_results
from .zeroshot import ZeroShotConfig, refresh_zeroshot_tables

log = logging.getLogger("speechprobe")


def decoder_models(manifest: dict) -> dict[str, dict]:
    """Derived name -> its manifest entry (without ``num_layers``), from the zero-shot stage's records."""
    config = manifest.get("config") or {}
    clash = [m for m in [*config.get("models", []), *config.get("baselines", [])] if DECODER_MARK in m]
    if clash:  # its rows would be taken for decoder states
        raise ConfigError(f"--models {clash[0]}: {DECODER_MARK!r} marks decoder states; rename that model")
    out: dict[str, dict] = {}
    for task, info in sorted(((manifest.get("zeroshot") or {}).get("tasks") or {}).items()):
        for model, entry in sorted((info.get("by_model") or {}).items()):
            dec = entry.get("decoder")
            for rule in (dec or {}).get("rules") or {}:
                name = decoder_model(model, dec["prompt_id"], rule)
                record = {"decoder": {"model": model, "prompt_id": dec["prompt_id"], "rule": rule}, "spaces": {}}
                out.setdefault(name, record | {"store": dec["store"]})["spaces"][task] = dec["spaces"][rule]
    return out


def zeroshot_with_decoder_models(cfg: ZeroShotConfig, existing: str = "auto") -> pd.DataFrame:
    """:func:`~speechprobe.pipeline.run_zeroshot_stage`, then (with ``--decoder-states`` and probe results) the
    decoder states probed as models (:func:`probe_decoder_models`), the ``decoder_layers`` analysis and the
    zero-shot link's decoder sides."""
    rows = run_zeroshot_stage(cfg, existing)
    run_dir = RunDir(cfg.out)
    if cfg.decoder_states and run_dir.has_rows("probe"):  # their inputs exist only now
        with run_dir.lock(), using_cache(cfg.cache):
            probe_decoder_models(cfg.out)
            analyse_features(cfg.out, analyses=["decoder_layers"], reuse=False, device=cfg.device)
        refresh_zeroshot_tables(run_dir)  # the link's decoder sides
    return rows


def probe_decoder_models(out: Path) -> list[str]:
    """Probe every derived decoder model on its tasks (see the module docstring); returns their names."""
    run_dir = RunDir(out)
    manifest = run_dir.read_manifest()
    derived = decoder_models(manifest)
    if not derived:
        return []
    _, clips_by_task, state = load_extracted(out)
    cfg = RunConfig.from_json(manifest["config"], out=out)  # the probe stage's settings
    store = FeatureStore(cache_root(cfg.compute.cache) / "features")
    frames = []
    for name, entry in derived.items():
        for task, space in entry["spaces"].items():
            clips = clips_by_task.get(task, [])
            if task not in (manifest.get("cv") or {}) or not clips:
                continue  # a task the probe stage could not probe
            root = Path(entry["store"]) / space
            missing = sum(not FeatureSpace(root, {}).has(c.content_hash) for c in clips)
            if missing:
                log.warning("%s × %s: %d clips lack decoder states; not probed", name, task, missing)
                continue
            labels, groups = fold_inputs(cfg, clips)
            label_set = state.tasks.get(task, {}).get("label_set") or sorted(set(labels))
            key = probe_key(task, label_set, space, clips, cfg)
            frames.append(_probe_pair(cfg, run_dir, store, name, {"root": root}, task, clips, groups, key, state))
    if not frames:
        return []
    rows = pd.concat(frames, ignore_index=True)
    old = run_dir.read_results()
    merged = sort_results(
        pd.concat([old[~old["model"].str.contains(DECODER_MARK, regex=False)], rows], ignore_index=True)
    )
    check_unique(merged, str(run_dir.path(RESULTS)))
    run_dir.write_csv(RESULTS, merged)
    _refresh(run_dir, cfg, manifest, derived, rows)
    return sorted(set(rows["model"]))


def _refresh(run_dir: RunDir, cfg: RunConfig, manifest: dict, derived: dict, rows: pd.DataFrame) -> None:
    """What the probe stage derives from results.csv, with the decoder models in: summary.csv, manifest.json's
    models, bootstrap.csv, the layer curves and (``--permutations``) the selection-aware best-layer test."""
    depth = (rows.groupby("model")["layer"].max() + 1).astype(int)
    models = {k: v for k, v in (manifest.get("models") or {}).items() if DECODER_MARK not in k}
    models |= {name: derived[name] | {"num_layers": int(n)} for name, n in depth.items()}
    run_dir.update_manifest({"models": models})
    summary = summarize_run(run_dir.root)
    cv = manifest.get("cv") or {}
    if cfg.cv.bootstrap:
        nouns = {t: info.get("group_name") or "group" for t, info in cv.items()}
        bootstrap_run(run_dir.root, None, cfg.cv.bootstrap, cfg.compute.seed, nouns)
    primary = primary_probe(cfg.to_json(), summary.loc[summary["layer"].notna(), "probe"])
    layers = {m: int(info["num_layers"]) for m, info in models.items()}
    chance = {t: c["macro_f1"] for t, c in (manifest.get("chance") or {}).items()}
    curves.draw_tasks(run_dir.root, curves.task_specs(summary, layers, primary, chance))
    if cfg.analyses.permutations:
        c = cfg.compute
        kw = dict(n_permutations=cfg.analyses.permutations, device=c.device, progress=c.progress)
        analyse_features(run_dir.root, analyses=["selection"], models=list(depth.index), n_jobs=cfg.n_jobs, **kw)
