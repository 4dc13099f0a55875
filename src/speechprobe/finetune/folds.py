"""Where the folds train: in this process (:class:`LocalFolds`) or as calls on Ray actors (:class:`RayFolds`,
``--engine ray``). Either way one model × task × method is a :class:`Trainer` built from a picklable
:class:`PairSpec`, reset to its initial weights before every fold, and the driver writes each fold's file as it
comes back (resume per fold is the same). The trainer is built the same way in both places (the adapters' and the
head's initial values seeded from the run's seed), so the fold rows are the same under the same seeds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..models.registry import family, load_model
from .methods import classifier, load_trained, prepare, trained_state
from .settings import FinetuneSettings
from .train import FoldData, FoldResult, Inputs, train_fold


@dataclass
class PairSpec:
    """What builds one model × task × method's classifier (travels to Ray actors instead of the model)."""

    model: str  # the registry name or local path, without ``+random``
    random_init: bool
    window: str
    device: str
    seed: int
    method: str
    n_classes: int
    budget: float  # padded seconds per batch
    settings: FinetuneSettings
    dtype: str | None


class Trainer:
    """A fresh adapter prepared for ``spec.method`` with a seeded head, over one task's ``audio``."""

    def __init__(self, spec: PairSpec, audio: list[np.ndarray]) -> None:
        adapter = load_model(
            spec.model, window=spec.window, device=spec.device, random_init=spec.random_init, seed=spec.seed
        )
        trainable = family(adapter.info.family).trainable(adapter)
        torch.manual_seed(spec.seed)  # peft's adapter weights are drawn here: seeded, as the head's are
        trained = prepare(trainable, spec.method, spec.settings)
        self.spec, self.adapter = spec, adapter
        self.model = classifier(trainable, spec.n_classes, trained, spec.seed, spec.settings.layers)
        self.init = trained_state(self.model)
        self.inputs = Inputs(self.model, audio, spec.budget, adapter.sample_rate)

    def fold(self, data: FoldData) -> FoldResult:
        """Train fold ``data.fold`` from the initial weights (seed: the run's seed + the fold id)."""
        s = self.spec.settings
        load_trained(self.model, self.init)
        return train_fold(
            self.inputs,
            data,
            self.spec.n_classes,
            epochs=s.epochs,
            patience=s.patience,
            lrs=(s.head_lr, s.encoder_lr),
            layer_lr=s.layer_lr,
            seed=self.spec.seed + data.fold,
            device=torch.device(self.spec.device),
            dtype=self.spec.dtype,
        )


class LocalFolds:
    """Folds trained one after the other in this process."""

    def run(self, key: str, spec: PairSpec, audio: list, folds: list[FoldData]) -> Iterator[tuple[int, FoldResult]]:
        """Each fold's id and result, in order (``key`` names the pair; unused here)."""
        trainer = Trainer(spec, audio)
        for data in folds:
            yield data.fold, trainer.fold(data)

    def close(self) -> None:
        pass


def _ray_fold(cache: dict[str, Any], key: str, spec: PairSpec, audio: list, data: FoldData) -> FoldResult:
    """On an actor: the fold, with the actor's trainer for ``key`` (built on its first fold, then kept)."""
    if key not in cache:
        cache.clear()  # one trainer per actor at a time: the previous pair's model is freed
        cache[key] = Trainer(spec, audio)
    return cache[key].fold(data)


class RayFolds:
    """Folds as calls on Ray actors (one CPU, or one GPU when fine-tuning on CUDA, each): every fold of a pair is
    submitted at once and yielded as it finishes; the driver writes it. A dead actor's fold goes to another
    (:class:`~speechprobe.ray_pool.ActorPool`)."""

    def __init__(self, address: str | None, actors: int | None, device: torch.device) -> None:
        from ..ray_connect import connect
        from ..ray_pool import ActorPool, Recipe

        connect(address)
        gpus = 1.0 if device.type == "cuda" else 0.0
        self.pool = ActorPool(Recipe("builtins:dict"), actors, num_cpus=1.0, num_gpus=gpus)

    def run(self, key: str, spec: PairSpec, audio: list, folds: list[FoldData]) -> Iterator[tuple[int, FoldResult]]:
        """Each fold's id and result as it finishes (``key`` names the pair: an actor keeps its trainer)."""
        from ..ray_connect import ray_module
        from ..ray_pool import Job

        if spec.device.startswith("cuda"):
            spec = PairSpec(**{**spec.__dict__, "device": "cuda"})  # Ray maps each actor to its own GPU
        ref = ray_module().put(audio)
        jobs = [self.pool.submit(Job(_ray_fold, (key, spec, ref, data), {}, payload=data.fold)) for data in folds]
        while jobs:
            job, result = self.pool.next_done(jobs)
            yield job.payload, result

    def close(self) -> None:
        self.pool.close()
