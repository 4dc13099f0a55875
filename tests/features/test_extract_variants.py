"""One extraction pass fills every pooling variant's space (features/extract.py with several spaces), and the
pooling-variants analysis reads a cue that sits only in the first and last frames, which the mean averages away."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from speechprobe.analysis.contract import AnalysisSettings, Unit
from speechprobe.analysis.inputs import write_table
from speechprobe.analysis.pooling_variants import (
    SUMMARY_COLUMNS,
    SUMMARY_CSV,
    compute,
    pooling_findings,
    summary_table,
)
from speechprobe.data.clip import Clip
from speechprobe.features.extract import extract
from speechprobe.features.store import FeatureStore
from speechprobe.figures.pooling_variants import plotly, variant_spec
from speechprobe.models.base import AdapterInfo, ModelAdapter
from speechprobe.models.pooling import frame_mask, masked_pool

D = 4  # samples per frame = features per frame
POOLINGS = ["mean", "first:2", "last:2", "max"]


class FrameAdapter(ModelAdapter):
    """Frames of ``D`` samples; layer 0 the frames, layer 1 twice them; counts its forward calls."""

    pools_frames = True

    def __init__(self) -> None:
        self.info = AdapterInfo("frames", "toy", "test", "v1", 16000, 2, D, 16000 / D, "zeros, masked")
        self.calls = 0

    def forward(self, batch, pooling="mean"):
        self.calls += 1
        n = torch.tensor([len(a) // D for a in batch])
        frames = torch.zeros(len(batch), int(n.max()), D)
        for i, a in enumerate(batch):
            frames[i, : n[i]] = torch.from_numpy(np.asarray(a[: n[i] * D], dtype=np.float32)).view(-1, D)
        return masked_pool(torch.stack([frames, 2 * frames]), frame_mask(n, frames.shape[1]), pooling).numpy()


def edge_clips(n_per_class: int = 20, seed: int = 0) -> list[Clip]:
    """Noise frames; class ``a`` adds +2 to its first 2 frames and -2 to its last 2 (``b`` the opposite), so the
    mean over real frames carries no label and the edges carry all of it. Lengths vary: batches pad."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(2 * n_per_class):
        label, sign = ("a", 1.0) if i % 2 == 0 else ("b", -1.0)
        frames = rng.standard_normal((30 + 7 * (i % 5), D)).astype(np.float32)
        frames[:2] += 2 * sign
        frames[-2:] -= 2 * sign
        out.append(Clip(f"c{i}", frames.ravel(), 16000, label))
    return out


def spaces(root, poolings):
    store = FeatureStore(root)
    return {p: store.space("frames", "v1", {"pooling": p}) for p in poolings}


def test_one_forward_fills_every_variant(tmp_path):
    clips = edge_clips(6)
    hashes = [c.content_hash for c in clips]
    alone = FrameAdapter()
    extract(alone, clips, spaces(tmp_path / "a", ["mean"])["mean"], max_batch_seconds=0.02)
    both = FrameAdapter()
    filled = spaces(tmp_path / "b", POOLINGS)
    report = extract(both, clips, filled, max_batch_seconds=0.02)
    assert both.calls == alone.calls > 1 and report.computed == 12  # one forward per batch for all four
    mean_only = spaces(tmp_path / "a", ["mean"])["mean"]
    assert all(
        filled["mean"].item_path(h).read_bytes()[:-8] == mean_only.item_path(h).read_bytes()[:-8] for h in hashes
    )
    assert filled["first:2"].gather(hashes).shape == (12, 2, D)
    again = FrameAdapter()
    assert extract(again, clips, filled, max_batch_seconds=0.02).reused == 12 and again.calls == 0
    filled["max"].item_path(hashes[0]).unlink()  # one variant lacks a clip: its batch runs, the others are kept
    extract(again, clips, filled, max_batch_seconds=0.02)
    assert again.calls == 1 and filled["max"].has(hashes[0])


