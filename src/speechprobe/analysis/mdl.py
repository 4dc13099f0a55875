"""MDL probes: the online code length of a task's labels given each layer (Voita & Titov 2020,
"Information-Theoretic Probing with Minimum Description Length").

The clips are put in a seeded random order, a whole speaker/group at a time (a speaker's clips never
straddle two blocks, so a block is never coded by a probe that has heard its speakers), and cut at the
standard schedule of fractions :data:`SCHEDULE` (0.1 %, 0.2 %, …, 50 %, 100 %), each cut moved to the
nearest group boundary (ties to the later one); cuts that fall together are merged. With block ends
``t₁ < … < t_S = n`` and ``K`` classes the online code length is

    L_online = t₁ · log₂ K + Σ_{s=1}^{S−1} Σ_{i ∈ (t_s, t_{s+1}]} −log₂ p_s(yᵢ | xᵢ)

where ``p_s`` is a probe trained on the first ``t_s`` clips: the first block is sent with the uniform
code, every later block with a probe trained on everything before it. The *compression* is
``n · log₂ K / L_online`` (1: no better than the uniform code; higher: the labels are easier to
extract from the layer with little data).

*Probe*: multinomial logistic regression on features standardised on its training part only, with
an L2 penalty ``λ/2 (‖W‖² + ‖b‖²)`` on the mean cross-entropy, fitted by a fixed budget of
:data:`N_STEPS` accelerated gradient steps from zero (in the span of the training clips, an exact
re-parametrisation when there are fewer clips than dimensions), for every ``λ`` in :data:`PENALTIES`.
Each ``λ`` gives an online code ``L_λ``; with the uniform code ``L_u = n log₂ K`` (``λ = ∞``) they form
``G`` candidate codes, and the labels are sent with their Bayesian mixture under equal prior weights,

    L_online = −log₂ ( (1/G) Σ_g 2^(−L_g) )  ≤  min_g L_g + log₂ G,

itself an online code (the mixture's weights after each block are the posterior given the earlier
blocks, which the receiver knows). So the probe's strength is chosen by the data at a cost of at most
``log₂ G`` bits, a probe that memorises, or fails on new speakers, cannot make the code much longer
than the uniform code (on shuffled labels the compression stays at about 1), and a layer whose labels
are easy to extract gets the short code of the probe that extracts them.

*Uncertainty*: the whole code is computed for ``n_orders`` seeded orders of the clips; mean and
standard deviation over orders are reported (the code length depends on the order).

An analysis of the plan/execute contract (:mod:`.contract`), one unit per task with every model of the
run: ``mdl.csv`` (:data:`MDL_COLUMNS`) and ``figures/mdl_<task>.png`` (Macro-F1 and compression side by
side); :func:`findings` gives the report its sentences; ``analyse(run, "mdl", n_orders=3)`` runs it
alone on a finished run.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from ..models.lazy import Lazy
from .contract import Analysis, AnalysisResult, AnalysisSettings, Figure, Unit
from .curves import relative_depth
from .inputs import read_manifest, read_table
from .primary import primary_probe
from .summary import layer_rows, read_results, summarize

SCHEDULE = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.0625, 0.125, 0.25, 0.5, 1.0)
PENALTIES = (10.0, 1.0, 0.1, 0.01, 0.001)
N_STEPS = 200
torch = Lazy("torch")  # imported when a probe is fitted, not with the analysis registry


def block_order(groups: Sequence[str] | None, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded order of the clips, whole groups at a time, and the positions where groups end."""
    rng = np.random.default_rng(seed)
    if groups is None:
        return rng.permutation(n), np.arange(1, n + 1)
    names, codes = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    order, ends = [], []
    for g in rng.permutation(len(names)):
        members = np.flatnonzero(codes == g)
        order.append(rng.permutation(members))
        ends.append((ends[-1] if ends else 0) + len(members))
    return np.concatenate(order), np.asarray(ends)


