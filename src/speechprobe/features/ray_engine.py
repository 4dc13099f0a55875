"""Extraction on a Ray cluster: decode/resample tasks, one model actor per GPU (or CPU slots).

The results are those of :func:`speechprobe.features.extract.extract`, bit for bit:

- **Same batches.** The driver reads the clip stream, hashes each clip and forms batches with the
  same ``duration_batches`` call and cost as the local engine, over *all* clips, stored or not.
  Whole batches are shipped; Ray never re-blocks them.
- **Same forward.** Each batch goes through ``forward_halving`` on the same adapter code inside a
  model actor, which copies the driver's torch and BLAS/OpenMP thread counts (never Ray's
  ``OMP_NUM_THREADS=<CPUs>``): BLAS results on CPU can change in the last bits with the thread count.
- **Same store.** Features come back to the driver, which writes them with the store's atomic
  ``put``; workers need no access to the cache.
- **Same resume.** A batch whose clips are all stored is skipped; a batch with any clip missing
  is computed whole and only its missing clips are written.

Why Ray tasks + actors and not Ray Data: identical results pin the unit of work to a batch formed
by the driver from an ordered, lazily read stream (a manifest, a hub dataset, the synthetic suite).
Ray Data would either materialise the whole corpus up front (``from_items``: all audio in the
object store at once, against the streaming memory target) or need every source rewritten as a
remotely readable datasource; its own batching, re-blocking and operator fusion would have to be
switched off; and its iterator has no per-wait timeout or liveness check. Plain tasks + actors keep
memory bounded (at most ``2 x actors`` batches in flight), every wait bounded, and let the driver
resubmit a dead actor's batches.

Generic part, also the engine of zero-shot generation (:class:`speechprobe.zeroshot.runner.RayAnswers`):
:func:`connect`, :class:`Recipe` (how to build an object, e.g. an adapter or a zero-shot backend, from
picklable arguments), :func:`model_pool` and :class:`ActorPool` (actors that each build the object
once and apply module-level functions ``fn(obj, *args)`` to batches, with bounded waits and retries).
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..data.audio import resample
from ..data.clip import Clip, native_facts
from ..errors import SpeechprobeError
from ..memory import trim_heap
from .batching import duration_batches
from .extract import ClipItem, ExtractReport, forward_halving, stream_clips
from .store import FeatureSpace

log = logging.getLogger("speechprobe")

LOAD_MODEL = "speechprobe.models.registry:load_model"
FALLBACK = "run without --engine ray to run on this machine"
COST_CHUNK = 256  # clips whose batching cost is asked of an actor in one call
INFLIGHT_PER_ACTOR = 2  # batches queued per actor: one running, one ready to start
PREPARE_CPUS = 0.25  # Ray CPU share of one decode/resample task
DRIVER_RETRIES = 2  # resubmissions of a batch after Ray's own actor restarts and retries are spent
# Environment the model actors need to find weights offline, forwarded when set on the driver.
FORWARD_ENV = (
    "SPEECHPROBE_CACHE",
    "HF_HOME",
    "HF_HUB_CACHE",
    "HF_HUB_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "TOKENIZERS_PARALLELISM",
)


def _ray():
    try:
        import ray
    except ImportError:
        raise SpeechprobeError("the Ray engine needs Ray: pip install 'speechprobe[ray]'; or " + FALLBACK) from None
    return ray


# ----------------------------------------------------------------------------------- connecting


def _host_port(address: str) -> tuple[str, int] | None:
    """``host:port`` of a Ray address (``ray://`` client addresses included), else None."""
    addr = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = addr.rstrip("/").rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]") or "127.0.0.1", int(port)


