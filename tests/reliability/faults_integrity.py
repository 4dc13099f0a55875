"""Fault cases of issue 31 items 1-4: weights, the run-directory lock, key-bound items, the synthetic manifest."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from faults import case, cli, items, manifest, run, tones

# -- 31.3: a feature item under another key ------------------------------------------------------------


@case("31.3", "two valid feature items swapped on disk", "both fail their key-bound checksum; recomputed; same results")
def swapped_items(tmp: Path) -> str:
    a = tones(tmp / "data")
    clean = run([a], tmp / "clean", tmp / "cache")
    first, second = items(tmp / "cache")[2:4]
    x, y = first.read_bytes(), second.read_bytes()
    assert len(x) == len(y) and x != y
    first.write_bytes(y)
    second.write_bytes(x)
    check = cli("cache", "verify", "--check-only", cache=tmp / "cache")
    assert check.returncode == 1 and "2 failing their checksum" in check.stdout, check.stdout + check.stderr
    again = run([a], tmp / "again", tmp / "cache")
    store = manifest(tmp / "again")["store"]
    assert store["by_model"]["mfcc"] == {"checksum": 2} and again.equals(clean)
    return f"verify: 2 failing their checksum (exit 1); rerun {store['by_model']}; results equal the clean run's"


# -- 31.4: the synthetic suite's manifest --------------------------------------------------------------


@case("31.4", "a same-size label swap in a cached synthetic manifest", "found, rewritten; same results", "espeak")
def swapped_synthetic_labels(tmp: Path) -> str:
    clean = run(["gender"], tmp / "clean", tmp / "cache", n_per_class=6)
    (csv,) = (tmp / "cache").rglob("manifest.csv")
    original = csv.read_bytes()
    frame = pd.read_csv(csv)
    j = int((frame["label"] != frame["label"][0]).to_numpy().nonzero()[0][0])
    frame.loc[[0, j], "label"] = frame.loc[[j, 0], "label"].to_numpy()
    csv.write_text(frame.to_csv(index=False, lineterminator="\n"))
    assert len(csv.read_bytes()) == len(original) and csv.read_bytes() != original
    again = run(["gender"], tmp / "again", tmp / "cache", n_per_class=6)
    repaired = manifest(tmp / "again")["tasks"]["gender"]["synthetic_clips_repaired"]
    assert csv.read_bytes() == original and repaired == 1 and again.equals(clean)
    return f"manifest rewritten ({repaired} file repaired); results equal the clean run's"
