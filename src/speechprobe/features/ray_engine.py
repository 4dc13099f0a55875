"""The Ray engine: batches resampled in Ray tasks and run by model actors (one per GPU, or CPU slots).

The driver (:func:`speechprobe.features.extract.extract`) is the one the local engine uses, so the
results are the local engine's, bit for bit:

- **Same batches.** The driver forms them, with the same costs (asked of an actor); whole batches
  are shipped and Ray never re-blocks them.
- **Same forward.** Each actor holds a :class:`~speechprobe.features.engine.LocalEngine` around its
  adapter and runs its ``forward`` (out-of-memory halving included) on the driver's torch and
  BLAS/OpenMP thread counts (:func:`speechprobe.ray_pool.thread_profile`).
- **Same store.** Features come back to the driver, which checks them and writes them with the
  store's atomic ``put``; workers need no access to the cache.
- **Faults.** An actor that dies mid-batch is restarted by Ray and its batch retried, or the batch
  goes to another actor (:class:`~speechprobe.ray_pool.ActorPool`). A batch is stored once, when
  its first result arrives, so nothing is lost or stored twice.

Why Ray tasks + actors and not Ray Data: identical results pin the unit of work to a batch formed
by the driver from an ordered, lazily read stream (a manifest, a hub dataset, the synthetic suite).
Ray Data would either materialise the whole corpus up front (``from_items``: all audio in the
object store at once, against the streaming memory target) or need every source rewritten as a
remotely readable datasource; its own batching, re-blocking and operator fusion would have to be
switched off; and its iterator has no per-wait timeout or liveness check. Plain tasks + actors keep
memory bounded (at most ``2 x actors`` batches in flight), every wait bounded, and let the driver
resubmit a dead actor's batches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ..memory import trim_heap
from ..models.base import Described
from ..parallel import Caught, call_captured, emit_all, every_occurrence
from ..ray_connect import connect, ray_module
from ..ray_pool import INFLIGHT_PER_ACTOR, PREPARE_CPUS, Job, Recipe, model_pool
from .engine import Batch, LocalEngine, model_inputs

log = logging.getLogger("speechprobe")

LOAD_MODEL = "speechprobe.models.registry:load_model"


# ------------------------------------------------------------------ functions run on the workers


def _profile(engine: LocalEngine) -> dict[str, Any]:
    """What the driver needs of an actor's engine: the adapter's info (its rate too), options and window."""
    return {
        "info": engine.info,
        "options": engine.options(),
        "max_seconds": engine.max_seconds(),
        "pools_frames": engine.pools_frames,
    }


def _costs(engine: LocalEngine, durations: Sequence[float]) -> list[float]:
    return engine.costs(durations)


def _prepare(raw: list[tuple[np.ndarray, int]], rate: int, limit: float | None) -> tuple[list, list[Caught]]:
    """Decode task: the batch's model inputs (as the local engine prepares them) and its warnings."""
    with every_occurrence():  # this task's own thread: every occurrence is counted, as on the driver
        return call_captured(model_inputs, raw, rate, limit)


def _forward(
    engine: LocalEngine, prepared: tuple[list[np.ndarray], list[Caught]], facts: list[Mapping[str, Any]], pooling: str
) -> tuple[np.ndarray, list[Caught]]:
    """One whole batch through the actor's local engine: every clip's features, and the warnings raised."""
    inputs, caught = prepared
    audios = [np.array(a, dtype=np.float32) for a in inputs]  # writable copies, as the local engine passes
    with every_occurrence():
        feats, more = call_captured(engine.forward, audios, facts, pooling)
    trim_heap()  # the actor's heap, as the local engine trims its own
    return np.ascontiguousarray(feats), caught + more


# ----------------------------------------------------------------------------------- the engine


class RayEngine(Described):
    """Model actors for one model (a ``load_model`` recipe), reused across tasks.

    An :class:`~speechprobe.features.engine.Engine`: pass it to ``extract`` in place of an adapter::

        with RayEngine(dict(name="whisper-base", window="trimmed"), address="auto") as engine:
            space = store.space(engine.name, engine.info.revision, {**engine.options(), "pooling": "mean"})
            report = extract(engine, source, space)
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
        recipe = Recipe(factory, model_recipe, wrap=LocalEngine)
        self.pool = model_pool(recipe, num_actors, timeout_s, cpus_per_actor, gpus_per_actor, threads)
        try:
            first = self.pool.agree(
                _profile, what=lambda p: f"{p['info'].name} weights {p['info'].revision} {p['options']}"
            )
        except BaseException:
            self.pool.close()
            raise
        self.info = first["info"]  # the adapter's AdapterInfo, as the actors built it
        self._options: dict[str, object] = first["options"]
        self._max_seconds: float | None = first["max_seconds"]
        self.pools_frames: bool = first["pools_frames"]

    def options(self) -> dict[str, object]:
        """The adapter's ``options()`` (a fresh dict, as an adapter returns)."""
        return dict(self._options)

    def max_seconds(self) -> float | None:
        return self._max_seconds

    def costs(self, durations: Sequence[float]) -> list[float]:
        return self.pool.call(_costs, list(durations))

    def forward_batches(self, batches: Iterable[Batch], pooling: str) -> Iterator[tuple[Batch, np.ndarray]]:
        """Each batch's features as it finishes; at most ``INFLIGHT_PER_ACTOR`` batches per actor in flight."""
        ray = ray_module()
        prepare = ray.remote(_prepare).options(num_cpus=PREPARE_CPUS, max_retries=3)
        inflight: list[Job] = []
        try:
            for batch in batches:
                inputs = prepare.remote(batch.raw, self.sample_rate, self._max_seconds)
                job = Job(_forward, (inputs, batch.facts, pooling), {}, deps=[inputs], payload=batch)
                inflight.append(self.pool.submit(job))
                while len(inflight) >= INFLIGHT_PER_ACTOR * self.pool.n:
                    yield self._finished(inflight)
            while inflight:
                yield self._finished(inflight)
        finally:
            for job in inflight:  # interrupted: drop queued work (finished batches are stored)
                try:
                    ray.cancel(job.ref)
                except Exception as e:
                    log.debug("ray.cancel: %s", e)

    def _finished(self, inflight: list[Job]) -> tuple[Batch, np.ndarray]:
        job, (feats, caught) = self.pool.next_done(inflight)
        emit_all(caught)  # the workers' warnings, on the driver's thread
        return job.payload, feats

    def __enter__(self) -> RayEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop this model's actors (frees their GPUs for the next model)."""
        self.pool.close()


__all__ = ["LOAD_MODEL", "RayEngine"]
