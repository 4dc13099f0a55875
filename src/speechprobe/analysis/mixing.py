"""Context mixing per encoder layer: how far each layer mixes the other frames into a frame.

Per block of a model with attention (Whisper, wav2vec2/HuBERT/data2vec-audio, SeamlessM4T v2, the
Qwen2-Audio audio tower; hooks in :mod:`speechprobe.models.attention`), on a bounded, class-balanced sample
of each task's clips, over the clip's real frames (queries and keys; rows renormalised over them):

- **value zeroing** (Mohebbi et al. 2023, "Quantifying Context Mixing in Transformers"; :mod:`.zeroing`):
  ``C_ij`` is the cosine distance between frame ``i``'s block output with and without the value vector of
  frame ``j`` (zeroed in every head); each row is normalised to sum to 1. Reported: ``mixing_self`` (mean
  ``C_ii``: the share a frame keeps of itself) and ``mixing_distance_ms`` (mean ``Σ_j C_ij |i-j|`` in
  milliseconds); by the fast path (the attention's output corrected for the zeroed value, not recomputed),
  over every real query frame or, with ``mixing_frames``, a stratified sample of them (unbiased per clip);
- **raw attention**: ``attention_entropy`` (nats, mean over heads and frames) and ``attention_distance_ms``
  (mean ``Σ_j a_ij |i-j|``, per head, in milliseconds; the frame rate from the model's info).

Each clip gives one value per layer; ``mixing.csv`` holds per (task, class, layer, metric) the mean over the
task's units with a 95 % t interval (class ``all``: every sampled clip): the clips, or with groups (speakers,
…) the groups, a group's clips averaged first (:func:`aggregate`; ``unit``, ``n_units``). A layer at
``mixing_self`` near 1 and a short distance keeps a frame's own content (its pitch); a global one spreads it
over the utterance.

Every clip is analysed on its centred window of at most ``mixing_seconds`` (2 s by default; the whole clip when
shorter): the cost per clip is bounded, and the distances in milliseconds (bounded by the clip's length: a
global layer's is about a third of it) compare across tasks whose clips differ in length.

Cost: one forward per clip, plus per block ``n_frames²`` rows through the block's position-wise rest
(batched; the feed-forward's first linear folded, :mod:`.zeroing`), about half the exact path's ``n_frames``
forwards per clip (``mixing_frames`` K: ``K n_frames`` rows); bounded by ``mixing_clips`` and ``mixing_seconds``.
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
DEFAULT_FRAMES = None  # --mixing-frames: query frames per clip for value zeroing (None: every real frame)
DEFAULT_SECONDS = 2.0  # --mixing-seconds: each clip's centred window (value zeroing costs its frames squared)


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


def centred(audio: np.ndarray, samples: int) -> np.ndarray:
    """The clip's centred window of at most ``samples`` samples (the whole clip when shorter)."""
    start = max(0, (len(audio) - samples) // 2)
    return audio[start : start + samples]


def query_rows(n: int, frames: int | None, seed: int) -> np.ndarray:
    """Every real frame, or ``frames`` of them by stratified sampling (seeded): one frame drawn in each of
    ``frames`` equal stretches of the clip, at one random offset ``u`` (frame ``floor((k + u) n / frames)``).
    Each frame is drawn with probability ``frames / n``, so the mean over the drawn frames is unbiased for the
    mean over all, and the strata keep the clip's start, middle and end in every draw."""
    if frames is None or frames >= n:
        return np.arange(n)
    u = np.random.default_rng(seed).random()
    return np.floor((np.arange(frames) + u) * n / frames).astype(int)


def interval(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95 % t interval over the units (NaN bounds for one unit)."""
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


def aggregate(
    values: np.ndarray,
    labels: Sequence[str],
    names: Sequence[str],
    layers: Sequence[int],
    groups: Sequence[str] | None = None,
    noun: str = "group",
) -> pd.DataFrame:
    """Tidy rows (class, layer, metric, mean, low, high, n_clips, unit, n_units) from per-clip ``values`` (clips,
    layers, metrics): every clip (class ``all``), then each class. The unit is the clip, or with ``groups``
    (speakers, …: clips of one group are not independent draws) the group: its clips (of the class) are
    averaged first, and the mean and interval are over the groups."""
    labels = np.asarray(labels, dtype=str)
    codes = np.arange(len(labels)) if groups is None else np.unique(np.asarray(groups, str), return_inverse=True)[1]
    rows = []
    for cls in ["all", *sorted(set(labels))]:
        pick = np.ones(len(labels), bool) if cls == "all" else labels == cls
        flat = pd.DataFrame(values[pick].reshape(int(pick.sum()), -1)).groupby(codes[pick]).mean().to_numpy()
        per_unit = flat.reshape(len(flat), *values.shape[1:])
        for li, layer in enumerate(layers):
            for mi, metric in enumerate(names):
                mean, low, high = interval(per_unit[:, li, mi])
                rows.append((cls, layer, metric, mean, low, high, int(pick.sum()), "clip" if groups is None else noun))
                rows[-1] += (len(per_unit),)
    columns = ["class", "layer", "metric", "mean", "low", "high", "n_clips", "unit", "n_units"]
    return pd.DataFrame(rows, columns=columns)


def sample_units(unit: Unit) -> tuple[np.ndarray | None, str]:
    """The unit of the task's intervals (:func:`aggregate`): its groups and what one is (speaker, …), or None
    (clips) when the run has none (or ``--ungrouped``)."""
    from .units import group_noun

    groups = unit.groups
    return groups, (group_noun(unit.run_dir, unit.task) or "group") if groups is not None else "clip"


MIXING_CSV = "mixing.csv"
MIXING_COLUMNS = ["task", "model", "class", "layer", "num_layers", "relative_depth", "metric", "mean", "low", "high"]
MIXING_COLUMNS += ["n_clips", "frame_ms", "unit", "n_units", "query_frames"]


def _options(settings: AnalysisSettings) -> dict:
    own = dict(settings.options.get("context_mixing", {}))
    frames = own.get("frames", DEFAULT_FRAMES)
    return {
        "clips": int(own.get("clips", DEFAULT_CLIPS)),
        "frames": int(frames) if frames else None,
        "seconds": float(own.get("seconds", DEFAULT_SECONDS)),
        "metrics": list(METRICS),
    }


def clip_values(run_dir: Path, model: str, task: str, hashes: Sequence[str], options: dict, first: int = 0) -> tuple:
    """``(clips, blocks, len(METRICS))`` of ``model`` on the clips ``hashes`` (the sample's ``first``-th on: its
    seeds), single-threaded, and the model's facts for the table (blocks, layers, frame rate, sampled queries)."""
    with single_threaded():  # small products: on a shared CPU, threads cost more than they save
        adapter = run_model(run_dir, model)
        encoder = encoder_of(adapter)
        audio = clip_audio(run_dir, task, list(hashes), adapter.sample_rate)
        rate, frames, seed = float(adapter.info.frame_rate), options["frames"], options["seed"]
        window = int(round(options["seconds"] * adapter.sample_rate))
        values = [
            clip_mixing(encoder, centred(audio[h], window), rate, frames, seed + first + k)
            for k, h in enumerate(hashes)
        ]
    sampled = bool(frames and encoder.out_proj is not None and encoder.pointwise)
    return np.stack(values), (len(encoder.blocks), adapter.num_layers, rate, frames if sampled else 0)


def mixing_tables(
    run_dir: Path, models: Sequence[str], task: str, sample: pd.DataFrame, options: dict, units: tuple, n_jobs: int = 1
) -> pd.DataFrame:
    """:data:`MIXING_COLUMNS` rows of ``models`` on the ``sample`` of ``task``'s clips (``units``: the sample's
    groups and their noun, :func:`sample_units`). The clips of each model are split in ``n_jobs`` runs of clips
    computed at once in worker processes (joblib), each single-threaded as the serial path: the same values."""
    from joblib import Parallel, delayed, effective_n_jobs

    hashes, workers = list(sample["content_hash"]), effective_n_jobs(n_jobs)
    parts = np.array_split(np.arange(len(hashes)), max(1, min(len(hashes), workers)))
    cells = [(m, int(p[0]), [hashes[k] for k in p]) for m in models for p in parts]
    done = Parallel(n_jobs=workers)(delayed(clip_values)(run_dir, m, task, h, options, f) for m, f, h in cells)
    tables = []
    for model in models:
        mine = [d for (m, _, _), d in zip(cells, done) if m == model]
        blocks, num_layers, rate, query_frames = mine[0][1]
        values = np.concatenate([d[0] for d in mine])
        table = aggregate(values, sample["label"], METRICS, range(1, blocks + 1), *units)
        table.insert(0, "model", model)
        table.insert(0, "task", task)
        table["num_layers"] = num_layers
        table["relative_depth"] = relative_depth(table["layer"].to_numpy(), num_layers)
        table["frame_ms"] = 1000.0 / rate
        table["query_frames"] = query_frames
        tables.append(table[MIXING_COLUMNS])
    return pd.concat(tables, ignore_index=True)


def compute(unit: Unit) -> AnalysisResult:
    """Every model of the task with transformer blocks (the layer-less baselines are passed over), on one
    class-balanced sample of its clips (``settings.n_jobs`` worker processes); the table and the task's figure
    beside the probe curves."""
    from ..figures.base import save_plotly
    from ..figures.mixing import plot_mixing, plotly
    from .mdl import primary_scores

    options = {**_options(unit.settings), "seed": unit.settings.seed}
    groups, noun = sample_units(unit)
    sample = sample_clips(unit.clips, options["clips"], unit.settings.seed, groups)
    units = (None if groups is None else sample["group"].astype(str).to_numpy(), noun)
    models = [m for m in unit.models if _layers(unit, m) > 1]
    if not models:
        return AnalysisResult(notes=[f"context_mixing: no model with transformer layers on {unit.task}"])
    table = mixing_tables(unit.run_dir, models, unit.task, sample, options, units, unit.settings.n_jobs)
    scores, probe = primary_scores(unit.run_dir, unit.settings.primary_probe)
    drawn = plot_mixing(
        table, scores[scores["task"] == unit.task], probe, unit.figure_path("mixing"), options["seconds"]
    )
    save_plotly(plotly(table), unit.figure_path("mixing"))
    return AnalysisResult(tables={MIXING_CSV: table}, figures=[Figure(*drawn)] if drawn else [])


def _layers(unit: Unit, model: str) -> int:
    rows = unit.best[unit.best["model"] == model]
    return int(rows["num_layers"].iloc[0]) if not rows.empty else 0


def findings(run_dir: Path) -> list[str]:
    """One sentence per (model, task): the range of the mean attention distance over the layers (most local and
    most global layer) and the layer where a frame keeps most of itself (value zeroing), with their intervals
    over the units, and whether the two ends' intervals overlap (then no layer is clearly more local)."""
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
            f"its mixing; 95 % t intervals over {over_units(own)})."
        )
    return out


def over_units(row) -> str:
    """What an interval of a :func:`aggregate` row is over: ``"6 clips"``, or ``"4 speakers (6 clips)"``."""
    from .units import plural

    n, clips = int(row["n_units"]), int(row["n_clips"])
    return (
        plural("clip", clips) if row["unit"] == "clip" else f"{plural(str(row['unit']), n)} ({plural('clip', clips)})"
    )


def _ci(row, unit: str) -> str:
    if np.isfinite(row["low"]):
        return f"{row['mean']:.3g}{unit} [{row['low']:.3g}, {row['high']:.3g}]"
    return f"{row['mean']:.3g}{unit}"


ANALYSIS = Analysis.of(
    __name__,
    {MIXING_CSV: MIXING_COLUMNS},
    name="context_mixing",
    default=False,
    cost=f"minutes: about n_frames forwards per clip, {DEFAULT_CLIPS} clips of at most {DEFAULT_SECONDS:g} s per task",
    section="Context mixing",
)
