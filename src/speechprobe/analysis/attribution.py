"""Attribution to named speech components: which time-frequency regions a layer's decision depends on.

For a few layers of each model (the primary probe's best layer and evenly spaced others, ``attribution_layers``
in all), a linear head (standardisation + L2 logistic regression, the ``linear`` probe's estimator) is fitted
on that layer's stored pooled features of the task's clips but the sampled ones (all of them when that would
leave a class out), and made differentiable through the encoder: clip → transformer blocks (watched,
:mod:`speechprobe.models.attention`) → the layer's mean over real frames → head → log-probability of the clip's label.

**Integrated gradients** (captum, Sundararajan et al. 2017) run on the model's own input: Whisper's and
Qwen2-Audio's normalised log-mel, SeamlessM4T's stacked fbanks (its feature extractor's output, each pair of
10 ms frames put side by side again), their mel bins at the centres of the feature extractor's filters
(:class:`~speechprobe.models.attention.Front`). The wav2vec2 family reads the waveform, so for it they run on
the clip's STFT magnitudes (512-point Hann window, 10 ms hop, phase kept) and the model reads the waveform
resynthesised from them (inverse STFT). Baseline: the sampled clips' mean input at each frame index (an
average clip of the task: the attribution says what sets this clip apart from it; a silence baseline credits
every region that merely has energy, e.g. background noise), with ``attribution_steps`` steps (Gauss-Legendre,
captum's default).

The attribution of a clip is summed in named regions (:mod:`.regions`: F0 band < 300 Hz, formant band
300-3000 Hz, high band > 3000 Hz; onset, nucleus and offset of each voiced run by an energy VAD, and silence);
each region's share is its net sum in absolute value over those of its group (:func:`.regions.region_shares`);
``attribution.csv`` holds per (task, model, class, layer, region) the mean share over the sampled clips' units
(clips, or with groups such as speakers the groups: a group's clips averaged first; ``unit``, ``n_units``;
the sample spans as many groups as it can) with a 95 % t interval, and the head's Macro-F1 on the sample
(``head_f1``: whether the probe succeeds there).
When the run has cue-erasure results, the findings set the F0-band share against what erasing F0 costs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..models.attention import Enough, encoder_of, watch
from ..models.lazy import Lazy
from ..models.pooling import masked_pool
from ..parallel import longest_first, single_threaded
from .contract import Analysis, AnalysisResult, AnalysisSettings, Figure, Unit
from .curves import relative_depth
from .mixing import _layers, aggregate, over_units, sample_units
from .primary import primary_probe
from .regions import REGIONS, region_shares
from .replay import clip_audio, run_model, sample_clips

torch = Lazy("torch")  # imported at first use: listing the analyses loads no torch

N_FFT, HOP = 512, 160
BATCH_FRAMES = 2048  # integrated gradients' steps run batched: at most this many input frames (steps x frames) a pass
DEFAULT_CLIPS, DEFAULT_STEPS, DEFAULT_LAYERS = 4, 8, 3  # --attribution-clips, -steps, -layers


def fit_head(features: np.ndarray, labels: np.ndarray, seed: int = 0):
    """``(classes, torch function pooled (B, D) -> log-probabilities (B, K))`` of an L2 logistic regression on
    standardised ``features`` (N, D)."""
    from sklearn.linear_model import LogisticRegression

    mean, std = features.mean(axis=0), features.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    clf = LogisticRegression(max_iter=1000, random_state=seed).fit((features - mean) / std, labels)
    coef = clf.coef_ if len(clf.classes_) > 2 else np.vstack([-clf.coef_, clf.coef_]) / 2
    bias = clf.intercept_ if len(clf.classes_) > 2 else np.asarray([-clf.intercept_[0], clf.intercept_[0]]) / 2
    w, b = (torch.tensor(a, dtype=torch.float32) for a in (coef / std, bias - coef @ (mean / std)))
    return [str(c) for c in clf.classes_], lambda pooled: torch.log_softmax(pooled @ w.T + b, dim=-1)


def layer_pooled(
    encoder, audio: torch.Tensor, layer: int, pooling: str, inputs: torch.Tensor | None = None
) -> torch.Tensor:
    """``(B, D)`` pooled layer ``layer`` of a batch of one clip's versions (``audio``: ``(samples,)`` or ``(B,
    samples)`` of one length), differentiable with respect to ``audio`` (or to ``inputs``, ``B`` versions of the
    model's own input features of that clip, driven instead of the waveform when given)."""
    with watch(encoder, upto=layer) as rec:
        try:
            encoder.run(audio) if inputs is None else encoder.front.drive(inputs)
        except Enough:  # the blocks above the layer are not needed
            pass
    n = encoder.frames(audio.shape[-1])
    h = rec.layer(layer, encoder.last)
    n = min(h.shape[1], -(-n * h.shape[1] // rec.layer(0, None).shape[1]))  # real frames at this layer's rate
    mask = torch.zeros(h.shape[:2], dtype=torch.bool, device=h.device)
    mask[:, :n] = True
    return masked_pool(h[None], mask, pooling)[:, 0].cpu()  # float32, where the head is


def magnitudes(audio: np.ndarray) -> torch.Tensor:
    """The clip's STFT ``(freqs, frames)``, complex."""
    x = torch.from_numpy(np.asarray(audio, dtype=np.float32))
    return torch.stft(x, N_FFT, HOP, window=torch.hann_window(N_FFT), return_complex=True)


def frame_mean(arrays: list[np.ndarray], axis: int) -> np.ndarray:
    """The arrays' mean at each index of ``axis`` (their frames), over the arrays that reach it; the longest's
    shape."""
    arrays = [np.moveaxis(np.asarray(a, dtype=float), axis, -1) for a in arrays]
    stack = np.full((len(arrays), *arrays[0].shape[:-1], max(a.shape[-1] for a in arrays)), np.nan)
    for i, a in enumerate(arrays):
        stack[i, ..., : a.shape[-1]] = a
    return np.moveaxis(np.nanmean(stack, axis=0), -1, axis)


def average_clip(clips, encoder=None) -> np.ndarray:
    """The baseline: the clips' mean STFT magnitude at each frame index ``(freqs, longest clip's frames)``; with
    an ``encoder`` that has a front end, their mean input features at each frame index instead."""
    front = getattr(encoder, "front", None)
    if front is None:
        return frame_mean([magnitudes(c).abs().numpy() for c in clips], axis=1)
    with torch.no_grad():
        inputs = [front.inputs(torch.from_numpy(np.asarray(c, dtype=np.float32))).float().cpu() for c in clips]
    return frame_mean([x.numpy() for x in inputs], axis=front.time_axis)


def frame_power(audio: np.ndarray, hop: int, n_frames: int) -> np.ndarray:
    """The clip's energy per frame of ``hop`` samples (:data:`N_FFT`-point STFT), zero past its end, for the
    voice-activity regions of a grid of ``n_frames`` frames."""
    x = torch.from_numpy(np.asarray(audio, dtype=np.float32))
    power = (torch.stft(x, N_FFT, hop, window=torch.hann_window(N_FFT), return_complex=True).abs() ** 2).sum(0)
    return np.pad(power.numpy(), (0, max(0, n_frames - len(power))))[:n_frames]


def clip_attribution(
    encoder, audio: np.ndarray, layer: int, head, target: int, pooling: str, steps: int, baseline: np.ndarray
):
    """``(input, attribution)`` of one clip for class ``target`` from the ``baseline`` (:func:`average_clip`),
    both as ``(bins, frames)``: on the model's own input features when its encoder has a front end (log-mel,
    stacked fbanks), else on the clip's STFT magnitudes (the model reads the waveform resynthesised from them)."""
    from captum.attr import IntegratedGradients

    x = torch.from_numpy(np.asarray(audio, dtype=np.float32))
    front = encoder.front
    if front is not None:
        with torch.no_grad():
            given = front.inputs(x).float()
        chunk = _steps_a_pass(steps, given.shape[front.time_axis])
        start = torch.from_numpy(baseline.astype(np.float32)).narrow(front.time_axis, 0, given.shape[front.time_axis])

        def forward(batch: torch.Tensor) -> torch.Tensor:  # the steps' inputs in one batched pass
            return head(layer_pooled(encoder, x, layer, pooling, batch))

        attr = IntegratedGradients(forward).attribute(
            given, baselines=start.to(given.device), target=target, n_steps=steps, internal_batch_size=chunk
        )
        return front.grid(given), front.grid(attr)
    window, chunk = torch.hann_window(N_FFT), _steps_a_pass(steps, encoder.frames(len(x)))
    spec = magnitudes(audio)
    magnitude, phase = spec.abs(), torch.exp(1j * spec.angle())
    start = torch.from_numpy(np.asarray(baseline[:, : magnitude.shape[1]], dtype=np.float32))

    def resynthesised(mags: torch.Tensor) -> torch.Tensor:  # the steps' waveforms in one batched pass
        return head(
            layer_pooled(encoder, torch.istft(mags * phase, N_FFT, HOP, window=window, length=len(x)), layer, pooling)
        )

    attr = IntegratedGradients(resynthesised).attribute(
        magnitude[None], baselines=start[None], target=target, n_steps=steps, internal_batch_size=chunk
    )
    return 20 * np.log10(magnitude.numpy() + 1e-6), attr[0].detach().numpy()


def _steps_a_pass(steps: int, frames: int) -> int:
    """Integrated gradients' steps batched in one pass over a clip of ``frames`` input frames."""
    return max(1, min(steps, BATCH_FRAMES // max(1, frames)))


def grid_of(encoder, rate: int) -> tuple[np.ndarray, int]:
    """The centre in Hz of each bin of the attribution grid, and its hop in samples."""
    if encoder.front is None:
        return np.fft.rfftfreq(N_FFT, 1.0 / rate), HOP
    return encoder.front.hz, int(round(encoder.front.frame_s * rate))


def layer_shares(
    run_dir: Path, task: str, model: str, sample: pd.DataFrame, layer: int, head_data: tuple, options, examples_to=None
):
    """Region shares ``(clips, regions)`` of the ``sample`` at ``layer`` of ``model``, the head's Macro-F1 on it,
    and with ``examples_to`` (the best layer's job) the example figure drawn there (its path and caption: drawn in
    the worker, not after the task's jobs); single-threaded, in a worker process or here. ``head_data``: the
    head's training features and labels, the sample's features. A family without differentiable blocks: the
    error's text instead."""
    from ..figures.attribution import plot_examples

    x_train, y_train, picked = head_data
    try:
        with single_threaded():  # small products: on a shared CPU, threads cost more than they save
            adapter = run_model(run_dir, model)
            encoder, rate = encoder_of(adapter), adapter.sample_rate
            audio = clip_audio(run_dir, task, list(sample["content_hash"]), rate)
            freqs, hop = grid_of(encoder, rate)
            baseline = average_clip([audio[h] for h in sample["content_hash"]], encoder)
            classes, head = fit_head(x_train, y_train, options["seed"])
            with torch.no_grad():
                pred = head(torch.tensor(picked, dtype=torch.float32)).argmax(-1).numpy()
            truth = np.asarray([classes.index(str(y)) for y in sample["label"]])
            shares, examples = [], []
            for h, y in zip(sample["content_hash"], truth):
                image, attr = clip_attribution(
                    encoder, audio[h], layer, head, int(y), options["pooling"], options["steps"], baseline
                )
                shares.append(region_shares(attr, freqs, frame_power(audio[h], hop, attr.shape[1])))
                if examples_to and len(examples) < 3 and classes[y] not in {e[0] for e in examples}:
                    examples.append((classes[y], image, attr, freqs, hop / rate))
    except NotImplementedError as e:
        return str(e)
    drawn = plot_examples([(layer, *e) for e in examples], model, task, examples_to) if examples_to else None
    return np.asarray(shares), _macro_f1(truth, pred), drawn


def model_cells(unit: Unit, model: str, sample: pd.DataFrame, options: dict) -> list[tuple]:
    """The (model, layer, head data) of ``model``'s chosen layers: its heads are fitted on the task's clips but the
    sampled ones (all of them when that would leave a class out), on the layer's stored pooled features."""
    best, n_layers = unit.best_layer(model)
    feats, sampled = unit.features(model), unit.clips["content_hash"].isin(sample["content_hash"]).to_numpy()
    train = ~sampled if set(unit.labels[~sampled]) == set(unit.labels) else np.ones(len(sampled), bool)
    order = pd.Series(np.arange(len(sampled)), index=unit.clips["content_hash"].to_numpy())
    at = order.loc[sample["content_hash"]].to_numpy()
    cells = []
    for layer in pick_layers(best, n_layers, options["layers"]):
        x = np.asarray(feats[:, layer], dtype=np.float64)
        cells.append((model, layer, (x[train], unit.labels[train], x[at])))
    return cells


def model_table(unit: Unit, model: str, sample: pd.DataFrame, done: list, options: dict, units: tuple) -> pd.DataFrame:
    """:data:`ATTRIBUTION_COLUMNS` rows of ``model`` from its layers' ``done`` ``(layer, shares, f1)``; intervals
    over ``units`` (the sample's groups and their noun, :func:`.mixing.sample_units`)."""
    best, n_layers = unit.best_layer(model)
    rows = []
    for layer, shares, f1 in done:
        table = aggregate(shares[:, None, :], sample["label"], REGIONS, [layer], *units)
        table["head_f1"] = f1
        rows.append(table)
    table = pd.concat(rows, ignore_index=True).rename(columns={"metric": "region"})
    table.insert(0, "model", model)
    table.insert(0, "task", unit.task)
    table["num_layers"], table["best_layer"] = n_layers, best
    table["relative_depth"] = relative_depth(table["layer"].to_numpy(), n_layers)
    table["steps"] = options["steps"]
    return table[ATTRIBUTION_COLUMNS]


def pick_layers(best: int, n_layers: int, count: int) -> list[int]:
    """``count`` layers (fewer when the model has fewer): evenly spaced from the first to the last, the one
    nearest the best layer replaced by it."""
    spaced = np.unique(np.round(np.linspace(0, n_layers - 1, max(count, 1))).astype(int)).tolist()
    if best not in spaced:
        spaced[int(np.argmin([abs(s - best) for s in spaced]))] = best
    return sorted(spaced)


def _macro_f1(truth: np.ndarray, pred: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(truth, pred, average="macro"))


def _pooling(unit: Unit) -> str:
    from .inputs import read_manifest

    return str((read_manifest(unit.run_dir).get("config") or {}).get("pooling") or "mean")


ATTRIBUTION_CSV = "attribution.csv"
ATTRIBUTION_COLUMNS = ["task", "model", "class", "layer", "num_layers", "relative_depth", "best_layer", "region"]
ATTRIBUTION_COLUMNS += ["mean", "low", "high", "n_clips", "head_f1", "steps", "unit", "n_units"]


def _options(settings: AnalysisSettings) -> dict:
    own = dict(settings.options.get("attribution", {}))
    return {
        "clips": int(own.get("clips", DEFAULT_CLIPS)),
        "steps": int(own.get("steps", DEFAULT_STEPS)),
        "layers": int(own.get("layers", DEFAULT_LAYERS)),
        "baseline": "the sample's mean input (log-mel, fbanks or STFT magnitude) at each frame",
        "grid": "the model's input features (Whisper, Qwen2-Audio, SeamlessM4T); STFT [512, 160] (wav2vec2 family)",
    }


def compute(unit: Unit) -> AnalysisResult:
    """Every model of the task with differentiable transformer blocks (its layers in ``settings.n_jobs`` worker
    processes, each single-threaded as the serial path: the same values); the table and the task's figures."""
    from joblib import delayed

    from ..figures.attribution import plot_shares, plotly
    from ..figures.base import save_plotly

    options = _options(unit.settings)
    groups, noun = sample_units(unit)
    sample = sample_clips(unit.clips, options["clips"], unit.settings.seed, groups)
    units = (None if groups is None else sample["group"].astype(str).to_numpy(), noun)
    options |= {"seed": unit.settings.seed, "pooling": _pooling(unit)}
    cells = [c for m in unit.models if _layers(unit, m) > 1 for c in model_cells(unit, m, sample, options)]
    shown = {m: unit.figure_path("attribution_examples", m) for m in dict.fromkeys(m for m, _, _ in cells)}
    work = [
        delayed(layer_shares)(unit.run_dir, unit.task, m, sample, layer, data, options, examples_to=shown[m])
        if layer == unit.best_layer(m)[0]
        else delayed(layer_shares)(unit.run_dir, unit.task, m, sample, layer, data, options)
        for m, layer, data in cells
    ]
    cost = [(layer + 1) * data[0].shape[1] ** 2 for _, layer, data in cells]  # passes up to the layer, its width²
    done = longest_first(work, cost, unit.settings.n_jobs)  # one (model, layer) per job, in worker processes
    frames, notes, figures = [], [], []
    for model in dict.fromkeys(m for m, _, _ in cells):
        mine = [(layer, d) for (m, layer, _), d in zip(cells, done) if m == model]
        failed = [d for _, d in mine if isinstance(d, str)]
        if failed:
            notes.append(f"attribution: {failed[0]}")
            continue
        frames.append(model_table(unit, model, sample, [(layer, d[0], d[1]) for layer, d in mine], options, units))
        figures += [Figure(*d[2]) for _, d in mine if d[2]]  # the best layer's examples, drawn in its job
    if not frames:
        return AnalysisResult(notes=notes or [f"attribution: no model with transformer layers on {unit.task}"])
    table = pd.concat(frames, ignore_index=True)
    drawn = plot_shares(table, unit.figure_path("attribution"))
    save_plotly(plotly(table), unit.figure_path("attribution"))
    return AnalysisResult(
        tables={ATTRIBUTION_CSV: table}, figures=[Figure(*drawn), *figures] if drawn else figures, notes=notes
    )


REGION_WORDS = {
    "f0_band": "the F0 band (< 300 Hz)",
    "formant_band": "the formant band (300-3000 Hz)",
    "high_band": "the high band (> 3000 Hz)",
}


def findings(run_dir: Path) -> list[str]:
    """Per (model, task) at the best layer: where most of the attribution sits (band and time region), with
    the intervals over the units; beside it what erasing F0 costs at that layer when erasure_summary.csv has it."""
    from .inputs import read_table

    path = Path(run_dir) / ATTRIBUTION_CSV
    if not path.is_file():
        return []
    table = read_table(path, ATTRIBUTION_COLUMNS)
    table = table[(table["class"].astype(str) == "all") & (table["layer"] == table["best_layer"])]
    erased = _f0_erasure(Path(run_dir))
    out = []
    for (model, task), rows in table.groupby(["model", "task"], sort=True):
        rows = rows.set_index("region")
        layer, n = int(rows["layer"].iloc[0]), over_units(rows.iloc[0])
        band = rows.loc[list(REGION_WORDS)].dropna(subset=["mean"])
        times = rows.loc[["onset", "nucleus", "offset", "silence"]].dropna(subset=["mean"])
        if band.empty:
            continue
        top, when = band["mean"].idxmax(), times["mean"].idxmax() if not times.empty else None
        text = (
            f"{model} on {task}, best layer {layer} (head Macro-F1 on the sample {rows['head_f1'].iloc[0]:.2f}): "
            f"{_share(band.loc[top])} of the attribution sits in {REGION_WORDS[top]}"
            + (f", {_share(times.loc[when])} in the {when}" if when else "")
            + f" (integrated gradients, 95 % t intervals over {n})"
        )
        cost = erased.get((model, task, layer))
        if cost is not None:
            f0 = _share(rows.loc["f0_band"])
            text += f"; erasing F0 changes its Macro-F1 at that layer by {cost:+.2f}, and {f0} of its attribution"
            text += " is in the F0 band"
        out.append(text + ".")
    return out


def _share(row) -> str:
    if np.isfinite(row["low"]):
        return f"{row['mean']:.0%} [{row['low']:.0%}, {row['high']:.0%}]"
    return f"{row['mean']:.0%}"


def _f0_erasure(run_dir: Path) -> dict:
    """(model, task, layer) -> mean ΔMacro-F1 after erasing F0 for the run's primary probe, from
    erasure_summary.csv ({} without it)."""
    from .erasure import SUMMARY_COLUMNS, SUMMARY_CSV
    from .inputs import read_manifest, read_table

    if not (run_dir / SUMMARY_CSV).is_file():
        return {}
    rows = read_table(run_dir / SUMMARY_CSV, SUMMARY_COLUMNS)
    probe = primary_probe(read_manifest(run_dir).get("config") or {}, rows["probe"])
    rows = rows[(rows["target"] == "f0") & (rows["probe"] == probe) & np.isfinite(rows["delta"].astype(float))]
    return {(r.model, r.task, int(r.layer)): float(r.delta) for r in rows.itertuples()}


ANALYSIS = Analysis.of(
    __name__,
    {ATTRIBUTION_CSV: ATTRIBUTION_COLUMNS},
    after=("erasure",),
    default=False,
    cost=f"minutes: steps x layers forward and backward passes per clip ({DEFAULT_CLIPS} clips, {DEFAULT_STEPS} steps)",
    section="Attribution",
)
