"""Probe every layer: per (layer, fold), fit each probe and k-means, keep the out-of-fold predictions,
score them with the scorer mappings.

Two ways to get the predictions, which agree within the tolerance documented in :mod:`.fast`:

- ``backend="sklearn"``, the reference: every (layer, fold) cell fits the scikit-learn probes of
  :mod:`.estimators` and k-means, one cell per joblib process.
- ``backend="torch"``: KNN and the MLP run as batched torch kernels, all layers of a fold at once, on
  ``device``; the other probes and k-means stay on the scikit-learn path.
- ``backend="auto"`` (default): the torch kernels on a GPU, the reference path on a CPU. On a CPU the
  work is bound by the MLP's matrix products, which scikit-learn already runs at full single-core speed:
  the batched torch copies measured 0.75x-0.85x (MLP) and 0.4x-1.3x (KNN) of the estimators there
  (``benchmarks/README.md``), so batching only pays on a GPU. A CPU gets its speed from ``n_jobs``.

Both paths are single-threaded inside each job (BLAS, OpenMP and torch on the CPU): multi-threaded
reductions sum in scheduling order, so the last bits would otherwise depend on thread timing and on
``n_jobs``. ``n_jobs`` spreads jobs (cells, and folds for the torch kernels) over cores instead.

Workers return predicted class codes only; every score is computed afterwards in this process from
the scorer mappings (:data:`.metrics.PROBE_SCORERS`, ``CLUSTER_SCORERS``, ``OOF_SCORERS``), over the
task's fixed label set. ``--tune`` (nested cross-validation) runs on the scikit-learn path.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from joblib import Parallel, delayed
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from ..errors import ConfigError
from ..parallel import single_threaded
from .cv import CVPlan, Fold, make_cv, normalise_groups
from .estimators import ProbeSettings, make_probe
from .metrics import CLUSTER_SCORERS, OOF_SCORERS, PROBE_SCORERS, Scorer, kmeans_clusters
from .predictions import OOFPredictions
from .tune import check_tunable, tuned_predict

CLUSTER_PROBE = "kmeans"
BACKENDS = ("auto", "sklearn", "torch")

Cell = tuple[dict[str, np.ndarray], np.ndarray | None, list[dict]]  # probe -> codes, clusters, tuned params


@dataclass
class LayerCV:
    """What :func:`cross_validate_layers` returns: tidy rows, out-of-fold predictions and the fold plan."""

    rows: list[dict]
    predictions: OOFPredictions
    plan: CVPlan


def _predict_cell(
    features: np.ndarray,
    layer: int,
    fold: Fold,
    y: np.ndarray,
    classes: np.ndarray,
    probes: Sequence[str],
    cluster: bool,
    seed: int,
    settings: ProbeSettings,
    tune_groups: np.ndarray | None | bool,
) -> Cell:
    """Class codes of the scikit-learn probes ``probes``, and k-means clusters, on one layer and fold.

    ``tune_groups`` is False without ``--tune``; else the groups (or None) for the inner folds.
    """
    train, test = fold
    X_train, X_test = np.asarray(features[train, layer]), np.asarray(features[test, layer])
    codes: dict[str, np.ndarray] = {}
    tuned: list[dict] = []
    # Fixed iteration budgets are part of the protocol; degenerate layers may leave k-means short of k clusters.
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name in probes:
            if tune_groups is False:
                pred = make_probe(name, seed, settings).fit(X_train, y[train]).predict(X_test)
            else:
                inner_groups = None if tune_groups is None else tune_groups[train]
                pred, params = tuned_predict(name, X_train, y[train], X_test, inner_groups, classes, seed, settings)
                tuned.append({"layer": layer, "probe": name, "params": params})
            codes[name] = np.searchsorted(classes, pred)
        clusters = kmeans_clusters(X_train, X_test, len(classes), seed) if cluster else None
    return codes, clusters, tuned


def _torch_settings(name: str, seed: int, settings: ProbeSettings | None = None) -> dict | None:
    """Keyword arguments of the torch kernel that reproduces probe ``name``, or None when there is none."""
    probe = make_probe(name, seed, settings)
    params = probe._classifier().get_params()
    if name == "knn":
        euclidean = params["metric"] == "euclidean" or (params["metric"] == "minkowski" and params["p"] == 2)
        if params["weights"] != "uniform" or not euclidean:
            return None
        return {"n_neighbors": params["n_neighbors"]}
    if name == "mlp":
        supported = (
            params["solver"] == "adam"
            and params["activation"] == "relu"
            and params["batch_size"] == "auto"
            and params["shuffle"]
            and len(params["hidden_layer_sizes"]) == 1
            and isinstance(params["random_state"], (int, np.integer))
        )
        if not supported:
            return None
        keys = ("alpha", "learning_rate_init", "max_iter", "random_state", "tol", "n_iter_no_change")
        keys += ("beta_1", "beta_2", "epsilon", "early_stopping", "validation_fraction")
        out = {"hidden_units": params["hidden_layer_sizes"][0], **{k: params[k] for k in keys}}
        return out | {"early_stopping_min_train": probe.early_stopping_min_train}
    return None


def _predict_torch_fold(
    features: np.ndarray, fold: Fold, y: np.ndarray, classes: np.ndarray, kernels: dict[str, dict], device
) -> dict[str, np.ndarray]:
    """Class codes ``(L, n_test)`` of the torch kernels ``kernels`` (probe -> settings) on every layer of one fold."""
    from .fast import fold_predictions

    train, test = fold
    present, local = np.unique(y[train], return_inverse=True)
    if len(present) == 1:  # a training fold of one class: both estimators predict it everywhere
        return {name: np.full((features.shape[1], len(test)), np.searchsorted(classes, present[0])) for name in kernels}
    preds = fold_predictions(features, train, test, local, len(present), kernels, device)
    to_global = np.searchsorted(classes, present)
    return {name: to_global[pred] for name, pred in preds.items()}


@contextlib.contextmanager
def _torch_single_thread(device) -> Iterator[None]:
    """One torch (and BLAS) thread per job on the CPU, restored afterwards; a no-op for a GPU."""
    if device.type != "cpu":
        yield
        return
    with single_threaded():
        yield


def _plan(
    probes: Sequence[str], backend: str, device, seed: int, settings: ProbeSettings | None = None
) -> tuple[dict[str, dict], object]:
    """Which probes run as torch kernels (probe -> settings), and on which torch device."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown probe backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if backend == "sklearn":
        return {}, None
    from .fast import resolve_device

    dev = resolve_device(device)
    if backend == "auto" and dev.type == "cpu":
        return {}, None
    kernels = {name: _torch_settings(name, seed, settings) for name in probes}
    return {name: s for name, s in kernels.items() if s is not None}, dev


