"""A pool of Ray actors that each build one object (a model adapter, a zero-shot backend) once.

Shared by extraction (:mod:`speechprobe.features.ray_engine`) and zero-shot generation
(:class:`speechprobe.zeroshot.runner.RayAnswers`), so it sits below both, beside the other
parallelism helpers. :class:`Recipe` says how to build the object from picklable arguments;
:func:`model_pool` and :class:`ActorPool` start actors that apply module-level functions
``fn(obj, *args)`` to batches, with bounded waits, liveness checks and resubmission of a dead
actor's work. Actors run on the driver's torch and BLAS/OpenMP thread counts (:func:`thread_profile`),
never Ray's ``OMP_NUM_THREADS=<CPUs>``: BLAS results on CPU can change in the last bits with the
thread count.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import SpeechprobeError
from .ray_connect import FALLBACK, first_line, ray_module

log = logging.getLogger("speechprobe")

INFLIGHT_PER_ACTOR = 2  # batches queued per actor: one running, one ready to start
PREPARE_CPUS = 0.25  # Ray CPU share of one decode/resample task, left free beside the actors
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


@dataclass(frozen=True)
class Recipe:
    """How to build an object inside an actor: ``factory(**kwargs)``, then ``wrap(obj)`` if given.

    ``factory`` and ``wrap`` are ``"module:attribute"`` or picklable callables. Recipes travel
    instead of the (large) objects they build. ``wrap`` lets a caller keep per-actor state beside
    the object (extraction wraps each adapter in its local engine, with its out-of-memory state).
    """

    factory: str | Callable[..., Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    wrap: str | Callable[[Any], Any] | None = None

    def build(self) -> Any:
        obj = _resolve(self.factory)(**self.kwargs)
        return obj if self.wrap is None else _resolve(self.wrap)(obj)


def _resolve(fn: str | Callable[..., Any]) -> Callable[..., Any]:
    if isinstance(fn, str):
        module, _, attr = fn.partition(":")
        return getattr(importlib.import_module(module), attr)
    return fn


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
        ray = ray_module()
        if not ray.is_initialized():
            raise SpeechprobeError("Ray is not connected; call ray_connect.connect() first")
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
        """Every actor started within :func:`start_deadline` (else: not enough free resources, or a worker
        that failed: the error quotes the end of the newest worker logs)."""
        ray = ray_module()
        refs = [self._ping(i) for i in range(self.n)]
        deadline = start_deadline(self.timeout_s)
        _, waiting = ray.wait(refs, num_returns=len(refs), timeout=deadline)
        if waiting:
            logs = worker_log_tail()
            self.close()
            raise SpeechprobeError(
                f"{len(waiting)} of {self.n} model actor(s) ({_fmt(self.resources)} each) did not start within "
                f"{deadline:.0f} s; the cluster's free resources are {_fmt(ray.available_resources())}. "
                f"Ask for fewer actors or {FALLBACK}" + (f". Worker log: {logs}" if logs else "")
            )
        for i, ref in enumerate(refs):
            try:
                ray.get(ref, timeout=self.timeout_s)
            except Exception as e:
                self.close()
                raise SpeechprobeError(f"model actor {i} failed to start: {first_line(e)}; {FALLBACK}") from None

    def check_alive(self, indices: Iterable[int]) -> None:
        """Ping actors; a dead one is marked so; one that does not answer is an error (no hang).

        An actor Ray is restarting answers ``ActorUnavailableError``: it stays in the pool.
        """
        ray = ray_module()
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
            except getattr(ray.exceptions, "ActorUnavailableError", ()):
                pass  # restarting (Ray's max_restarts): its calls are retried there, so it stays in the pool
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
        ray = ray_module()
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
                        f"a batch failed {job.attempts} times with its actor ({first_line(e)}); "
                        f"what is stored so far is kept, rerun to resume, or {FALLBACK}"
                    ) from None
                log.warning("model actor %d died (%s); resubmitting its batch", job.actor, first_line(e))
                self.submit(job, exclude=job.actor)
                continue
            except ray.exceptions.ObjectLostError as e:
                self._done(job, jobs)
                raise SpeechprobeError(
                    f"a batch's input was lost with its node ({first_line(e)}); rerun to resume"
                ) from None
            self._done(job, jobs)
            return job, value

    def _done(self, job: Job, jobs: list[Job]) -> None:
        self.load[job.actor] -= 1
        jobs.remove(job)

    def _check_stalled(self, jobs: list[Job]) -> None:
        ray = ray_module()
        now = time.monotonic()
        deps = [d for j in jobs for d in j.deps]
        if deps:
            _, unfinished = ray.wait(deps, num_returns=len(deps), timeout=0)
            patience = start_deadline(self.timeout_s)  # a busy machine decodes slowly: the wait scales with its load
            late = [j for j in jobs if any(d in unfinished for d in j.deps) and now - j.submitted > patience]
            if late:
                raise SpeechprobeError(
                    f"decode tasks waited over {patience:.0f} s for a CPU "
                    f"(free: {_fmt(ray.available_resources())}); "
                    f"leave CPUs free beside the model actors (fewer actors or CPUs per actor), or {FALLBACK}"
                )
        self.check_alive(j.actor for j in jobs)
        for j in jobs:  # an actor found dead: its calls are lost, send them elsewhere
            if not self.alive[j.actor]:
                self.load[j.actor] -= 1
                self.submit(j, exclude=j.actor)

    def close(self) -> None:
        ray = ray_module()
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
    one CPU; ``cpus_per_actor`` / ``gpus_per_actor`` override. Ray must be connected
    (:func:`speechprobe.ray_connect.connect`).
    """
    kwargs = dict(recipe.kwargs)
    cpus, gpus = _default_resources(kwargs, gpus_per_actor, cpus_per_actor)
    if gpus > 0 and str(kwargs.get("device", "cpu")).startswith("cuda"):
        kwargs["device"] = "cuda"  # Ray sets CUDA_VISIBLE_DEVICES to the actor's own GPU(s)
    return ActorPool(Recipe(recipe.factory, kwargs, recipe.wrap), num_actors, cpus, gpus, threads, timeout_s)


def start_deadline(timeout_s: float, load: float | None = None, cpus: int | None = None) -> float:
    """How long actors may take to start: ``timeout_s`` on an idle machine, scaled by the 1-minute load per
    CPU when it is busier (a loaded laptop starts worker processes slowly; a fixed wait would fail them)."""
    load = os.getloadavg()[0] if load is None else load
    per_cpu = load / max(cpus or os.cpu_count() or 1, 1)
    return float(timeout_s) * max(1.0, per_cpu)


def worker_log_tail(lines: int = 5) -> str:
    """The last ``lines`` lines of the newest Ray worker error logs of this session, on one line ("" if none)."""
    try:
        node = ray_module()._private.worker.global_worker.node
        logs = sorted(Path(node.get_logs_dir_path()).glob("worker-*.err"), key=lambda p: p.stat().st_mtime)
    except Exception:  # no local session (a remote cluster): nothing to quote
        return ""
    for path in reversed(logs[-4:]):
        text = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
        if text:
            return f"{path.name}: " + " | ".join(text[-lines:])
    return ""
