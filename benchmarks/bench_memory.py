"""Peak resident memory at 1x and 10x dataset size (target: at most 1.3x growth).

Each size runs in a fresh subprocess (extraction + probing + outputs, no report), and its peak RSS
is read with ``getrusage``. Streaming decoding, bounded batching buffers and memory-mapped feature
stacks keep memory flat as the corpus grows.

    python benchmarks/bench_memory.py [--clips 40] [--model mfcc]
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

CHILD = """
import json, resource, sys
from pathlib import Path
from speechprobe.config import RunConfig
from speechprobe.pipeline import run
args = json.loads(sys.argv[1])
run(RunConfig.of(models=[args["model"]], tasks=[args["manifest"]], out=Path(args["out"]), baselines=[], folds=5,
              probes=["knn", "mlp"], window="trimmed", progress=False, permutations=0, embeddings=False,
              report=False, cache=Path(args["cache"])))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def make_manifest(root: Path, n: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    rows = []
    for i in range(n):
        label = "abcd"[i % 4]
        t = np.arange(int(16000 * rng.uniform(1, 3))) / 16000
        y = 0.3 * np.sin(2 * np.pi * (150 + 60 * (i % 4)) * t) + 0.05 * rng.standard_normal(len(t))
        sf.write(root / f"{i}.wav", y.astype(np.float32), 16000)
        rows.append((f"{i}.wav", label, f"s{i % 10}"))
    with open(root / "m.csv", "w", newline="") as f:
        csv.writer(f).writerows([("path", "label", "group"), *rows])
    return root / "m.csv"


def peak_rss_mb(model: str, manifest: Path, work: Path) -> float:
    args = {"model": model, "manifest": str(manifest), "out": str(work / "run"), "cache": str(work / "cache")}
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=40)
    ap.add_argument("--model", default="mfcc")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        small = peak_rss_mb(args.model, make_manifest(tmp / "d1", args.clips), tmp / "w1")
        large = peak_rss_mb(args.model, make_manifest(tmp / "d10", 10 * args.clips), tmp / "w10")
    print(f"{args.model}: peak RSS {small:.0f} MB at {args.clips} clips, {large:.0f} MB at {10 * args.clips} clips")
    print(f"  growth at 10x data: {large / small:.2f}x (target <= 1.3x)")


if __name__ == "__main__":
    main()