def _check_inputs(features: np.ndarray, labels, probes, seed: int, settings: ProbeSettings) -> np.ndarray:
    if features.ndim != 3:
        raise ConfigError(f"features must be (items, layers, dims), got shape {features.shape}")
    y = np.asarray(labels).astype(str)
    if len(y) != features.shape[0]:
        raise ConfigError(f"got {len(y)} labels for {features.shape[0]} feature rows; give one label per item")
    settings.validate()
    for name in probes:
        make_probe(name, seed, settings)  # fail on unknown names before any work
    return y


def _run_jobs(
    features, y, classes, plan: CVPlan, probes, kernels, dev, n_jobs, bar, *, cluster: bool, seed, settings, tune_groups
) -> tuple[dict[tuple[int, int], Cell], dict[int, dict[str, np.ndarray]]]:
    """Run the scikit-learn cells and the torch folds; returns ``cells[layer, fold]`` and ``torch[fold]``."""
    sk_probes = tuple(name for name in probes if name not in kernels)
    folds = plan.folds
    cells = [(layer, j) for layer in range(features.shape[1]) for j in range(len(folds))]
    # scikit-learn cells first: with n_jobs > 1 they start in worker processes while the torch kernels run here.
    cell_jobs = Parallel(n_jobs=n_jobs, return_as="generator")(
        delayed(_predict_cell)(features, layer, folds[j], y, classes, sk_probes, cluster, seed, settings, tune_groups)
        for layer, j in cells
    )
    torch_preds: dict[int, dict[str, np.ndarray]] = {}
    if kernels:
        with _torch_single_thread(dev):
            jobs = (delayed(_predict_torch_fold)(features, fold, y, classes, kernels, dev) for fold in folds)
            workers = n_jobs if dev.type == "cpu" else 1  # a GPU runs the folds one after another
            for j, preds in enumerate(Parallel(n_jobs=workers, backend="threading", return_as="generator")(jobs)):
                torch_preds[j] = preds
                bar.update()
    out = {}
    for cell, result in zip(cells, cell_jobs):
        out[cell] = result
        bar.update()
    return out, torch_preds


