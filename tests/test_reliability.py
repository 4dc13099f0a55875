"""Crash-safe resume (SIGKILL at random points), cache integrity, concurrency, reproducibility."""

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
from speechprobe.features.store import FeatureStore
from speechprobe.pipeline import reproduce, run


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
    ]


def _env(cache: Path) -> dict:
    return {**os.environ, "SPEECHPROBE_CACHE": str(cache)}


def _items(cache: Path) -> dict[Path, int]:
    """Stored feature files and their inodes (a recomputed item gets a new inode)."""
    return {p: p.stat().st_ino for p in (cache / "features").rglob("items/*/*.npy")}


@pytest.mark.slow
def test_sigkill_at_random_points_then_rerun_equals_uninterrupted(tones, tiny_whisper, tmp_path):
    ref_cache, cache = tmp_path / "ref-cache", tmp_path / "cache"
    t0 = time.perf_counter()
    subprocess.run(_cmd(tiny_whisper, tones, tmp_path / "ref"), env=_env(ref_cache), check=True, capture_output=True)
    duration = time.perf_counter() - t0

    rng = random.Random(0)
    kills, before = 0, {}
    for _ in range(3):
        proc = subprocess.Popen(
            _cmd(tiny_whisper, tones, tmp_path / "run"),
            env=_env(cache),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.35, 0.95) * duration)
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


def test_verify_finds_and_repairs_torn_and_orphan_entries(tmp_path):
    space = FeatureStore(tmp_path).space("m", "w", {})
    for i in range(3):
        space.put(f"{i:02d}aa", np.full((2, 4), i, np.float32))
    torn = space.item_path("01aa")
    torn.write_bytes(torn.read_bytes()[:-5])  # a torn tail
    odd = space.item_path("02aa")
    np.save(odd, np.zeros((3, 4), np.float32))  # a shape unlike its space
    orphan = torn.parent / ".tmp-abc.npy"
    orphan.write_bytes(b"partial")
    rep = FeatureStore(tmp_path).verify(repair=False)
    assert set(rep.torn) == {torn, odd} and rep.orphans == [orphan] and rep.items == 3
    assert torn.exists()
    FeatureStore(tmp_path).verify(repair=True)
    assert not torn.exists() and not orphan.exists() and space.has("00aa")
    assert FeatureStore(tmp_path).verify().ok


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
    assert rep.ok and rep.items == 2 * 24  # two models x 24 clips, each stored once


def test_reproduce_reports_no_difference(tones, tiny_whisper, tmp_path, monkeypatch):
    cfg = RunConfig(
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


@pytest.fixture
def tmpfs(tmp_path):
    """A tiny tmpfs (64 KiB), or a skip where mounting is not allowed."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root); the store's disk-full path is tested by injection")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_disk_full_cache_is_a_clear_message_and_keeps_what_was_written(tones, tmpfs, tmp_path):
    r = subprocess.run(
        _cmd(Path("librosa"), tones, tmp_path / "run")[:-1] + ["--no-progress"],
        env=_env(tmpfs),
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2, r.stderr
    assert "No space left on device" in r.stderr and "cannot write to the feature store" in r.stderr
    assert "Traceback" not in r.stderr
    rep = FeatureStore(tmpfs / "features").verify()
    assert rep.torn == [] and rep.items > 0  # everything stored before the disk filled is intact


def test_read_only_output_directory_is_one_clear_line(tones, tmpfs, tmp_path):
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    r = subprocess.run(
        _cmd(Path("mfcc"), tones, tmpfs / "run"), env=_env(tmp_path / "c"), capture_output=True, text=True
    )
    assert r.returncode == 2 and "cannot write to the output directory" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
