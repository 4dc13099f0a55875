"""Layer similarity: debiased linear CKA and mutual k-nearest-neighbour overlap between every pair of
representations of a run (all layers of all models, and the hand-crafted baselines) on the same clips.

Both measures work from each representation's centred Gram matrix ``K = Xc Xcᵀ`` over the clips
(``Xc``: the clip × dimension features minus their mean), so all layers of all models are compared at
once, with matrix products, and the features are read from the store only once.

*Debiased linear CKA* (Kornblith et al. 2019, with the unbiased HSIC estimator of Song et al. 2012;
Nguyen et al. 2021). With ``K̃`` = ``K`` with a zero diagonal, its U-centred form
``U(K)ᵢⱼ = K̃ᵢⱼ − rᵢ/(n−2) − rⱼ/(n−2) + s/((n−1)(n−2))`` off the diagonal and 0 on it (``rᵢ`` the row
sums of ``K̃``, ``s`` their total) gives ``HSIC₁(K, L) = ⟨U(K), U(L)⟩ / (n(n−3))`` and
``CKA(K, L) = HSIC₁(K, L) / √(HSIC₁(K, K) HSIC₁(L, L))``. It is 1 for a representation with
itself, invariant to orthogonal transforms and isotropic scaling, and near 0 for independent features
(the plain estimator is biased upwards when dimensions are many and clips few).

*Mutual k-NN overlap* (Huh et al. 2024, "The Platonic Representation Hypothesis"): each clip's k nearest
other clips by Euclidean distance of the features (Huh et al. use cosine neighbours; Euclidean ones
also exist for the one-number baselines such as ``duration``); the overlap of two representations is the
mean over clips of ``|Nₐ(i) ∩ N_b(i)| / k``. It depends on local neighbourhoods only, so a few
high-variance dimensions or outlying clips, which dominate CKA, weigh less.

*Uncertainty*: the clips are split at random into two halves, speaker-disjoint when groups exist,
``n_splits`` times; ``spread`` is the standard deviation of a measure over the ``2·n_splits`` halves
(a half holds half the clips, so this overstates the full-sample noise, by about √2 for CKA).

Writes ``similarity.csv`` (:data:`SIMILARITY_COLUMNS`, one row per measure and ordered pair of
representations: a matrix in long form), ``figures/similarity_layers_<model>.png``,
``figures/similarity_models.png`` and ``figures/similarity_baselines.png``: a registered run-scope
analysis (:data:`ANALYSIS`; ``analyse(run, "similarity", k=5)`` alone).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import SpeechprobeError
from .contract import Analysis, AnalysisResult, AnalysisSettings, Figure, Unit
from .contrast import is_random, run_depths, run_seed, trained_name
from .curves import relative_depth
from .inputs import FeatureLoader, read_clips, read_manifest, store_loader

log = logging.getLogger("speechprobe")

SIMILARITY_COLUMNS = [
    "measure",
    "model_a",
    "layer_a",
    "depth_a",
    "model_b",
    "layer_b",
    "depth_b",
    "value",
    "spread",
    "n_clips",
    "k",
]
MEASURES = ("cka", "mutual_knn")
# Upper bound on the float64 entries of one chunk of U-centred Gram rows (all representations at once).
CHUNK_ELEMENTS = 1 << 23


# --------------------------------------------------------------------------------------------- measures


def centred_gram(X: np.ndarray) -> np.ndarray:
    """``Xc Xcᵀ`` (float64) of a clip × dimension matrix after subtracting the column means."""
    X = np.asarray(X, dtype=np.float64)
    X = X - X.mean(axis=0)
    return X @ X.T


def hsic_matrix(grams: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
    """Unbiased HSIC (Song et al. 2012) between every pair of ``grams`` (R, n, n), on clips ``idx``.

    Computed as inner products of U-centred Gram matrices, a chunk of rows at a time, so memory stays
    at about :data:`CHUNK_ELEMENTS` float64 values whatever the number of clips.
    """
    idx = np.arange(grams.shape[-1]) if idx is None else np.asarray(idx)
    R, m = grams.shape[0], len(idx)
    if m < 4:
        raise SpeechprobeError(f"debiased CKA needs at least 4 clips, got {m}")
    diag = grams[:, idx, idx].astype(np.float64)
    rows = np.stack([K[np.ix_(idx, idx)].sum(-1, dtype=np.float64) for K in grams]) - diag  # of K̃
    total = rows.sum(-1)
    out = np.zeros((R, R))
    step = max(1, CHUNK_ELEMENTS // max(1, R * m))
    for start in range(0, m, step):
        chunk = idx[start : start + step]
        U = grams[:, chunk][:, :, idx].astype(np.float64)
        U -= rows[:, start : start + step, None] / (m - 2)
        U -= rows[:, None, :] / (m - 2)
        U += (total / ((m - 1) * (m - 2)))[:, None, None]
        U[:, np.arange(len(chunk)), np.arange(start, start + len(chunk))] = 0.0
        flat = U.reshape(R, -1)
        out += flat @ flat.T
    return out / (m * (m - 3))


def cka_from_hsic(hsic: np.ndarray) -> np.ndarray:
    """``HSIC(a, b) / √(HSIC(a, a) HSIC(b, b))``; NaN where a self-HSIC is not positive."""
    d = np.diag(hsic).copy()
    d[~(d > 0)] = np.nan
    return hsic / np.sqrt(np.outer(d, d))


def cka_matrix(reps: Sequence[np.ndarray]) -> np.ndarray:
    """Debiased linear CKA between every pair of clip × dimension matrices (same clips, same order)."""
    return cka_from_hsic(hsic_matrix(np.stack([centred_gram(X) for X in reps])))


def debiased_cka(X: np.ndarray, Y: np.ndarray) -> float:
    """Debiased linear CKA of two clip × dimension matrices."""
    return float(cka_matrix([X, Y])[0, 1])


def knn_sets(grams: np.ndarray, k: int, idx: np.ndarray | None = None) -> np.ndarray:
    """(R, m, k) indices (into ``idx``) of each clip's k nearest other clips by Euclidean distance,
    ``d²ᵢⱼ = Kᵢᵢ + Kⱼⱼ − 2Kᵢⱼ`` from the centred Gram matrix (ties: the lower index)."""
    idx = np.arange(grams.shape[-1]) if idx is None else np.asarray(idx)
    m = len(idx)
    if not 1 <= k < m:
        raise SpeechprobeError(f"mutual k-NN needs 1 <= k < number of clips, got k={k} for {m} clips")
    out = np.empty((grams.shape[0], m, k), dtype=np.int64)
    for r, K in enumerate(grams):
        K = K[np.ix_(idx, idx)].astype(np.float64)
        d = np.diag(K)
        dist = d[:, None] + d[None, :] - 2 * K
        np.fill_diagonal(dist, np.inf)
        nearest = np.argsort(dist, axis=1, kind="stable")[:, :k]
        out[r] = nearest
    return out


def mutual_knn_from_sets(sets: np.ndarray) -> np.ndarray:
    """(R, R) mean over clips of ``|Nₐ(i) ∩ N_b(i)| / k`` from :func:`knn_sets`' output."""
    R, m, k = sets.shape
    rows = np.arange(m)[:, None]
    out = np.empty((R, R))
    for a in range(R):
        member = np.zeros((m, m), dtype=bool)
        member[rows, sets[a]] = True
        out[a] = member[rows[None], sets].sum(axis=(1, 2)) / (m * k)
    return out