def _run_dir(tmp_path, clips):
    """A run directory naming the variants' spaces (as the pipeline records them) over a filled store."""
    filled = spaces(tmp_path / "cache" / "features", POOLINGS)
    extract(FrameAdapter(), clips, filled, max_batch_seconds=1.0)
    run = tmp_path / "run"
    entry = {"space": filled["mean"].root.name, "edge_frames": 2}
    entry["pooling_spaces"] = {p: s.root.name for p, s in filled.items()}
    config = {"cache": str(tmp_path / "cache"), "probes": ["knn"], "primary_probe": "knn"}
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({"config": config, "models": {"frames": entry}}))
    return run


@pytest.mark.slow
def test_edge_cue_read_by_the_edges_not_the_mean(tmp_path):
    clips = edge_clips()
    run = _run_dir(tmp_path, clips)
    frame = pd.DataFrame(
        {"label": [c.label for c in clips], "group": "", "content_hash": [c.content_hash for c in clips]}
    )
    unit = Unit("edge", "frames", ("frames",), frame, AnalysisSettings(n_folds=5), run, pd.DataFrame(), None)
    result = compute(unit)
    table = result.tables[SUMMARY_CSV].set_index(["variant", "layer"])
    assert table.loc[("edges", 1), "score"] > 0.95 and table.loc[("mean", 1), "score"] < 0.7
    assert (
        table.loc[("edges", 1), "delta"] > 0.5 and table.loc[("edges", 1), "delta_lo_adj"] > 0.1
    )  # Bonferroni: 8 gaps
    assert table.loc[("first", 0), "score"] > 0.9 and table.loc[("last", 0), "score"] > 0.9
    assert np.isnan(table.loc[("mean", 0), "delta_lo"])
    assert len(result.tables["pooling_variants.csv"]) == 5 * 2 * 5  # variants x layers x folds (knn)
    assert result.figures[0].path.is_file() and "first or last 2 real frames" in result.figures[0].caption
    spec = plotly(variant_spec(result.tables[SUMMARY_CSV], "knn"))
    assert [t.get("name") for t in spec["data"][1::2]] == ["mean", "first", "last", "edges", "max"]
    twin = json.loads(result.figures[0].path.with_suffix(".plotly.json").read_text())  # the report draws it
    assert (
        twin == json.loads(json.dumps(spec, default=float))
        and twin["data"][1]["y"][1] == table.loc[("mean", 1), "score"]
    )
    write_table(run / SUMMARY_CSV, result.tables[SUMMARY_CSV], SUMMARY_COLUMNS)
    (sentence,) = pooling_findings(run)
    assert "frames × edge: layer" in sentence and "better than from its mean" in sentence
    assert "Bonferroni-adjusted" in sentence and "k = 2 frames" in sentence


def test_models_without_variants_get_a_note(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({"config": {}, "models": {"mfcc": {"space": "x"}}}))
    frame = pd.DataFrame({"label": ["a", "b"], "group": "", "content_hash": ["00aa", "00bb"]})
    result = compute(Unit("t", "mfcc", ("mfcc",), frame, AnalysisSettings(), run, pd.DataFrame(), None))
    assert not result.tables and "mfcc × t left out" in result.notes[0] and "a recipe" in result.notes[0]


def test_findings_claim_only_what_the_adjusted_interval_shows(tmp_path):
    """A steady +0.30 gap of the edges is claimed; the same gap with too few units has no interval: not claimed."""
    rows = pd.DataFrame(
        [
            {"model": "m", "task": "t", "probe": "knn", "variant": v, "layer": layer, "fold": f}
            | {"value": 0.5 + 0.3 * (v == "edges") + 0.01 * f}
            for v in ("mean", "first", "last", "edges", "max")
            for layer in range(2)
            for f in range(5)
        ]
    )
    (tmp_path / "manifest.json").write_text("{}")
    said = []
    for too_few in ("", "2 speakers in the smallest class"):
        write_table(tmp_path / SUMMARY_CSV, summary_table(rows, 0.25, 5, too_few), SUMMARY_COLUMNS)
        said += pooling_findings(tmp_path)
    assert said[0].startswith("m × t: layer 0 reads t from its first and last 5 frames (0.82 [0.79, 0.85]) better")
    assert "gap +0.30 [+0.30, +0.30] (the largest of 8 layer × variant gaps" in said[0]
    assert said[1] == (
        "m × t: largest gap of a pooling variant over the mean at layer 0, edges, +0.30: "
        "no interval (too few units or folds), so not claimed."
    )
