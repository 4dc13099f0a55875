"""All-layers reference: a SUPERB-style learned weighting of every layer (Yang et al., 2021) against the
best single layer, both with the same head, trained inside each fold of the run's own folds.

Per (model, task, fold), every layer standardised with training-fold statistics (``h_l``, ``l = 0..L-1``):

- weighted sum: ``logits = head(sum_l softmax(w)_l h_l)``, the layer weights ``w`` (initialised equal)
  and the head learned together;
- single layers: the same head on each ``h_l`` alone;
- selected single layer: the layer whose head scores the best mean Macro-F1 over an inner grouped
  cross-validation *of the training fold*, then scored on the test fold; so the comparison with the
  weighted sum does not favour the single layer by choosing it on the test folds.

The head is linear (multinomial logistic regression), zero-initialised and trained full-batch with Adam
for a fixed number of steps with an L2 penalty on its weights, single-threaded (torch on the CPU), so
the same inputs give the same numbers. Every head of a (model, task) - weighted, per layer, per inner
fold, for every outer fold - is trained in one batched optimisation; the inner folds use the outer
training fold's standardisation (label-free). Single-layer heads work in the span of the training rows
(see :func:`span_coordinates`). The best single layer *in hindsight* (the highest mean test score over
layers) is reported beside the others for reference only: it is optimistic by construction.

A task-scope analysis (every model of a task in one unit). Writes ``all_layers.csv`` (``task, model,
layer, probe, fold, metric, value``; probes ``weighted_sum`` (metrics ``macro_f1``, layer empty, and
``weight`` per layer), ``single_layer`` (``macro_f1`` per layer) and ``selected_layer`` (``macro_f1`` at
the layer chosen in that fold)), ``all_layers_summary.csv`` (per task and model: both scores, their
difference with 95 % intervals, the hindsight best layer and the verdict) and
``figures/layer_weights_<task>.png``. Formulas: docs/analyses.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..figures.base import random_pairs
from ..figures.layer_weights import plot_layer_weights
from ..models.lazy import Lazy
from ..parallel import single_threaded
from ..probes import macro_f1, make_folds
from ..probes.cv import Fold
from .contract import Analysis, AnalysisResult, AnalysisSettings, Figure, Unit
from .cues import cue_plan, model_depths, per_model
from .inputs import read_table
from .intervals import fold_interval, fold_ratio
from .units import unit_note

ALL_LAYERS_CSV = "all_layers.csv"
SUMMARY_CSV = "all_layers_summary.csv"
torch = Lazy("torch")  # imported when the weighting is trained, not with the analysis registry
MEMORY_BUDGET = 256 << 20  # bytes of standardised features held by one batched optimisation
COLUMNS = ["task", "model", "layer", "probe", "fold", "metric", "value"]
SUMMARY_COLUMNS = [
    "task",
    "model",
    "weighted",
    "weighted_lo",
    "weighted_hi",
    "selected",
    "selected_lo",
    "selected_hi",
    "delta",
    "delta_lo",
    "delta_hi",
    "hindsight_layer",
    "hindsight",
    "verdict",
]


@dataclass(frozen=True)
class LayerWeightSettings:
    """How the heads are trained (``AnalysisSettings.options["layer_weights"]`` may override each)."""

    steps: int = 150  # full-batch Adam steps
    lr: float = 0.05
    weight_decay: float = 1e-2  # L2 on the heads' weights (not on the layer weights)
    inner_folds: int = 3  # inner cross-validation that selects the single layer

    @classmethod
    def of(cls, settings: AnalysisSettings) -> LayerWeightSettings:
        given = settings.options.get("layer_weights") or {}
        return cls(**{f.name: given[f.name] for f in dataclasses.fields(cls) if f.name in given})


@dataclass
class Split:
    """Masks over a task's clips for one outer fold: the outer training rows, the outer test rows, and
    per inner fold its training rows (inside the outer training rows)."""

    train: np.ndarray
    test: np.ndarray
    inner: list[np.ndarray]


def make_splits(
    labels: np.ndarray, groups: np.ndarray | None, folds: Sequence[Fold], inner_folds: int, seed: int
) -> tuple[list[Split], list[str]]:
    """The outer ``folds`` with their inner folds (grouped like the outer ones); a training fold that cannot
    be split gets no inner folds (no layer is then selected for it) and a note."""
    n, out, notes = len(labels), [], []
    for k, (train, test) in enumerate(folds):
        inner = []
        try:
            inner_groups = None if groups is None else groups[train]
            inner = [train[tr] for tr, _ in make_folds(labels[train], inner_groups, inner_folds, seed)]
        except ConfigError as e:
            notes.append(f"fold {k}: no inner cross-validation ({e}); no single layer selected")
        out.append(Split(_mask(n, train), _mask(n, test), [_mask(n, i) for i in inner]))
    return out, notes


def _mask(n: int, idx: np.ndarray) -> np.ndarray:
    m = np.zeros(n, dtype=bool)
    m[idx] = True
    return m


def _standardised(features: np.ndarray, splits: list[Split]) -> torch.Tensor:
    """``(F, L, N, D)`` float32: every clip standardised per layer with fold ``f``'s training statistics."""
    X = np.asarray(features, dtype=np.float64).transpose(1, 0, 2)  # (L, N, D)
    out = []
    for sp in splits:
        mean = X[:, sp.train].mean(axis=1, keepdims=True)
        std = X[:, sp.train].std(axis=1, keepdims=True)
        out.append((X - mean) / np.where(std > 0, std, 1.0))  # StandardScaler's rule for constant features
    return torch.from_numpy(np.stack(out).astype(np.float32))


