"""Analyses that need the stored features, run once per (model, task) and saved in the run directory.

:func:`analyse_features` reads ``manifest.json``, ``clips/<task>.csv`` and ``results.csv`` from a run
directory, asks a loader for each (model, task)'s features ``(items, layers, dims)`` and writes:

``permutation.csv`` — one row per (model, task): permutation test of the best layer
    (:data:`PERMUTATION_COLUMNS`): ``model, task, probe, layer, num_layers, relative_depth, metric,
    observed, null_mean, null_std, null_q95, n_permutations, p_value, scheme, n_folds, seed, grouped``.
``selectivity.csv`` — one row per (model, task, layer): control task and selectivity
    (:data:`SELECTIVITY_COLUMNS`): ``model, task, probe, layer, relative_depth, real, control,
    selectivity, n_repeats, scheme``.
``figures/tsne_<model>_<task>.png`` (+ ``.svg``; ``umap_…`` too when umap-learn is installed) — the
    first, best and last layer, coloured by label.
``analysis.json`` — the parameters used and notes on what was skipped and why.

:func:`build_report <speechprobe.analysis.report.build_report>` reads these files; it never needs
the features themselves.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError, SpeechprobeError
from ..files import atomic_write
from ..rundir import read_results, slug
from .curves import relative_depth
from .plots import plot_tsne, plot_umap, umap_available
from .stats import control_selectivity, permutation_scheme, permutation_test
from .summary import best_layers, summarize

log = logging.getLogger("speechprobe")

PERMUTATION_COLUMNS = [
    "model",
    "task",
    "probe",
    "layer",
    "num_layers",
    "relative_depth",
    "metric",
    "observed",
    "null_mean",
    "null_std",
    "null_q95",
    "n_permutations",
    "p_value",
    "scheme",
    "n_folds",
    "seed",
    "grouped",
]
SELECTIVITY_COLUMNS = [
    "model",
    "task",
    "probe",
    "layer",
    "relative_depth",
    "real",
    "control",
    "selectivity",
    "n_repeats",
    "scheme",
]

FeatureLoader = Callable[[str, Sequence[str]], np.ndarray]  # (model, content hashes) -> (N, L, D)


def write_table(path: Path, frame: pd.DataFrame, columns: Sequence[str]) -> Path:
    """Atomically write ``frame[columns]`` as CSV (missing columns are added empty)."""
    frame = frame.reindex(columns=list(columns))
    buf = io.StringIO()
    frame.to_csv(buf, index=False, lineterminator="\n")
    return atomic_write(Path(path), lambda fh: fh.write(buf.getvalue().encode()))


def read_table(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    """Read a CSV written by :func:`write_table`; raises SpeechprobeError when columns are missing."""
    frame = pd.read_csv(path, keep_default_na=True)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SpeechprobeError(f"{Path(path).name} lacks column(s): {', '.join(missing)}")
    for col in ("model", "task", "probe", "scheme"):
        if col in frame.columns:
            frame[col] = frame[col].astype(str)
    return frame


def permutation_record(
    model: str,
    task: str,
    probe: str,
    layer: int,
    n_layers: int,
    observed: float,
    null: np.ndarray,
    p_value: float,
    scheme: str,
    n_folds: int,
    seed: int,
    grouped: bool,
    metric: str = "macro_f1",
) -> dict:
    """One ``permutation.csv`` row from :func:`permutation_test`'s output."""
    null = np.asarray(null, dtype=float)
    return {
        "model": model,
        "task": task,
        "probe": probe,
        "layer": int(layer),
        "num_layers": int(n_layers),
        "relative_depth": float(relative_depth(int(layer), int(n_layers))),
        "metric": metric,
        "observed": float(observed),
        "null_mean": float(null.mean()),
        "null_std": float(null.std(ddof=1)) if len(null) > 1 else 0.0,
        "null_q95": float(np.quantile(null, 0.95)),
        "n_permutations": len(null),
        "p_value": float(p_value),
        "scheme": scheme,
        "n_folds": int(n_folds),
        "seed": int(seed),
        "grouped": bool(grouped),
    }


