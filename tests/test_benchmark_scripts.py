"""The prepared GPU benchmark must keep running (its CPU smoke mode; no timings asserted)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_benchmark_script_runs_in_smoke_mode():
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_whisper_large_v3.py"), "--smoke", "--clips", "4"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "ours full" in r.stdout and "ours trimmed" in r.stdout and "x naive" in r.stdout
