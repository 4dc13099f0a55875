"""Zero-shot on the Ray engine against the local one: identical files, resume, a dying worker, bad addresses.

A tiny Qwen2-Audio answers 6 tones labelled with words it knows, in batches of 2 (3 batches, 2 in
flight on the one model actor that a 2-CPU Ray instance holds). The third clip repeats the first
one's audio: answered by a batch still in flight when its own batch is looked up, it must still be a
cache hit, as in a local run.
"""

from __future__ import annotations

import functools
import json
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

ray = pytest.importorskip("ray")

from ray_faults import faulty
from speechprobe.zeroshot import ZeroShotConfig, load_backend, run_zeroshot
from speechprobe.zeroshot import runner as runner_mod

CLIPS = (
    ("up_0", "up", 180.0),
    ("down_0", "down", 300.0),
    ("up_0_again", "up", None),
    ("stop_0", "stop", 520.0),
    ("down_1", "down", 320.0),
    ("stop_1", "stop", 480.0),
)  # None: a copy of the first file


@pytest.fixture(scope="module")
def words(tmp_path_factory):
    """A manifest of 6 short tones labelled up, down, stop; the third is the first one's file, copied."""
    root = tmp_path_factory.mktemp("words")
    rng = np.random.default_rng(0)
    for name, _, f0 in CLIPS:
        if f0 is None:
            shutil.copy(root / f"{CLIPS[0][0]}.wav", root / f"{name}.wav")
            continue
        t = np.arange(int(16000 * rng.uniform(0.3, 0.6))) / 16000
        sf.write(
            root / f"{name}.wav",
            (0.3 * np.sin(2 * np.pi * f0 * t) + 0.02 * rng.standard_normal(len(t))).astype(np.float32),
            16000,
        )
    table = pd.DataFrame({"path": [f"{n}.wav" for n, _, _ in CLIPS], "label": [lab for _, lab, _ in CLIPS]})
    table.to_csv(root / "words.csv", index=False)
    return root / "words.csv"


def _cfg(tmp_path, model, words, name: str, **kw) -> ZeroShotConfig:
    return ZeroShotConfig(
        models=[str(model)],
        tasks=[str(words)],
        out=tmp_path / name,
        prompts=["choose", "question"],
        batch_size=2,
        max_new_tokens=3,
        cache=tmp_path / f"cache-{name}",
        progress=False,
        **kw,
    )


def _ray_cfg(tmp_path, model, words, name: str = "ray") -> ZeroShotConfig:
    return _cfg(tmp_path, model, words, name, engine="ray", ray_actors=1)


@pytest.fixture(scope="module")
def local(tiny_qwen, words, tmp_path_factory) -> ZeroShotConfig:
    """The reference: a local run, on one torch thread as every test here (conftest's ``_one_thread``)."""
    cfg = _cfg(tmp_path_factory.mktemp("reference"), tiny_qwen, words, "local")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_zeroshot(cfg)
    finally:
        torch.set_num_threads(before)
    return cfg


def _outputs(cfg: ZeroShotConfig, model) -> dict[str, bytes]:
    files = ("results.csv", "zeroshot/results.csv", f"zeroshot/{model.name}/words.csv")
    return {f: (cfg.out / f).read_bytes() for f in files}


def _zeroshot_manifest(cfg: ZeroShotConfig) -> dict:
    return json.loads((cfg.out / "manifest.json").read_text())["zeroshot"]


def _task_info(cfg: ZeroShotConfig, model) -> dict:
    info = _zeroshot_manifest(cfg)["tasks"]["words"]["by_model"][model.name]
    info.pop("seconds")
    return info


def _cache_files(cfg: ZeroShotConfig) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (cfg.cache / "zeroshot").rglob("*.json")}