def selectivity_records(
    model: str, task: str, probe: str, table: pd.DataFrame, n_layers: int, n_repeats: int, scheme: str
) -> pd.DataFrame:
    """``selectivity.csv`` rows from :func:`control_selectivity`'s output."""
    out = table.copy()
    out.insert(0, "probe", probe)
    out.insert(0, "task", task)
    out.insert(0, "model", model)
    out["relative_depth"] = relative_depth(out["layer"].to_numpy(int), int(n_layers))
    out["n_repeats"] = int(n_repeats)
    out["scheme"] = scheme
    return out[SELECTIVITY_COLUMNS]


def read_manifest(run_dir: Path) -> dict:
    path = Path(run_dir) / "manifest.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise SpeechprobeError(f"{run_dir}: no manifest.json; finish the run first") from None
    except (OSError, json.JSONDecodeError) as e:
        raise SpeechprobeError(f"{path}: cannot read ({e})") from None


def read_clips(run_dir: Path, task: str, info: dict | None = None) -> pd.DataFrame:
    """``clips/<task>.csv`` (id, label, group, duration, content_hash) as strings."""
    rel = (info or {}).get("clips_file") or f"clips/{slug(task)}.csv"
    path = Path(run_dir) / rel
    if not path.is_file():
        raise SpeechprobeError(f"task {task}: {rel} is missing")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    for col in ("label", "content_hash"):
        if col not in frame.columns:
            raise SpeechprobeError(f"task {task}: {rel} lacks column {col!r}")
    if "group" not in frame.columns:
        frame["group"] = ""
    return frame


def store_loader(run_dir: Path, cache: Path | None = None) -> FeatureLoader:
    """A loader reading the run's feature store: ``manifest.json``'s ``config.cache`` (or ``cache``,
    else the default speechprobe cache) and each model's ``space``."""
    from ..cache import cache_root
    from ..features.store import FeatureSpace

    manifest = read_manifest(run_dir)
    if cache is None and manifest.get("config", {}).get("cache"):
        cache = Path(manifest["config"]["cache"])
    root = cache_root(cache) / "features"
    models = manifest.get("models", {})

    def load(model: str, hashes: Sequence[str]) -> np.ndarray:
        space = (models.get(model) or {}).get("space")
        if not space:
            raise SpeechprobeError(f"model {model}: manifest.json names no feature space")
        missing = [h for h in hashes if not (root / space / "items" / h[:2] / f"{h}.npy").is_file()]
        if missing:
            raise SpeechprobeError(
                f"model {model}: {len(missing)} of {len(hashes)} clips are not in the feature store {root / space}"
            )
        return FeatureSpace(root / space, {}).gather(list(hashes))

    return load


def _groups(clips: pd.DataFrame) -> np.ndarray | None:
    g = clips["group"].astype(str).to_numpy()
    return g if any(g) else None


def _layers_to_show(n_layers: int, best: int) -> dict[str, int]:
    named: dict[int, list[str]] = {}
    for name, layer in (("first", 0), ("best", best), ("last", n_layers - 1)):
        named.setdefault(layer, []).append(name)
    return {" = ".join(names): layer for layer, names in sorted(named.items())}


