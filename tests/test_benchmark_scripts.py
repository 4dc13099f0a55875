"""The prepared GPU benchmark must keep running (its CPU smoke mode; no timings asserted, only what it prints)."""

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
    lines = r.stdout.splitlines()
    whisper, w2v = (
        lines.index("whisper-large-v3 (smoke)"),
        next(i for i, x in enumerate(lines) if "wav2vec2-large" in x),
    )
    for mode in ("ours full", "ours trimmed"):
        row = next(x for x in lines[whisper:w2v] if mode in x)
        assert "x real time" in row and "x naive" in row and "TFLOP/s" in row and "MFU" in row
    assert any("ours clip" in x and "TFLOP/s" in x and "MFU" in x for x in lines[w2v:])
    assert sum("driver" in x and "x the bare forwards" in x for x in lines) == 3  # full, trimmed, wav2vec2
