"""The prepared GPU benchmark must keep running (its CPU smoke mode; no timings asserted, only what it prints)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
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


def test_probe_scale_benchmark_runs_in_quick_mode(capsys):
    spec = importlib.util.spec_from_file_location("bench_probe_scale", ROOT / "benchmarks" / "bench_probe_scale.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = bench.main(
        ["--quick", "--clips", "120", "--layers", "2", "--dims", "8", "--permutations", "5", "--jobs", "1"]
    )
    assert [row["layer"] for row in out["table"]] == [0, 1]
    # KNN, NMI and AMI: the pipeline's values equal the plain scikit-learn loop's on every fold
    assert all(row["same_gap"] == 0 for row in out["table"])
    assert {r["metric"] for r in out["ours"]["rows"]} >= {"macro_f1", "accuracy", "nmi", "ami", "macro_f1_oof"}
    assert 0 < out["ours"]["p"] <= 1
    assert "every layer inside its fold CI" in capsys.readouterr().out
