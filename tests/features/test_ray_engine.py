"""The Ray engine against the local one: bit-identical features, resume, dead workers, bad addresses.

One local Ray instance (2 CPUs) serves the whole module, and one set of model actors serves the
tests that need no faulty model (starting actors is the slow part). Local fallback hints and
bounded waits are checked without a cluster.
"""

from __future__ import annotations

import functools
import json
import socket
import time

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from ray_faults import faulty
from speechprobe import ray_connect, ray_pool
from speechprobe.data.manifest import ManifestSource
from speechprobe.errors import SpeechprobeError
from speechprobe.features.extract import extract
from speechprobe.features.ray_engine import RayEngine
from speechprobe.features.store import FeatureStore
from speechprobe.models.registry import load_model

BATCH_SECONDS = 3.0  # several batches of 1-3 tones, several in flight
HALF = dict(num_actors=1, cpus_per_actor=0.5)  # two engines at once (shared + faulty) leave CPU for decode tasks


def _threads_here(_obj):
    return ray_pool.thread_profile()


faulty_model = functools.partial(faulty, load_model, "forward_clips")  # a real adapter failing on chosen forwards


def _root_conftest():
    """tests/conftest.py as a module (its helpers, for module-scoped fixtures)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "_speechprobe_tests_root_conftest", Path(__file__).parents[1] / "conftest.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _space(root, adapter, pooling="mean"):
    return FeatureStore(root).space(adapter.name, adapter.info.revision, {**adapter.options(), "pooling": pooling})


@pytest.fixture(scope="module")
def ref(tiny_whisper, tmp_path_factory):
    """Recipe, source, and the local engine's report and features (the reference), trimmed tiny Whisper."""
    tone_dataset = _root_conftest().tone_dataset
    recipe = dict(name=str(tiny_whisper), window="trimmed")
    adapter = load_model(**recipe)
    source = ManifestSource(tone_dataset(tmp_path_factory.mktemp("tones")))
    space = _space(tmp_path_factory.mktemp("local"), adapter)
    report = extract(adapter, source, space, "mean", BATCH_SECONDS)
    hashes = [c.content_hash for c in report.clips]
    return dict(recipe=recipe, adapter=adapter, source=source, report=report, feats=space.gather(hashes), hashes=hashes)


@pytest.fixture(scope="module")
def engine(ray_session, ref):
    """Model actors for the reference recipe, shared by the tests (actor start-up is the slow part)."""
    with RayEngine(ref["recipe"], **HALF) as eng:
        yield eng


@pytest.mark.slow
def test_ray_features_are_bit_identical_to_local(ref, engine, tmp_path):
    space = _space(tmp_path / "ray", ref["adapter"])
    report = extract(engine, ref["source"], space, "mean", BATCH_SECONDS)
    assert report.clips == ref["report"].clips and report.truncated == ref["report"].truncated
    assert (report.computed, report.reused) == (24, 0)
    np.testing.assert_array_equal(space.gather(ref["hashes"]), ref["feats"])
    again = extract(engine, ref["source"], space, "mean", BATCH_SECONDS)
    assert (again.computed, again.reused) == (0, 24)
    # The actor runs torch and its BLAS/OpenMP pools on the driver's thread counts, not Ray's OMP_NUM_THREADS.
    actor_threads = ray.get(engine.pool.actors[0].apply.remote(_threads_here), timeout=30)
    assert actor_threads == ray_pool.thread_profile()


@pytest.mark.slow
def test_resume_after_a_partial_ray_run(ref, engine, tmp_path):
    space = _space(tmp_path / "ray", ref["adapter"])
    stopping = RayEngine({**ref["recipe"], "stop_at": 4}, factory=faulty_model, **HALF)
    with stopping, pytest.raises(RuntimeError, match="stopped mid-run"):
        extract(stopping, ref["source"], space, "mean", BATCH_SECONDS)
    done = sum(space.has(h) for h in ref["hashes"])
    assert 0 < done < 24
    report = extract(engine, ref["source"], space, "mean", BATCH_SECONDS)
    # Only clips missing from the store are computed: nothing stored is recomputed.
    assert (report.computed, report.reused) == (24 - done, done)
    np.testing.assert_array_equal(space.gather(ref["hashes"]), ref["feats"])


