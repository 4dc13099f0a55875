"""The objective lab on a CPU: pre-training time per objective on at least 1 h of synthetic audio, whether the
pretext loss falls, and how far each trained encoder moved from its random twin (debiased CKA per layer).

Target (issue 30): ``tiny`` or ``small`` trained per objective in at most 20 minutes on 2 cores on >= 1 h of
audio. The default corpus (``--corpus-clips 71``: about 60 minutes, rendered from the suite's voices and texts
under the lab's own seed) is rendered once; each objective then trains ``--run-steps`` steps, and the time of
``--steps`` is projected from the measured seconds per step (same batch, crops and schedule shape). The random
twin of a seed is the lab's ``random`` checkpoint: the exact starting weights of that seed's trained encoders.
CKA is measured on held-out clips (the ``gender`` task's own clips, seed 0, never in the training corpus).

    python benchmarks/bench_lab.py [--arch tiny] [--steps 300] [--run-steps 300] [--objectives contrastive,masked]
        [--device cuda --dtype bf16]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from speechprobe.analysis.similarity import debiased_cka
from speechprobe.data.resolve import open_task
from speechprobe.lab.config import PretrainSettings, TrainSettings
from speechprobe.lab.corpus import load_corpus
from speechprobe.lab.train import pretrain
from speechprobe.models.registry import load_model


def layer_features(path: Path, clips: list[np.ndarray]) -> np.ndarray:
    """(clips, layers, dim) mean-pooled features of the checkpoint at ``path``."""
    adapter = load_model(str(path))
    return np.concatenate([adapter.forward(clips[i : i + 8]) for i in range(0, len(clips), 8)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="tiny")
    ap.add_argument("--steps", type=int, default=300, help="the step budget whose time is projected")
    ap.add_argument("--run-steps", type=int, default=300, help="steps actually trained (a trimmed run: fewer)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--corpus-clips", type=int, default=71)
    ap.add_argument("--objectives", default="contrastive,masked")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--cache", type=Path, default=None)
    args = ap.parse_args()
    cache = args.cache or Path(os.environ.get("SPEECHPROBE_CACHE") or tempfile.mkdtemp(prefix="bench-lab-"))
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    t0 = time.perf_counter()
    corpus = load_corpus(["synthetic"], cache, args.corpus_clips)
    ready = time.perf_counter() - t0
    print(f"corpus: {len(corpus.clips)} clips, {corpus.seconds / 60:.1f} min of audio, ready in {ready:.0f} s")
    _, source = open_task("gender", cache, seed=0, n_per_class=24)
    held_out = [c.audio for c in source]
    out = Path(tempfile.mkdtemp(prefix="bench-lab-models-"))
    train = TrainSettings(arch=args.arch, steps=args.run_steps, batch_size=args.batch_size, save_every=args.run_steps)
    train.device, train.dtype = args.device, args.dtype
    twin = pretrain(
        PretrainSettings(objective="random", out=out / "random", seed=args.seed, train=train), cache, corpus, False
    )
    control = layer_features(twin, held_out)
    rows = []
    for objective in args.objectives.split(","):
        settings = PretrainSettings(objective=objective, out=out / objective, seed=args.seed, train=train)
        t1 = time.perf_counter()
        path = pretrain(settings, cache, corpus, progress=False)
        seconds = time.perf_counter() - t1
        curve = pd.read_csv(path / "pretext_loss.csv")
        tenth = max(1, len(curve) // 10)
        first, last = curve["loss"].iloc[:tenth].mean(), curve["loss"].iloc[-tenth:].mean()
        trained = layer_features(path, held_out)
        cka = [debiased_cka(trained[:, k], control[:, k]) for k in range(trained.shape[1])]
        rows.append(
            {
                "objective": objective,
                "steps": args.run_steps,
                "seconds": round(seconds),
                "s_per_step": round(seconds / args.run_steps, 2),
                f"projected_min_{args.steps}_steps": round(seconds / args.run_steps * args.steps / 60, 1),
                "loss_first_tenth": round(first, 3),
                "loss_last_tenth": round(last, 3),
                "loss_fell": bool(last < first),
                "cka_vs_random_twin_per_layer": " ".join(f"{c:.2f}" for c in cka),
            }
        )
        print(pd.DataFrame(rows[-1:]).to_string(index=False), flush=True)
    print()
    print(pd.DataFrame(rows).to_string(index=False))
    print(f"held-out CKA clips: {len(held_out)} (gender, seed 0); load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
