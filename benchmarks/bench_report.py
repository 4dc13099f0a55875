"""Report size and time on a finished run (the demo's): ``report RUN`` and ``compare`` of two copies.

    python benchmarks/bench_report.py speechprobe_demo [--rounds 2]

The baseline is measured in the same run: the page with plotly.js inlined as it ships (4.8 MB, the
way reports were written before) against the page as written now (plotly.js gzipped and base64-encoded,
unpacked by the browser). Wall and CPU seconds are printed (CPU seconds move less with the machine's load;
state the load beside the figures). The run directory is copied first, so it is left as it was.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from speechprobe.report import build_report, interactive, page
from speechprobe.report.compare import compare_runs


def _timed(fn) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def _plotly_as_it_ships(on: bool) -> None:
    """The baseline page: the raw bundle and the loader in one script (an empty packed element beside)."""
    if on:
        page.plotly_js_packed, page.BOOT_JS = (lambda: ""), interactive.plotly_js() + interactive.LOADER_JS
    else:
        page.plotly_js_packed, page.BOOT_JS = interactive.plotly_js_packed, interactive.BOOT_JS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp) / "a", Path(tmp) / "b"
        shutil.copytree(args.run, a)
        shutil.copytree(args.run, b)
        interactive.plotly_js_packed()  # packed once per process, as in any `report` call after the first
        for r in range(args.rounds):
            for label, naive in (("as it ships (baseline)", True), ("packed", False)):
                _plotly_as_it_ships(naive)
                wall, cpu, path = _timed(lambda: build_report(a))
                size = Path(path).stat().st_size
                print(f"round {r}: report, plotly.js {label}: {size / 1e6:.2f} MB, {wall:.1f} s wall, {cpu:.1f} s CPU")
                wall, cpu, _ = _timed(lambda: compare_runs([a, b], Path(tmp) / "cmp"))
                html = next((Path(tmp) / "cmp").glob("*.html"))
                mb = html.stat().st_size / 1e6
                print(f"round {r}: compare of two runs, {label}: {mb:.2f} MB, {wall:.1f} s wall, {cpu:.1f} s CPU")
        _plotly_as_it_ships(False)


if __name__ == "__main__":
    main()
