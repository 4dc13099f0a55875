"""Context mixing per encoder layer: how far each layer mixes the other frames into a frame.

Per block of a model with attention (Whisper, wav2vec2/HuBERT/data2vec-audio, SeamlessM4T v2, the
Qwen2-Audio audio tower; hooks in :mod:`speechprobe.models.attention`), on a bounded, class-balanced sample
of each task's clips, over the clip's real frames (queries and keys; rows renormalised over them):

- **value zeroing** (Mohebbi et al. 2023, "Quantifying Context Mixing in Transformers"): the block is called
  again with the value vector of frame ``j`` zeroed (in every head), and ``C_ij`` is the cosine distance
  between frame ``i``'s block output with and without it; each row is normalised to sum to 1. Reported:
  ``mixing_self`` (mean ``C_ii``: the share a frame keeps of itself) and ``mixing_distance_ms``
  (mean ``Σ_j C_ij |i-j|`` in milliseconds);
- **raw attention**: ``attention_entropy`` (nats, mean over heads and frames) and ``attention_distance_ms``
  (mean ``Σ_j a_ij |i-j|``, per head, in milliseconds; the frame rate from the model's info).

Each clip gives one value per layer; ``mixing.csv`` holds per (task, class, layer, metric) the mean over the
clips with a 95 % t interval (class ``all``: every sampled clip). A layer at ``mixing_self`` near 1 and a
short distance keeps a frame's own content (its pitch); a global one spreads it over the utterance.

Cost: one forward per clip, plus per block ``n_frames`` calls of that block (batched), so about
``n_frames`` forwards per clip: seconds per clip for base models on a CPU; bounded by ``mixing_clips``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..models.attention import Encoder, encoder_of, watch
from ..models.lazy import Lazy
from ..parallel import single_threaded
from .contract import Analysis, AnalysisResult, AnalysisSettings, Figure, Unit
from .curves import relative_depth
from .replay import clip_audio, run_model, sample_clips
from .zeroing import fast_zeroing, value_zeroing

torch = Lazy("torch")  # imported at first use: listing the analyses loads no torch

METRICS = ("mixing_self", "mixing_distance_ms", "attention_entropy", "attention_distance_ms")
DEFAULT_CLIPS = 6  # --mixing-clips


def attention_stats(weights: torch.Tensor, n: int, frame_ms: float) -> tuple[float, float]:
    """Mean entropy (nats) and mean distance (ms) of head-wise attention ``(1, H, T, T)`` over the ``n`` real
    frames (rows renormalised over the real keys)."""
    a = weights[0, :, :n, :n].double().cpu()
    a = a / a.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    entropy = -(a * torch.log(a.clamp_min(1e-12))).sum(dim=-1).mean()
    idx = torch.arange(n, dtype=torch.float64)
    distance = (a * (idx[:, None] - idx[None, :]).abs()).sum(dim=-1).mean() * frame_ms
    return float(entropy), float(distance)


def clip_mixing(
    encoder: Encoder,
    audio: np.ndarray,
    frame_rate: float,
    frames: int | None = None,
    seed: int = 0,
    exact: bool = False,
) -> np.ndarray:
    """``(blocks, len(METRICS))`` of one clip (layer ``b + 1`` is block ``b``'s output). Value zeroing by the fast
    path where the family declares it (``exact``: always the exact path), over at most ``frames`` query frames
    (a seeded sample, the same in every block; None: every real frame) where its blocks are position-wise."""
    with torch.no_grad():
        with watch(encoder) as rec:
            encoder.run(torch.from_numpy(np.asarray(audio, dtype=np.float32)))
        rec.n_real = encoder.frames(len(audio))
        n, frame_ms = rec.n_real, 1000.0 / frame_rate
        fast = encoder.out_proj is not None and not exact
        rows = query_rows(n, frames, seed) if fast and encoder.pointwise else np.arange(n)
        gap = np.abs(rows[:, None] - np.arange(n)[None, :]) * frame_ms
        out = []
        for i in range(len(encoder.blocks)):
            with encoder.autocast():
                c = fast_zeroing(encoder, rec, i, rows) if fast else value_zeroing(encoder, rec, i)
            weights = rec.attention[i]
            att = attention_stats(weights, n, frame_ms) if weights is not None else (np.nan, np.nan)
            out.append([float(np.mean(c[np.arange(len(rows)), rows])), float((c * gap).sum(axis=1).mean()), *att])
    return np.asarray(out)


def query_rows(n: int, frames: int | None, seed: int) -> np.ndarray:
    """Every real frame, or a seeded sample of ``frames`` of them (sorted)."""
    if frames is None or frames >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, frames, replace=False))


def interval(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95 % t interval over the clips (NaN bounds for one clip)."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return np.nan, np.nan, np.nan
    mean = float(v.mean())
    if len(v) < 2:
        return mean, np.nan, np.nan
    half = float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return mean, mean - half, mean + half


def aggregate(values: np.ndarray, labels: Sequence[str], names: Sequence[str], layers: Sequence[int]) -> pd.DataFrame:
    """Tidy rows (class, layer, metric, mean, low, high, n_clips) from per-clip ``values`` (clips, layers,
    metrics): every clip (class ``all``), then each class."""
    labels = np.asarray(labels, dtype=str)
    rows = []
    for cls in ["all", *sorted(set(labels))]:
        pick = np.ones(len(labels), bool) if cls == "all" else labels == cls
        for li, layer in enumerate(layers):
            for mi, metric in enumerate(names):
                mean, low, high = interval(values[pick, li, mi])
                rows.append((cls, layer, metric, mean, low, high, int(pick.sum())))
    return pd.DataFrame(rows, columns=["class", "layer", "metric", "mean", "low", "high", "n_clips"])


MIXING_CSV = "mixing.csv"
MIXING_COLUMNS = ["task", "model", "class", "layer", "num_layers", "relative_depth", "metric", "mean", "low", "high"]
MIXING_COLUMNS += ["n_clips", "frame_ms"]


def _options(settings: AnalysisSettings) -> dict:
    own = dict(settings.options.get("context_mixing", {}))
    return {"clips": int(own.get("clips", DEFAULT_CLIPS)), "metrics": list(METRICS)}


def model_rows(run_dir: Path, model: str, task: str, sample: pd.DataFrame) -> pd.DataFrame:
    """:data:`MIXING_COLUMNS` rows of ``model`` on the ``sample`` of ``task``'s clips."""
    adapter = run_model(run_dir, model)
    encoder = encoder_of(adapter)
    audio = clip_audio(run_dir, task, list(sample["content_hash"]), adapter.sample_rate)
    rate = float(adapter.info.frame_rate)
    values = np.stack([clip_mixing(encoder, audio[h], rate) for h in sample["content_hash"]])
    table = aggregate(values, sample["label"], METRICS, range(1, len(encoder.blocks) + 1))
    table.insert(0, "model", model)
    table.insert(0, "task", task)
    table["num_layers"] = adapter.num_layers
    table["relative_depth"] = relative_depth(table["layer"].to_numpy(), adapter.num_layers)
    table["frame_ms"] = 1000.0 / rate
    return table[MIXING_COLUMNS]


def compute(unit: Unit) -> AnalysisResult:
    """Every model of the task with transformer blocks (the layer-less baselines are passed over), on one
    class-balanced sample of its clips; the table and the task's figure beside the probe curves."""
    from ..figures.base import save_plotly
    from ..figures.mixing import plot_mixing, plotly
    from .mdl import primary_scores

    sample = sample_clips(unit.clips, _options(unit.settings)["clips"], unit.settings.seed)
    models = [m for m in unit.models if _layers(unit, m) > 1]
    if not models:
        return AnalysisResult(notes=[f"context_mixing: no model with transformer layers on {unit.task}"])
    with single_threaded():  # small products: on a shared CPU, threads cost more than they save
        table = pd.concat([model_rows(unit.run_dir, m, unit.task, sample) for m in models], ignore_index=True)
    scores, probe = primary_scores(unit.run_dir, unit.settings.primary_probe)
    drawn = plot_mixing(table, scores[scores["task"] == unit.task], probe, unit.figure_path("mixing"))
    save_plotly(plotly(table), unit.figure_path("mixing"))
    return AnalysisResult(tables={MIXING_CSV: table}, figures=[Figure(*drawn)] if drawn else [])


def _layers(unit: Unit, model: str) -> int:
    rows = unit.best[unit.best["model"] == model]
    return int(rows["num_layers"].iloc[0]) if not rows.empty else 0


def findings(run_dir: Path) -> list[str]:
    """One sentence per (model, task): the range of the mean attention distance over the layers (most local and
    most global layer) and the layer where a frame keeps most of itself (value zeroing), with their intervals
    over clips, and whether the two ends' intervals overlap (then no layer is clearly more local)."""
    from .inputs import read_table

    path = Path(run_dir) / MIXING_CSV
    if not path.is_file():
        return []
    table = read_table(path, MIXING_COLUMNS)
    table = table[table["class"].astype(str) == "all"]
    out = []
    for (model, task), rows in table.groupby(["model", "task"], sort=True):
        dist = rows[rows["metric"] == "attention_distance_ms"].dropna(subset=["mean"])
        keep = rows[rows["metric"] == "mixing_self"].dropna(subset=["mean"])
        if dist.empty or keep.empty:
            continue
        near, far = dist.loc[dist["mean"].idxmin()], dist.loc[dist["mean"].idxmax()]
        own = keep.loc[keep["mean"].idxmax()]
        overlap = bool(np.isfinite(near["high"]) and np.isfinite(far["low"]) and near["high"] >= far["low"])
        out.append(
            f"{model} on {task}: the mean attention distance runs from {_ci(near, ' ms')} (layer "
            f"{int(near['layer'])}) to {_ci(far, ' ms')} (layer {int(far['layer'])})"
            + (", intervals overlapping: no layer is clearly more local" if overlap else "")
            + f"; by value zeroing, a frame keeps most of itself at layer {int(own['layer'])} ({_ci(own, '')} of "
            f"its mixing; 95 % t intervals over {int(own['n_clips'])} clips)."
        )
    return out


def _ci(row, unit: str) -> str:
    if np.isfinite(row["low"]):
        return f"{row['mean']:.3g}{unit} [{row['low']:.3g}, {row['high']:.3g}]"
    return f"{row['mean']:.3g}{unit}"


ANALYSIS = Analysis.of(
    __name__,
    {MIXING_CSV: MIXING_COLUMNS},
    name="context_mixing",
    default=False,
    cost=f"minutes: about n_frames forwards per clip, {DEFAULT_CLIPS} clips per task by default",
    section="Context mixing",
)
