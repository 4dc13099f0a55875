"""The cost of verifying model weights before a run, measured in one run.

    python benchmarks/bench_weights.py                      # whisper-tiny.en and whisper-base, 3 rounds
    python benchmarks/bench_weights.py --models whisper-tiny.en --rounds 5

Each packaged Whisper is converted once into a temporary cache; then, per round, three ways of
getting to a verified checkpoint are timed, each doing what a model load does before reading the
weights (``packaged_checkpoint``, then the local checkpoint's fingerprint and full digest):

  first use    the digest memo (``weights-sha256.json``) removed: every packaged file is hashed
               against its pin and every converted file against its record (first run on a
               machine, after an upgrade, or the weekly full check)
  later run    the memo in place: stamps (size, mtime, ctime, inode) compared, seals checked,
               nothing hashed (the rule in docs/reliability.md)
  naive        the baseline: hash every packaged and converted file in full, every time

It prints the milliseconds of each, the ratios to the naive baseline, the megabytes hashed, and for
scale the seconds ``from_pretrained`` takes to load the same checkpoint.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from pathlib import Path

from speechprobe.models.hub import local_digest, weight_files, weights_fingerprint
from speechprobe.models.packaged import PACKAGED_WHISPER, _locate, packaged_checkpoint


def _ready(name: str, root: Path) -> None:
    """What a model load does before it reads the weights."""
    path = str(packaged_checkpoint(name, root))
    weights_fingerprint(path)
    local_digest(weight_files(path))


def _naive(files: list[Path]) -> None:
    for path in files:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 22):
                digest.update(chunk)


def _timed(step) -> float:
    t0 = time.perf_counter()
    step()
    return (time.perf_counter() - t0) * 1000


def bench(name: str, rounds: int) -> dict[str, float]:
    from transformers import WhisperForConditionalGeneration

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        checkpoint = packaged_checkpoint(name, root)
        convert = time.perf_counter() - t0
        files = [_locate(name, rel) for rel in PACKAGED_WHISPER[name]["sha256"]]
        files += sorted(p for p in checkpoint.iterdir() if p.is_file())
        memo = root / "weights-sha256.json"
        mb = sum(p.stat().st_size for p in files) / 1e6
        times: dict[str, list[float]] = {"first use": [], "later run": [], "naive": []}
        for _ in range(rounds):
            memo.unlink()
            times["first use"].append(_timed(lambda: _ready(name, root)))
            times["later run"].append(_timed(lambda: _ready(name, root)))
            times["naive"].append(_timed(lambda: _naive(files)))
        t0 = time.perf_counter()
        WhisperForConditionalGeneration.from_pretrained(checkpoint)
        load = time.perf_counter() - t0
    out = {k: statistics.median(v) for k, v in times.items()}
    out.update(mb=mb, load_s=load, convert_s=convert)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="whisper-tiny.en,whisper-base")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for name in args.models.split(","):
        r = bench(name, args.rounds)
        print(f"{name}: {r['mb']:.0f} MB of packaged and converted files (conversion once: {r['convert_s']:.1f} s)")
        for step in ("first use", "later run", "naive"):
            print(f"  {step:<10} {r[step]:9.1f} ms  ({r[step] / r['naive']:.3f}x naive)")
        print(f"  later run is {r['naive'] / r['later run']:.0f}x faster than always hashing;")
        print(f"  loading the checkpoint (from_pretrained) takes {r['load_s']:.2f} s for scale")


if __name__ == "__main__":
    main()