def _assemble(cells, torch_preds, plan: CVPlan, probes, n_layers: int, n: int):
    """``(pred (R, P, L, N) class codes, clusters[layer, fold], tuned choices)`` from the jobs' outputs."""
    pred = np.full((plan.repeats, len(probes), n_layers, n), -1, dtype=np.int16)
    clusters, tuned = {}, []
    for (layer, j), (cell_codes, cell_clusters, cell_tuned) in cells.items():
        r, test = plan.repeat_of(j), plan.folds[j][1]
        for p, name in enumerate(probes):
            pred[r, p, layer, test] = cell_codes[name] if name in cell_codes else torch_preds[j][name][layer]
        clusters[layer, j] = cell_clusters
        tuned += [{**t, "fold": j} for t in cell_tuned]
    return pred, clusters, tuned


def _score_rows(
    y: np.ndarray,
    n_classes: int,
    plan: CVPlan,
    pred: np.ndarray,
    clusters: dict[tuple[int, int], np.ndarray],
    probes: Sequence[str],
    scorers: Mapping[str, Scorer],
    cluster_scorers: Mapping[str, Scorer],
    oof_scorers: Mapping[str, Scorer],
) -> list[dict]:
    """Tidy rows from the codes ``y`` ``(N,)`` and ``pred`` ``(R, P, L, N)`` and the clusters per (layer, fold).

    Per (layer, probe): one row per fold and metric of ``scorers``, then one row per repeat (``fold`` =
    repeat index) and metric of ``oof_scorers``; k-means gets one row per fold and ``cluster_scorers`` metric.
    """
    labels = np.arange(n_classes)
    rows = []
    for layer in range(pred.shape[2]):
        for p, probe in enumerate(probes):
            for j, (_, test) in enumerate(plan.folds):
                guess = pred[plan.repeat_of(j), p, layer, test]
                for metric, scorer in scorers.items():
                    rows.append(_row(layer, probe, j, metric, scorer(y[test], guess, labels)))
            for r in range(plan.repeats):
                for metric, scorer in oof_scorers.items():
                    rows.append(_row(layer, probe, r, metric, scorer(y, pred[r, p, layer], labels)))
        if cluster_scorers:
            for j, (_, test) in enumerate(plan.folds):
                for metric, scorer in cluster_scorers.items():
                    rows.append(_row(layer, CLUSTER_PROBE, j, metric, scorer(y[test], clusters[layer, j], labels)))
    return rows


def _row(layer: int, probe: str, fold: int, metric: str, value: float) -> dict:
    return {"layer": int(layer), "probe": probe, "fold": int(fold), "metric": metric, "value": float(value)}


