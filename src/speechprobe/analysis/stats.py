"""Honest statistics for probes: a permutation test of the best layer that repeats the selection,
per-layer p-values with Holm's correction, Benjamini–Hochberg q-values across tests, and the
probe's empirical chance level. Formulas and references: ``docs/statistics.md``.

**Restricted permutations.** The tests keep the cross-validation folds of the real task (the folds
of the probe runner, so the observed scores equal results.csv's) and shuffle only the labels, with a
permutation that respects the fold and speaker structure:

``within-fold``  (no groups) labels are permuted among the items of each test fold. Every train and
                 test split keeps its exact class counts.
``within-group`` (groups, and the label varies inside at least one group, e.g. every speaker reads
                 every emotion) labels are permuted among the clips of each group (speaker). Groups
                 never cross folds, so fold class counts are kept; the null keeps the
                 speaker → label-mix association and removes only the clip-level link.
``group-level``  (groups, and every group carries a single label, or nearly: see
                 :mod:`.units`, e.g. gender by speaker) the groups are the unit and are exchangeable
                 within each test fold: whole groups swap labels with the other groups of their test
                 fold (all groups when some fold holds fewer than two, as leave-one-group-out does), so
                 a speaker's clips always share one label and every fold keeps its class counts, as in
                 the real task (a clip whose label differs from its group's keeps it). Swapping across
                 folds would not be exchangeable: the folds were stratified on the real labels, and a
                 relabelling that puts one class alone in a test fold scores lower by construction
                 (fixed-label Macro-F1), which made the real labelling look special in 50 % of
                 signal-free data sets (``benchmarks/calibration.py``). When the distinct group
                 labellings are no more than the shuffles asked for, all of them are enumerated (exact
                 test, ``p = #{M_b ≥ M_0} / N``, the real labelling one of the N).

**Smallest attainable p.** ``min_p`` is ``1/N`` for an exact test, else ``max(1/(1+B), 1/N)`` with N
the number of distinct labellings the scheme can produce. **Too few units**: when a class has fewer than
:data:`.units.MIN_UNITS_PER_CLASS` units, the shuffles are still drawn (for the empirical chance) but no
p-value is given (NaN) and ``note`` says why.

**Selection-aware test.** The best layer is the layer (of the primary probe, or the best (probe, layer)
when a best probe is selected) with the highest mean score over the folds. Testing only that layer
against its own shuffles ignores that it won a contest among L layers: with 13 signal-free layers
that test rejects at the 5 % level in 45 % of datasets (``benchmarks/calibration.py``; 5.5 % here). Here
every shuffle re-runs the same selection on the same shuffled labels and folds, and the best layer is
tested against the distribution of the shuffled *maxima*:
``p = (1 + #{b : max_l T_b(l) ≥ max_l T(l)}) / (1 + B)``.

**Cost.** KNN needs no refit per shuffle (:class:`speechprobe.probes.null.KNNNull`), so its B shuffles
are all drawn. Probes without such a shortcut (MLP, linear) stop early by Besag & Clifford's (1991)
sequential rule: shuffles are drawn until the shuffled maximum has reached or exceeded the observed one
``h`` times (then ``p = h / l``, ``l`` the shuffles drawn), or ``B`` shuffles are done (then
``p = (1 + g) / (1 + B)``). It stops early only when the best layer is clearly not significant
(``p ≥ h / B``). Per-layer p-values are ``(1 + g_l) / (1 + l)`` over the shuffles drawn; after an early stop
they are Monte-Carlo estimates from those ``l`` shuffles (the stopping rule looks at the maximum only).

**Empirical chance.** The mean null score of a layer is the probe's chance level on these data (same
label distribution, folds and probe); ``above_chance = score − chance``. (This replaces the earlier
"control task", which was this very restricted permutation under another name: a true control task in
the sense of Hewitt & Liang (2019) would need word types that recur between train and test.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import product

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..probes import ProbeSettings, make_folds, make_probe
from ..probes.null import LayerNull, make_null
from .units import InferenceUnit, inference_unit, log_relabelings, relabelings

Fold = tuple[np.ndarray, np.ndarray]
SEQUENTIAL_H = 10  # Besag & Clifford's h: exceedances after which a statistic's p is settled
SEQUENTIAL_BATCH = 8  # shuffles refitted between two stopping checks
EXACT_BATCH = 250  # shuffles re-scored at once by an exact cheap null (bounded memory, visible progress)


def _as_groups(groups: Sequence[str] | np.ndarray | None, n: int) -> np.ndarray | None:
    if groups is None:
        return None
    g = np.asarray(groups).astype(str)
    if len(g) != n:
        raise ConfigError(f"got {len(g)} groups for {n} labels; give one group per item")
    return g if len({x for x in g if x}) > 0 else None


def permutation_scheme(labels: Sequence[str] | np.ndarray, groups: Sequence[str] | np.ndarray | None) -> str:
    """Which restricted permutation applies (see the module docstring)."""
    y = np.asarray(labels)
    g = _as_groups(groups, len(y))
    if g is None:
        return "within-fold"
    return "group-level" if inference_unit(y, g).kind == "group" else "within-group"


def _partition(folds: Sequence[Fold], n: int) -> list[np.ndarray]:
    """Disjoint test blocks covering every item: the test folds of the first partition, then the rest."""
    blocks: list[np.ndarray] = []
    seen = np.zeros(n, dtype=bool)
    for _, test in folds:
        test = np.asarray(test)
        if seen[test].any():  # a later repeat of repeated cross-validation: its folds overlap the first
            break
        blocks.append(test)
        seen[test] = True
    if not seen.all():
        blocks.append(np.flatnonzero(~seen))
    return blocks


def label_permuter(
    labels: Sequence[str] | np.ndarray,
    groups: Sequence[str] | np.ndarray | None,
    folds: Sequence[Fold],
) -> tuple[str, Callable[[np.random.Generator], np.ndarray]]:
    """``(scheme, permute)``: ``permute(rng)`` returns one restricted permutation of ``labels``."""
    y = np.asarray(labels)
    g = _as_groups(groups, len(y))
    scheme = permutation_scheme(y, g)
    if scheme == "group-level":
        unit = inference_unit(y, g)
        unit_label = unit.unit_label.astype(y.dtype)
        pools = _group_pools(unit, folds, len(y))

        def permute(rng: np.random.Generator) -> np.ndarray:
            new = unit_label.copy()
            for pool in pools:
                new[pool] = unit_label[rng.permutation(pool)]
            return relabel_groups(y, unit, new)

        return scheme, permute
    blocks = _exchange_blocks(y, g, folds)
    return scheme, lambda rng: _permute_blocks(y, blocks, rng)


def _group_pools(unit: InferenceUnit, folds: Sequence[Fold], n: int) -> list[np.ndarray]:
    """Units exchangeable with each other: those of one test fold (of the first partition), or all units
    when some fold holds fewer than two (leave-one-group-out)."""
    fold_of_unit = np.full(unit.n_units, -1)
    for k, test in enumerate(_partition(folds, n)):
        fold_of_unit[np.unique(unit.codes[test])] = k
    pools = [np.flatnonzero(fold_of_unit == k) for k in np.unique(fold_of_unit)]
    return [np.arange(unit.n_units)] if any(len(p) < 2 for p in pools) else pools


def _exchange_blocks(y: np.ndarray, g: np.ndarray | None, folds: Sequence[Fold]) -> list[np.ndarray]:
    """The item blocks a clip-level scheme permutes within: test folds without groups, else groups."""
    if g is None:
        return _partition(folds, len(y))
    codes, uniq = pd.factorize(pd.Series(g), sort=True)
    return [np.flatnonzero(codes == k) for k in range(len(uniq))]


def min_attainable_p(labels, groups, folds: Sequence[Fold], n_permutations: int) -> tuple[float, bool]:
    """``(min_p, exact)``: the smallest p the scheme can give with ``n_permutations`` shuffles, and whether
    every distinct labelling is enumerated (group-level with no more labellings than shuffles)."""
    y = np.asarray(labels)
    g = _as_groups(groups, len(y))
    if permutation_scheme(y, g) == "group-level":
        unit = inference_unit(y, g)
        log_n = log_relabelings([unit.unit_label[p] for p in _group_pools(unit, folds, len(y))])
        n = round(float(np.exp(min(log_n, 700.0))))
        if n <= n_permutations:
            return 1.0 / n, True
    else:
        log_n = log_relabelings([y[b] for b in _exchange_blocks(y, g, folds)])
    return max(1.0 / (1 + n_permutations), float(np.exp(-min(log_n, 700.0)))), False


def relabel_groups(y: np.ndarray, unit: InferenceUnit, new_unit_label: np.ndarray) -> np.ndarray:
    """Clip labels when each group takes the label ``new_unit_label``; clips whose label differs from their
    group's (at most 5 % of a group) keep their own."""
    own = y == unit.unit_label.astype(y.dtype)[unit.codes]
    return np.where(own, np.asarray(new_unit_label)[unit.codes], y)


