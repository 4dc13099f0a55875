"""Where pre-training jobs run: one after the other in this process, or as calls on Ray actors (``--engine ray``).

A job is one :class:`~.config.PretrainSettings` (an objective and a seed) training into its own checkpoint
folder, which it resumes from after an interruption. On Ray each job is one call on an actor of one CPU, or one
GPU with ``--device cuda`` (or ``auto`` on a cluster with GPUs); the corpus travels once through Ray's object
store; the actor trains into the job's folder (the same folder on a filesystem the nodes share, so a job cut off
with its node resumes from its last checkpoint on another) and returns the finished checkpoint's files, which the
driver writes, so the driver holds every checkpoint even without a shared filesystem. Actors run on the driver's
thread counts (:func:`speechprobe.ray_pool.thread_profile`) and each step reseeds from (seed, step), so the
weights and loss curves are those of the local path under the same seeds (``tests/lab/test_ray_jobs.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

from ..config import check_engine
from ..files import atomic_write
from .checkpoint import LAB_JSON
from .config import Engine, PretrainSettings
from .corpus import Corpus, load_corpus


def run_jobs(
    jobs: list[PretrainSettings],
    cache_root: Path,
    corpus: Corpus | None = None,
    progress: bool = True,
    engine: Engine | None = None,
) -> Iterator[Path]:
    """Train ``jobs`` (which share their training settings) where ``engine`` says (None or ``engine: local``:
    here); yields each checkpoint folder as it is done (in order here; as they finish on Ray). ``corpus``: the
    training audio [default: read from the first job's ``--data``]."""
    from .train import pretrain

    engine = dict(engine or {})
    check_engine(engine.get("engine", "local"), engine.get("ray_address"), engine.get("ray_actors"))
    if not jobs:
        return
    t = jobs[0].train
    corpus = corpus or load_corpus(t.data, cache_root, t.corpus_clips, progress)
    if engine.get("engine", "local") == "local":
        for job in jobs:
            yield pretrain(job, cache_root, corpus, progress)
        return
    yield from _on_ray(jobs, cache_root, corpus, progress, engine.get("ray_address"), engine.get("ray_actors"))


def _ray_job(_: dict, job: PretrainSettings, cache_root: Path, corpus: Corpus) -> dict[str, bytes]:
    """On an actor: train (or resume) ``job`` in its folder; the finished checkpoint's files by name."""
    from .train import pretrain

    out = pretrain(job, cache_root, corpus, progress=False)
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}


def _on_ray(
    jobs: list[PretrainSettings],
    cache_root: Path,
    corpus: Corpus,
    progress: bool,
    address: str | None,
    actors: int | None,
) -> Iterator[Path]:
    from tqdm.auto import tqdm

    from ..ray_connect import connect, ray_module
    from ..ray_pool import ActorPool, Job, Recipe

    connect(address)
    ray = ray_module()
    gpus = _gpus_per_job(jobs[0].train.device, ray.cluster_resources())
    pool = ActorPool(Recipe("builtins:dict"), actors or _fits(len(jobs), gpus, ray.cluster_resources()), 1.0, gpus)
    bar = tqdm(total=len(jobs), desc=f"pretrain on {pool.n} Ray actor(s)", disable=not progress)
    try:
        ref = ray.put(corpus)
        pending = [pool.submit(Job(_ray_job, (_on_actor(j, gpus), cache_root, ref), {}, payload=j)) for j in jobs]
        while pending:
            done, files = pool.next_done(pending)
            out = Path(done.payload.out).expanduser()
            for name, data in files.items():  # lab.json last: it marks the checkpoint done
                if name != LAB_JSON:
                    atomic_write(out / name, data)
            atomic_write(out / LAB_JSON, files[LAB_JSON])
            bar.update(1)
            yield out
    finally:
        bar.close()
        pool.close()


def _gpus_per_job(device: str, resources: Mapping[str, float]) -> float:
    """One GPU per job for ``cuda``, and for ``auto`` on a cluster with GPUs; else none."""
    return 1.0 if device == "cuda" or (device == "auto" and resources.get("GPU", 0) > 0) else 0.0


def _on_actor(job: PretrainSettings, gpus: float) -> PretrainSettings:
    """The job as an actor runs it: on ``cuda`` (Ray maps it to the actor's own GPU) when it holds one."""
    if gpus and job.train.device != "cuda":
        from dataclasses import replace

        return replace(job, train=replace(job.train, device="cuda"))
    return job


def _fits(n_jobs: int, gpus: float, resources: Mapping[str, float]) -> int:
    """Actors for ``n_jobs``: no more than the jobs, one per GPU, or one per CPU but one (as the model actors)."""
    room = int(resources.get("GPU", 0)) if gpus else int(resources.get("CPU", 0)) - 1
    return max(1, min(n_jobs, room))
