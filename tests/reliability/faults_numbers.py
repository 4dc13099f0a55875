"""Fault cases: wrong numbers and failures that exited 0 (issue 14 items 1-5); registered in faults.CASES."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from faults import case, cfg, cli, items, manifest, one_line, run, tones

# -- wrong numbers ------------------------------------------------------------------------------------


@case("14.1", "one manifest under two task names", "each task keeps its own rows; n = folds everywhere")
def same_clips_two_tasks(tmp: Path) -> str:
    a = tones(tmp / "data", name="a.csv")
    b = tmp / "data" / "b.csv"
    b.write_bytes(a.read_bytes())
    results = run([a, b], tmp / "run", tmp / "cache")
    summary = pd.read_csv(tmp / "run" / "summary.csv")
    per_task = results.groupby("task").size().to_dict()
    assert set(per_task) == {"a", "b"} and per_task["a"] == per_task["b"]
    per_fold = summary[~summary["metric"].str.endswith("_oof")]  # out-of-fold rows: one per repeat
    assert set(per_fold["n"]) == {2}
    return f"rows per task {per_task}; n = {sorted(set(per_fold['n']))}"


@case("14.1", "a renamed manifest run into the old --out", "refused; with --overwrite only the new name")
def renamed_manifest(tmp: Path) -> str:
    from speechprobe.errors import ConfigError

    a = tones(tmp / "data", name="old.csv")
    run([a], tmp / "run", tmp / "cache")
    new = a.with_name("new.csv")
    new.write_bytes(a.read_bytes())
    try:
        run([new], tmp / "run", tmp / "cache")
        raise AssertionError("not refused")
    except ConfigError as e:
        refused = str(e)
    assert "other extract settings" in refused and "--overwrite" in refused
    tasks = sorted(set(run([new], tmp / "run", tmp / "cache", "overwrite")["task"]))
    assert tasks == ["new"] and set(pd.read_csv(tmp / "run" / "results.csv")["task"]) == {"new"}
    return f"refused ({refused.split('(')[1].split(')')[0]}); --overwrite: tasks {tasks}"


@case("14.1", "partial-results key under each change", "a different key for task, labels, groups, settings, seed")
def partial_key(tmp: Path) -> str:
    from speechprobe.features.extract import ClipMeta
    from speechprobe.pipeline import probe_key

    clips = [ClipMeta(f"c{i}", "ab"[i % 2], f"g{i % 3}", 1.0, f"{i:064x}") for i in range(6)]
    last = clips[-1].content_hash
    relabelled = [*clips[:-1], ClipMeta("c5", "a", "g2", 1.0, last)]
    regrouped = [*clips[:-1], ClipMeta("c5", "b", "g0", 1.0, last)]

    def key(task="t", label_set=("a", "b"), items=clips, **settings) -> str:
        return probe_key(task, list(label_set), "s", items, cfg(["t"], tmp, tmp, **settings))

    keys = {
        "base": key(),
        "task name": key(task="u"),
        "label set": key(label_set=("a", "b", "c")),
        "labels": key(items=relabelled),
        "groups": key(items=regrouped),
        "probes": key(probes=["knn", "mlp"]),
        "folds": key(folds=3),
        "seed": key(seed=1),
    }
    assert len(set(keys.values())) == len(keys)
    assert key(permutations=50) == keys["base"]  # analysis-only settings reuse the probe rows
    return f"{len(keys)} distinct keys; --permutations alone keeps the key"


@case("14.2", "another config into a used --out (CLI)", "exit 2, one line naming the directory and both flags")
def refused_cli(tmp: Path) -> str:
    a = tones(tmp / "data")
    run([a], tmp / "run", tmp / "cache")
    args = ["run", "--tasks", str(a), "--out", str(tmp / "run"), "--baselines-only", "--baselines", "mfcc"]
    args += ["--probes", "knn"]
    r = cli(*args, "--folds", "3", "--no-progress", "--permutations", "0", "--no-report", cache=tmp / "cache")
    line = one_line(r)
    assert r.returncode == 2 and str(tmp / "run") in line and "--overwrite" in line and "--resume" in line
    return f"exit {r.returncode}: {line[:90]}..."


@case("14.2", "the same command again", "resumes: nothing recomputed, identical results.csv")
def same_config_resumes(tmp: Path) -> str:
    a = tones(tmp / "data")
    run([a], tmp / "run", tmp / "cache")
    first = (tmp / "run" / "results.csv").read_bytes()
    run([a], tmp / "run", tmp / "cache")
    computed = sum(v["computed"] for v in manifest(tmp / "run")["extraction"].values())
    assert (tmp / "run" / "results.csv").read_bytes() == first and computed == 0
    return f"{computed} clips computed; results.csv identical"


@case("14.2", "a stale figure and permutation.csv in --out", "the report shows neither")
def report_reads_this_run(tmp: Path) -> str:
    from speechprobe.report import build_report

    a = tones(tmp / "data")
    run([a], tmp / "run", tmp / "cache")
    (tmp / "run" / "figures" / "stale_old_task.png").write_bytes(
        (tmp / "run" / "figures" / "layers_tones.png").read_bytes()
    )
    pd.DataFrame({"model": ["old"], "task": ["old"]}).to_csv(tmp / "run" / "permutation.csv", index=False)
    page = build_report(tmp / "run").read_text()
    assert "stale_old_task" not in page and "permutation.csv is ignored" in page
    return "stale figure absent; 'permutation.csv is ignored' noted"


@case("14.3", "a feature item corrupted at the same size", "checksum fails on read; recomputed, counted; same results")
def corrupted_item(tmp: Path) -> str:
    a = tones(tmp / "data")
    clean = run([a], tmp / "clean", tmp / "cache")
    item = items(tmp / "cache")[3]
    data = bytearray(item.read_bytes())
    data[200:204] = np.float32(1e28).tobytes()  # a value inside the array, file size unchanged
    item.write_bytes(bytes(data))
    again = run([a], tmp / "again", tmp / "cache")
    store = manifest(tmp / "again")["store"]
    assert store["items_recomputed"] == 1 and store["by_model"]["mfcc"] == {"checksum": 1}
    assert again.equals(clean)
    return f"{store['by_model']}; results equal the clean run's"


@case("14.3", "a generated synthetic WAV changed on disk", "found on reuse, rendered again, reported", "espeak")
def corrupted_synthetic(tmp: Path) -> str:
    from speechprobe.data.synthetic import ensure_task

    manifest_csv, repaired = ensure_task("gender", tmp / "gender", n_per_class=2)
    wav = tmp / "gender" / "wav" / "0001.wav"
    original = wav.read_bytes()
    data = bytearray(original)
    data[-10] ^= 0xFF
    wav.write_bytes(bytes(data))
    _, repaired = ensure_task("gender", tmp / "gender", n_per_class=2)
    assert repaired == ["wav/0001.wav"] and wav.read_bytes() == original
    return f"repaired {repaired}; bytes restored"


@case("14.4", "two rows with an empty label", "skipped with reason empty_label (counted); the run goes on")
def empty_labels(tmp: Path) -> str:
    a = tones(tmp / "data", rows=[("low0.wav", "", "spk0"), ("high1.wav", "  ", "spk1")])
    run([a], tmp / "run", tmp / "cache")
    skipped = manifest(tmp / "run")["skipped"]
    assert skipped["by_kind"] == {"empty_label": 2}
    return f"skipped {skipped['by_kind']}"


@case("14.4", "every row twice, and one speaker's clips under another", "warned, counted, copies in one group")
def duplicates_grouped(tmp: Path) -> str:
    from speechprobe.probes.cv import make_folds

    twice = [(f"{lab}{i}.wav", lab, f"spk{i % 4}") for lab in ("low", "high") for i in range(8)]
    moved = [(f"{lab}{i}.wav", lab, "spk1") for lab in ("low", "high") for i in (0, 4)]  # spk0's clips as spk1
    a = tones(tmp / "data", rows=twice + moved)
    run([a], tmp / "run", tmp / "cache")
    info = manifest(tmp / "run")["tasks"]["tones"]["duplicates"]
    clips = pd.read_csv(tmp / "run" / "clips" / "tones.csv", keep_default_na=False)
    assert info["copies"] == 20 and info["groups_merged"] == 1 and clips["group"].nunique() == 3
    assert clips.groupby("content_hash")["group"].nunique().max() == 1
    for train, test in make_folds(clips["label"].to_numpy(), clips["group"].to_numpy(), 2, 0):
        assert not set(clips["content_hash"].iloc[train]) & set(clips["content_hash"].iloc[test])
    return f"{info}; no content in both train and test"


@case("14.4", "every row listed twice, --drop-duplicates", "copies dropped, counted as duplicate")
def duplicates_dropped(tmp: Path) -> str:
    a = tones(tmp / "data", rows=[(f"{lab}{i}.wav", lab, f"spk{i % 4}") for lab in ("low", "high") for i in range(8)])
    run([a], tmp / "run", tmp / "cache", drop_duplicates=True)
    m = manifest(tmp / "run")
    assert m["tasks"]["tones"]["n_clips"] == 16 and m["skipped"]["by_kind"] == {"duplicate": 16}
    return f"n_clips 16; skipped {m['skipped']['by_kind']}"


# -- failures that must not exit 0 --------------------------------------------------------------------


@case("14.5", "reproduce a run whose results.csv changed (CLI)", "prints DIFFERENT, exit 1")
def reproduce_different(tmp: Path) -> str:
    a = tones(tmp / "data")
    run([a], tmp / "run", tmp / "cache")
    results = pd.read_csv(tmp / "run" / "results.csv")
    results.loc[0, "value"] += 0.25
    results.to_csv(tmp / "run" / "results.csv", index=False)
    r = cli("reproduce", str(tmp / "run"), "--out", str(tmp / "again"), cache=tmp / "cache")
    assert r.returncode == 1 and "DIFFERENT: 1 of" in r.stdout, (r.stdout, r.stderr)
    return f"exit {r.returncode}: {r.stdout.strip().splitlines()[-1]}"


@case("14.5", "cache verify --check-only over a torn item (CLI)", "exit 1 naming it; --repair exits 0")
def verify_exit_code(tmp: Path) -> str:
    from speechprobe.features.store import FeatureStore

    space = FeatureStore(tmp / "cache" / "features").space("m", "w", {})
    for i in range(3):
        space.put(f"{i:02d}ab", np.full((2, 4), i, np.float32))
    torn = space.item_path("01ab")
    torn.write_bytes(torn.read_bytes()[:-30])
    check = cli("cache", "verify", "--check-only", "--cache", str(tmp / "cache"))
    repair = cli("cache", "verify", "--cache", str(tmp / "cache"))
    assert check.returncode == 1 and str(torn) in check.stdout and repair.returncode == 0 and not torn.exists()
    return f"--check-only exit {check.returncode}; --repair exit {repair.returncode}, item removed"
