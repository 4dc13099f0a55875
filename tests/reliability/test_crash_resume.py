"""Crash-safe resume (SIGKILL at random points), concurrency, reproducibility, an unwritable --out.

The fault cases of issue 14 (corrupted, truncated and temporary store entries, full and read-only
disks, exit codes) are in faults.py / test_faults.py."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from speechprobe.config import RunConfig
from speechprobe.errors import ConfigError
from speechprobe.features.store import FeatureStore
from speechprobe.pipeline import run
from speechprobe.reproduce import reproduce


def _cmd(model: Path, tones: Path, out: Path, window: str = "full") -> list[str]:
    return [
        sys.executable,
        "-m",
        "speechprobe.cli",
        "run",
        "--models",
        str(model),
        "--tasks",
        str(tones),
        "--out",
        str(out),
        "--folds",
        "3",
        "--baselines",
        "mfcc",
        "--probes",
        "knn",
        "--window",
        window,
        "--max-batch-seconds",
        "90",
        "--no-progress",
        "--permutations",
        "0",
        "--no-embeddings",
        "--no-report",
        # the analyses after probing (but the cue extraction, which shares the store): not what these tests check
        *("--no-layer-weights", "--no-similarity", "--no-mdl", "--no-fingerprints"),
        *("--bootstrap", "0"),
    ]


def _env(cache: Path) -> dict:
    return {**os.environ, "SPEECHPROBE_CACHE": str(cache)}


def _items(cache: Path) -> dict[Path, int]:
    """Stored feature files and their inodes (a recomputed item gets a new inode)."""
    return {p: p.stat().st_ino for p in (cache / "features").rglob("items/*/*.npy")}


@pytest.mark.slow
def test_sigkill_at_random_points_then_rerun_equals_uninterrupted(tones, tiny_whisper, tmp_path):
    ref_cache, cache = tmp_path / "ref-cache", tmp_path / "cache"
    subprocess.run(_cmd(tiny_whisper, tones, tmp_path / "ref"), env=_env(ref_cache), check=True, capture_output=True)

    # Kill at points chosen by progress, not by time (a loaded machine makes timings useless): twice at a
    # random number of stored items (mid-extraction, mid-write), once while probing writes its partial results.
    rng = random.Random(0)
    total = 2 * 24  # two models x 24 clips
    kills, before = 0, {}
    for target in (rng.randint(3, total // 2), rng.randint(total // 2 + 1, total - 1), total):
        proc = subprocess.Popen(
            _cmd(tiny_whisper, tones, tmp_path / "run"),
            env=_env(cache),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while proc.poll() is None and len(_items(cache)) < target:
            time.sleep(0.02)
        while target == total and proc.poll() is None and not list((tmp_path / "run").glob("partial/*.csv")):
            time.sleep(0.02)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        before = _items(cache)
    assert kills >= 2, "the runs finished before any kill; the test needs a slower configuration"

    final = subprocess.run(_cmd(tiny_whisper, tones, tmp_path / "run"), env=_env(cache), capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    assert (tmp_path / "run" / "results.csv").read_bytes() == (tmp_path / "ref" / "results.csv").read_bytes()
    after = _items(cache)
    rewritten = [p for p, ino in before.items() if after.get(p) != ino]
    assert not rewritten, f"stored items were recomputed: {rewritten[:3]}"
    rep = FeatureStore(cache / "features").verify()
    assert rep.torn == [] and rep.items == len(after)


def test_verify_finds_items_unlike_their_space(tmp_path):
    space = FeatureStore(tmp_path).space("m", "w", {})
    for i in range(3):
        space.put(f"{i:02d}aa", np.full((2, 4), i, np.float32))
    space.put("03aa", np.zeros((3, 4), np.float32))  # sound, but a shape unlike the rest of its space
    space.item_path("04aa").parent.mkdir(parents=True)
    np.save(space.item_path("04aa"), np.zeros((2, 4), np.float32))  # written before checksums existed
    rep = FeatureStore(tmp_path).verify(repair=False)
    assert rep.torn == [space.item_path("03aa")] and rep.unverified == [space.item_path("04aa")] and rep.items == 5
    assert not rep.ok and space.item_path("03aa").exists()
    FeatureStore(tmp_path).verify(repair=True)
    assert FeatureStore(tmp_path).verify().ok and space.has("00aa") and not space.has("03aa")


@pytest.mark.slow
def test_two_processes_share_one_cache(tones, tiny_whisper, tmp_path):
    cache = tmp_path / "cache"
    procs = [
        subprocess.Popen(
            _cmd(tiny_whisper, tones, tmp_path / f"run{i}", window="trimmed"),
            env=_env(cache),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for p in procs:
        assert p.wait(timeout=600) == 0, p.stderr.read()
    assert (tmp_path / "run0" / "results.csv").read_bytes() == (tmp_path / "run1" / "results.csv").read_bytes()
    rep = FeatureStore(cache / "features").verify()
    assert rep.ok and rep.items == 3 * 24  # two models and the acoustic cues x 24 clips, each stored once


@pytest.mark.slow
def test_reproduce_reports_no_difference(tones, tiny_whisper, tmp_path, monkeypatch):
    cfg = RunConfig.of(
        models=[str(tiny_whisper)],
        tasks=[str(tones)],
        out=tmp_path / "run",
        folds=3,
        baselines=["mfcc"],
        probes=["knn", "mlp"],
        window="trimmed",
        progress=False,
        permutations=0,
        embeddings=False,
        report=False,
    )
    run(cfg)
    monkeypatch.setenv("SPEECHPROBE_CACHE", str(tmp_path / "fresh"))  # everything is recomputed
    rep = reproduce(tmp_path / "run", tmp_path / "again")
    # layers x (probes x (folds x 2 metrics + 1 out-of-fold) + folds x (nmi, ami))
    assert rep.identical and rep.differing_rows == 0 and rep.rows == (3 + 1) * (2 * (3 * 2 + 1) + 3 * 2)
    with pytest.raises(ConfigError, match="already holds a run"):  # a rerun goes into a new directory
        reproduce(tmp_path / "run", tmp_path / "again")


@pytest.fixture
def tmpfs(tmp_path):
    """A tiny tmpfs (64 KiB), or a skip where mounting is not allowed."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root); the store's disk-full path is tested by injection")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.mark.slow
def test_read_only_output_directory_is_one_clear_line(tones, tmpfs, tmp_path):
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    r = subprocess.run(
        _cmd(Path("mfcc"), tones, tmpfs / "run"), env=_env(tmp_path / "c"), capture_output=True, text=True
    )
    assert r.returncode == 2 and "cannot write to the output directory" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
