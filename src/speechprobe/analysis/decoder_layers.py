"""Where a zero-shot answer is lost: the encoder probe, the decoder-state probe and the logit lens on one depth axis.

Inputs: the decoder states and logit lens the zero-shot stage keeps with ``--decoder-states`` (on with
``--zeroshot --analyses all`` or ``+decoder_layers``; :mod:`speechprobe.zeroshot.decoder_states`), found through
``manifest.json`` (``zeroshot.tasks.<task>.by_model.<model>.decoder``) in the feature store.

Three curves per (model, task), Macro-F1 over the task's label set, on a depth axis that continues past the
encoder: ``depth = e`` for encoder layer ``e`` (0 = its input embedding), ``depth = E + d`` for decoder layer
``d`` (0 = the token embeddings, then one per decoder layer), ``E`` the encoder's number of layers + 1.

``encoder_probe``        the run's primary probe per encoder layer (results.csv, the run's folds);
``decoder_probe:<rule>`` the same probe, same folds, on each decoder layer's state at the position rule
                         (``last``: the last prompt position; ``audio_mean``: mean over audio tokens): the
                         results.csv rows of ``<model>:decoder@<prompt-id>[/<rule>]`` (:mod:`speechprobe.
                         decoder_stage`), probed here when there are none;
``lens`` / ``lens_bc``   the logit lens: the final norm and the output projection on each layer's ``last``
                         state; a label's score is the log-mean-exp of its phrasings' first-token
                         log-probabilities (``lens``), batch-calibrated without labels like ``likelihood_bc``
                         (``lens_bc``: ``log softmax_y s − log mean_clips softmax_y s``); its pick is the argmax.

Intervals: probe curves over folds (corrected resampled t, as summary.csv); lens curves by a bootstrap over
the resampling unit of the bootstrap analysis (speakers when the label is theirs), the predictions fixed.
``true_rank`` (lens rows): the median over clips of the rank, among the whole vocabulary, of the true
label's best-ranked first token (0 = the decoder's top token).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from ..features.store import FeatureSpace
from ..models.base import decoder_model
from ..probes import macro_f1, probe_layers
from ..rundir import read_results
from .bootstrap import _f1, resample_weights
from .contract import Analysis, AnalysisResult, Figure, Unit
from .inputs import read_manifest, read_table
from .intervals import fold_interval, fold_ratio
from .summary import chance_levels

CSV = "decoder_layers.csv"
COLUMNS = [
    "model",
    "task",
    "side",
    "layer",
    "depth",
    "decoder",
    "macro_f1",
    "ci_low",
    "ci_high",
    "true_rank",
    "n",
    "chance",
    "prompt",
]
N_BOOT = 1000


def decoder_info(run_dir: Path, model: str, task: str) -> dict | None:
    """What the zero-shot stage recorded of ``model``'s decoder states on ``task`` (None: not kept)."""
    zs = read_manifest(run_dir).get("zeroshot", {})
    return zs.get("tasks", {}).get(task, {}).get("by_model", {}).get(model, {}).get("decoder")


def lens_label_scores(lens: np.ndarray, phrasings: list[list[str]]) -> np.ndarray:
    """(clips, layers, labels) label scores from the lens items (clips, layers, 2 P): the log-mean-exp of each
    label's phrasings' first-token log-probabilities (the first P columns)."""
    out, start = [], 0
    for forms in phrasings:
        part = lens[..., start : start + len(forms)].astype(np.float64)
        out.append(logsumexp(part, axis=-1) - np.log(len(forms)))
        start += len(forms)
    return np.stack(out, axis=-1)


def batch_calibrated(scores: np.ndarray) -> np.ndarray:
    """Batch calibration over the clips (axis 0): log label shares minus the log mean share."""
    shares = scores - logsumexp(scores, axis=-1, keepdims=True)
    return shares - (logsumexp(shares, axis=0, keepdims=True) - np.log(len(scores)))


