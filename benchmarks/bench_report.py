"""Report size and time on a finished run (the demo's): ``report RUN`` and ``compare`` of two copies.

    python benchmarks/bench_report.py speechprobe_demo [--rounds 2]

Baselines measured in the same run, in process: the page as reports were first written (plotly.js inlined
as it ships, 4.8 MB; every figure re-encoded as a 128-colour PNG at every build) against the page as written
now (plotly.js gzipped and base64-encoded, unpacked by the browser; figures as lossless WebP of that palette,
kept under ``figures/.embedded`` by content, so a second build encodes nothing). Then the commands as a user
runs them, each a fresh process: ``speechprobe report RUN`` and ``speechprobe compare RUN RUN2``. Wall and
CPU seconds are printed (CPU seconds move less with the machine's load; state the load beside the figures).
The run directory is copied first, so it is left as it was.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from speechprobe.report import build_report, interactive, page
from speechprobe.report.compare import compare_runs


def _timed(fn) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def _naive_png_uri(path: Path) -> str:
    """The first packed pages' figures: a 128-colour palette PNG, encoded again at every build."""
    from PIL import Image

    image = Image.open(path).convert("RGB").quantize(colors=page.PALETTE, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


NOW = (page.plotly_js_packed, page.BOOT_JS, page.png_data_uri)


def _naive(on: bool) -> None:
    """The baseline page: the raw bundle and the loader in one script, figures as PNG re-encoded every time."""
    if on:
        page.plotly_js_packed, page.BOOT_JS = (lambda: ""), interactive.plotly_js() + interactive.LOADER_JS
        page.png_data_uri = _naive_png_uri
    else:
        page.plotly_js_packed, page.BOOT_JS, page.png_data_uri = NOW


def _command(*args: str) -> tuple[float, float]:
    """Wall and CPU seconds (user + system of the child) of one ``speechprobe`` command in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    subprocess.run([sys.executable, "-m", "speechprobe.cli", "--no-progress", *args], check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return time.perf_counter() - wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp) / "a", Path(tmp) / "b"
        shutil.copytree(args.run, a, ignore=shutil.ignore_patterns(page.EMBED_CACHE))
        shutil.copytree(args.run, b, ignore=shutil.ignore_patterns(page.EMBED_CACHE))
        interactive.plotly_js_packed()  # packed once per process, as in any `report` call after the first
        for r in range(args.rounds):
            for label, naive in (("naive (as first written)", True), ("now, first build", False), ("now", False)):
                _naive(naive)
                if label == "now, first build":
                    shutil.rmtree(a / "figures" / page.EMBED_CACHE, ignore_errors=True)
                wall, cpu, path = _timed(lambda: build_report(a))
                size = Path(path).stat().st_size
                print(f"round {r}: build_report, {label}: {size / 1e6:.2f} MB, {wall:.1f} s wall, {cpu:.1f} s CPU")
                wall, cpu, _ = _timed(lambda: compare_runs([a, b], Path(tmp) / "cmp"))
                mb = next((Path(tmp) / "cmp").glob("*.html")).stat().st_size / 1e6
                print(f"round {r}: compare_runs, {label}: {mb:.2f} MB, {wall:.1f} s wall, {cpu:.1f} s CPU")
        _naive(False)
        for r in range(args.rounds):
            wall, cpu = _command("report", str(a))
            print(f"round {r}: `speechprobe report RUN` (fresh process): {wall:.1f} s wall, {cpu:.1f} s CPU")
            wall, cpu = _command("compare", str(a), str(b), "--out", str(Path(tmp) / "cli"))
            print(f"round {r}: `speechprobe compare RUN RUN2` (fresh process): {wall:.1f} s wall, {cpu:.1f} s CPU")


if __name__ == "__main__":
    main()