def cross_validate_layers(
    features: np.ndarray,
    labels: Sequence[str],
    groups: Sequence[str] | None = None,
    probes: Sequence[str] = ("knn", "mlp"),
    n_folds: int = 5,
    seed: int = 0,
    n_jobs: int = 1,
    progress: bool = False,
    *,
    backend: str = "auto",
    device: str | None = None,
    repeats: int = 1,
    cv: str = "kfold",
    settings: ProbeSettings | None = None,
    tune: bool = False,
    scorers: Mapping[str, Scorer] = PROBE_SCORERS,
    cluster_scorers: Mapping[str, Scorer] = CLUSTER_SCORERS,
    oof_scorers: Mapping[str, Scorer] = OOF_SCORERS,
) -> LayerCV:
    """Cross-validate every probe on every layer of ``features`` ``(N, L, D)`` (may be a memmap).

    Folds come from :func:`.cv.make_cv` (``cv`` = ``"kfold"`` or ``"logo"``, ``repeats`` partitions,
    fold id ``repeat * n_folds + k``). ``settings`` are the probe hyper-parameters; ``tune`` chooses them
    per outer training fold by nested cross-validation over :data:`.estimators.TUNE_GRIDS`. Scores are
    ``scorer(y_true, y_pred, labels)`` over the task's fixed label set (the sorted distinct ``labels``);
    scorers receive class codes (indices into that set) and ``labels = arange(n_classes)``.
    Rows are ordered by layer, probe (as given, then ``kmeans``), fold and metric, and are identical for
    the same inputs, seed, backend and device whatever ``n_jobs``.
    """
    settings = settings or ProbeSettings()
    probes = tuple(dict.fromkeys(probes))
    y = _check_inputs(features, labels, probes, seed, settings)
    kernels, dev = _plan(probes, backend, device, seed, settings)
    if tune:  # nested cross-validation runs on the scikit-learn path
        kernels = {}
    g, _ = normalise_groups(groups, len(y))
    plan = make_cv(y, g, n_folds, seed, repeats, cv)
    _check_plan(y, g, plan, probes, settings, tune)
    classes, codes = np.unique(y, return_inverse=True)
    jobs = dict(cluster=bool(cluster_scorers), seed=seed, settings=settings, tune_groups=g if tune else False)
    with tqdm(
        total=features.shape[1] * len(plan.folds) + (len(plan.folds) if kernels else 0),
        desc="probing",
        unit="job",
        disable=not progress,
    ) as bar:
        cells, torch_preds = _run_jobs(features, y, classes, plan, probes, kernels, dev, n_jobs, bar, **jobs)
    pred, clusters, tuned = _assemble(cells, torch_preds, plan, probes, features.shape[1], len(y))
    rows = _score_rows(codes, len(classes), plan, pred, clusters, probes, scorers, cluster_scorers, oof_scorers)
    oof = OOFPredictions(classes, codes, probes, plan.fold_of(len(y)), pred, plan.n_splits, groups=g, tuned=tuned)
    return LayerCV(rows, oof, plan)


def _check_plan(y, g, plan: CVPlan, probes, settings: ProbeSettings, tune: bool) -> None:
    """KNN needs k training items in every fold; ``--tune`` needs inner folds in every training part."""
    if "knn" in probes and not tune:
        k, smallest = settings.knn_k, min(len(train) for train, _ in plan.folds)
        if k > smallest:
            raise ConfigError(f"KNN needs {k} neighbours but a training fold has only {smallest} items; add items")
    if tune:
        check_tunable(y, g, plan.folds)


def probe_layers(*args, **options) -> list[dict]:
    """Tidy rows ``{layer, probe, fold, metric, value}`` of :func:`cross_validate_layers`, which takes the
    same arguments (``features, labels, groups, probes, n_folds, seed, n_jobs, progress`` and the options
    ``backend``, ``device``, ``repeats``, ``cv``, ``settings``, ``tune``, ``scorers``, ``cluster_scorers``,
    ``oof_scorers``)."""
    return cross_validate_layers(*args, **options).rows
