"""Run every fault case of issues 14 and 31 (and the CLI items of issue 17) and print one line per case.

    PYTHONPATH=src python scripts/fault_matrix.py            # all cases
    PYTHONPATH=src python scripts/fault_matrix.py -k 14.3    # cases whose item or name contains 14.3

Each line reads ``item | input -> expected -> observed -> OK/FAIL``. The cases are the ones
``tests/reliability`` runs (``tests/reliability/faults.py``); each runs the real code in a fresh
temporary folder with a temporary cache. Cases that mount a tmpfs (full and read-only disks) need
root; without it, or without eSpeak NG, they print SKIP and say why. Exit status: 1 if any case fails.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ["SPEECHPROBE_CACHE"] = tempfile.mkdtemp(prefix="fault-matrix-cache-")  # never the user's cache
sys.path.insert(0, str(ROOT / "tests" / "reliability"))

from faults import CASES, Case  # noqa: E402


def _missing(case: Case, scratch: Path) -> str:
    """Why a case cannot run here ("" when it can)."""
    if case.needs == "espeak" and shutil.which("espeak-ng") is None:
        return "needs espeak-ng"
    if case.needs == "ray" and importlib.util.find_spec("ray") is None:
        return "needs ray"
    if case.needs == "mount":
        probe = scratch / "mount-probe"
        probe.mkdir(exist_ok=True)
        mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", str(probe)], capture_output=True)
        if mount.returncode:
            return "needs root to mount a tmpfs"
        subprocess.run(["umount", "-l", str(probe)], capture_output=True)
    return ""


def run_case(case: Case, scratch: Path) -> tuple[str, str, float]:
    """(status, observed, seconds) of one case in its own folder."""
    reason = _missing(case, scratch)
    if reason:
        return "SKIP", reason, 0.0
    folder = Path(tempfile.mkdtemp(dir=scratch))
    t0 = time.perf_counter()
    try:
        observed = case.run(folder)
        status = "OK"
    except Exception as e:  # a failed case is reported, and the matrix goes on
        observed = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
        status = "FAIL"
        if os.environ.get("FAULT_MATRIX_DEBUG"):
            traceback.print_exc()
    return status, " ".join(observed.split()), time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", default="", help="only cases whose item or name contains this")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="fault-matrix-"))
    failed = 0
    try:
        for case in CASES:
            if args.k and args.k not in case.item and args.k not in case.run.__name__:
                continue
            status, observed, seconds = run_case(case, scratch)
            failed += status == "FAIL"
            print(f"{case.item:>5} | {case.given} -> {case.expected} -> {observed} -> {status} ({seconds:.1f} s)")
            sys.stdout.flush()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(os.environ["SPEECHPROBE_CACHE"], ignore_errors=True)
    print(f"{'all OK' if not failed else f'{failed} FAILED'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
