"""Cost of the statistics phase against the probing it tests, on the demo, in one run.

    python benchmarks/bench_statistics.py                 # the demo's settings (1000 shuffles)
    python benchmarks/bench_statistics.py --permutations 100

Runs the demo's configuration (whisper-tiny.en + whisper-base + the librosa baselines on the five
synthetic tasks, trimmed window, 2 jobs) into a temporary run directory with the user's feature store
(features already there are reused, so extraction costs little after `speechprobe demo`), then prints:

- probing: the wall seconds of ``probe_layers`` summed over every (model, task) (manifest.json);
- statistics: the wall seconds of the selection-aware tests (every best layer, ``--permutations``
  shuffles) and of the embedding figures (analysis.json), and their ratio to probing;
- the naive null in the same run: the same test for one (model, task) with the KNN probe refitted per
  shuffle (a few shuffles, scaled to ``--permutations``) against the exact re-vote;
- the best layer of every (model, task) with its selection-aware p and q.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from speechprobe.analysis.stats import label_permuter
from speechprobe.config import RunConfig
from speechprobe.pipeline import run
from speechprobe.probes import make_folds
from speechprobe.probes.null import FittedNull, KNNNull

DEMO_MODELS = ("whisper-tiny.en", "whisper-base")
DEMO_TASKS = ("accent", "stress", "speaker_count", "emotion", "gender")


def naive_vs_exact(out: Path, cfg: RunConfig, permutations: int, refits: int) -> tuple[float, float]:
    """Seconds for ``permutations`` shuffles of whisper-base × emotion: KNN refitted per shuffle (measured on
    ``refits`` shuffles and scaled) and the exact re-vote (neighbour lists included)."""
    from speechprobe.analysis.inputs import read_clips, store_loader

    clips = read_clips(out, "emotion")
    features = store_loader(out, cfg.compute.cache)("whisper-base", list(clips["content_hash"]))
    labels, groups = clips["label"].to_numpy(), clips["group"].to_numpy()
    folds = make_folds(labels, groups, cfg.cv.folds, cfg.compute.seed)
    classes, codes = np.unique(labels, return_inverse=True)
    _, permute = label_permuter(codes, groups, folds)
    rng = np.random.default_rng(0)
    shuffles = np.stack([permute(rng) for _ in range(permutations)])
    t0 = time.perf_counter()
    FittedNull(features, folds, len(classes), "knn", cfg.compute.seed).scores(shuffles[:refits])
    naive = (time.perf_counter() - t0) * permutations / refits
    t0 = time.perf_counter()
    KNNNull(features, folds, len(classes), cfg.compute.seed).scores(shuffles)
    return naive, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--refits", type=int, default=10, help="shuffles timed for the naive refitted null")
    parser.add_argument("--cache", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "demo"
        cfg = RunConfig.of(
            models=list(DEMO_MODELS),
            tasks=list(DEMO_TASKS),
            out=out,
            window="trimmed",
            cache=args.cache,
            n_jobs=2,
            progress=False,
            permutations=args.permutations,
            embeddings=True,
            report=False,
        )
        t0 = time.perf_counter()
        run(cfg)
        wall = time.perf_counter() - t0
        manifest = json.loads((out / "manifest.json").read_text())
        analysis = json.loads((out / "analysis.json").read_text())
        probing = sum(v["seconds"] for v in manifest["probing"].values())
        selection, embeddings = analysis["seconds"].get("selection", 0.0), analysis["seconds"].get("embeddings", 0.0)
        print(f"demo run: {wall:.1f} s wall ({len(manifest['probing'])} (model, task) pairs)")
        print(f"probing (probe_layers, KNN + MLP + k-means, 5 folds): {probing:.1f} s")
        print(
            f"selection-aware tests ({args.permutations} shuffles each): {selection:.1f} s "
            f"= {selection / probing:.2f}x probing"
        )
        print(f"embedding figures (t-SNE): {embeddings:.1f} s = {embeddings / probing:.2f}x probing")
        total = selection + embeddings
        print(f"statistics phase in all: {total:.1f} s = {total / probing:.2f}x probing (target <= 2x)")
        naive, exact = naive_vs_exact(out, cfg, args.permutations, args.refits)
        print(
            f"whisper-base x emotion, {args.permutations} shuffles: KNN refitted per shuffle {naive:.1f} s "
            f"(scaled from {args.refits}), exact re-vote {exact:.2f} s: {naive / exact:.0f}x"
        )
        perm = pd.read_csv(out / "permutation.csv")
        cols = ["model", "task", "probe", "layer", "num_layers", "observed", "p_value", "q_value"]
        print(perm[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))


if __name__ == "__main__":
    main()