def _resolve_address(address: str | None) -> str | None:
    """What to connect to: an address, or None to start a local Ray instance.

    ``None`` honours ``RAY_ADDRESS`` and otherwise starts a fresh local instance (never attaching
    silently to a stale ``ray start`` cluster); ``"auto"`` finds the cluster started on this
    machine with ``ray start``.
    """
    if address in (None, "", "local"):
        env = os.environ.get("RAY_ADDRESS", "")
        return env if address is None and env and env != "local" else None
    if address == "auto":
        try:
            from ray._private.services import canonicalize_bootstrap_address  # private: best effort

            found = canonicalize_bootstrap_address("auto")
        except Exception as e:
            raise SpeechprobeError(
                f"--address auto: no running Ray cluster found on this machine ({_first_line(e)}); "
                f"start one with `ray start --head`, pass --address HOST:PORT, or {FALLBACK}"
            ) from None
        return found or "auto"
    return address


def connect(address: str | None = None, timeout_s: float = 30.0) -> None:
    """Connect this process to Ray (once): an existing cluster at ``address``, or a local instance.

    Every step is bounded: an address is probed over TCP first (refused or silent within
    ``timeout_s`` -> :class:`SpeechprobeError` with the local fallback), and joining a cluster runs
    with a deadline, since Ray itself may retry for minutes.
    """
    ray = _ray()
    if ray.is_initialized():
        return
    target = _resolve_address(address)
    common = dict(include_dashboard=False, logging_level=logging.WARNING, ignore_reinit_error=True)
    if target is None:  # start a local instance: in this thread, since its processes die with their parent thread
        ray.init(address="local", **common)
        return
    hp = _host_port(target)
    if hp is not None:
        try:
            socket.create_connection(hp, timeout=min(timeout_s, 10.0)).close()
        except OSError as e:
            raise SpeechprobeError(
                f"cannot reach the Ray cluster at {target} ({e.strerror or e}); check the address "
                f"(`ray status` on the head node prints it) or {FALLBACK}"
            ) from None
    box: dict[str, BaseException | bool] = {}

    def join() -> None:
        try:
            ray.init(address=target, **common)
            box["ok"] = True
        except BaseException as e:
            box["error"] = e

    thread = threading.Thread(target=join, name="speechprobe-ray-connect", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if "error" in box:
        raise SpeechprobeError(
            f"cannot connect to the Ray cluster at {target} ({_first_line(box['error'])}); {FALLBACK}"
        ) from None
    if "ok" not in box:
        raise SpeechprobeError(
            f"the Ray cluster at {target} did not answer within {timeout_s:.0f} s "
            f"(is it a Ray head with the same Ray version?); {FALLBACK}"
        )


def _first_line(err: BaseException | bool) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


# --------------------------------------------------------------------------- generic actor pool


@dataclass(frozen=True)
class Recipe:
    """How to build an object inside an actor: ``factory(**kwargs)``.

    ``factory`` is ``"module:attribute"`` or a picklable callable. Recipes travel instead of the
    (large) objects they build.
    """

    factory: str | Callable[..., Any]
    kwargs: dict[str, Any] = field(default_factory=dict)

    def build(self) -> Any:
        fn = self.factory
        if isinstance(fn, str):
            module, _, attr = fn.partition(":")
            fn = getattr(importlib.import_module(module), attr)
        return fn(**self.kwargs)


def thread_profile(threads: int | None = None) -> dict[str, int]:
    """Thread counts of this process's compute libraries: torch intra-op and each native pool.

    ``threads`` sets them all to one number. Floating-point results of BLAS and torch kernels can
    depend on their thread count (e.g. numpy's OpenBLAS in the MFCC baseline), so actors copy the
    driver's counts by default: the same threads as the local engine on this machine.
    """
    import torch

    if threads:
        return {"torch": int(threads), "blas": int(threads), "openmp": int(threads)}
    prof = {"torch": torch.get_num_threads()}
    try:
        from threadpoolctl import threadpool_info

        for pool in threadpool_info():
            api = pool.get("user_api")
            if api in ("blas", "openmp"):
                prof[api] = max(prof.get(api, 0), int(pool.get("num_threads") or 0))
    except Exception as e:
        log.debug("threadpool_info: %s", e)
    return prof


class Host:
    """The body of a model actor: builds its object lazily, then applies functions to it.

    Built on first use (not in ``__init__``), so a restarted actor rebuilds it transparently and
    ``ping`` (run in its own concurrency group) answers while the object loads or computes.
    ``threads`` (a :func:`thread_profile`) replaces Ray's ``OMP_NUM_THREADS`` defaults.
    """

    def __init__(
        self, recipe: Recipe, threads: dict[str, int] | None = None, env: dict[str, str] | None = None
    ) -> None:
        os.environ.update(env or {})
        self.threads = dict(threads or {})
        self._limits: list[Any] = []
        if self.threads.get("blas"):  # native libraries loaded from now on read these
            for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
                os.environ[var] = str(self.threads["blas"])
        if self.threads.get("openmp"):
            os.environ["OMP_NUM_THREADS"] = str(self.threads["openmp"])
        if self.threads.get("torch"):
            import torch

            try:
                torch.set_num_interop_threads(self.threads["torch"])
            except RuntimeError:  # already started in this process
                pass
        self._limit_pools()
        self.recipe = recipe
        self.obj: Any = None
        self.calls = 0

    def _limit_pools(self) -> None:
        """Set the thread count of every native pool loaded so far (numpy's BLAS is, at start), then torch's.

        Torch last: its intra-op pool is one of the OpenMP pools, whose count (the driver's largest
        OpenMP pool) need not be torch's own on the driver.
        """
        limits = {k: v for k, v in self.threads.items() if k in ("blas", "openmp") and v}
        if limits:
            try:
                from threadpoolctl import threadpool_limits

                self._limits.append(threadpool_limits(limits=limits))
            except Exception as e:
                log.debug("threadpool_limits: %s", e)
        if self.threads.get("torch"):
            import torch

            torch.set_num_threads(self.threads["torch"])

    def _object(self) -> Any:
        if self.obj is None:
            self.obj = self.recipe.build()
            self._limit_pools()  # pools the build loaded (scipy's BLAS, torch's OpenMP, ...)
        return self.obj

    def apply(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(obj, *args, **kwargs)``; ``fn`` must be importable (or pickled by value)."""
        self.calls += 1
        return fn(self._object(), *args, **kwargs)

    def ping(self) -> dict[str, Any]:
        """Liveness and where the actor runs (answered from the ``control`` group)."""
        return {"pid": os.getpid(), "node": socket.gethostname(), "loaded": self.obj is not None, "calls": self.calls}


@dataclass
class Job:
    """One ``fn(obj, *args)`` call on some actor, resubmittable elsewhere."""

    fn: Callable[..., Any]
    args: tuple
    kwargs: dict
    deps: list = field(default_factory=list)  # ObjectRefs the call waits for (decode tasks)
    payload: Any = None  # the caller's bookkeeping
    ref: Any = None
    actor: int = -1
    attempts: int = 0
    submitted: float = 0.0


class ActorPool:
    """``num_actors`` actors, each holding ``recipe.build()``; every wait is bounded.

    Resources per actor: ``num_gpus`` GPUs (the object should then use device ``cuda``, which Ray
    maps to the actor's own GPU) and ``num_cpus`` CPUs. ``threads``: torch and BLAS/OpenMP threads
    in each actor (default: the driver's own counts, see :func:`thread_profile`). An actor that dies is
    restarted by Ray and its call retried (``max_restarts``, ``max_task_retries``);
    when those are spent the driver resubmits the call to another actor.
    """

    def __init__(
        self,
        recipe: Recipe,
        num_actors: int | None = None,
        num_cpus: float = 1.0,
        num_gpus: float = 0.0,
        threads: int | None = None,
        timeout_s: float = 30.0,
        max_restarts: int = 2,
        max_task_retries: int = 2,
    ) -> None:
        ray = _ray()
        if not ray.is_initialized():
            raise SpeechprobeError("Ray is not connected; call ray_engine.connect() first")
        self.timeout_s = float(timeout_s)
        total = ray.cluster_resources()
        cpus, gpus = float(total.get("CPU", 0)), float(total.get("GPU", 0))
        if num_gpus > 0:
            fits = int(gpus // num_gpus)
            if fits == 0:
                raise SpeechprobeError(
                    f"the Ray cluster has no GPU (resources: {_fmt(total)}); use --device cpu or {FALLBACK}"
                )
        else:  # leave one CPU for decoding tasks
            fits = max(1, int(max(cpus - 1.0, 0.0) // num_cpus)) if cpus >= num_cpus else 0
        if fits == 0 or (num_actors or 0) > fits or num_cpus > cpus:
            raise SpeechprobeError(
                f"the Ray cluster cannot hold {num_actors or 1} model actor(s) of {num_cpus:g} CPU"
                + (f" + {num_gpus:g} GPU" if num_gpus else "")
                + f" each (resources: {_fmt(total)}); ask for fewer actors or {FALLBACK}"
            )
        self.n = int(num_actors or fits)
        self.threads = thread_profile(threads)
        env = {k: os.environ[k] for k in FORWARD_ENV if os.environ.get(k)}
        cls = ray.remote(
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            max_restarts=max_restarts,
            max_task_retries=max_task_retries,
            concurrency_groups={"control": 1},
        )(Host)
        self.actors = [cls.remote(recipe, self.threads, env) for _ in range(self.n)]
        self.alive = [True] * self.n
        self.load = [0] * self.n
        self.resources = {"CPU": num_cpus, "GPU": num_gpus}
        self._wait_placed()
        free = ray.available_resources().get("CPU", 0.0)
        if free < PREPARE_CPUS:
            log.warning(
                "the Ray cluster has %.2g CPU free beside the model actors; decode tasks need %.2g each and will wait",
                free,
                PREPARE_CPUS,
            )

    # -- liveness

    def _ping(self, i: int):
        return self.actors[i].ping.options(concurrency_group="control").remote()

    def _wait_placed(self) -> None:
        """Every actor started within ``timeout_s`` (else: not enough free resources)."""
        ray = _ray()
        refs = [self._ping(i) for i in range(self.n)]
        _, waiting = ray.wait(refs, num_returns=len(refs), timeout=self.timeout_s)
        if waiting:
            self.close()
            raise SpeechprobeError(
                f"{len(waiting)} of {self.n} model actor(s) ({_fmt(self.resources)} each) did not start within "
                f"{self.timeout_s:.0f} s; the cluster's free resources are {_fmt(ray.available_resources())}. "
                f"Ask for fewer actors or {FALLBACK}"
            )
        for i, ref in enumerate(refs):
            try:
                ray.get(ref, timeout=self.timeout_s)
            except Exception as e:
                self.close()
                raise SpeechprobeError(f"model actor {i} failed to start: {_first_line(e)}; {FALLBACK}") from None

    def check_alive(self, indices: Iterable[int]) -> None:
        """Ping actors; a dead one is marked so; one that does not answer is an error (no hang)."""
        ray = _ray()
        for i in sorted(set(indices)):
            if not self.alive[i]:
                continue
            try:
                ray.get(self._ping(i), timeout=self.timeout_s)
            except ray.exceptions.GetTimeoutError:
                raise SpeechprobeError(
                    f"model actor {i} did not answer for {self.timeout_s:.0f} s (node lost or overloaded); "
                    f"what is stored so far is kept, rerun to resume, or {FALLBACK}"
                ) from None
            except ray.exceptions.RayActorError:
                self.alive[i] = False

    # -- calls

    def _pick(self, exclude: int = -1) -> int:
        live = [i for i in range(self.n) if self.alive[i] and i != exclude] or [
            i for i in range(self.n) if self.alive[i]
        ]
        if not live:
            raise SpeechprobeError(
                f"all {self.n} model actor(s) died; what is stored so far is kept, rerun to resume, or {FALLBACK}"
            )
        return min(live, key=lambda i: (self.load[i], i))

    def submit(self, job: Job, exclude: int = -1) -> Job:
        i = self._pick(exclude)
        job.actor, job.submitted = i, time.monotonic()
        job.attempts += 1
        job.ref = self.actors[i].apply.remote(job.fn, *job.args, **job.kwargs)
        self.load[i] += 1
        return job

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one call on the least loaded actor and wait for it (bounded, with liveness checks)."""
        job = self.submit(Job(fn, args, kwargs))
        return self.next_done([job])[1]

    def broadcast(self, fn: Callable[..., Any], *args: Any) -> list[Any]:
        """Run ``fn`` once on every actor (e.g. load the model everywhere); results in actor order."""
        jobs = []
        for i in range(self.n):
            job = Job(fn, args, {}, actor=i, attempts=1, submitted=time.monotonic())
            job.ref = self.actors[i].apply.remote(fn, *args)
            self.load[i] += 1
            jobs.append(job)
        out: dict[int, Any] = {}
        pending = list(jobs)
        while pending:
            job, value = self.next_done(pending)
            out[job.actor] = value
        if len(out) < self.n:
            raise SpeechprobeError(f"only {len(out)} of {self.n} actors answered; {FALLBACK}")
        return [out[i] for i in sorted(out)]

    def agree(self, fn: Callable[..., Any], *args: Any, what: Callable[[Any], str] = repr) -> Any:
        """``fn`` on every actor (loading the object everywhere); its answer, which every actor must share.

        Actors that answer differently run on nodes with other weights or library versions: an error
        naming both answers as ``what(answer)``.
        """
        first, *others = self.broadcast(fn, *args)
        for other in others:
            if other != first:
                raise SpeechprobeError(
                    f"model actors disagree: {what(first)} vs {what(other)}; "
                    f"every node must hold the same checkpoint and versions"
                )
        return first

    def next_done(self, jobs: list[Job]) -> tuple[Job, Any]:
        """Wait for the first of ``jobs`` to finish and remove it from the list.

        Waits ``timeout_s`` at a time; after each silent interval every busy actor must answer a
        ping and every decode task a job waits for must have finished. A call lost with its actor
        (after Ray's restarts and retries) is resubmitted to another actor.
        """
        ray = _ray()
        while True:
            by_ref = {j.ref: j for j in jobs}
            ready, _ = ray.wait(list(by_ref), num_returns=1, timeout=self.timeout_s)
            if not ready:
                self._check_stalled(jobs)
                continue
            job = by_ref[ready[0]]
            try:
                value = ray.get(ready[0], timeout=self.timeout_s)
            except ray.exceptions.RayTaskError as e:
                self._done(job, jobs)
                raise _unwrap(e) from None
            except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as e:
                self.load[job.actor] -= 1
                self.check_alive([job.actor])
                if job.attempts > DRIVER_RETRIES:
                    jobs.remove(job)
                    raise SpeechprobeError(
                        f"a batch failed {job.attempts} times with its actor ({_first_line(e)}); "
                        f"what is stored so far is kept, rerun to resume, or {FALLBACK}"
                    ) from None
                log.warning("model actor %d died (%s); resubmitting its batch", job.actor, _first_line(e))
                self.submit(job, exclude=job.actor)
                continue
            except ray.exceptions.ObjectLostError as e:
                self._done(job, jobs)
                raise SpeechprobeError(
                    f"a batch's input was lost with its node ({_first_line(e)}); rerun to resume"
                ) from None
            self._done(job, jobs)
            return job, value

    def _done(self, job: Job, jobs: list[Job]) -> None:
        self.load[job.actor] -= 1
        jobs.remove(job)

    def _check_stalled(self, jobs: list[Job]) -> None:
        ray = _ray()
        now = time.monotonic()
        deps = [d for j in jobs for d in j.deps]
        if deps:
            _, unfinished = ray.wait(deps, num_returns=len(deps), timeout=0)
            late = [j for j in jobs if any(d in unfinished for d in j.deps) and now - j.submitted > self.timeout_s]
            if late:
                raise SpeechprobeError(
                    f"decode tasks waited over {self.timeout_s:.0f} s for a CPU "
                    f"(free: {_fmt(ray.available_resources())}); "
                    f"leave CPUs free beside the model actors (fewer actors or CPUs per actor), or {FALLBACK}"
                )
        self.check_alive(j.actor for j in jobs)
        for j in jobs:  # an actor found dead: its calls are lost, send them elsewhere
            if not self.alive[j.actor]:
                self.load[j.actor] -= 1
                self.submit(j, exclude=j.actor)

    def close(self) -> None:
        ray = _ray()
        for actor in getattr(self, "actors", []):
            try:
                ray.kill(actor, no_restart=True)
            except Exception as e:
                log.debug("ray.kill: %s", e)
        self.actors = []


def _unwrap(err) -> BaseException:
    """The remote exception: a SpeechprobeError stays one clear line; others keep Ray's traceback."""
    cause = getattr(err, "cause", None)
    if isinstance(cause, SpeechprobeError):
        return type(cause)(str(cause))
    try:
        return err.as_instanceof_cause()
    except Exception:
        return err


def _fmt(resources: dict) -> str:
    keep = {k: v for k, v in resources.items() if k in ("CPU", "GPU") and v}
    return ", ".join(f"{k} {v:g}" for k, v in sorted(keep.items())) or "none"


# ------------------------------------------------------------------ functions run on the actors


def _profile(adapter) -> dict[str, Any]:
    """What the driver needs of an adapter: its info, options, rate and window."""
    return {
        "info": adapter.info,
        "options": adapter.options(),
        "sample_rate": adapter.sample_rate,
        "max_seconds": adapter.max_seconds(),
    }


def _window_costs(adapter, durations: Sequence[float], limit: float | None) -> list[float]:
    """The local engine's batching cost of each clip (its ``cost``)."""
    return [adapter.window_seconds(min(d, limit or float("inf"))) for d in durations]


def _forward_batch(
    adapter, audios: list[np.ndarray], pooling: str, ids: list[str], keep: list[int], facts: list[dict]
) -> np.ndarray:
    """One whole batch, as the local engine runs it; returns the rows of the clips to store."""
    audios = [np.array(a, dtype=np.float32) for a in audios]  # writable copies, as the local engine passes
    feats = forward_halving(adapter, audios, pooling, facts)
    trim_heap()  # the actor's heap, as the local engine trims its own
    bad = ~np.isfinite(feats).reshape(len(feats), -1).all(axis=1)
    if bad.any():
        names = ", ".join(i for i, b in zip(ids, bad) if b)
        raise SpeechprobeError(
            f"{adapter.name} produced NaN/Inf features for {names}; try --dtype float32 or report it"
        )
    return np.ascontiguousarray(feats[keep])


def _model_inputs(raw: list[tuple[np.ndarray, int]], rate: int, limit: float | None) -> list[np.ndarray]:
    """Decode task: resample to the model's rate and cut to its window (as the local engine does)."""
    out = []
    for audio, sr in raw:
        a = resample(audio, sr, rate)
        out.append(a[: int(limit * rate)] if limit is not None else a)
    return out


# ----------------------------------------------------------------------------------- extraction


def _default_resources(recipe: dict, gpus_per_actor: float | None, cpus_per_actor: float | None) -> tuple[float, float]:
    on_gpu = str(recipe.get("device", "cpu")).startswith("cuda")
    gpus = gpus_per_actor if gpus_per_actor is not None else (1.0 if on_gpu else 0.0)
    cpus = cpus_per_actor if cpus_per_actor is not None else 1.0
    return cpus, gpus


def model_pool(
    recipe: Recipe,
    num_actors: int | None = None,
    timeout_s: float = 30.0,
    cpus_per_actor: float | None = None,
    gpus_per_actor: float | None = None,
    threads: int | None = None,
) -> ActorPool:
    """Actors for a model ``recipe`` whose ``device`` argument picks their resources.

    One GPU per actor when ``device`` is cuda (the actor then builds on ``cuda``, its own GPU), else
    one CPU; ``cpus_per_actor`` / ``gpus_per_actor`` override. Ray must be connected (:func:`connect`).
    """
    kwargs = dict(recipe.kwargs)
    cpus, gpus = _default_resources(kwargs, gpus_per_actor, cpus_per_actor)
    if gpus > 0 and str(kwargs.get("device", "cpu")).startswith("cuda"):
        kwargs["device"] = "cuda"  # Ray sets CUDA_VISIBLE_DEVICES to the actor's own GPU(s)
    return ActorPool(Recipe(recipe.factory, kwargs), num_actors, cpus, gpus, threads, timeout_s)


class RayEngine:
    """Model actors for one model (a ``load_model`` recipe), reused across tasks.

    For metadata it looks like the adapter (``name``, ``info``, ``options()``), so callers build the
    feature space as for a local adapter, then call :meth:`extract` instead of ``extract(adapter, ...)``::

        with RayEngine(dict(name="whisper-base", window="trimmed"), address="auto") as engine:
            space = store.space(engine.name, engine.info.revision, {**engine.options(), "pooling": "mean"})
            report = engine.extract(source, space)
    """

    def __init__(
        self,
        model_recipe: dict[str, Any],
        address: str | None = None,
        num_actors: int | None = None,
        timeout_s: float = 30.0,
        cpus_per_actor: float | None = None,
        gpus_per_actor: float | None = None,
        threads: int | None = None,
        factory: str | Callable[..., Any] = LOAD_MODEL,
    ) -> None:
        connect(address, timeout_s)
        self.pool = model_pool(
            Recipe(factory, model_recipe), num_actors, timeout_s, cpus_per_actor, gpus_per_actor, threads
        )
        try:
            first = self.pool.agree(
                _profile, what=lambda p: f"{p['info'].name} weights {p['info'].revision} {p['options']}"
            )
        except BaseException:
            self.pool.close()
            raise
        self.info = first["info"]  # the adapter's AdapterInfo, as the actors built it
        self._options: dict[str, object] = first["options"]
        self.sample_rate: int = first["sample_rate"]
        self.max_seconds: float | None = first["max_seconds"]

    @property
    def name(self) -> str:
        return self.info.name

    def options(self) -> dict[str, object]:
        """The adapter's ``options()`` (a fresh dict, as an adapter returns)."""
        return dict(self._options)

    def __enter__(self) -> RayEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.pool.close()

    def _check_space(self, space: FeatureSpace) -> None:
        weights = space.meta.get("weights")
        options = space.meta.get("options") or {}
        clash = {k: v for k, v in self._options.items() if k in options and options[k] != v}
        if (weights and weights != self.info.revision) or clash:
            raise SpeechprobeError(
                f"{space.root}: this feature space holds weights {weights} {options}, but the model actors "
                f"loaded {self.info.revision} {self._options}"
            )

    def extract(
        self,
        clips: Iterable[Clip],
        space: FeatureSpace,
        pooling: str = "mean",
        max_batch_seconds: float = 120.0,
        progress: bool = False,
        desc: str = "extract",
    ) -> ExtractReport:
        """``extract(adapter, clips, space, ...)`` on the actors; the same report and stored features."""
        ray = _ray()
        self._check_space(space)
        report = ExtractReport()
        limit, rate, name = self.max_seconds, self.sample_rate, self.info.name
        prepare = ray.remote(_model_inputs).options(num_cpus=PREPARE_CPUS, max_retries=3)

        def costed() -> Iterator[ClipItem]:
            chunk: list[ClipItem] = []
            for p in stream_clips(clips, report, limit, name):
                chunk.append(p)
                if len(chunk) >= COST_CHUNK:
                    yield from self._with_costs(chunk, limit)
                    chunk = []
            if chunk:
                yield from self._with_costs(chunk, limit)

        bar = tqdm(desc=desc, unit="clip", disable=not progress, leave=False)
        inflight: list[Job] = []
        pending: set[str] = set()  # hashes whose batch is in flight: "stored" for later batches

        def finish(job: Job, feats: np.ndarray) -> None:
            hashes, n = job.payload
            for h, f in zip(hashes, feats):
                space.put(h, f)
                pending.discard(h)
            bar.update(n)

        try:
            for batch in duration_batches(costed(), lambda p: p.cost, max_batch_seconds):
                unique = list({p.meta.content_hash: p for p in batch}.values())
                keep = [
                    i
                    for i, p in enumerate(unique)
                    if p.meta.content_hash not in pending and not space.has(p.meta.content_hash)
                ]
                missing = [unique[i].meta.content_hash for i in keep]
                report.computed += len(missing)
                report.reused += len(batch) - len(missing)
                if not missing:
                    bar.update(len(batch))
                    continue
                inputs = prepare.remote([(p.clip.audio, p.clip.sample_rate) for p in unique], rate, limit)
                ids = [p.meta.id for p in unique]
                job = Job(
                    _forward_batch,
                    (inputs, pooling, ids, keep, [native_facts(p.clip) for p in unique]),
                    {},
                    deps=[inputs],
                    payload=(missing, len(batch)),
                )
                inflight.append(self.pool.submit(job))
                pending.update(missing)
                while len(inflight) >= INFLIGHT_PER_ACTOR * self.pool.n:
                    finish(*self.pool.next_done(inflight))
            while inflight:
                finish(*self.pool.next_done(inflight))
        finally:
            for job in inflight:  # interrupted: drop queued work (finished batches are stored)
                try:
                    ray.cancel(job.ref)
                except Exception as e:
                    log.debug("ray.cancel: %s", e)
            bar.close()
        return report

    def _with_costs(self, chunk: list[ClipItem], limit: float | None) -> list[ClipItem]:
        costs = self.pool.call(_window_costs, [p.meta.duration for p in chunk], limit)
        for p, c in zip(chunk, costs):
            p.cost = c
        return chunk


def extract_ray(
    model_recipe: dict[str, Any],
    clips: Iterable[Clip],
    space: FeatureSpace,
    pooling: str = "mean",
    max_batch_seconds: float = 120.0,
    address: str | None = None,
    num_actors: int | None = None,
    progress: bool = False,
    timeout_s: float = 30.0,
    *,
    desc: str = "extract",
    cpus_per_actor: float | None = None,
    gpus_per_actor: float | None = None,
    threads: int | None = None,
) -> ExtractReport:
    """Extract ``clips`` into ``space`` on Ray; ``model_recipe`` holds ``load_model``'s arguments.

    Stored features are bit-identical to ``extract(load_model(**model_recipe), clips, space, ...)``
    run on the driver's machine: same batches, same forward, and actors use the driver's torch and
    BLAS thread counts unless ``threads`` says otherwise (fewer threads on CPU may change the last
    bits of BLAS results). Starts the actors, extracts, and stops them; use :class:`RayEngine` to
    keep them across several sources.
    """
    with RayEngine(
        model_recipe,
        address,
        num_actors,
        timeout_s,
        cpus_per_actor=cpus_per_actor,
        gpus_per_actor=gpus_per_actor,
        threads=threads,
    ) as engine:
        return engine.extract(clips, space, pooling, max_batch_seconds, progress, desc)


__all__ = ["ActorPool", "Host", "Job", "RayEngine", "Recipe", "connect", "extract_ray", "model_pool", "thread_profile"]