def analyse_features(
    run_dir: Path,
    load_features: FeatureLoader | None = None,
    probe: str = "knn",
    n_permutations: int = 100,
    n_folds: int | None = None,
    seed: int | None = None,
    n_repeats: int = 1,
    control: bool = True,
    embeddings: bool = True,
    max_points: int = 1000,
    models: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    n_jobs: int = 1,
    reuse: bool = True,
) -> dict:
    """Permutation test of the best layer, control-task selectivity per layer and t-SNE/UMAP plots
    for every (model, task) of a finished run; writes the files listed in the module docstring.

    ``load_features(model, content_hashes) -> (N, L, D)``; default :func:`store_loader`. ``n_folds``
    and ``seed`` default to the run's config, so the observed scores equal results.csv's. The best
    layer is the best layer of ``probe``; when ``probe`` was not run, the model's best probe is
    used instead (with a note). ``n_permutations=0`` skips the permutation test, ``control=False``
    the control task, ``embeddings=False`` the plots. With ``reuse``, parts already done with the
    same settings (rows in permutation.csv / selectivity.csv, existing plots) are not recomputed,
    and features are loaded only when something is left to do. A (model, task) that cannot be
    analysed (one class left, features missing, …) is skipped with a note. Returns the content of
    analysis.json.
    """
    if n_permutations < 0:
        raise ConfigError(f"n_permutations is {n_permutations}; use 0 (no permutation test) or more")
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    config = manifest.get("config", {})
    n_folds = int(n_folds or config.get("folds") or 5)
    seed = int(config.get("seed", 0) if seed is None else seed)
    if load_features is None:
        load_features = store_loader(run_dir)
    results_path = run_dir / "results.csv"
    if not results_path.is_file():
        raise SpeechprobeError(f"{run_dir}: no results.csv; run the probes first")
    summary = summarize(read_results(results_path))
    depths = {m: int(info["num_layers"]) for m, info in manifest.get("models", {}).items() if info.get("num_layers")}
    best = best_layers(summary, "macro_f1", depths)
    task_info = manifest.get("tasks", {})
    model_names = list(models) if models is not None else sorted(set(manifest.get("models", {})) | set(best["model"]))
    task_names = list(tasks) if tasks is not None else sorted(set(task_info) | set(best["task"]))
    perm_path, sel_path = run_dir / "permutation.csv", run_dir / "selectivity.csv"
    perm = (
        read_table(perm_path, PERMUTATION_COLUMNS)
        if reuse and perm_path.is_file()
        else pd.DataFrame(columns=PERMUTATION_COLUMNS)
    )
    sel = (
        read_table(sel_path, SELECTIVITY_COLUMNS)
        if reuse and sel_path.is_file()
        else pd.DataFrame(columns=SELECTIVITY_COLUMNS)
    )
    notes: list[str] = []
    figures: list[str] = []
    do_umap = embeddings and umap_available()
    if embeddings and not do_umap:
        notes.append("UMAP plots skipped: umap-learn is not installed (pip install 'speechprobe[umap]')")
    for task in task_names:
        try:
            clips = read_clips(run_dir, task, task_info.get(task))
        except SpeechprobeError as e:
            notes.append(f"statistics skipped for {e}")
            continue
        labels = clips["label"].astype(str).to_numpy()
        groups = _groups(clips)
        if len(np.unique(labels)) < 2:
            notes.append(f"statistics skipped for task {task}: only {len(np.unique(labels))} class left")
            continue
        for model in model_names:
            rows = best[(best["model"] == model) & (best["task"] == task)]
            if rows.empty:
                notes.append(f"statistics skipped for {model} × {task}: no probe results")
                continue
            chosen = rows[rows["probe"] == probe]
            if chosen.empty:
                chosen = rows.sort_values("mean", ascending=False, kind="mergesort").head(1)
                notes.append(
                    f"{model} × {task}: probe {probe!r} has no results; "
                    f"statistics use {chosen['probe'].iloc[0]!r}, its best probe"
                )
            used_probe = str(chosen["probe"].iloc[0])
            layer, n_layers = int(chosen["layer"].iloc[0]), int(chosen["num_layers"].iloc[0])
            tsne_png = run_dir / "figures" / f"tsne_{slug(model)}_{slug(task)}.png"
            umap_png = tsne_png.with_name("umap_" + tsne_png.name.removeprefix("tsne_"))
            need_perm = (
                n_permutations > 0
                and perm[
                    (perm["model"] == model)
                    & (perm["task"] == task)
                    & (perm["probe"] == used_probe)
                    & (perm["layer"] == layer)
                    & (perm["n_permutations"] == n_permutations)
                    & (perm["n_folds"] == n_folds)
                    & (perm["seed"] == seed)
                ].empty
            )
            need_sel = (
                control
                and sel[
                    (sel["model"] == model)
                    & (sel["task"] == task)
                    & (sel["probe"] == used_probe)
                    & (sel["n_repeats"] == n_repeats)
                ].empty
            )
            need_tsne = embeddings and not tsne_png.is_file()
            need_umap = do_umap and not umap_png.is_file()
            if need_perm or need_sel or need_tsne or need_umap:
                try:
                    feats = load_features(model, list(clips["content_hash"]))
                    if feats.ndim != 3 or feats.shape[0] != len(labels):
                        raise SpeechprobeError(f"features of shape {feats.shape} for {len(labels)} clips")
                    scheme = permutation_scheme(labels, groups)
                    key = ["model", "task"]
                    if need_perm:
                        observed, null, p = permutation_test(
                            feats[:, layer], labels, groups, used_probe, n_permutations, n_folds, seed, n_jobs
                        )
                        record = permutation_record(
                            model,
                            task,
                            used_probe,
                            layer,
                            n_layers,
                            observed,
                            null,
                            p,
                            scheme,
                            n_folds,
                            seed,
                            groups is not None,
                        )
                        perm = _append(_drop(perm, key, (model, task)), pd.DataFrame([record]))
                        write_table(perm_path, perm.sort_values(key, kind="mergesort"), PERMUTATION_COLUMNS)
                        log.info("permutation test %s × %s: best layer %d, p = %.3g", model, task, layer, p)
                    if need_sel:
                        table = control_selectivity(feats, labels, groups, used_probe, n_folds, seed, n_repeats, n_jobs)
                        new = selectivity_records(model, task, used_probe, table, feats.shape[1], n_repeats, scheme)
                        sel = _append(_drop(sel, key, (model, task)), new)
                        write_table(sel_path, sel.sort_values([*key, "layer"], kind="mergesort"), SELECTIVITY_COLUMNS)
                except SpeechprobeError as e:
                    notes.append(f"statistics skipped for {model} × {task}: {e}")
                    continue
                shown = _layers_to_show(feats.shape[1], layer)
                title = f"{model} · {task}"
                try:
                    if need_tsne:
                        plot_tsne(feats, labels, shown, tsne_png, seed, max_points, title)
                    if need_umap:
                        plot_umap(feats, labels, shown, umap_png, seed, max_points, title)
                except (ValueError, ImportError) as e:
                    notes.append(f"embedding plot skipped for {model} × {task}: {e}")
                del feats
            figures += [
                str(p.relative_to(run_dir))
                for p, on in ((tsne_png, embeddings), (umap_png, do_umap))
                if on and p.is_file()
            ]
    info = {
        "probe": probe,
        "n_permutations": n_permutations,
        "n_folds": n_folds,
        "seed": seed,
        "n_repeats": n_repeats,
        "control": control,
        "embeddings": embeddings,
        "umap": do_umap,
        "notes": notes,
        "figures": figures,
    }
    atomic_write(run_dir / "analysis.json", lambda fh: fh.write((json.dumps(info, indent=2) + "\n").encode()))
    return info


def _append(frame: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    return new.reset_index(drop=True) if frame.empty else pd.concat([frame, new], ignore_index=True)


def _drop(frame: pd.DataFrame, key: list[str], values: tuple) -> pd.DataFrame:
    if frame.empty:
        return frame
    mask = np.ones(len(frame), dtype=bool)
    for col, v in zip(key, values):
        mask &= frame[col].astype(str).to_numpy() == str(v)
    return frame[~mask]