def _boot_f1(y: np.ndarray, pred: np.ndarray, weights: np.ndarray, k: int) -> tuple[float, float, float]:
    """Macro-F1 of ``pred`` and its 95 % bootstrap interval under clip weights ``weights`` (B, N)."""
    eye = np.eye(k)
    hit = eye[pred] * (pred == y)[:, None]
    obs = float(_f1(hit.sum(0), eye[y].sum(0), eye[pred].sum(0)))
    if not len(weights):
        return obs, float("nan"), float("nan")
    boot = _f1(weights @ hit, weights @ eye[y], weights @ eye[pred])
    return obs, float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


def _probe_rows(frame: pd.DataFrame, side: str, offset: int, decoder: bool, ratio: float) -> list[dict]:
    rows = []
    for layer, part in frame.groupby("layer", sort=True):
        mean, lo, hi = fold_interval(part["value"].to_numpy(float), ratio)
        name = f"dec{int(layer)}" if decoder else f"enc{int(layer)}"
        rows.append(dict(side=side, layer=name, depth=offset + int(layer), decoder=decoder, macro_f1=mean))
        rows[-1].update(ci_low=lo, ci_high=hi, n=len(part))
    return rows


def compute(unit: Unit) -> AnalysisResult:
    info = decoder_info(unit.run_dir, unit.model, unit.task)
    if not info:  # a model without a text decoder says nothing; one asked zero-shot without the states says so
        asked = unit.model in read_manifest(unit.run_dir).get("zeroshot", {}).get("models", {})
        return AnalysisResult(notes=[f"{unit.name}: no decoder states (zero-shot without --decoder-states)"] * asked)
    hashes = list(unit.clips["content_hash"])
    spaces = {k: FeatureSpace(Path(info["store"]) / v, {}) for k, v in info["spaces"].items()}
    missing = sum(not spaces["lens"].has(h) for h in hashes)
    if missing:
        return AnalysisResult(notes=[f"{unit.name}: {missing} clips lack decoder states; rerun the zero-shot stage"])
    s, ratio = unit.settings, fold_ratio(unit.folds)
    results = read_results(unit.run_dir / "results.csv")
    enc = results[
        (results["model"] == unit.model)
        & (results["task"] == unit.task)
        & (results["probe"] == s.primary_probe)
        & (results["metric"] == "macro_f1")
    ]
    n_enc = int(enc["layer"].max()) + 1 if len(enc) else 0
    rows = _probe_rows(enc.assign(layer=enc["layer"].astype(int)), "encoder_probe", 0, False, ratio)
    for rule in info["rules"]:
        frame = results[(results["model"] == decoder_model(unit.model, info["prompt_id"], rule))]
        frame = frame[(frame["task"] == unit.task) & (frame["probe"] == s.primary_probe)]
        if frame.empty:  # not (yet) probed as a model of its own (decoder_stage): the same probe and folds here
            fold_rows = probe_layers(
                spaces[rule].gather(hashes), unit.labels, unit.groups, (s.primary_probe,), s.n_folds, s.seed,
                repeats=s.repeats, cv=s.cv, settings=unit.probe_settings, scorers={"macro_f1": macro_f1},
                cluster_scorers={}, oof_scorers={},
            )  # fmt: skip
            frame = pd.DataFrame(fold_rows)
        part = frame[frame["metric"] == "macro_f1"]
        rows += _probe_rows(part.assign(layer=part["layer"].astype(int)), f"decoder_probe:{rule}", n_enc, True, ratio)
    rows += _lens_rows(unit, spaces["lens"].gather(hashes), info, n_enc)
    chance = chance_levels(list(unit.labels))["macro_f1"]
    table = pd.DataFrame(rows).assign(model=unit.model, task=unit.task, chance=chance, prompt=info["prompt_id"])
    table = table.reindex(columns=COLUMNS)
    from ..figures.decoder_curves import plot_decoder_curves

    path = plot_decoder_curves(table, chance, unit.figure_path("decoder_layers"))
    caption = (
        f"{unit.name}: encoder probe, decoder-state probe and logit lens on one depth axis (decoder layers after "
        f"the dotted line; prompt {info['prompt_id']!r}); bands: 95 % intervals; grey line: chance."
    )
    return AnalysisResult(tables={CSV: table}, figures=[Figure(path, caption)] if path else [])


