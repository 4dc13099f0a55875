"""``speechprobe doctor``: measure this machine in under a minute and recommend ``--dtype`` and
``--max-batch-seconds``.

Why measure instead of reading CPU flags: native bfloat16 (AVX512-BF16, AMX) is necessary but not
sufficient. On this project's 2-core AMD Zen CPU with AVX512-BF16, Whisper in bf16 runs 2.2x faster
than float32; on an Intel Xeon that also reports AVX512-BF16 it ran at 0.6x (PyTorch's kernels, cache
sizes and thermal limits differ). Batch size behaves the same way: on 2 cores batching gains nothing
for some encoders. So the doctor times the real adapter's forward pass on synthetic clips, float32
against bf16 (where the hardware has it) and a few batch budgets, and recommends what was fastest here.

The numbers depend on what else runs on the machine: the load average is printed with them.
"""

from __future__ import annotations

import os
import platform
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DEFAULT_MODEL = "whisper-tiny.en"
BUDGETS = (30.0, 60.0, 120.0, 240.0)  # padded seconds of audio per batch to try
CLIP_SECONDS = 4.0
SPEEDUP_TO_RECOMMEND = 1.15  # bf16 must beat float32 by this factor (noise is ~±10 % on a shared CPU)
NEAR_BEST = 0.95  # among budgets within 5 % of the fastest, the smallest (less memory) is recommended


@dataclass
class Measurement:
    """One timed configuration: audio seconds processed per wall second (x real time)."""

    dtype: str
    budget: float
    clips_per_batch: int
    seconds: float  # wall time of one batch (best of the repeats)
    realtime: float  # audio seconds per wall second


@dataclass
class Diagnosis:
    """What the doctor found: machine facts, measurements, recommendations and notes."""

    facts: dict[str, str] = field(default_factory=dict)
    measurements: list[Measurement] = field(default_factory=list)
    dtype: str = "float32"
    budget: float | None = None
    recommendations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    setup_seconds: float = 0.0  # machine facts, loading float32 and its first call: spent whatever the limit


def machine_facts(device: str) -> dict[str, str]:
    """CPU, cores, memory, native bf16, GPU and load: what the measurements depend on."""
    from .models.hub import cpu_bf16_native

    facts = {"platform": platform.platform(), "python": platform.python_version()}
    cpu = _cpuinfo("model name") or platform.processor() or "unknown"
    facts["cpu"] = cpu
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    facts["cores available"] = str(cores)
    native = cpu_bf16_native()
    facts["native bf16 (AVX512-BF16/AMX)"] = {True: "yes", False: "no", None: "unknown"}[native]
    mem = _meminfo("MemAvailable")
    if mem:
        facts["memory available"] = f"{mem / 2**30:.1f} GiB"
    if hasattr(os, "getloadavg"):
        facts["load average (1 min)"] = f"{os.getloadavg()[0]:.2f}"
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            facts["gpu"] = f"{props.name}, {props.total_memory / 2**30:.0f} GiB"
        else:
            facts["gpu"] = "none (CUDA not available)"
    return facts


