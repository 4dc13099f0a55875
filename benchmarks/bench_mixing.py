"""Cost of the three analyses of issue 28 (context mixing, attribution, pooling variants) on a demo-sized run.

    PYTHONPATH=src python benchmarks/bench_mixing.py                       # the demo's models and tasks
    PYTHONPATH=src python benchmarks/bench_mixing.py --models whisper-tiny.en --tasks gender   # trimmed

Three runs with the demo's settings (trimmed window, KNN, 5 x 5-fold CV, cue erasure, the default analyses) on
the chosen models and tasks, each from an empty feature store (the synthetic audio and the converted weights
are linked from the speechprobe cache, so they are not rendered or converted again): the run without them
(it pays the warm-ups: compiled-code caches), the run with all three as ``speechprobe demo --analyses
+context_mixing,+attribution,+pooling_variants`` makes it (their options as given, else their defaults), and
the run without them again. Printed: each run's wall and CPU seconds, and the ratio of what the three add
(with minus the run made again) to the run made again; the issue's budget is 0.30. With ``--breakdown``
(default) context mixing and attribution are then timed alone on the last run's directory (as the run runs them,
with the demo's ``--jobs``; CPU time includes their worker processes) for each one's share; pooling variants' share is
what is left.
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
from joblib.externals.loky import get_reusable_executor
get_reusable_executor().shutdown(wait=True)  # joblib's worker processes reaped: their CPU time is counted
"""
ALL_THREE = "+context_mixing,+attribution,+pooling_variants"
ANALYSE = """
import json, resource, sys, time
from pathlib import Path
from speechprobe.analysis import analyse_features
from speechprobe.cli.run_commands import DEMO
args = json.loads(sys.argv[1])

def cpu():  # this process and its finished worker processes (joblib's are reaped at the end of each analysis)
    done = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + done.ru_utime + done.ru_stime

for name, options in args["analyses"].items():
    t, c = time.perf_counter(), cpu()
    analyse_features(Path(args["out"]), analyses=[name], options={name: options}, n_jobs=DEMO["n_jobs"])
    from joblib.externals.loky import get_reusable_executor
    get_reusable_executor().shutdown(wait=True)  # its workers' CPU time counted here
    print(name, time.perf_counter() - t, cpu() - c, flush=True)
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


def _share(wall: float, cpu: float, base_wall: float, base_cpu: float) -> str:
    return f"{wall:7.1f} s wall, ratio {wall / base_wall:.2f}; CPU {cpu:.1f} s, ratio {cpu / base_cpu:.2f}"


def main() -> None:
    from speechprobe.cache import cache_root
    from speechprobe.cli.run_commands import DEMO_MODELS, DEMO_TASKS

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default=",".join(DEMO_MODELS))
    p.add_argument("--tasks", default=",".join(DEMO_TASKS))
    p.add_argument("--mixing-clips", type=int, default=None, help="context mixing's clips per task [its default]")
    p.add_argument("--mixing-frames", type=int, default=None, help="value zeroing's query frames [every frame]")
    p.add_argument("--mixing-seconds", type=float, default=None, help="context mixing's window per clip [its default]")
    p.add_argument("--attribution-clips", type=int, default=None)
    p.add_argument("--attribution-steps", type=int, default=None)
    p.add_argument("--attribution-layers", type=int, default=None)
    p.add_argument("--n-per-class", type=int, default=None, help="synthetic clips per class [each task's own]")
    p.add_argument("--breakdown", action=argparse.BooleanOptionalAction, default=True, help="time each alone too")
    a = p.parse_args()
    sizes = {"mixing_clips": a.mixing_clips, "mixing_frames": a.mixing_frames, "mixing_seconds": a.mixing_seconds}
    sizes |= {"attribution_clips": a.attribution_clips}
    sizes |= {"attribution_steps": a.attribution_steps, "attribution_layers": a.attribution_layers}
    sizes = {k: v for k, v in sizes.items() if v}
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

        base = {"models": a.models.split(","), "tasks": a.tasks.split(",")}
        size = {"extra": {"n_per_class": a.n_per_class}} if a.n_per_class else {"extra": {}}
        print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        first = _timed(RUN, {**base, **size, "out": str(Path(tmp) / "run")}, fresh("cache"))
        print(f"run without them ({a.models} x {a.tasks}): {first[0]:7.1f} s wall, {first[1]:7.1f} s CPU")
        on = {**base, "out": str(Path(tmp) / "run-on"), "extra": {**size["extra"], "analyses": ALL_THREE, **sizes}}
        wall, cpu, _ = _timed(RUN, on, fresh("cache-on"))
        print(f"run with the three:          {wall:7.1f} s wall, {cpu:7.1f} s CPU")
        again = {**base, **size, "out": str(Path(tmp) / "run-again")}
        base_wall, base_cpu, _ = _timed(RUN, again, env := fresh("cache-again"))
        print(f"run without them, again:     {base_wall:7.1f} s wall, {base_cpu:7.1f} s CPU")
        extra, extra_cpu = wall - base_wall, cpu - base_cpu
        print(
            f"  all three add {extra:7.1f} s wall, ratio {extra / base_wall:.2f} of the run; "
            f"CPU {extra_cpu:.1f} s, ratio {extra_cpu / base_cpu:.2f} (budget 0.30)"
        )
        if a.breakdown:
            mixing = {"clips": a.mixing_clips, "frames": a.mixing_frames, "seconds": a.mixing_seconds}
            attribution = {"clips": a.attribution_clips, "steps": a.attribution_steps, "layers": a.attribution_layers}
            options = {"context_mixing": mixing, "attribution": attribution}
            again["analyses"] = {n: {k: v for k, v in o.items() if v} for n, o in options.items()}
            _, _, out = _timed(ANALYSE, again, env)
            left, left_cpu = extra, extra_cpu
            for line in out.strip().splitlines():
                name, w, c = line.split()
                left, left_cpu = left - float(w), left_cpu - float(c)
                print(f"  {name:<15} {_share(float(w), float(c), base_wall, base_cpu)}")
            print(f"  {'pooling (rest)':<15} {_share(left, left_cpu, base_wall, base_cpu)}")
        print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