def span_coordinates(X: torch.Tensor, splits: list[Split]) -> torch.Tensor:
    """``(F, L, N, r)``: each layer's standardised clips in an orthonormal basis of the span of fold ``f``'s
    training rows (``r`` <= training clips; zero-padded). A linear head with an L2 penalty fitted on those
    rows has its optimum inside that span, so it loses nothing there, and the single-layer heads cost
    ``r / D`` of the full width. When the training rows outnumber the dimensions, ``X`` is returned."""
    n_train = max(int(sp.train.sum()) for sp in splits)
    if n_train >= X.shape[-1]:
        return X
    out = torch.zeros(*X.shape[:3], n_train, dtype=X.dtype)
    for f, sp in enumerate(splits):
        train = torch.from_numpy(sp.train)
        for layer in range(X.shape[1]):
            _, sv, vt = torch.linalg.svd(X[f, layer][train].double(), full_matrices=False)
            rank = int((sv > sv[0] * 1e-6).sum()) if len(sv) and sv[0] > 0 else 0
            out[f, layer, :, :rank] = (X[f, layer].double() @ vt[:rank].T).to(X.dtype)
    return out


def _masked_ce(logits: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum over heads of the mean cross-entropy over each head's masked rows; logits ``(..., N, C)``,
    mask broadcastable to ``(..., N)``."""
    ce = torch.nn.functional.cross_entropy(logits.movedim(-1, 1), y.expand(logits.shape[:-1]), reduction="none")
    mask = mask.expand(ce.shape).to(ce.dtype)
    return (ce * mask).sum(-1).div(mask.sum(-1).clamp_min(1)).sum()


def train_reference(X: torch.Tensor, y: np.ndarray, splits: list[Split], settings: LayerWeightSettings, seed: int):
    """Train, for every outer fold at once, the weighted-sum head and the single-layer heads on the outer
    training rows and on each inner training set (linear softmax heads, zero-initialised, full-batch Adam).

    Returns ``(weights (F, L), weighted logits (F, N, C), single logits (F, S, L, N, C))``; ``S`` = 1 +
    inner folds, split 0 being the outer training rows. All heads are independent problems; Adam's update
    is elementwise, so training them together gives each the result it would get alone.
    """
    torch.manual_seed(seed)
    P = span_coordinates(X, splits)
    n_folds, n_layers, _, dim = X.shape
    n_splits = 1 + max(len(sp.inner) for sp in splits)
    classes = int(y.max()) + 1
    yt = torch.from_numpy(y)
    train = torch.from_numpy(np.stack([sp.train for sp in splits]))  # (F, N)
    inner = np.zeros((n_folds, n_splits, X.shape[2]), dtype=bool)
    for f, sp in enumerate(splits):
        inner[f, 0] = sp.train
        for s, m in enumerate(sp.inner, 1):
            inner[f, s] = m
    inner_t = torch.from_numpy(inner)[:, :, None]  # (F, S, 1, N)
    w = torch.zeros(n_folds, n_layers, requires_grad=True)
    W = torch.zeros(n_folds, dim, classes, requires_grad=True)
    b = torch.zeros(n_folds, 1, classes, requires_grad=True)
    Ws = torch.zeros(n_folds, n_splits, n_layers, P.shape[-1], classes, requires_grad=True)
    bs = torch.zeros(n_folds, n_splits, n_layers, 1, classes, requires_grad=True)
    opt = torch.optim.Adam([w, W, b, Ws, bs], lr=settings.lr)

    def forward() -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.einsum("fl,flnd->fnd", torch.softmax(w, -1), X)
        return torch.baddbmm(b, h, W), torch.einsum("flnd,fslde->fslne", P, Ws) + bs

    for _ in range(settings.steps):
        opt.zero_grad()
        weighted, single = forward()
        loss = _masked_ce(weighted, yt, train) + _masked_ce(single, yt, inner_t)
        loss = loss + settings.weight_decay * ((W**2).sum() + (Ws**2).sum())
        loss.backward()
        opt.step()
    with torch.no_grad():
        weighted, single = forward()
    return torch.softmax(w.detach(), -1).numpy(), weighted.numpy(), single.numpy()


def reference_rows(
    features: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray | None,
    folds: Sequence[Fold],
    settings: LayerWeightSettings,
    seed: int,
) -> list[dict]:
    """Tidy rows (without model and task) for one model's features ``(N, L, D)`` on one task's folds.

    Folds are trained together as far as :data:`MEMORY_BUDGET` allows, else in chunks; the heads of
    different folds are independent, so the numbers do not depend on the chunking (tested)."""
    classes, y = np.unique(labels, return_inverse=True)
    splits, _ = make_splits(labels, groups, folds, settings.inner_folds, seed)
    per_fold = 2 * 4 * int(np.prod(features.shape))  # float32 standardised layers and their span coordinates
    chunk = max(1, MEMORY_BUDGET // per_fold)
    rows = []
    for start in range(0, len(splits), chunk):
        part = splits[start : start + chunk]
        with single_threaded():  # the same bits whatever the machine's load
            weights, weighted, single = train_reference(_standardised(features, part), y, part, settings, seed)
        for i, sp in enumerate(part):
            rows += _fold_rows(start + i, sp, weights[i], weighted[i], single[i], labels, classes)
    return rows


def _fold_rows(k: int, sp: Split, weights, weighted, single, labels: np.ndarray, classes: np.ndarray) -> list[dict]:
    test = labels[sp.test]
    rows = [
        {
            "layer": None,
            "probe": "weighted_sum",
            "fold": k,
            "metric": "macro_f1",
            "value": macro_f1(test, classes[weighted[sp.test].argmax(-1)], classes),
        }
    ]
    rows += [
        {"layer": layer, "probe": "weighted_sum", "fold": k, "metric": "weight", "value": float(v)}
        for layer, v in enumerate(weights)
    ]
    each = [macro_f1(test, classes[logits[sp.test].argmax(-1)], classes) for logits in single[0]]
    rows += [
        {"layer": layer, "probe": "single_layer", "fold": k, "metric": "macro_f1", "value": v}
        for layer, v in enumerate(each)
    ]
    if sp.inner:
        chosen = int(np.argmax(_inner_scores(single, sp, labels, classes)))
        rows.append(
            {"layer": chosen, "probe": "selected_layer", "fold": k, "metric": "macro_f1", "value": each[chosen]}
        )
    return rows


def _inner_scores(single: np.ndarray, sp: Split, labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Mean inner-validation Macro-F1 per layer (validation rows: outer training rows outside the inner set)."""
    totals = np.zeros(single.shape[1])
    for s, inner in enumerate(sp.inner, 1):
        val = sp.train & ~inner
        totals += [macro_f1(labels[val], classes[logits[val].argmax(-1)], classes) for logits in single[s]]
    return totals / len(sp.inner)


def compute(unit: Unit) -> AnalysisResult:
    """The all-layers reference of every multi-layer model of one task, and the task's figure."""
    settings = LayerWeightSettings.of(unit.settings)
    depth = model_depths(unit.run_dir)
    models = [m for m in unit.models if depth.get(m, 1) > 1]
    args = (unit.labels, unit.groups, unit.cue_folds, settings, unit.settings.seed)
    rows, notes = per_model(unit, reference_rows, *args, models=models, what="all-layers")
    rows = rows.reindex(columns=COLUMNS)
    rows["layer"] = rows["layer"].astype("Int64")
    notes += [f"{unit.task} {n}" for n in make_splits(*args[:3], settings.inner_folds, args[4])[1]]
    table = reference_table(rows, unit.task, unit.cue_folds, unit_note(unit.run_dir, unit.task, "a paired gap"))
    notes = [f"layer_weights {n}" for n in notes]
    out = AnalysisResult(tables={ALL_LAYERS_CSV: rows, SUMMARY_CSV: table}, notes=notes)
    png = plot_layer_weights(rows, table, models, unit.task, unit.figure_path("layer_weights"))
    if png:
        out.figures.append(Figure(png, _caption(unit, models)))
    return out


def reference_table(rows: pd.DataFrame, task: str, folds: Sequence[Fold], too_few: str = "") -> pd.DataFrame:
    """Per model: weighted-sum and selected-layer Macro-F1 with 95 % intervals, their paired difference and
    its interval (corrected for shared training data), the hindsight best layer, and a verdict. ``too_few``:
    why the task has no paired gap (too few units per class): no interval, and the verdict says why."""
    ratio = fold_ratio(folds)
    out = []
    for model, part in rows.groupby("model", sort=False):
        f1 = part[part["metric"] == "macro_f1"]
        weighted = f1[f1["probe"] == "weighted_sum"].set_index("fold")["value"]
        selected = f1[f1["probe"] == "selected_layer"].set_index("fold")["value"]
        single = f1[f1["probe"] == "single_layer"].groupby("layer")["value"].mean()
        paired = (weighted - selected).dropna()
        w, w_lo, w_hi = np.clip(fold_interval(weighted.to_numpy(), ratio), 0, 1)  # Macro-F1 is in [0, 1]
        s, s_lo, s_hi = np.clip(fold_interval(selected.to_numpy(), ratio), 0, 1)
        d, d_lo, d_hi = np.clip(fold_interval(paired.to_numpy(), ratio), -1, 1)
        verdict = "weighted sum better" if d_lo > 0 else "best single layer better" if d_hi < 0 else "equal"
        if too_few:
            d_lo, d_hi, verdict = np.nan, np.nan, f"undetermined ({too_few})"
        elif not np.isfinite(d_lo):
            verdict = "undetermined"
        best = int(single.idxmax()) if len(single) else -1
        out.append((task, model, w, w_lo, w_hi, s, s_lo, s_hi, d, d_lo, d_hi, best, float(single.max()), verdict))
    return pd.DataFrame(out, columns=SUMMARY_COLUMNS)


def _span(lo: float, hi: float, sign: str = "+") -> str:
    return f" [{lo:{sign}.2f}, {hi:{sign}.2f}]" if np.isfinite(lo) and np.isfinite(hi) else ""


def _score(value: float, lo: float, hi: float, sign: str = "") -> str:
    """``0.50 [0.45, 0.55]``; "not computed" for a score the fold plan could not give."""
    return f"{value:{sign}.2f}{_span(lo, hi, sign)}" if np.isfinite(value) else "not computed"


def findings(run_dir: Path) -> list[str]:
    """One sentence per (model, task) and one verdict count over all of them."""
    path = Path(run_dir) / SUMMARY_CSV
    if not path.is_file():
        return []
    table = read_table(path, SUMMARY_COLUMNS)
    out, plan = [], cue_plan(run_dir)  # its scores are the headline's only over every fold: else name them
    for r in table.itertuples():
        where = f", {plan}" if plan else ""
        out.append(
            f"{r.task} in {r.model}{where}: learned weighting of all layers "
            f"{_score(r.weighted, r.weighted_lo, r.weighted_hi)} vs the single layer chosen inside each training fold "
            f"{_score(r.selected, r.selected_lo, r.selected_hi)}; "
            f"difference {_score(r.delta, r.delta_lo, r.delta_hi, '+')}: {r.verdict} "
            f"(best layer in hindsight: {r.hindsight_layer}, {r.hindsight:.2f}, optimistic)."
        )
    if len(table):
        counts = table["verdict"].value_counts()
        parts = [f"{counts.get(v, 0)} {v}" for v in ("equal", "best single layer better", "weighted sum better")]
        out.append(
            f"All-layers reference over {len(table)} model × task pairs (95% intervals over folds): "
            + ", ".join(parts)
            + ". 'equal' means the interval of the difference includes 0."
        )
    return out


def _caption(unit: Unit, models: list[str]) -> str:
    twins = [m for m in random_pairs(models).values() if m]
    extra = f" Dashed lines and hatched bars: {', '.join(twins)} (random weights)." if twins else ""
    return (
        f"All-layers reference on {unit.task} (SUPERB-style weighted sum, linear head). Top: the learned softmax "
        f"weight of each layer (mean over the run's {unit.settings.n_folds} folds). Bottom: Macro-F1 of the weighted "
        "sum and of the single layer chosen by inner cross-validation inside each training fold, the same head on "
        f"both, with 95% intervals over folds corrected for shared training data.{extra}"
    )


def _options(settings: AnalysisSettings) -> dict:
    return {**dataclasses.asdict(LayerWeightSettings.of(settings)), "cue_repeats": settings.cue_repeats}


ANALYSIS = Analysis.of(
    __name__,
    {ALL_LAYERS_CSV: COLUMNS, SUMMARY_CSV: SUMMARY_COLUMNS},
    cost="minutes; a weighted head and an inner selection per fold",
)
