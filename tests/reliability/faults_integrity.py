"""Fault cases of issue 31 items 1-4: weights, the run-directory lock, key-bound items, the synthetic manifest."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from faults import case, cli, items, manifest, one_line, run, tones

from speechprobe.rundir import read_results

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


# -- 31.2: two runs into one --out ---------------------------------------------------------------------


@case("31.2", "seed 0 and seed 1 started together into one --out", "one runs; the other exits 2 naming its pid")
def racing_runs(tmp: Path) -> str:
    import json
    import os
    import subprocess
    import sys

    a = tones(tmp / "data")
    out = tmp / "run"
    args = ["run", "--tasks", str(a), "--out", str(out), "--baselines", "mfcc", "--probes", "knn", "--folds", "2"]
    args += ["--no-progress", "--permutations", "0", "--no-report"]
    code = "import sys; from speechprobe.cli import main; sys.exit(main())"
    env = {**os.environ, "SPEECHPROBE_CACHE": str(tmp / "cache")}
    procs = [
        subprocess.Popen([sys.executable, "-c", code, *args, "--seed", s], env=env, stderr=subprocess.PIPE, text=True)
        for s in ("0", "1")
    ]
    codes = [p.wait(timeout=600) for p in procs]
    errors = [p.stderr.read() for p in procs]
    assert sorted(codes) == [0, 2], (codes, errors)
    winner, loser = (0, 1) if codes[0] == 0 else (1, 0)
    line = one_line(subprocess.CompletedProcess(args, codes[loser], "", errors[loser]))
    assert f"(pid {procs[winner].pid} on" in line and str(out) in line, line
    stages = json.loads((out / "run.json").read_text())["stages"]
    seeds = {stage: info["config"]["seed"] for stage, info in stages.items()}
    assert set(seeds.values()) == {winner}, seeds
    ref = run([a], tmp / "ref", tmp / "cache", seed=winner)
    assert ref.equals(read_results(out / "results.csv")), "results are not the winner's"
    return f"exit codes {codes}; loser: {line[:90]}...; run.json seeds {seeds}; results = seed {winner}'s"