def _permute_blocks(y: np.ndarray, blocks: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    out = y.copy()
    for block in blocks:
        out[block] = y[rng.permutation(block)]
    return out


@dataclass
class SelectionTest:
    """A selection-aware permutation test over ``probes`` × layers (see the module docstring).

    ``observed`` ``(n_probes, L)`` real scores; ``null`` ``(B, n_probes, L)`` scores of the B shuffles
    drawn; ``best`` the selected ``(probe index, layer)``; ``p_value`` the selection-aware p of the best;
    ``layer_p`` / ``layer_p_holm`` ``(n_probes, L)`` per-layer p-values, Holm-adjusted across each
    probe's layers. ``sequential``: Besag–Clifford stopping was used (``n_permutations`` < ``max_permutations``
    when it stopped early). ``unit`` / ``n_units``: what was exchanged and how many; ``exact``: every distinct
    labelling was scored; ``min_p``: the smallest p the scheme can give; ``note``: why no p (too few units).
    """

    probes: tuple[str, ...]
    observed: np.ndarray
    null: np.ndarray
    best: tuple[int, int]
    p_value: float
    layer_p: np.ndarray
    layer_p_holm: np.ndarray
    scheme: str
    max_permutations: int
    sequential: bool
    unit: str = "clip"
    n_units: int = 0
    exact: bool = False
    min_p: float = float("nan")
    note: str = ""

    @property
    def n_permutations(self) -> int:
        return int(self.null.shape[0])

    @property
    def observed_max(self) -> float:
        return float(self.observed[self.best])

    @property
    def null_max(self) -> np.ndarray:
        """``(B,)``: the selected (maximum) score of every shuffle."""
        return self.null.reshape(len(self.null), -1).max(axis=1)

    @property
    def chance(self) -> np.ndarray:
        """``(n_probes, L)`` empirical chance: the mean null score per probe and layer."""
        return self.null.mean(axis=0)


def select_best(scores: np.ndarray) -> tuple[int, int]:
    """``(probe index, layer)`` of the highest score in ``(n_probes, L)``; ties go to the first probe,
    then the lowest layer (as ``best_layers``)."""
    flat = int(np.argmax(np.asarray(scores).reshape(-1)))  # first maximum
    return divmod(flat, scores.shape[1])


def _p_values(exceed: np.ndarray, n_drawn: int, hit_at: int, h: int | None) -> np.ndarray:
    """Monte-Carlo p-values from exceedance counts (index 0: the maximum; the rest: each layer).

    The maximum gets Besag–Clifford's ``h / l`` when its ``h``-th exceedance came at shuffle ``l``."""
    p = (1.0 + exceed) / (1.0 + n_drawn)
    if h is not None and hit_at:
        p[0] = h / hit_at
    return p


def _draw(
    nulls: Sequence[LayerNull],
    codes_of: Callable[[int], np.ndarray],
    observed: np.ndarray,
    n_max: int,
    h: int | None,
    progress: Callable[[int], None] | None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Score shuffles in batches until ``n_max``, or (sequential) until the maximum has ``h`` exceedances.

    Statistics: the selected maximum (index 0), then every (probe, layer). Returns the null scores
    ``(B, n_probes, L)``, the exceedance counts and the shuffle at which the maximum's h-th came (0: never)."""
    stat_obs = np.concatenate([[observed.max()], observed.reshape(-1)])
    exceed = np.zeros(len(stat_obs), dtype=int)
    hit_at = 0
    batch = EXACT_BATCH if h is None else SEQUENTIAL_BATCH
    parts, done = [], 0
    while done < n_max and not hit_at:
        codes = codes_of(min(batch, n_max - done))
        scores = np.stack([null.scores(codes) for null in nulls], axis=1)  # (p, n_probes, L)
        flat = scores.reshape(len(scores), -1)
        stats = np.concatenate([flat.max(axis=1, keepdims=True), flat], axis=1)
        hits = stats >= stat_obs - 1e-12  # tolerance: the same score up to summation order
        if h is not None and exceed[0] + hits[:, 0].sum() >= h:  # stop at the h-th exceedance of the maximum
            keep = int(np.flatnonzero(exceed[0] + np.cumsum(hits[:, 0]) >= h)[0]) + 1
            scores, hits, hit_at = scores[:keep], hits[:keep], done + keep
        exceed = exceed + hits.sum(axis=0)
        parts.append(scores)
        done += len(scores)
        if progress is not None:
            progress(len(scores))
    return np.concatenate(parts), exceed, hit_at


def holm(p: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's (1979) step-down adjusted p-values (family-wise error), in the input order."""
    p = np.asarray(p, dtype=float)
    order = np.argsort(p, kind="stable")
    m = len(p)
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def benjamini_hochberg(p: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini & Hochberg's (1995) q-values (false discovery rate), in the input order; NaN stays NaN."""
    p = np.asarray(p, dtype=float)
    out = np.full(len(p), np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if not len(ok):
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    scaled = p[order] * m / np.arange(1, m + 1)
    out[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return out


def selection_test(
    features: np.ndarray,
    labels: Sequence[str] | np.ndarray,
    groups: Sequence[str] | np.ndarray | None = None,
    probes: Sequence[str] = ("knn",),
    n_permutations: int = 100,
    n_folds: int = 5,
    seed: int = 0,
    *,
    folds: Sequence[Fold] | None = None,
    sequential_h: int = SEQUENTIAL_H,
    fixed_labels: bool = True,
    settings: ProbeSettings | None = None,
    device: str | None = None,
    n_jobs: int = 1,
    progress: Callable[[int], None] | None = None,
    group_noun: str = "group",
) -> SelectionTest:
    """Selection-aware permutation test of the best layer of ``features`` ``(N, L, D)``.

    The best (probe, layer) is selected by mean Macro-F1 over ``folds`` (default: the probe runner's
    ``make_folds(labels, groups, n_folds, seed)``); each of the shuffles (restricted, see
    :func:`permutation_scheme`; drawn from ``default_rng(seed)``) re-runs that selection. Probes
    without an exact cheap null stop early after ``sequential_h`` exceedances of the maximum
    (Besag–Clifford; ``sequential_h=0`` turns that off), refitting ``n_jobs`` shuffles at once.
    ``progress(n)`` is called after each batch. ``fixed_labels``: Macro-F1 over the task's fixed label set,
    as the probe runner scores (False: over the classes present, as before that change); ``settings``: the
    run's probe hyper-parameters; ``group_noun``: what a group is (speaker, language, …), for the unit's name.
    Group-level tests enumerate every labelling when there are at most ``n_permutations``; a class with too
    few units gets no p-value (see the module docstring).
    """
    # Over 60 lines because its 14 parameters and their docstring take half; the body is checks, then one test.
    if n_permutations < 1:
        raise ConfigError(f"n_permutations is {n_permutations}; use 1 or more")
    X = features if isinstance(features, np.ndarray) else np.asarray(features)  # a memmap stays one
    if X.ndim != 3:
        raise ConfigError(f"features must be (items, layers, dims), got shape {X.shape}")
    y = np.asarray(labels).astype(str)
    if len(y) != X.shape[0]:
        raise ConfigError(f"got {len(y)} labels for {X.shape[0]} feature rows; give one label per item")
    probes = tuple(dict.fromkeys(probes))
    if not probes:
        raise ConfigError("no probe to test; name at least one")
    for name in probes:
        make_probe(name, seed, settings)
    g = _as_groups(groups, len(y))
    folds = list(folds) if folds is not None else make_folds(y, g, n_folds, seed)
    classes, codes = np.unique(y, return_inverse=True)
    nulls = [make_null(p, X, folds, len(classes), seed, fixed_labels, device, n_jobs, settings) for p in probes]
    observed = np.stack([null.scores(codes[None])[0] for null in nulls])  # (n_probes, L)
    scheme, permute = label_permuter(codes, g, folds)
    unit = inference_unit(y, g, group_noun)
    min_p, exact = min_attainable_p(codes, g, folds, n_permutations)
    if exact:  # every distinct group labelling, the real one first
        table = relabel_groups_all(codes, g, folds)
        draws = iter(range(0, len(table), EXACT_BATCH))
        null, exceed, _ = _draw(nulls, lambda n: table[next(draws) :][:n], observed, len(table), None, progress)
        p = exceed / len(table)
        h = None
    else:
        rng = np.random.default_rng(seed)
        h = sequential_h if sequential_h and not all(null.exact_cheap for null in nulls) else None
        null, exceed, hit_at = _draw(
            nulls, lambda n: np.stack([permute(rng) for _ in range(n)]), observed, n_permutations, h, progress
        )
        p = _p_values(exceed, len(null), hit_at, h)
    note = unit.too_few("a permutation test")
    if note:
        p = np.full_like(p, np.nan, dtype=float)
    layer_p = p[1:].reshape(observed.shape)
    return SelectionTest(
        probes=probes,
        observed=observed,
        null=null,
        best=select_best(observed),
        p_value=float(p[0]),
        layer_p=layer_p,
        layer_p_holm=np.stack([holm(row) for row in layer_p]),
        scheme=scheme,
        max_permutations=n_permutations,
        sequential=h is not None,
        unit=unit.noun,
        n_units=unit.n_units,
        exact=exact,
        min_p=min_p,
        note=note,
    )


def relabel_groups_all(codes: np.ndarray, groups: np.ndarray, folds: Sequence[Fold]) -> np.ndarray:
    """``(N, n)``: the clip labels of every distinct labelling of the groups (group-level scheme: every
    arrangement within each pool, combined), the real labelling first."""
    unit = inference_unit(codes, groups)
    unit_label = unit.unit_label.astype(codes.dtype)
    pools = _group_pools(unit, folds, len(codes))
    rows = []
    for choice in product(*(relabelings(unit_label[pool]) for pool in pools)):
        new = unit_label.copy()
        for pool, arranged in zip(pools, choice, strict=True):
            new[pool] = arranged
        rows.append(relabel_groups(codes, unit, new))
    return np.stack(rows)


def chance_table(test: SelectionTest, probe: str | None = None) -> pd.DataFrame:
    """Per layer of ``probe`` (default: the selected probe): ``layer, score, chance, above_chance,
    p_layer, p_holm``."""
    k = test.probes.index(probe) if probe is not None else test.best[0]
    chance = test.chance[k]
    return pd.DataFrame(
        {
            "layer": np.arange(test.observed.shape[1]),
            "score": test.observed[k],
            "chance": chance,
            "above_chance": test.observed[k] - chance,
            "p_layer": test.layer_p[k],
            "p_holm": test.layer_p_holm[k],
        }
    )


def add_q_values(frame: pd.DataFrame, p_column: str = "p_value") -> pd.DataFrame:
    """``frame`` with a ``q_value`` column: Benjamini–Hochberg over every row's ``p_column``."""
    out = frame.copy()
    out["q_value"] = benjamini_hochberg(pd.to_numeric(out[p_column], errors="coerce").to_numpy(float))
    return out