def _true_rank(ranks: np.ndarray, y: np.ndarray, phrasings: list[list[str]]) -> float:
    """Median over clips of the best (lowest) vocabulary rank among the true label's phrasings' first tokens."""
    cols = np.cumsum([0, *(len(f) for f in phrasings)])
    best = [ranks[i, cols[c] : cols[c + 1]].min() for i, c in enumerate(y)]
    return float(np.median(best))


def _lens_rows(unit: Unit, lens: np.ndarray, info: dict, offset: int) -> list[dict]:
    """The lens curves, raw and batch-calibrated, with bootstrap intervals (clip weights fixed per unit)."""
    phrasings, order = info["phrasings"], {x: i for i, x in enumerate(info["labels"])}
    y = np.array([order[str(x)] for x in unit.labels])
    weights, _ = resample_weights(y, unit.groups, N_BOOT, unit.settings.seed)
    scores, n_p = lens_label_scores(lens, phrasings), lens.shape[-1] // 2
    rows = []
    for side, table in (("lens", scores), ("lens_bc", batch_calibrated(scores))):
        for d in range(lens.shape[1]):
            f1, lo, hi = _boot_f1(y, table[:, d].argmax(-1), weights, len(phrasings))
            rank = _true_rank(lens[:, d, n_p:], y, phrasings)
            rows.append(dict(side=side, layer=f"dec{d}", depth=offset + d, decoder=True, macro_f1=f1))
            rows[-1].update(ci_low=lo, ci_high=hi, true_rank=rank, n=len(y))
    return rows


def _score(r) -> str:
    return f"{r.macro_f1:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}]"


def _parting(table: pd.DataFrame) -> str:
    """Where the answer is lost, read from one (model, task)'s curves."""
    enc = table[table["side"] == "encoder_probe"]
    state, lens = (table[table["side"] == s].sort_values("depth") for s in ("decoder_probe:last", "lens_bc"))
    if state.empty or lens.empty:
        return ""
    r0 = table.iloc[0]
    best = enc.loc[enc["macro_f1"].idxmax()] if len(enc) else None
    last_state, last_lens = state.iloc[-1], lens.iloc[-1]
    parts = [f"{r0.task} in {r0.model} (prompt {r0.prompt}):"]
    if best is not None:
        parts.append(f"best encoder layer {best.layer} {_score(best)} (chosen in hindsight, optimistic);")
    parts.append(f"decoder-state probe at the last decoder layer {_score(last_state)};")
    parts.append(f"logit lens (batch-calibrated) there {_score(last_lens)}, chance {r0.chance:.2f}.")
    merged = state.merge(lens, on="depth", suffixes=("_s", "_l"))
    below = merged[merged["ci_high_l"] < merged["ci_low_s"]]
    above = lens[lens["ci_low"] > lens["chance"]]
    if len(above):
        parts.append(f"The lens is above chance from decoder layer {above.iloc[0].layer} on.")
    else:
        parts.append("The lens is at chance in every decoder layer.")
    if len(below):
        parts.append(
            f"Decoder state and lens part at {below.iloc[0].layer_s}: the state still holds the label there, "
            "the read-out does not (their 95% intervals do not overlap)."
        )
    if best is not None and last_state.ci_high < best.ci_low:
        parts.append(
            "The decoder-state probe at the last layer is below the best encoder layer: lost before the read-out."
        )
    return " ".join(parts)


def findings(run_dir: Path) -> list[str]:
    """One sentence per (model, task): the three curves at their telling layers, and where they part."""
    path = Path(run_dir) / CSV
    if not path.is_file():
        return []
    table = read_table(path, COLUMNS)
    out = [_parting(part) for _, part in table.groupby(["model", "task"], sort=True)]
    return [s for s in out if s]


ANALYSIS = Analysis.of(
    __name__,
    {CSV: COLUMNS},
    scope="model_task",
    default=False,
    cost="one decoder prefix pass per clip in the zero-shot stage, then one probe per decoder layer",
    section="Inside the decoder",
)
