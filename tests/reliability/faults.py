"""The fault cases of issue 14 (and the CLI items of issue 17), each a real run with a checked outcome.

This module holds the registry (``CASES``) and the shared inputs and runners; the cases themselves are
in ``faults_numbers.py`` (wrong numbers, exit codes), ``faults_inputs.py`` (disks, temporary files,
hostile input, options, outputs, the command line) and ``faults_commands.py`` (issue 31 items 5-10:
reproduce, absurd amplitude, doctor, report, CSV formula injection, Ray's private files).

One definition serves two callers: ``tests/reliability/test_faults.py`` runs every case as a test, and
``scripts/fault_matrix.py`` prints one line per case (input -> expected -> observed -> OK/FAIL) for
docs/reliability.md. A case builds its inputs under a fresh folder, runs the real code (the Python API,
or the ``speechprobe`` entry point in a subprocess where the exit status matters), asserts the outcome
and returns what it observed. Runs use the MFCC baseline on a few tones, so each takes about a second.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

SR = 16000
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Case:
    item: str  # issue item, e.g. "14.3"
    given: str  # the input
    expected: str
    run: Callable[[Path], str]  # builds, runs and asserts; returns what it observed
    needs: str = ""  # "mount" (root, to mount a tmpfs), "espeak" or "ray"


CASES: list[Case] = []  # filled by faults_numbers and faults_inputs, imported at the end of this module


def case(item: str, given: str, expected: str, needs: str = ""):
    def deco(fn: Callable[[Path], str]) -> Callable[[Path], str]:
        CASES.append(Case(item, given, expected, fn, needs))
        return fn

    return deco


# -- inputs ------------------------------------------------------------------------------------------


def tone(seconds: float = 0.5, f0: float = 220.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * f0 * t) + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def tones(root: Path, n_per_class: int = 8, name: str = "tones.csv", groups: int = 4, rows=None) -> Path:
    """A manifest of two pitch classes (learnable by MFCC), ``groups`` speakers crossing both classes."""
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for label, f0 in (("low", 150.0), ("high", 400.0)):
        for i in range(n_per_class):
            wav = f"{label}{i}.wav"
            sf.write(root / wav, tone(0.4 + 0.05 * i, f0 * (1 + 0.01 * i), seed=i), SR)
            out.append((wav, label, f"spk{i % groups}"))
    write_manifest(root / name, out + list(rows or []))
    return root / name


def write_manifest(path: Path, rows) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "group"])
        w.writerows(rows)
    return path


def cfg(tasks, out: Path, cache: Path, **kw):
    from speechprobe.config import RunConfig

    base = dict(
        models=[],
        baselines=["mfcc"],
        tasks=[str(t) for t in tasks],
        out=out,
        folds=2,
        probes=["knn"],
        permutations=0,
        embeddings=False,
        fingerprints=False,
        similarity=False,
        mdl=False,
        cue_probes=False,  # the cue analyses are not what the fault cases test (and add a feature space)
        layer_weights=False,
        report=False,
        progress=False,
        cache=cache,
    )
    return RunConfig.of(**{**base, **kw})


def run(tasks, out: Path, cache: Path, existing: str = "auto", **kw) -> pd.DataFrame:
    from speechprobe.pipeline import run as run_pipeline

    return run_pipeline(cfg(tasks, out, cache, **kw), existing)


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def cli(*args: str, cache: Path | None = None, timeout: int = 600, **kw) -> subprocess.CompletedProcess:
    """The real entry point (``speechprobe = speechprobe.cli:main``, as the installed script calls it)."""
    env = {**os.environ, **({"SPEECHPROBE_CACHE": str(cache)} if cache else {})}
    code = "import sys; from speechprobe.cli import main; sys.exit(main())"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout, env=env, **kw
    )


def one_line(r: subprocess.CompletedProcess) -> str:
    lines = [x for x in r.stderr.strip().splitlines() if not x.startswith("WARNING")]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


def items(cache: Path) -> list[Path]:
    return sorted((cache / "features").rglob("items/*/*.npy"))


import faults_commands  # noqa: F401
import faults_inputs  # noqa: F401  (the cases register themselves)
import faults_integrity  # noqa: F401
import faults_numbers  # noqa: F401

CASES.sort(key=lambda c: tuple(int(x) for x in c.item.split(".")))  # by issue item, stable within one
