"""The Ray engine on a real two-node cluster with token authentication, as a user starts one.

The fixture runs ``ray start --head`` and a second ``ray start --address`` node on this machine (one
CPU each, Ray's token authentication on, a private ``RAY_TMPDIR`` so ``--address auto`` finds this
cluster and nobody else's), and stops both nodes, by their process ids, at the end. Then:

- a model actor's process is killed mid-run: the run completes, every clip is stored exactly once,
  and the features (and the warnings counted) are the local engine's;
- ``speechprobe run --engine ray --address auto`` authenticates with the token file in ``~/.ray``
  and writes the local run's results.csv byte for byte;
- a wrong token file gives one line that names the file, the cause and the fix.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

import ray_faults
from ray_faults import faulty
from speechprobe import ray_connect
from speechprobe.data.manifest import ManifestSource
from speechprobe.features.extract import extract
from speechprobe.features.ray_engine import RayEngine
from speechprobe.features.store import FeatureStore
from speechprobe.models.registry import load_model

pytestmark = pytest.mark.slow  # every test here is over ~2 s (pyproject's markers)

BATCH_SECONDS = 3.0
RAY_CLI = [sys.executable, "-m", "ray.scripts.scripts"]
TALK = "a library warns on every batch"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(what: str, ready, timeout: float = 90.0, poll: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"Ray cluster: {what} not ready within {timeout:.0f} s")
        time.sleep(poll)


def _alive(procs: list[subprocess.Popen], tmp: str) -> bool:
    """True while every ``ray start`` runs; a failed one is an error with the end of its log."""
    if all(p.poll() is None for p in procs):
        return True
    tail = (Path(tmp) / "nodes.log").read_text(errors="replace").strip().splitlines()[-5:]
    raise RuntimeError("`ray start` exited:\n" + "\n".join(tail))


def _stop(procs: list[subprocess.Popen], tmp: str) -> None:
    """SIGTERM each ``ray start --block`` (it drains and stops its node), then SIGKILL any process of ours left."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(45)
        except subprocess.TimeoutExpired:
            p.kill()
    for pid in _pids_under(tmp):  # processes whose command line names this cluster's private temp dir
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _pids_under(tmp: str) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if d.name.isdigit():
            try:
                if tmp.encode() in (d / "cmdline").read_bytes():
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


@pytest.fixture(scope="module")
def cluster():
    """A head and a second node, 1 CPU each, token authentication on; this process connected to it."""
    if ray.is_initialized():  # pragma: no cover - another module's instance
        ray.shutdown()
    tmp = tempfile.mkdtemp(prefix="spray-", dir="/tmp")  # short: Ray's socket paths must stay under 108 bytes
    env = {
        **os.environ,
        "RAY_TMPDIR": tmp,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": os.environ["RAY_AUTH_TOKEN"],  # the tests' token (conftest)
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_worker_niceness": "0",  # workers at the tests' priority, so a busy machine does not starve them
    }
    ports = [f"--{name}={_free_port()}" for name in ("port", "dashboard-port")]
    head_cmd = ["start", "--head", *ports, "--num-cpus=1", "--include-dashboard=false", "--block"]
    log = open(Path(tmp) / "nodes.log", "w")
    procs = [subprocess.Popen([*RAY_CLI, *head_cmd], env=env, stdout=log, stderr=subprocess.STDOUT)]
    saved = {k: os.environ.get(k) for k in ("RAY_TMPDIR", "RAY_ADDRESS")}
    try:
        address_file = Path(tmp) / "ray" / "ray_current_cluster"
        _wait("head", lambda: _alive(procs, tmp) and address_file.exists() and address_file.read_text().strip())
        address = address_file.read_text().strip()
        node_cmd = ["start", f"--address={address}", "--num-cpus=1", "--block"]
        procs.append(subprocess.Popen([*RAY_CLI, *node_cmd], env=env, stdout=log, stderr=subprocess.STDOUT))
        os.environ["RAY_TMPDIR"] = tmp
        os.environ.pop("RAY_ADDRESS", None)
        ray_connect.connect("auto", timeout_s=60)
        _wait("second node", lambda: _alive(procs, tmp) and sum(n["Alive"] for n in ray.nodes()) == 2)
        for module in (sys.modules[__name__], ray_faults):
            ray.cloudpickle.register_pickle_by_value(module)
        yield {"tmp": tmp, "address": address, "env": env}
    finally:
        ray.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        _stop(procs, tmp)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def local_ref(tiny_whisper, tones, tmp_path):
    """The local engine's features and warning counts on the tones (the same talkative model)."""
    recipe = dict(name=str(tiny_whisper), window="trimmed")
    source = ManifestSource(tones)
    adapter = faulty(load_model, "forward_clips", warn=TALK, **recipe)
    space = _space(tmp_path / "local", adapter)
    report = _shown_once(extract, adapter, source, space, "mean", BATCH_SECONDS)
    hashes = [c.content_hash for c in report.clips]
    return dict(recipe=recipe, source=source, report=report, hashes=hashes, feats=space.gather(hashes))