@pytest.mark.slow
def test_a_worker_that_dies_loses_nothing(ref, ray_session, tmp_path):
    marker = tmp_path / "crash-once"
    marker.touch()
    space = _space(tmp_path / "ray", ref["adapter"])
    recipe = {**ref["recipe"], "crash_marker": str(marker)}
    with RayEngine(recipe, factory=faulty_model, **HALF) as crashing:
        report = extract(crashing, ref["source"], space, "mean", BATCH_SECONDS)
    assert not marker.exists()  # a worker died (os._exit) on a batch; Ray restarted it and retried the batch
    assert (report.computed, report.reused) == (24, 0)
    np.testing.assert_array_equal(space.gather(ref["hashes"]), ref["feats"])


@pytest.mark.slow
def test_pipeline_results_csv_identical_with_ray(ray_session, tiny_whisper, tones, tmp_path):
    """``run`` with ``engine="ray"`` (actors for the tiny Whisper and for the MFCC baseline, whose numpy
    BLAS must run on the driver's thread count) writes the local run's results.csv byte for byte."""
    from speechprobe import pipeline
    from speechprobe.config import RunConfig

    def cfg(name, **engine):
        return RunConfig.of(
            models=[str(tiny_whisper)],
            tasks=[str(tones)],
            out=tmp_path / name,
            cache=tmp_path / f"cache-{name}",
            folds=4,
            baselines=["mfcc"],
            window="trimmed",
            probes=["knn", "linear"],
            progress=False,
            permutations=0,
            embeddings=False,
            report=False,
            max_batch_seconds=BATCH_SECONDS,
            **engine,
        )

    pipeline.run(cfg("local"))
    pipeline.run(cfg("ray", engine="ray", ray_actors=1))
    assert (tmp_path / "local" / "results.csv").read_bytes() == (tmp_path / "ray" / "results.csv").read_bytes()
    extraction = json.loads((tmp_path / "ray" / "manifest.json").read_text())["extraction"]
    assert sorted(v["computed"] for v in extraction.values()) == [24, 24, 24]  # model, mfcc, acoustic cues


@pytest.mark.slow
def test_too_many_actors_is_a_clear_error(ref, ray_session):
    with pytest.raises(SpeechprobeError, match="cannot hold 5 model actor.*run without --engine ray"):
        RayEngine(ref["recipe"], num_actors=5)


# ----------------------------------------------------------------- addresses (no Ray cluster needed)


@pytest.fixture
def not_connected(monkeypatch):
    """connect() as in a fresh process; ray.init must not be reached unless patched."""
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # leave this process's token settings alone


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_address_fails_fast_with_the_local_hint(not_connected, monkeypatch):
    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("ray.init reached"))
    t0 = time.monotonic()
    with pytest.raises(
        SpeechprobeError, match=r"cannot reach the Ray cluster at 127\.0\.0\.1:\d+ .*run without --engine ray"
    ):
        ray_connect.connect(f"127.0.0.1:{_closed_port()}", timeout_s=5)
    assert time.monotonic() - t0 < 5


def test_a_silent_cluster_is_bounded_by_the_timeout(not_connected, monkeypatch):
    """The port answers TCP but Ray never finishes joining: a deadline, not a hang."""
    monkeypatch.setattr(ray, "init", lambda *a, **k: time.sleep(60))
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        t0 = time.monotonic()
        with pytest.raises(SpeechprobeError, match="did not answer within 1 s.*run without --engine ray"):
            ray_connect.connect(f"127.0.0.1:{listener.getsockname()[1]}", timeout_s=1)
        assert time.monotonic() - t0 < 5


def test_ray_errors_while_joining_are_one_line(not_connected, monkeypatch):
    def refuse(*a, **k):
        raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379\nlong details")

    monkeypatch.setattr(ray, "init", refuse)
    monkeypatch.setattr(ray_connect.socket, "create_connection", lambda *a, **k: socket.socket())
    monkeypatch.setattr(ray_connect, "_check_auth", lambda *a: None)  # 10.0.0.1 is not a Ray cluster
    with pytest.raises(
        SpeechprobeError, match=r"^cannot connect to the Ray cluster at 10\.0\.0\.1:6379 \(Failed to connect"
    ):
        ray_connect.connect("10.0.0.1:6379", timeout_s=5)