def _cpuinfo(key: str) -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _meminfo(key: str) -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _clips(n: int, sample_rate: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` clips of harmonic tones in noise (speech-like energy; the content does not change speed)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(CLIP_SECONDS * sample_rate)) / sample_rate
    out = []
    for _ in range(n):
        f0 = rng.uniform(90, 250)
        wave = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
        out.append((0.1 * wave + 0.01 * rng.standard_normal(len(t))).astype(np.float32))
    return out


def _time(forward: Callable[[list[np.ndarray]], object], batch: list[np.ndarray], repeats: int) -> float:
    """The best wall time of ``repeats`` calls (the least disturbed by other work on the machine)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        forward(batch)
        best = min(best, time.perf_counter() - start)
    return best


def _dtypes(device: str, facts: dict[str, str]) -> tuple[list[str], list[str]]:
    """The dtypes worth timing here, and notes on those left out."""
    if device.startswith("cuda"):
        return ["float32", "bf16"], []
    if facts.get("native bf16 (AVX512-BF16/AMX)") == "no":
        return ["float32"], ["bf16 not timed: this CPU has no native bfloat16, so it would be emulated and slower"]
    return ["float32", "bf16"], []


def diagnose(
    model: str = DEFAULT_MODEL,
    device: str = "cpu",
    window: str | None = None,
    budgets: tuple[float, ...] = BUDGETS,
    time_limit: float = 45.0,
    rounds: int = 3,
    progress: Callable[[str], None] | None = None,
) -> Diagnosis:
    """Time ``model``'s forward pass on synthetic clips and recommend the fastest settings, within about
    ``time_limit`` seconds (what is left out is said in the notes).

    float32 is loaded and timed once whatever the limit (nothing can be recommended without it); every
    further step runs only if it fits in the time left, judged from what the steps before it took: loading
    bf16 (as long as float32's load and first calls took), each further round of the dtypes at the smallest
    budget (alternating, so a burst of other work on the machine hits both alike), then the batch budgets
    with the faster dtype, smallest first (from the seconds per clip measured so far).
    """
    from .config import check_device

    check_device(device)  # a CUDA device this torch has, before any model loads
    started = time.perf_counter()

    def left() -> float:
        return time_limit - (time.perf_counter() - started)

    say = progress or (lambda _msg: None)
    diag = Diagnosis(facts=machine_facts(device))
    dtypes, diag.notes = _dtypes(device, diag.facts)
    diag.facts["model"] = f"{model} ({window or 'default'} window)"
    adapters, load_seconds = {}, 0.0
    for dtype in dtypes:
        if adapters and load_seconds > left():
            diag.notes.append(f"{dtype} not timed: loading it would not fit in the {time_limit:g} s limit")
            continue
        t0 = time.perf_counter()
        adapters[dtype] = adapter = _load(model, window, device, dtype, say)
        cost = adapter.window_seconds(CLIP_SECONDS)
        clips = _clips(max(1, int(max(budgets) // cost)), adapter.info.sample_rate)
        adapter.forward(clips[:1])  # warm-up: first-call allocations and kernel selection
        load_seconds = time.perf_counter() - t0
        diag.setup_seconds = diag.setup_seconds or time.perf_counter() - started
    n0 = max(1, int(budgets[0] // cost))
    best = dict.fromkeys(adapters, float("inf"))
    for k in range(rounds):
        if k and sum(best.values()) * 1.5 > left():
            diag.notes.append(f"{k} of {rounds} rounds timed: more would not fit in the {time_limit:g} s limit")
            break
        for dtype, adapter in adapters.items():
            say(f"timing {dtype}, round {k + 1} of {rounds} ({n0} clip(s) per batch)")
            best[dtype] = min(best[dtype], _time(adapter.forward, clips[:n0], 1))
    for dtype, seconds in best.items():
        diag.measurements.append(Measurement(dtype, budgets[0], n0, seconds, n0 * CLIP_SECONDS / seconds))
    faster = min(best, key=best.get)
    per_clip = best[faster] / n0
    for budget in budgets[1:]:
        n = max(1, int(budget // cost))
        if n * per_clip * 1.5 > left():
            diag.notes.append(f"{budget:g} s per batch not timed: it would not fit in the {time_limit:g} s limit")
            continue
        say(f"timing {faster}, {n} clip(s) per batch ({budget:g} s of padded audio)")
        seconds = _time(adapters[faster].forward, clips[:n], 1)
        diag.measurements.append(Measurement(faster, budget, n, seconds, n * CLIP_SECONDS / seconds))
    diag.facts["peak memory of this process"] = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB"
    _recommend(diag, budgets[0])
    diag.seconds = time.perf_counter() - started
    return diag


def _load(model: str, window: str | None, device: str, dtype: str, say: Callable[[str], None]):
    from .models.registry import load_model

    say(f"loading {model} ({dtype})")
    return load_model(model, window=window, device=device, dtype=None if dtype == "float32" else dtype)


def _best(measurements: list[Measurement]) -> Measurement | None:
    if not measurements:
        return None
    top = max(m.realtime for m in measurements)
    near = [m for m in measurements if m.realtime >= NEAR_BEST * top]
    return min(near, key=lambda m: m.budget)


def _recommend(diag: Diagnosis, first_budget: float) -> None:
    same = {m.dtype: m for m in diag.measurements if m.budget == first_budget}
    if "float32" not in same:
        diag.recommendations.append("nothing could be timed; run with the defaults")
        return
    if "bf16" in same:
        ratio = same["bf16"].realtime / same["float32"].realtime
        if ratio >= SPEEDUP_TO_RECOMMEND:
            diag.dtype = "bf16"
            diag.recommendations.append(
                f"--dtype bf16: {ratio:.2f}x the speed of float32 here (features within about 1 % of float32, "
                "cached separately; docs/models.md)"
            )
        else:
            diag.recommendations.append(
                f"keep float32 (the default): bf16 ran at {ratio:.2f}x its speed here, "
                f"below the {SPEEDUP_TO_RECOMMEND:.2f}x worth switching for"
            )
    timed = [m for m in diag.measurements if m.dtype == min(same, key=lambda d: same[d].seconds)]
    flags = [f"--dtype {diag.dtype}"] if diag.dtype != "float32" else []
    if len(timed) < 2:
        diag.recommendations.append(
            "keep the default --max-batch-seconds: only one batch size could be timed within the limit "
            "(a busy or slow machine; run the doctor again when it is idle)"
        )
    else:
        chosen = _best(timed)
        diag.budget = chosen.budget
        flags.append(f"--max-batch-seconds {chosen.budget:g}")
        diag.recommendations.append(
            f"--max-batch-seconds {chosen.budget:g}: {chosen.realtime:.1f}x real time with {chosen.clips_per_batch} "
            f"clip(s) per batch, the smallest budget within {1 - NEAR_BEST:.0%} of the fastest timed"
        )
    diag.recommendations.insert(0, "recommended: speechprobe run ... " + (" ".join(flags) or "(the defaults)"))


__all__ = ["DEFAULT_MODEL", "Diagnosis", "Measurement", "diagnose", "machine_facts"]
