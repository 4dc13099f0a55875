"""Run every CPU benchmark in turn (one command). Each prints ratios measured in its own run.

python benchmarks/run_all.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    "bench_whisper.py",
    "bench_extraction.py",
    "bench_probing.py",
    "bench_uncertainty.py",
    "bench_zeroshot.py",
    "bench_memory.py",
    "bench_checksum.py",
    "bench_weights.py",
    "bench_statistics.py",
    "calibration.py",
    "bench_layer_analyses.py",
    "bench_mixing.py",
    "bench_zeroing.py",
    "bench_probe_scale.py",
    "bench_cues.py",
    "bench_baselines.py",
    "bench_startup.py",
    "bench_pooling_variants.py",
]


def main() -> int:
    failed = []
    for name in SCRIPTS:
        print(f"\n=== {name}", flush=True)
        if subprocess.run([sys.executable, str(HERE / name)]).returncode:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
