"""The fine-tuning ceiling's cost and its ladder against the frozen probes of the same run (issue 27's target:
whisper-base ``lora`` on the demo's emotion and stress tasks, trimmed window, 5 folds, <= 10 minutes per task on
a 2-core CPU).

One run directory: extraction + probes (KNN, the all-layers reference) timed as the frozen baseline, then
``speechprobe finetune`` (the ``head`` rung and the asked method) timed per task (the fold files' seconds), the
process's peak resident memory, and the ladder table (each rung's Macro-F1 with its corrected interval, the
gain over the best frozen layer with its paired interval).

    python benchmarks/bench_finetune.py                       # the target (takes a while)
    python benchmarks/bench_finetune.py --quick               # stress only, 8 voices per class, 3 folds, 2 epochs
    python benchmarks/bench_finetune.py --ft-layers last      # the heads read the last layer only (before: all)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import pandas as pd

from speechprobe.config import RunConfig
from speechprobe.finetune.settings import FinetuneSettings
from speechprobe.finetune.stage import finish, run_finetune
from speechprobe.pipeline import run


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="whisper-base")
    ap.add_argument("--tasks", default="emotion,stress")
    ap.add_argument("--method", default="lora")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--ft-layers", default="all", choices=("all", "last"), help="what the head reads [all]")
    ap.add_argument("--n-per-class", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (extraction and fine-tuning)")
    ap.add_argument("--dtype", default=None, help="bf16 or fp16 [float32]")
    ap.add_argument("--quick", action="store_true", help="stress only, 8 per class, 3 folds, 2 epochs")
    args = ap.parse_args(argv)
    if args.quick:
        args.tasks, args.n_per_class, args.folds, args.epochs = "stress", 8, 3, 2
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-finetune-")) / "run"
    cfg = RunConfig.of(
        models=[args.model],
        tasks=args.tasks.split(","),
        out=out,
        baselines=[],
        probes=["knn"],
        window="trimmed",
        folds=args.folds,
        n_per_class=args.n_per_class,
        device=args.device,
        dtype=args.dtype,
        progress=False,
        permutations=0,
        bootstrap=0,
        embeddings=False,
        cue_probes=False,
        fingerprints=False,
        similarity=False,
        mdl=False,
        report=False,
    )
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    t0 = time.perf_counter()
    run(cfg)
    frozen = time.perf_counter() - t0
    before = peak_mb()
    t0 = time.perf_counter()
    run_finetune(out, FinetuneSettings(method=args.method, epochs=args.epochs, layers=args.ft_layers))
    tuned = time.perf_counter() - t0
    finish(out)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print(f"frozen baseline (extract + KNN probes + all-layers reference): {frozen:.0f} s; peak RSS {before:.0f} MB")
    print(f"fine-tuning (head + {args.method}, --ft-layers {args.ft_layers}), all tasks: {tuned:.0f} s ", end="")
    print(f"({tuned / frozen:.1f}x the frozen run)")
    print(f"peak RSS after fine-tuning: {peak_mb():.0f} MB")
    seconds = {}
    for path in sorted((out / "finetune").glob("*/fold*.json")):
        r = json.loads(path.read_text())
        seconds[(r["task"], r["probe"])] = seconds.get((r["task"], r["probe"]), 0.0) + r["seconds"]
    for (task, probe), s in sorted(seconds.items()):
        print(f"  {task:>10} {probe:>8}: {s:7.0f} s over {args.folds} folds")
    for task in sorted({t for t, _ in seconds}):  # issue 27's target: <= 10 minutes per task on 2 CPU cores
        total = sum(s for (t, _), s in seconds.items() if t == task)
        verdict = "within" if total <= 600 else "over"
        print(f"  {task:>10} head + {args.method}: {total / 60:.1f} min of training ({verdict} the 10-minute target)")
    ladder = pd.read_csv(out / "ladder.csv")
    cols = ["task", "rung", "source", "mean", "low", "high", "gain", "gain_low", "gain_high", "top_layer", "top_weight"]
    with pd.option_context("display.width", 200, "display.precision", 3):
        print(ladder[cols].to_string(index=False))
    return {"frozen_s": frozen, "finetune_s": tuned, "seconds": seconds, "ladder": ladder, "out": out}


if __name__ == "__main__":
    main()