def mutual_knn(X: np.ndarray, Y: np.ndarray, k: int = 10) -> float:
    """Mutual k-NN overlap of two clip × dimension matrices."""
    sets = knn_sets(np.stack([centred_gram(X), centred_gram(Y)]), k)
    return float(mutual_knn_from_sets(sets)[0, 1])


# --------------------------------------------------------------------------------------------- a run


@dataclass
class Similarity:
    """Similarity matrices over the representations ``labels`` ((model, layer) pairs, in order)."""

    labels: list[tuple[str, int]]
    depths: np.ndarray  # relative depth of each representation
    values: dict[str, np.ndarray]  # measure -> (R, R) on all clips
    halves: dict[str, np.ndarray]  # measure -> (H, R, R) on the random halves
    n_clips: int
    k: int

    def spread(self, measure: str) -> np.ndarray:
        h = self.halves[measure]
        return h.std(axis=0, ddof=1) if len(h) > 1 else np.full(self.values[measure].shape, np.nan)

    def index(self, model: str) -> np.ndarray:
        return np.array([i for i, (m, _) in enumerate(self.labels) if m == model], dtype=int)

    def models(self, multi_layer: bool) -> list[str]:
        """Models with more than one layer (``multi_layer``) or with one (hand-crafted baselines), in run order."""
        names = list(dict.fromkeys(m for m, _ in self.labels))
        return [m for m in names if (len(self.index(m)) > 1) == multi_layer]

    def table(self) -> pd.DataFrame:
        """:data:`SIMILARITY_COLUMNS` rows: every measure and ordered pair of representations."""
        R = len(self.labels)
        a, b = np.repeat(np.arange(R), R), np.tile(np.arange(R), R)
        models = np.array([m for m, _ in self.labels], dtype=object)
        layers = np.array([layer for _, layer in self.labels])
        frames = [
            pd.DataFrame(
                {
                    "measure": measure,
                    "model_a": models[a],
                    "layer_a": layers[a],
                    "depth_a": self.depths[a],
                    "model_b": models[b],
                    "layer_b": layers[b],
                    "depth_b": self.depths[b],
                    "value": self.values[measure].ravel(),
                    "spread": self.spread(measure).ravel(),
                    "n_clips": self.n_clips,
                    "k": self.k,
                }
            )
            for measure in MEASURES
        ]
        return pd.concat(frames, ignore_index=True)[SIMILARITY_COLUMNS]


