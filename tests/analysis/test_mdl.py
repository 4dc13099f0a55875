"""MDL probes: the block schedule, the online code on data with known answers, and a run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic_run import make_clips, make_manifest, make_results, write_run

from speechprobe.analysis import analyse
from speechprobe.analysis.mdl import MDL_COLUMNS, block_ends, block_order, online_code
from speechprobe.report import build_report


def test_standard_schedule_without_groups() -> None:
    ends = block_ends(np.arange(1, 1001))
    assert list(ends) == [1, 2, 4, 8, 16, 32, 63, 125, 250, 500, 1000]  # 62.5 goes to the later clip


def test_schedule_snaps_to_group_ends() -> None:
    assert list(block_ends(np.arange(10, 81, 10))) == [10, 20, 40, 80]
    assert list(block_ends(np.array([3, 5, 30, 31, 100]))) == [3, 5, 30, 31, 100]


def test_block_order_keeps_each_group_in_one_block() -> None:
    groups = np.repeat([f"g{i}" for i in range(12)], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
    order, group_ends = block_order(groups, len(groups), seed=3)
    assert sorted(order) == list(range(len(groups)))
    ends = block_ends(group_ends)
    start = 0
    seen: set[str] = set()
    for stop in ends:
        block = set(groups[order[start:stop]])
        assert not block & seen  # no speaker straddles two blocks
        seen |= block
        start = stop
    other, _ = block_order(groups, len(groups), seed=4)
    assert not np.array_equal(order, other)
    np.testing.assert_array_equal(order, block_order(groups, len(groups), seed=3)[0])  # seeded


def _data(n: int = 240, n_classes: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    X = rng.normal(size=(n, 3, 32)).astype(np.float32)
    X[:, 1, :n_classes] += 1.5 * np.eye(n_classes)[y]  # layer 1: some signal
    X[:, 2, :n_classes] += 8.0 * np.eye(n_classes)[y]  # layer 2: separable
    groups = np.array([f"s{i // 10}" for i in range(n)])  # 24 speakers, each with every class
    return X, y, groups


def test_compression_is_one_on_shuffled_labels_and_high_on_separable_data() -> None:
    X, y, groups = _data()
    uniform = len(y) * math.log2(3)
    bits, ends = online_code(X, y, 3, groups, seed=0)
    compression = uniform / bits
    assert ends[-1] == len(y) and ends[0] == 10  # one speaker's 10 clips go first, with the uniform code
    assert compression[0] == pytest.approx(1.0, abs=0.05)  # layer 0 is noise
    assert 1.05 < compression[1] < compression[2] and compression[2] > 3.0
    shuffled = np.random.default_rng(1).permutation(y)
    for seed in (0, 1):
        noise = uniform / online_code(X, shuffled, 3, groups, seed=seed)[0]
        np.testing.assert_allclose(noise, 1.0, atol=0.05)
    assert (uniform / online_code(X, shuffled, 3, None, seed=2)[0]).min() > 0.95  # ungrouped too


def test_online_code_is_deterministic() -> None:
    X, y, groups = _data(n=96)
    a, _ = online_code(X, y, 3, groups, seed=5)
    b, _ = online_code(X, y, 3, groups, seed=5)
    np.testing.assert_array_equal(a, b)


def _loader(n_layers: dict[str, int]):
    """Features whose layer l carries the label with strength l (so the last layer compresses most)."""
    rng = np.random.default_rng(0)
    clips = make_clips("emotion")
    codes = pd.factorize(clips["label"], sort=True)[0]
    store = {}
    for model, depth in n_layers.items():
        for h, c in zip(clips["content_hash"], codes):
            x = rng.normal(size=(depth, 6))
            x[np.arange(depth), c] += 2.0 * np.arange(depth) * (0.0 if model.endswith("+random") else 1.0)
            store[(model, h)] = x.astype(np.float32)

    def load(model, hashes):
        return np.stack([store[(model, h)] for h in hashes])

    return load


@pytest.mark.slow
def test_mdl_probes_on_a_run(tmp_path: Path) -> None:
    manifest = make_manifest(tasks=["emotion"], models=["whisper-tiny", "mfcc"])
    manifest["models"]["whisper-tiny+random"] = {**manifest["models"]["whisper-tiny"], "space": "space-r"}
    results = make_results(tasks=["emotion"], models=["whisper-tiny", "mfcc"])
    twin = results[results["model"] == "whisper-tiny"].assign(model="whisper-tiny+random")
    run = write_run(
        tmp_path / "run", pd.concat([results, twin]), manifest, tasks=["emotion"], models=["whisper-tiny", "mfcc"]
    )
    loader = _loader({"whisper-tiny": 5, "whisper-tiny+random": 5, "mfcc": 1})
    out = analyse(run, "mdl", loader, n_orders=2)
    table = pd.read_csv(run / "mdl.csv")
    assert list(table.columns) == MDL_COLUMNS and len(table) == 5 + 5 + 1
    assert np.allclose(table["uniform_bits"], 48 * 2.0) and (table["n_orders"] == 2).all()
    assert table["grouped"].all() and table["blocks"].str.endswith(",48").all()
    tiny = table[table["model"] == "whisper-tiny"].set_index("layer")["compression"]
    rand = table[table["model"] == "whisper-tiny+random"]["compression"]
    assert tiny[4] > 2.0 and tiny[4] > tiny[0] + 0.8
    assert rand.max() < 1.15  # random features carry no label
    record = json.loads((run / "analysis.json").read_text())
    caption = record["captions"]["figures/mdl_emotion.png"]
    assert (run / "figures" / "mdl_emotion.png").is_file() and "Random-init" in caption and "Macro-F1" in caption
    assert any("whisper-tiny layer 4" in s for s in out.findings)
    assert json.loads((run / "analyses" / "mdl.json").read_text())["findings"] == out.findings
    again = analyse(run, "mdl", loader, n_orders=2)  # nothing changed: the plan reuses the task
    assert again.seconds == 0.0 and pd.read_csv(run / "mdl.csv").equals(table)
    md = build_report(run).with_suffix(".md").read_text()
    assert "figures/mdl_emotion.png" in md and "online code (MDL)" in md