def _shown_once(fn, *args):
    """``fn(*args)``, checking that the talkative model's warning, raised on every batch, was shown once."""
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("default")
        out = fn(*args)
    assert [str(w.message) for w in shown if str(w.message) == TALK] == [TALK]
    return out


def _space(root, adapter):
    return FeatureStore(root).space(adapter.name, adapter.info.revision, {**adapter.options(), "pooling": "mean"})


def _pid(engine: RayEngine, i: int) -> int:
    return ray.get(engine.pool._ping(i), timeout=60)["pid"]


def test_killing_an_actor_mid_run_loses_nothing_and_stores_nothing_twice(cluster, local_ref, tmp_path):
    slow = functools.partial(faulty, load_model, "forward_clips", delay=0.4, warn=TALK)  # ~12 batches of 0.4 s
    with RayEngine(local_ref["recipe"], num_actors=2, cpus_per_actor=0.5, factory=slow, timeout_s=60) as engine:
        pids = [_pid(engine, i) for i in range(2)]
        space = _space(tmp_path / "ray", engine)
        puts: Counter[str] = Counter()
        item = space.item  # every store (put, or the batched put_many) builds its item's bytes once

        def counted_item(h, feats):
            puts[h] += 1
            return item(h, feats)

        space.item = counted_item
        killed: list[int] = []

        def kill_once_busy() -> None:  # after the first batch is stored, kill an actor that holds batches
            _wait("first batch", lambda: puts, timeout=120, poll=0.02)
            busy = max(range(2), key=lambda i: engine.pool.load[i])
            os.kill(pids[busy], signal.SIGKILL)
            killed.append(busy)

        killer = threading.Thread(target=kill_once_busy, daemon=True)
        killer.start()
        report = _shown_once(extract, engine, local_ref["source"], space, "mean", BATCH_SECONDS)
        killer.join(5)
        assert killed, "the run ended before an actor could be killed"
        assert _pid(engine, killed[0]) != pids[killed[0]]  # Ray restarted the killed actor
    assert (report.computed, report.reused) == (24, 0) and report.clips == local_ref["report"].clips
    assert sorted(puts) == sorted(local_ref["hashes"]) and set(puts.values()) == {1}
    np.testing.assert_array_equal(space.gather(local_ref["hashes"]), local_ref["feats"])
    # the actors' warnings came back and were counted as the local engine counts them (one per batch; the
    # killed attempt's are lost with its process)
    assert local_ref["report"].warnings[f"UserWarning: {TALK}"] > 1
    assert report.warnings == local_ref["report"].warnings


def _cli(args: list[str], cluster: dict, home: Path, token: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """``speechprobe ARGS`` as a user on this machine runs it: its token in ~/.ray/auth_token only."""
    (home / ".ray").mkdir(parents=True, exist_ok=True)
    (home / ".ray" / "auth_token").write_text(token)
    env = {k: v for k, v in cluster["env"].items() if k not in ("RAY_AUTH_TOKEN", "RAY_AUTH_MODE", "RAY_ADDRESS")}
    env.update(HOME=str(home), MPLCONFIGDIR=str(tmp_path / "mpl"), PYTHONPATH=os.pathsep.join(sys.path))
    cmd = [sys.executable, "-c", "import sys; from speechprobe.cli import main; sys.exit(main())", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def _run_args(tiny_whisper, tones, out: Path, cache: Path) -> list[str]:
    return [
        "run",
        *("--models", str(tiny_whisper), "--tasks", str(tones), "--out", str(out), "--cache", str(cache)),
        *("--folds", "4", "--probes", "knn", "--window", "trimmed", "--baselines", "none", "--permutations", "0"),
        *("--no-embeddings", "--no-report", "--max-batch-seconds", str(BATCH_SECONDS)),
    ]


def test_run_with_address_auto_and_a_token_file_matches_the_local_run(cluster, tiny_whisper, tones, tmp_path):
    home = tmp_path / "home"
    local = _cli(_run_args(tiny_whisper, tones, tmp_path / "local", tmp_path / "c1"), cluster, home, "x", tmp_path)
    assert local.returncode == 0, local.stderr
    args = _run_args(tiny_whisper, tones, tmp_path / "ray", tmp_path / "c2") + ["--engine", "ray", "--address", "auto"]
    remote = _cli(args, cluster, home, os.environ["RAY_AUTH_TOKEN"], tmp_path)
    assert remote.returncode == 0, remote.stderr
    assert (tmp_path / "local" / "results.csv").read_bytes() == (tmp_path / "ray" / "results.csv").read_bytes()


def test_a_wrong_token_file_is_named_with_the_fix(cluster, tiny_whisper, tones, tmp_path):
    home = tmp_path / "home"
    args = _run_args(tiny_whisper, tones, tmp_path / "out", tmp_path / "cache") + [
        "--engine",
        "ray",
        "--address",
        "auto",
    ]
    r = _cli(args, cluster, home, "left-by-an-earlier-ray-instance", tmp_path)
    assert r.returncode != 0
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: cannot connect to the Ray cluster at {cluster['address']} (InvalidAuthToken)")
    assert str(home / ".ray" / "auth_token") in line and "RAY_AUTH_TOKEN" in line and "ray get-auth-token" in line
    assert "Traceback" not in r.stderr
