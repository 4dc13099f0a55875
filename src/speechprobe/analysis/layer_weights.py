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

Writes ``all_layers.csv`` (results.csv's columns; probes ``weighted_sum`` (metrics ``macro_f1``, layer
empty, and ``weight`` per layer), ``single_layer`` (``macro_f1`` per layer) and ``selected_layer``
(``macro_f1`` at the layer chosen in that fold)), ``figures/layer_weights.png`` and
``analyses/layer_weights.json``. Formulas: docs/analyses.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib.ticker import MaxNLocator

from ..errors import ConfigError
from ..parallel import single_threaded
from ..probes import macro_f1, make_folds
from .features import FeatureLoader
from .inputs import RunInputs, TaskData, fold_interval, map_pairs, prepare, random_pairs
from .outputs import AnalysisOutput, FigureNote, write_rows
from .plots import _new_figure, save_figure

log = logging.getLogger("speechprobe")

ALL_LAYERS_CSV = "all_layers.csv"
MEMORY_BUDGET = 256 << 20  # bytes of standardised features held by one batched optimisation
COLUMNS = ["model", "task", "layer", "probe", "fold", "metric", "value"]


@dataclass(frozen=True)
class LayerWeightSettings:
    """Options of the all-layers reference; folds and seed default to the run's."""

    steps: int = 150  # full-batch Adam steps
    lr: float = 0.05
    weight_decay: float = 1e-2  # L2 on the heads' weights (not on the layer weights)
    inner_folds: int = 3  # inner cross-validation that selects the single layer
    n_folds: int | None = None
    seed: int | None = None
    models: tuple[str, ...] | None = None  # None: every model with more than one layer
    n_jobs: int = 1  # (model, task) pairs trained at once


@dataclass
class Split:
    """Masks over a task's clips for one outer fold: the outer training rows, the outer test rows, and
    per inner fold its training rows (inside the outer training rows)."""

    train: np.ndarray
    test: np.ndarray
    inner: list[np.ndarray]


def make_splits(task: TaskData, inner_folds: int, seed: int) -> tuple[list[Split], list[str]]:
    """Outer folds of ``task`` with their inner folds (grouped like the outer ones); a training fold that
    cannot be split gets no inner folds (no layer is then selected for it) and a note."""
    n, out, notes = len(task.labels), [], []
    for k, (train, test) in enumerate(task.folds):
        inner = []
        try:
            groups = None if task.groups is None else task.groups[train]
            inner = [train[tr] for tr, _ in make_folds(task.labels[train], groups, inner_folds, seed)]
        except ConfigError as e:
            notes.append(f"{task.name} fold {k}: no inner cross-validation ({e}); no single layer selected")
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