@pytest.mark.slow
def test_ray_answers_are_identical_to_local(ray_session, local, tiny_qwen, words, tmp_path):
    remote = _ray_cfg(tmp_path, tiny_qwen, words)
    rows = run_zeroshot(remote)
    # byte-identical results.csv rows and per-clip responses (answers, parsed labels, label scores)
    assert _outputs(remote, tiny_qwen) == _outputs(local, tiny_qwen)
    pd.testing.assert_frame_equal(rows, pd.read_csv(local.out / "zeroshot" / "results.csv"), check_dtype=False)
    responses = pd.read_csv(remote.out / "zeroshot" / tiny_qwen.name / "words.csv")
    modes = {
        "generate",
        "likelihood",
        "likelihood_raw",
        "likelihood_cc",
        "likelihood_pmi",
        "likelihood_bc",
        "likelihood_pm",
    }
    assert len(responses) == 6 * 2 * 7 and set(responses["mode"]) == modes
    lik = responses[responses["mode"] == "likelihood"]
    assert lik["scores"].nunique() > 1 and set(json.loads(lik["scores"].iloc[0])) == {"down", "stop", "up"}
    same = responses.groupby("id")["answer"].apply(lambda a: tuple(a.fillna("")))
    assert same["up_0.wav"] == same["up_0_again.wav"]  # one audio, one set of answers
    # the same cache records under the same keys, and the same bookkeeping: the repeated clip is a hit;
    # beside the 5 clips' answers, each prompt's scores on the 4 content-free inputs
    assert _cache_files(remote) == _cache_files(local) and len(_cache_files(local)) == 5 * 4 + 2 * 4
    info = _task_info(remote, tiny_qwen)
    assert info == _task_info(local, tiny_qwen)
    assert (info["answers_computed"], info["answers_from_cache"], info["clips_encoded"]) == (20, 4, 5)
    a, b = _zeroshot_manifest(local), _zeroshot_manifest(remote)
    for m in (a, b):
        del m["config"]["out"], m["config"]["cache"]  # each run's own directories
    assert (b["config"], b["models"], b["cache"]["hits"]) == (a["config"], a["models"], a["cache"]["hits"])
    assert a["engine"] == {"name": "local"}
    assert b["engine"] == {"name": "ray", "address": None, "actors": {tiny_qwen.name: 1}}


@pytest.mark.slow
def test_resume_after_a_partial_ray_run(ray_session, local, tiny_qwen, words, tmp_path, monkeypatch):
    remote = _ray_cfg(tmp_path, tiny_qwen, words)
    monkeypatch.setattr(runner_mod, "LOAD_BACKEND", functools.partial(faulty, load_backend, "encode", stop_at=2))
    with pytest.raises(RuntimeError, match="stopped mid-run"):
        run_zeroshot(remote)  # the second batch fails on the actor
    assert len(_cache_files(remote)) == 2 * 4 and not (remote.out / "results.csv").exists()
    monkeypatch.undo()
    run_zeroshot(remote)
    assert _outputs(remote, tiny_qwen) == _outputs(local, tiny_qwen)
    info = _task_info(remote, tiny_qwen)
    # the first batch comes from the cache, and so does the repeated clip; 3 clips are encoded
    assert (info["answers_computed"], info["answers_from_cache"], info["clips_encoded"]) == (12, 12, 3)
    assert _cache_files(remote) == _cache_files(local)


@pytest.mark.slow
def test_a_worker_that_dies_loses_nothing(ray_session, local, tiny_qwen, words, tmp_path, monkeypatch):
    marker = tmp_path / "crash-once"
    marker.touch()
    monkeypatch.setattr(
        runner_mod, "LOAD_BACKEND", functools.partial(faulty, load_backend, "encode", crash_marker=str(marker))
    )
    remote = _ray_cfg(tmp_path, tiny_qwen, words)
    run_zeroshot(remote)
    assert not marker.exists()  # a worker died (os._exit) on a batch; Ray restarted it and retried the batch
    assert _outputs(remote, tiny_qwen) == _outputs(local, tiny_qwen)
    assert _task_info(remote, tiny_qwen) == _task_info(local, tiny_qwen)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_address_fails_fast_from_the_command_line(tmp_path):
    port = _closed_port()
    t0 = time.monotonic()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "speechprobe.cli",
            "zeroshot",
            "--models",
            "whisper-base",
            "--tasks",
            "spoken_word",
            "--out",
            str(tmp_path / "run"),
            "--engine",
            "ray",
            "--address",
            f"127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"error: cannot reach the Ray cluster at 127.0.0.1:{port} (")
    assert r.stderr.rstrip().endswith("or run without --engine ray to run on this machine")
    assert len(r.stderr.strip().splitlines()) == 1 and time.monotonic() - t0 < 60
    assert not (tmp_path / "run").exists()  # nothing was written, nothing generated
