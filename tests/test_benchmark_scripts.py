"""The prepared GPU benchmark must keep running (its CPU smoke mode; no timings asserted)."""

import importlib.util
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