def block_ends(group_ends: np.ndarray, schedule: Sequence[float] = SCHEDULE) -> np.ndarray:
    """Block ends: each ``fraction · n`` moved to the nearest group end (ties to the later), merged."""
    n = int(group_ends[-1])
    cuts = []
    for fraction in schedule:
        target = fraction * n
        j = int(np.argmin(np.abs(group_ends - target) - 1e-9 * group_ends))
        cuts.append(int(group_ends[j]))
    return np.unique(np.asarray(cuts + [n]))


def _standardise(train: torch.Tensor, test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = train.mean(dim=1, keepdim=True)
    std = train.std(dim=1, unbiased=False, keepdim=True)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return (train - mean) / std, (test - mean) / std


def _span_basis(train: torch.Tensor, test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordinates in the span of the training rows when it is smaller than the feature dimension."""
    n, d = train.shape[1], train.shape[2]
    if d <= n:
        return train, test
    _, _, vh = torch.linalg.svd(train, full_matrices=False)  # (L, n, d): orthonormal rows
    return train @ vh.transpose(1, 2), test @ vh.transpose(1, 2)


def fit_logistic(
    X: torch.Tensor, y: torch.Tensor, n_classes: int, penalties: Sequence[float], steps: int = N_STEPS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights (L, d, P, K) and biases (L, 1, P, K) of L2-penalised multinomial logistic regressions,
    one per layer of ``X`` (L, n, d) and penalty, by Nesterov's accelerated gradient from zero with
    step ``1 / Lipschitz`` and the momentum of a ``λ``-strongly convex problem. All of them are one
    batched matrix product per step (the penalties side by side in the columns)."""
    P, K, (L, n, d) = len(penalties), n_classes, X.shape
    lam = torch.tensor(penalties, dtype=X.dtype, device=X.device).view(1, 1, P, 1)
    top = torch.linalg.matrix_norm(X, ord=2) ** 2 / n  # largest eigenvalue of XᵀX / n, per layer
    lip = 0.5 * torch.clamp(top, min=1.0).view(L, 1, 1, 1) + lam  # the bias column adds eigenvalue 1
    root = (lip / lam).sqrt()
    momentum, step = (root - 1) / (root + 1), 1.0 / lip
    onehot = torch.nn.functional.one_hot(y, K).to(X.dtype).view(1, n, 1, K)
    Xt = X.transpose(1, 2)
    W = torch.zeros(L, d, P, K, dtype=X.dtype, device=X.device)
    b = torch.zeros(L, 1, P, K, dtype=X.dtype, device=X.device)
    W_prev, b_prev = W, b
    for _ in range(steps):
        W_look, b_look = W + momentum * (W - W_prev), b + momentum * (b - b_prev)
        logits = torch.bmm(X, W_look.view(L, d, P * K)).view(L, n, P, K) + b_look
        residual = (torch.softmax(logits, dim=-1) - onehot) / n
        grad_W = torch.bmm(Xt, residual.view(L, n, P * K)).view(L, d, P, K) + lam * W_look
        grad_b = residual.sum(dim=1, keepdim=True) + lam * b_look
        W_prev, b_prev = W, b
        W, b = W_look - step * grad_W, b_look - step * grad_b
    return W, b


def block_code_bits(
    train: np.ndarray,
    y_train: np.ndarray,
    test: np.ndarray,
    y_test: np.ndarray,
    n_classes: int,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """(P, L) bits to send ``y_test`` with a probe per penalty and layer trained on ``train`` (N, L, D)."""

    def tensor(a: np.ndarray, dtype=np.float32) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=dtype)).to(device)

    Xtr, Xte = _span_basis(*_standardise(tensor(train.transpose(1, 0, 2)), tensor(test.transpose(1, 0, 2))))
    W, b = fit_logistic(Xtr, tensor(y_train, np.int64), n_classes, PENALTIES)
    L, d, P, K = W.shape
    logits = torch.bmm(Xte, W.view(L, d, P * K)).view(L, len(y_test), P, K) + b
    index = tensor(y_test, np.int64).view(1, -1, 1, 1).expand(L, -1, P, 1)
    picked = torch.log_softmax(logits, dim=-1).gather(-1, index)[..., 0]  # (L, n_test, P)
    return (-picked.sum(dim=1) / math.log(2)).T.double().cpu().numpy()


@contextlib.contextmanager
def single_thread(device: torch.device) -> Iterator[None]:
    """One torch thread while probing on a CPU: the products are small, and on a shared CPU the threads
    of every tiny operation cost far more than the operation (measured 1000x on a loaded 2-core machine)."""
    previous = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def online_code(
    features: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    groups: Sequence[str] | None,
    seed: int,
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Online code length in bits per layer of ``features`` (N, L, D) for one seeded order of the clips
    (integer labels ``y``), and the block ends used."""
    device = torch.device(device)
    order, group_ends = block_order(groups, len(y), seed)
    ends = block_ends(group_ends)
    X, y = features[order], np.asarray(y)[order]
    n_layers = features.shape[1]
    totals = np.zeros((len(PENALTIES) + 1, n_layers))  # per coder: the uniform code, then each λ
    totals += ends[0] * math.log2(n_classes)
    with single_thread(device):
        for start, stop in zip(ends[:-1], ends[1:]):
            bits = block_code_bits(X[:start], y[:start], X[start:stop], y[start:stop], n_classes, device)
            totals += np.vstack([np.full((1, n_layers), (stop - start) * math.log2(n_classes)), bits])
    # The Bayesian mixture of the coders with equal prior weights: -log2 mean_g 2^(-L_g).
    total = -logsumexp(-totals * math.log(2), axis=0) / math.log(2) + math.log2(len(totals))
    return total, ends


# --------------------------------------------------------------------------------------------- a run

MDL_COLUMNS = [
    "task",
    "model",
    "layer",
    "num_layers",
    "relative_depth",
    "online_bits",
    "online_bits_std",
    "uniform_bits",
    "compression",
    "compression_std",
    "n_clips",
    "n_classes",
    "n_orders",
    "blocks",
    "grouped",
]
DEFAULT_ORDERS = 3


def mdl_rows(
    model: str,
    task: str,
    features: np.ndarray,
    labels: Sequence[str],
    groups: Sequence[str] | None,
    seeds: Sequence[int],
    device: str = "cpu",
) -> pd.DataFrame:
    """:data:`MDL_COLUMNS` rows for every layer of one model on one task, over the orders ``seeds``."""
    classes, y = np.unique(np.asarray(labels, dtype=str), return_inverse=True)
    n, n_layers = len(y), features.shape[1]
    uniform = n * math.log2(len(classes))
    codes, blocks = [], []
    for seed in seeds:
        bits, ends = online_code(features, y, len(classes), groups, seed, device)
        codes.append(bits)
        blocks.append(",".join(str(int(e)) for e in ends))
    codes = np.stack(codes)  # orders × layers
    compression = uniform / codes
    spread = (lambda a: a.std(axis=0, ddof=1)) if len(seeds) > 1 else (lambda a: np.full(n_layers, np.nan))
    return pd.DataFrame(
        {
            "model": model,
            "task": task,
            "layer": np.arange(n_layers),
            "num_layers": n_layers,
            "relative_depth": relative_depth(np.arange(n_layers), n_layers),
            "online_bits": codes.mean(axis=0),
            "online_bits_std": spread(codes),
            "uniform_bits": uniform,
            "compression": compression.mean(axis=0),
            "compression_std": spread(compression),
            "n_clips": n,
            "n_classes": len(classes),
            "n_orders": len(seeds),
            "blocks": blocks[0] if len(set(blocks)) == 1 else " | ".join(blocks),
            "grouped": groups is not None,
        }
    )[MDL_COLUMNS]


def _options(settings: AnalysisSettings) -> dict:
    own = dict(settings.options.get("mdl", {}))
    return {
        "n_orders": int(own.get("n_orders", DEFAULT_ORDERS)),
        "schedule": list(SCHEDULE),
        "penalties": list(PENALTIES),
        "steps": N_STEPS,
    }


def compute(unit: Unit) -> AnalysisResult:
    """MDL rows of every model of one task (the unit) and the task's figure beside Macro-F1."""
    from ..figures.mdl import plot_mdl

    seeds = [unit.settings.seed + i for i in range(_options(unit.settings)["n_orders"])]
    device = unit.settings.device or "cpu"
    frames = [
        mdl_rows(m, unit.task, np.asarray(unit.features(m), dtype=np.float32), unit.labels, unit.groups, seeds, device)
        for m in unit.models
    ]
    table = pd.concat(frames, ignore_index=True)
    scores, probe = primary_scores(unit.run_dir, unit.settings.primary_probe)
    drawn = plot_mdl(table, scores[scores["task"] == unit.task], probe, unit.figure_path("mdl"))
    return AnalysisResult(tables={MDL_CSV: table}, figures=[Figure(*drawn)] if drawn else [])


# --------------------------------------------------------------------------------------------- findings, entry


def findings(run_dir: Path) -> list[str]:
    """The report's sentences, from mdl.csv (none without it) and results.csv: one per task, each model's
    best-compressing layer (± std over orders) beside its layer with the best probe Macro-F1."""
    if not (Path(run_dir) / MDL_CSV).is_file():
        return []
    table, (scores, _), out = read_table(Path(run_dir) / MDL_CSV, MDL_COLUMNS), primary_scores(run_dir), []
    for task, rows in table.groupby("task", sort=True):
        parts = []
        order = sorted(rows["model"].unique(), key=lambda m: (rows[rows["model"] == m]["num_layers"].iloc[0] == 1, m))
        for model in order:
            curve = rows[rows["model"] == model]
            best = curve.loc[curve["compression"].idxmax()]
            std = f" ± {best['compression_std']:.2f}" if np.isfinite(best["compression_std"]) else ""
            where = "" if best["num_layers"] == 1 else f" layer {int(best['layer'])}"
            text = f"{model}{where} {best['compression']:.2f}{std}"
            acc = scores[(scores["model"] == model) & (scores["task"] == task)]
            if best["num_layers"] > 1 and not acc.empty:
                top = acc.loc[acc["mean"].idxmax()]
                text += f" (best Macro-F1 at layer {int(top['layer'])}: {top['mean']:.2f})"
            parts.append(text)
        first = rows.iloc[0]
        out.append(
            f"On {task}, the online code (MDL) compresses the labels at best by: {'; '.join(parts)}; 1 means no "
            f"shorter than the uniform code of {first['uniform_bits']:.0f} bits for {int(first['n_clips'])} clips "
            f"(± : std over {int(first['n_orders'])} block orders)."
        )
    return out


MDL_CSV = "mdl.csv"
ANALYSIS = Analysis.of(
    __name__, {MDL_CSV: MDL_COLUMNS}, section="Analyses", cost="seconds to minutes; a probe per block of every order"
)


def primary_scores(run_dir: Path, probe: str | None = None) -> tuple[pd.DataFrame, str | None]:
    """Per-layer mean Macro-F1 (model, task, layer, mean) of ``probe`` (default: the run's primary probe)."""
    empty = pd.DataFrame(columns=["model", "task", "layer", "mean"])
    path = Path(run_dir) / "results.csv"
    if not path.is_file():
        return empty, probe
    rows = layer_rows(summarize(read_results(path)), "macro_f1")
    probe = probe or primary_probe(read_manifest(run_dir).get("config") or {}, rows["probe"])
    rows = rows[rows["probe"] == probe]
    return rows[["model", "task", "layer", "mean"]].reset_index(drop=True), probe
