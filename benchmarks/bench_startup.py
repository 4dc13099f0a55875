"""Start-up of the listing commands (lazy imports) against a naive baseline measured in the same run.

    python benchmarks/bench_startup.py [--rounds 5]

Each command runs in a fresh interpreter (``python -m speechprobe.cli ...``, output discarded); the baseline is
what a command importing its libraries at the top pays before doing anything: ``import torch, transformers``.
The interpreter's own start (``python -c pass``) is printed as the floor. Medians of ``--rounds``, wall and CPU
seconds (CPU moves less with the machine's load; the load average is printed beside).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass (floor)": ["-c", "pass"],
    "import torch, transformers (naive baseline)": ["-c", "import torch, transformers"],
    "speechprobe --help": ["-m", "speechprobe.cli", "--help"],
    "speechprobe run --help": ["-m", "speechprobe.cli", "run", "--help"],
    "speechprobe demo --help": ["-m", "speechprobe.cli", "demo", "--help"],
    "speechprobe tasks": ["-m", "speechprobe.cli", "tasks"],
    "speechprobe models": ["-m", "speechprobe.cli", "models"],
}


def timed(args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system of the child) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv: list[str] | None = None) -> dict[str, tuple[float, float]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; medians of {args.rounds} rounds")
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in COMMANDS}
    for _ in range(args.rounds):  # interleaved, so the load changes every command alike
        for name, cmd in COMMANDS.items():
            runs[name].append(timed(cmd))
    out = {name: (statistics.median(w for w, _ in r), statistics.median(c for _, c in r)) for name, r in runs.items()}
    naive = out["import torch, transformers (naive baseline)"]
    print(f"{'command':<46} {'wall s':>7} {'CPU s':>6} {'x naive (wall)':>15}")
    for name, (wall, cpu) in out.items():
        print(f"{name:<46} {wall:>7.2f} {cpu:>6.2f} {wall / naive[0]:>15.2f}")
    return out


if __name__ == "__main__":
    main()