def random_halves(groups: np.ndarray, n_splits: int, seed: int, min_size: int) -> list[np.ndarray]:
    """``2·n_splits`` index sets: each split shuffles the groups and cuts them into two halves of about
    equal clip count (no group in both); halves smaller than ``min_size`` are left out."""
    rng = np.random.default_rng(seed)
    names, codes = np.unique(groups, return_inverse=True)
    sizes = np.bincount(codes)
    out = []
    for _ in range(n_splits):
        order = rng.permutation(len(names))
        first = order[: int(np.searchsorted(np.cumsum(sizes[order]), len(groups) / 2)) + 1]
        in_first = np.isin(codes, first)
        out += [idx for idx in (np.flatnonzero(in_first), np.flatnonzero(~in_first)) if len(idx) >= min_size]
    return out


def measure_all(grams: np.ndarray, k: int, halves: Sequence[np.ndarray]) -> tuple[dict, dict]:
    """Both measures on all clips and on each half: ``(values, halves)`` dictionaries by measure. A
    representation that does not vary over the clips (e.g. one sample rate for all) has neither: NaN."""

    def both(idx: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        sub = np.arange(grams.shape[-1]) if idx is None else idx
        constant = np.array([np.trace(K[np.ix_(sub, sub)]) <= 0 for K in grams])
        cka, knn = cka_from_hsic(hsic_matrix(grams, idx)), mutual_knn_from_sets(knn_sets(grams, k, idx))
        for M in (cka, knn):
            M[constant, :] = M[:, constant] = np.nan
        return cka, knn

    values = dict(zip(MEASURES, both(None)))
    parts = [both(idx) for idx in halves]
    R = grams.shape[0]
    return values, {
        m: np.stack([p[i] for p in parts]) if parts else np.empty((0, R, R)) for i, m in enumerate(MEASURES)
    }


def select_clips(run_dir: Path, manifest: dict, max_clips: int, seed: int) -> pd.DataFrame:
    """The run's distinct clips (by content hash, over all tasks) with a group for each: the clip's
    speaker/group when known, else the clip itself; a seeded random ``max_clips`` of them when more."""
    frames = []
    for task, info in (manifest.get("tasks") or {}).items():
        clips = read_clips(run_dir, task, info)
        group = clips["group"].astype(str).where(clips["group"].astype(str) != "", "clip:" + clips["content_hash"])
        frames.append(pd.DataFrame({"content_hash": clips["content_hash"], "group": group}))
    if not frames:
        raise SpeechprobeError(f"{run_dir}: manifest.json lists no tasks")
    clips = pd.concat(frames, ignore_index=True).drop_duplicates("content_hash").reset_index(drop=True)
    if len(clips) > max_clips:
        log.info("similarity: a seeded random %d of the run's %d clips", max_clips, len(clips))
        keep = np.sort(np.random.default_rng(seed).choice(len(clips), size=max_clips, replace=False))
        clips = clips.iloc[keep].reset_index(drop=True).assign(subsampled_from=len(clips))
    return clips


def gather_grams(
    load_features: FeatureLoader, models: Sequence[str], hashes: Sequence[str]
) -> tuple[np.ndarray, list[tuple[str, int]], dict[str, int], list[str]]:
    """Centred Gram matrices (float32, one per layer of every model), their (model, layer) labels and
    each model's number of layers; a model whose features cannot be read is left out with a note."""
    grams, labels, n_layers, notes = [], [], {}, []
    for model in models:
        try:
            feats = load_features(model, list(hashes))
        except SpeechprobeError as e:
            notes.append(f"{model} left out ({e})")
            continue
        if feats.ndim != 3 or feats.shape[0] != len(hashes):
            notes.append(f"{model} left out (features of shape {feats.shape} for {len(hashes)} clips)")
            continue
        for layer in range(feats.shape[1]):
            grams.append(centred_gram(feats[:, layer]).astype(np.float32))
            labels.append((model, layer))
        n_layers[model] = feats.shape[1]
        del feats
    if not grams:
        raise SpeechprobeError("similarity: no model's features could be read")
    return np.stack(grams), labels, n_layers, notes


def compute_similarity(
    run_dir: Path,
    load_features: FeatureLoader | None = None,
    max_clips: int = 1000,
    k: int = 10,
    n_splits: int = 4,
    seed: int | None = None,
) -> tuple[Similarity, list[str]]:
    """Both measures between every layer of every model of a finished run (see the module docstring)."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    seed = run_seed(manifest, seed)
    clips = select_clips(run_dir, manifest, max_clips, seed)
    notes = []
    if "subsampled_from" in clips:
        notes.append(f"a seeded random {len(clips)} of the run's {clips['subsampled_from'].iloc[0]} clips")
    k = min(k, len(clips) - 1)
    grams, labels, n_layers, more = gather_grams(
        load_features or store_loader(run_dir), list(manifest.get("models") or {}), clips["content_hash"]
    )
    depths = {**n_layers, **run_depths(manifest)}
    halves = random_halves(clips["group"].to_numpy(), n_splits, seed, min_size=max(4, k + 1))
    values, parts = measure_all(grams, k, halves)
    rel_depth = np.array([relative_depth(layer, depths[m]) for m, layer in labels], dtype=float)
    return Similarity(labels, rel_depth, values, parts, len(clips), k), notes + more


# --------------------------------------------------------------------------------------------- findings


def _stat(sim: Similarity, measure: str, fn) -> tuple[float, float]:
    """``fn`` of the measure's matrix on all clips, and its standard deviation over the halves."""
    halves = [fn(h) for h in sim.halves[measure]]
    return float(fn(sim.values[measure])), float(np.std(halves, ddof=1)) if len(halves) > 1 else float("nan")


def _pm(value: tuple[float, float]) -> str:
    v, s = value
    return f"{v:.2f}" + (f" ± {s:.2f}" if np.isfinite(s) else "")


def matched_depth(sim: Similarity, a: str, b: str) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (into the representations) matching each layer of the shallower of ``a``, ``b`` with
    the layer of the other at the nearest relative depth."""
    ia, ib = sim.index(a), sim.index(b)
    if len(ia) > len(ib):
        ib, ia = matched_depth(sim, b, a)
        return ia, ib
    nearest = np.abs(sim.depths[ia][:, None] - sim.depths[ib][None, :]).argmin(axis=1)
    return ia, ib[nearest]


def similarity_findings(sim: Similarity) -> list[str]:
    """Plain sentences with the spread over random halves as the uncertainty."""
    out = []
    spread = f"± : standard deviation over {len(sim.halves['cka'])} random speaker-disjoint halves of the clips"
    models, bases = sim.models(multi_layer=True), sim.models(multi_layer=False)
    for model in models:
        idx = sim.index(model)
        adjacent = _stat(sim, "cka", lambda M, i=idx: float(np.mean(M[i[:-1], i[1:]])))
        ends_cka = _stat(sim, "cka", lambda M, i=idx: M[i[0], i[-1]])
        ends_knn = _stat(sim, "mutual_knn", lambda M, i=idx: M[i[0], i[-1]])
        text = (
            f"In {model} ({len(idx)} layers, {sim.n_clips} clips), adjacent layers have mean debiased CKA "
            f"{_pm(adjacent)}; the input embedding and the last layer have CKA {_pm(ends_cka)} and mutual "
            f"{sim.k}-NN overlap {_pm(ends_knn)}"
        )
        for base in bases:
            col = sim.index(base)[0]
            if not np.isfinite(sim.values["cka"][idx, col]).any():
                continue  # a baseline constant over these clips
            best = int(np.nanargmax(sim.values["cka"][idx, col]))
            top = _stat(sim, "cka", lambda M, r=idx[best], c=col: M[r, c])
            text += f"; the layer most like {base} is layer {best} (CKA {_pm(top)})"
        out.append(text + f" ({spread}).")
    for a, b in combinations(models, 2):
        if is_random(a) != is_random(b) and trained_name(a) != trained_name(b):
            continue
        ia, ib = matched_depth(sim, a, b)
        same = _stat(sim, "cka", lambda M, x=ia, y=ib: float(np.mean(M[x, y])))
        every = _stat(sim, "cka", lambda M, x=sim.index(a), y=sim.index(b): float(np.mean(M[np.ix_(x, y)])))
        out.append(
            f"{a} and {b}: layers at matching relative depth have mean debiased CKA {_pm(same)}, against "
            f"{_pm(every)} over all layer pairs."
        )
    return out


# --------------------------------------------------------------------------------------------- entry


def compute(unit: Unit) -> AnalysisResult:
    """Both measures for a finished run (see the module docstring), with their figures and sentences;
    options (``settings.options["similarity"]``): ``max_clips``, ``k``, ``n_splits``, ``seed``."""
    from ..figures.similarity import plot_baselines, plot_between, plot_within

    options = _options(unit.settings)
    sim, notes = compute_similarity(unit.run_dir, unit.loader, **options)
    fig_dir = unit.run_dir / "figures"
    drawn = [
        *plot_within(sim, fig_dir),
        plot_between(sim, fig_dir / "similarity_models.png"),
        plot_baselines(sim, fig_dir / "similarity_baselines.png"),
    ]
    log.info("layer similarity: %d representations on %d clips", len(sim.labels), sim.n_clips)
    figures = [Figure(path, caption) for path, caption in filter(None, drawn)]
    return AnalysisResult({SIMILARITY_CSV: sim.table()}, figures, notes, similarity_findings(sim))


def _options(settings: AnalysisSettings) -> dict:
    own = settings.options.get("similarity") or {}
    return {"max_clips": 1000, "k": 10, "n_splits": 4, "seed": None, **own}


SIMILARITY_CSV = "similarity.csv"
ANALYSIS = Analysis.of(
    __name__, {SIMILARITY_CSV: SIMILARITY_COLUMNS}, scope="run", cost="seconds; all clips of the run, up to 1000"
)
