"""Cost of the attention analyses (context mixing, attribution) against the run they are added to.

    PYTHONPATH=src python benchmarks/bench_mixing.py                       # the demo's models and tasks
    PYTHONPATH=src python benchmarks/bench_mixing.py --models whisper-tiny.en --tasks gender   # trimmed

A run with the demo's settings (trimmed window, KNN, 5 x 5-fold CV, cue erasure, the default analyses) on the
chosen models and tasks, from an empty feature store (the synthetic audio and the converted weights are
linked from the speechprobe cache, so they are not rendered or converted again): its wall and CPU seconds are
the baseline. Then each attention analysis runs on that finished run, as ``speechprobe run --analyses
+context_mixing,+attribution`` runs it, with the default options unless given. Printed: each analysis's
seconds and its ratio to the run without it; the issue's budget is all of them together at most 30 % of a
demo-sized run. With ``--pooling-variants`` the same run is made again with ``--analyses +pooling_variants``
from another empty feature store (its extraction stores the variants, then the analysis probes them): its
extra seconds over the same run made again after it (the first run pays warm-ups: compiled-code caches)
are the third analysis's cost (run-to-run noise on a shared machine included).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUN = """
import json, sys
from speechprobe.cli.run_commands import DEMO
from speechprobe.config import RunConfig
from speechprobe.pipeline import run
args = json.loads(sys.argv[1])
settings = {k: v for k, v in DEMO.items() if k != "out"}
settings["probes"] = settings["probes"].split(",")  # as the command line parses it
settings.update(args.get("extra", {}))
run(RunConfig.of(**settings, models=args["models"], tasks=args["tasks"], out=args["out"], progress=False))
"""
ANALYSE = """
import json, sys, time
from speechprobe.analysis import analyse
args = json.loads(sys.argv[1])
for name, options in args["analyses"].items():
    t, c = time.perf_counter(), time.process_time()
    analyse(args["out"], name, **options)
    print(name, time.perf_counter() - t, time.process_time() - c, flush=True)
"""


def _timed(code: str, args: dict, env: dict) -> tuple[float, float, str]:
    """Wall and CPU seconds (children included) of ``code`` in a fresh interpreter, and its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, json.dumps(args)], env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"failed:\n{done.stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return time.perf_counter() - t, cpu, done.stdout


def main() -> None:
    from speechprobe.cache import cache_root
    from speechprobe.cli.run_commands import DEMO_MODELS, DEMO_TASKS

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default=",".join(DEMO_MODELS))
    p.add_argument("--tasks", default=",".join(DEMO_TASKS))
    p.add_argument("--mixing-clips", type=int, default=None, help="context mixing's clips per task [its default]")
    p.add_argument("--attribution-clips", type=int, default=None)
    p.add_argument("--attribution-steps", type=int, default=None)
    p.add_argument("--attribution-layers", type=int, default=None)
    p.add_argument("--pooling-variants", action="store_true", help="also time a run with --analyses +pooling_variants")
    a = p.parse_args()
    mixing = {"clips": a.mixing_clips} if a.mixing_clips else {}
    given = {"clips": a.attribution_clips, "steps": a.attribution_steps, "layers": a.attribution_layers}
    attribution = {k: v for k, v in given.items() if v}
    shared = cache_root(None)
    with tempfile.TemporaryDirectory() as tmp:

        def fresh(name: str) -> dict:  # an empty feature store; synthetic audio and weights linked
            cache = Path(tmp) / name
            cache.mkdir()
            for item in ("synthetic", "checkpoints", "weights-sha256.json"):
                if (shared / item).exists():
                    (cache / item).symlink_to(shared / item)
            src = str(Path(__file__).resolve().parents[1] / "src")
            return {**os.environ, "PYTHONPATH": src, "SPEECHPROBE_CACHE": str(cache)}

        env = fresh("cache")
        args = {"models": a.models.split(","), "tasks": a.tasks.split(","), "out": str(Path(tmp) / "run")}
        print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        wall, cpu, _ = _timed(RUN, args, env)
        print(f"run without them ({a.models} x {a.tasks}): {wall:7.1f} s wall, {cpu:7.1f} s CPU")
        args["analyses"] = {"context_mixing": mixing, "attribution": attribution}
        _, _, out = _timed(ANALYSE, args, env)
        total, total_cpu = 0.0, 0.0
        for line in out.strip().splitlines():
            name, w, c = line.split()
            total, total_cpu = total + float(w), total_cpu + float(c)
            print(
                f"  {name:<15} {float(w):7.1f} s wall, ratio {float(w) / wall:.2f} of the run; CPU {float(c) / cpu:.2f}"
            )
        print(f"  {'both':<15} {total:7.1f} s wall, ratio {total / wall:.2f}; CPU {total_cpu / cpu:.2f} (budget 0.30)")
        if a.pooling_variants:
            pv = {**args, "out": str(Path(tmp) / "run-pv"), "extra": {"analyses": "+pooling_variants"}}
            pv_wall, pv_cpu, _ = _timed(RUN, pv, fresh("cache-pv"))
            again, again_cpu, _ = _timed(RUN, {**args, "out": str(Path(tmp) / "run-again")}, fresh("cache-again"))
            extra = pv_wall - again  # against the run made again (the first one paid the warm-up: JIT caches)
            extra_cpu = pv_cpu - again_cpu
            print(f"run with +pooling_variants: {pv_wall:7.1f} s wall, {pv_cpu:7.1f} s CPU")
            print(f"run without them, again:     {again:7.1f} s wall, {again_cpu:7.1f} s CPU")
            ratios = f"ratio {extra / again:.2f} of the run; CPU {extra_cpu / again_cpu:.2f}"
            print(f"  {'pooling_vars':<15} {extra:7.1f} s wall, {ratios}")
            share = total / wall + extra / again, total_cpu / cpu + extra_cpu / again_cpu
            print(f"  {'all three':<15} ratio {share[0]:.2f} wall, {share[1]:.2f} CPU (budget 0.30)")
        print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