def reference_rows(features: np.ndarray, task: TaskData, settings: LayerWeightSettings, seed: int) -> list[dict]:
    """Tidy rows (without model and task) for one model's features ``(N, L, D)`` on one task.

    Folds are trained together as far as :data:`MEMORY_BUDGET` allows, else in chunks; the heads of
    different folds are independent, so the numbers do not depend on the chunking (tested)."""
    classes, y = np.unique(task.labels, return_inverse=True)
    splits, _ = make_splits(task, settings.inner_folds, seed)
    per_fold = 2 * 4 * int(np.prod(features.shape))  # float32 standardised layers and their span coordinates
    chunk = max(1, MEMORY_BUDGET // per_fold)
    rows = []
    for start in range(0, len(splits), chunk):
        part = splits[start : start + chunk]
        with single_threaded():  # the same bits whatever the machine's load
            weights, weighted, single = train_reference(_standardised(features, part), y, part, settings, seed)
        for i, sp in enumerate(part):
            rows += _fold_rows(start + i, sp, weights[i], weighted[i], single[i], task.labels, classes)
    return rows


def _fold_rows(k: int, sp: Split, weights, weighted, single, labels: np.ndarray, classes: np.ndarray) -> list[dict]:
    test = labels[sp.test]
    rows = [
        {
            "layer": None,
            "probe": "weighted_sum",
            "fold": k,
            "metric": "macro_f1",
            "value": macro_f1(test, classes[weighted[sp.test].argmax(-1)]),
        }
    ]
    rows += [
        {"layer": layer, "probe": "weighted_sum", "fold": k, "metric": "weight", "value": float(v)}
        for layer, v in enumerate(weights)
    ]
    each = [macro_f1(test, classes[logits[sp.test].argmax(-1)]) for logits in single[0]]
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
        totals += [macro_f1(labels[val], classes[logits[val].argmax(-1)]) for logits in single[s]]
    return totals / len(sp.inner)


def _reference_work(features: np.ndarray, task: TaskData, data, settings: LayerWeightSettings, seed: int) -> list[dict]:
    return reference_rows(features, task, settings, seed)


def run_layer_weights(
    run_dir: Path, load_features: FeatureLoader | None = None, settings: LayerWeightSettings = LayerWeightSettings()
) -> AnalysisOutput:
    """The all-layers reference for every multi-layer (model, task) of a finished run; writes
    ``all_layers.csv``, ``figures/layer_weights.png`` and ``analyses/layer_weights.json``."""
    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    inputs, load_features, models = prepare(run_dir, settings, load_features, multi_layer=True)
    work = partial(_reference_work, settings=settings, seed=inputs.seed)
    rows, notes = map_pairs(inputs, models, load_features, work, COLUMNS, "all-layers reference", settings.n_jobs)
    notes = [
        *inputs.notes,
        *notes,
        *(n for t in inputs.tasks for n in make_splits(t, settings.inner_folds, inputs.seed)[1]),
    ]
    rows["layer"] = rows["layer"].astype("Int64")
    write_rows(run_dir / ALL_LAYERS_CSV, rows)
    table = reference_table(rows, inputs)
    out = AnalysisOutput("layer_weights", tables=[ALL_LAYERS_CSV], notes=notes)
    out.params = {k: getattr(settings, k) for k in ("steps", "lr", "weight_decay", "inner_folds")}
    out.params.update(n_folds=inputs.n_folds, seed=inputs.seed)
    png = plot_layer_weights(rows, table, inputs, run_dir / "figures" / "layer_weights.png")
    if png:
        out.figures.append(
            FigureNote(str(png.relative_to(run_dir)), _caption(settings, inputs), "All-layers reference")
        )
    out.findings = reference_findings(table)
    out.seconds = round(time.perf_counter() - t0, 3)
    out.write(run_dir)
    return out


def reference_table(rows: pd.DataFrame, inputs: RunInputs) -> pd.DataFrame:
    """Per (model, task): weighted-sum and selected-layer Macro-F1 with 95 % intervals, their paired
    difference and its interval (corrected for shared training data), the hindsight best layer, a verdict."""
    sizes = {
        t.name: (np.mean([len(a) for a, _ in t.folds]), np.mean([len(b) for _, b in t.folds])) for t in inputs.tasks
    }
    out = []
    for (model, task), part in rows.groupby(["model", "task"], sort=False):
        n_train, n_test = sizes[task]
        f1 = part[part["metric"] == "macro_f1"]
        weighted = f1[f1["probe"] == "weighted_sum"].set_index("fold")["value"]
        selected = f1[f1["probe"] == "selected_layer"].set_index("fold")["value"]
        single = f1[f1["probe"] == "single_layer"].groupby("layer")["value"].mean()
        paired = (weighted - selected).dropna()
        w, w_lo, w_hi = np.clip(fold_interval(weighted.to_numpy(), n_train, n_test), 0, 1)  # Macro-F1 lies in [0, 1]
        s, s_lo, s_hi = np.clip(fold_interval(selected.to_numpy(), n_train, n_test), 0, 1)
        d, d_lo, d_hi = np.clip(fold_interval(paired.to_numpy(), n_train, n_test), -1, 1)
        verdict = "weighted sum better" if d_lo > 0 else "best single layer better" if d_hi < 0 else "equal"
        if not np.isfinite(d_lo):
            verdict = "undetermined"
        best = int(single.idxmax()) if len(single) else -1
        row = (model, task, w, w_lo, w_hi, s, s_lo, s_hi, d, d_lo, d_hi, best, float(single.max()), verdict)
        out.append(row)
    columns = ["model", "task", "weighted", "weighted_lo", "weighted_hi", "selected", "selected_lo", "selected_hi"]
    columns += ["delta", "delta_lo", "delta_hi", "hindsight_layer", "hindsight", "verdict"]
    return pd.DataFrame(out, columns=columns)


def reference_findings(table: pd.DataFrame) -> list[str]:
    """One sentence per (model, task) and one verdict count over all of them."""
    out = []
    for r in table.itertuples():
        out.append(
            f"{r.task} in {r.model}: learned weighting of all layers {r.weighted:.2f} [{r.weighted_lo:.2f}, "
            f"{r.weighted_hi:.2f}] vs the single layer chosen inside each training fold {r.selected:.2f} "
            f"[{r.selected_lo:.2f}, {r.selected_hi:.2f}]; difference {r.delta:+.2f} [{r.delta_lo:+.2f}, "
            f"{r.delta_hi:+.2f}]: {r.verdict} (best layer in hindsight: {r.hindsight_layer}, {r.hindsight:.2f}, "
            "optimistic)."
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


def plot_layer_weights(rows: pd.DataFrame, table: pd.DataFrame, inputs: RunInputs, png: Path) -> Path | None:
    """Top row: learned softmax weight per layer (mean over folds, a line per task; the ``+random`` twin
    dashed). Bottom row: weighted sum vs the in-fold selected layer, with 95 % intervals, per task."""
    weights = rows[(rows["probe"] == "weighted_sum") & (rows["metric"] == "weight")]
    if weights.empty:
        return None
    shown = random_pairs(list(dict.fromkeys(weights["model"])))
    tasks = list(dict.fromkeys(weights["task"]))
    colours = {t: f"C{i % 10}" for i, t in enumerate(tasks)}
    fig = _new_figure(1.0 + 4.2 * len(shown), 6.4)
    fig.set_layout_engine("constrained")
    axes = fig.subplots(2, len(shown), squeeze=False)
    for j, (model, twin) in enumerate(shown.items()):
        for m, style in ((model, "-"), (twin, "--")):
            if m is None:
                continue
            for task, part in weights[weights["model"] == m].groupby("task", sort=False):
                mean = part.groupby("layer")["value"].mean()
                label = f"{task}{' (random)' if style == '--' else ''}"
                axes[0, j].plot(
                    mean.index, mean.to_numpy(), ls=style, marker="o", ms=3, color=colours[task], label=label
                )
        axes[0, j].set_title(model + (f" (dashed: {twin})" if twin else ""), fontsize="small")
        axes[0, j].set_xlabel("layer")
        axes[0, j].xaxis.set_major_locator(MaxNLocator(integer=True))
        axes[0, j].set_ylabel("learned weight (softmax)")
        axes[0, j].axhline(1 / max(inputs.num_layers(model), 1), color="grey", lw=0.8, ls=":")
        axes[0, j].legend(fontsize="x-small")
        _score_bars(axes[1, j], table, [m for m in (model, twin) if m], tasks)
    return save_figure(fig, png)


def _score_bars(ax, table: pd.DataFrame, models: Sequence[str], tasks: Sequence[str]) -> None:
    width = 0.8 / (2 * len(models))
    for i, model in enumerate(models):
        part = table[table["model"] == model].set_index("task").reindex(tasks)
        for k, (col, name) in enumerate((("weighted", "weighted sum"), ("selected", "selected layer"))):
            x = np.arange(len(tasks)) + (2 * i + k - len(models)) * width + width / 2
            err = np.abs(part[[f"{col}_lo", f"{col}_hi"]].to_numpy(float).T - part[col].to_numpy(float))
            hatch = "//" if i else None
            label = f"{name}{' (random)' if i else ''}"
            ax.bar(x, part[col], width, yerr=err, color=f"C{k}", alpha=0.8, hatch=hatch, label=label, capsize=2)
    ax.set_xticks(range(len(tasks)), tasks, rotation=30, ha="right", fontsize="small")
    ax.set_ylabel("Macro-F1 (95% interval)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize="x-small")


def _caption(settings: LayerWeightSettings, inputs: RunInputs) -> str:
    return (
        f"All-layers reference (SUPERB-style weighted sum, linear head). Top: the learned softmax weight "
        f"of each layer (mean over the {inputs.n_folds} folds; dotted: equal weights; dashed lines: the same "
        f"architecture with random weights when the run has it). Bottom: Macro-F1 of the weighted sum and of the "
        f"single layer chosen by inner cross-validation inside each training fold, the same head on both, with "
        f"95% intervals over folds corrected for shared training data."
    )


__all__ = [
    "ALL_LAYERS_CSV",
    "LayerWeightSettings",
    "make_splits",
    "plot_layer_weights",
    "reference_findings",
    "reference_rows",
    "reference_table",
    "run_layer_weights",
    "train_reference",
]
