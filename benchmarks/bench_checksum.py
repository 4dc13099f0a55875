"""The cost of the feature store's per-item checksums, as a share of extraction, measured in one run.

    python benchmarks/bench_checksum.py                  # mfcc and whisper-tiny.en, 64 clips, 3 rounds
    python benchmarks/bench_checksum.py --models mfcc --clips 128 --rounds 5

Two stores are filled with the same clips through ``speechprobe.features.extract``, in turn within
each round so that they share the machine's load:

  checksum     the store as it is: every item written with its xxHash3-64 trailer, and every stored
               item read back and verified when extraction asks whether it is there
  plain        the same store without checksums (the items' ``.npy`` bytes only; existence checked
               with ``stat``), the baseline

Two passes per variant and round, reading the clips from WAV files through a manifest (decoding and
content hashing included, as in a run): ``compute`` (an empty store: every clip is computed and
written) and ``reuse`` (a full store: every clip is decoded and hashed, then found, i.e. verified).
The A/B overhead is ``checksum / plain - 1`` per round (median over rounds). On a loaded machine
that ratio is noisy, so the extra cost per item is also measured on its own (verifying a read
instead of a ``stat``, checksumming a write) and divided by each pass's time per clip: the share of
extraction the checksums take. The issue's bound is 3 %. MFCC is the fastest extractor, so its
share is the worst case; whisper-tiny.en (the demo's model, trimmed window) is a typical one.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from speechprobe.data.manifest import ManifestSource
from speechprobe.features.extract import extract
from speechprobe.features.store import FeatureSpace, FeatureStore, item_bytes, item_key, read_item
from speechprobe.files import atomic_write
from speechprobe.models.registry import load_model

SR = 16000


class PlainSpace(FeatureSpace):
    """The baseline: items without a checksum, found by existence alone."""

    def has(self, content_hash: str) -> bool:
        return self.item_path(content_hash).is_file()

    def put(self, content_hash: str, features: np.ndarray) -> None:
        path = self.item_path(content_hash)
        atomic_write(path, item_bytes(features, item_key(path))[:-12])


def write_clips(folder: Path, n: int, seed: int = 0) -> tuple[Path, float]:
    """``n`` tones of 1-4 s as WAV files and their manifest; returns it and the seconds of audio."""
    rng = np.random.default_rng(seed)
    rows, total = ["path,label"], 0.0
    for i in range(n):
        seconds = rng.uniform(1.0, 4.0)
        t = np.arange(int(seconds * SR)) / SR
        audio = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 400) * t) + 0.02 * rng.standard_normal(len(t))
        sf.write(folder / f"c{i}.wav", audio.astype(np.float32), SR)
        rows.append(f"c{i}.wav,{'ab'[i % 2]}")
        total += seconds
    (folder / "clips.csv").write_text("\n".join(rows) + "\n")
    return folder / "clips.csv", total


def one_round(adapter, manifest: Path) -> dict[str, float]:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        spaces = {
            "checksum": FeatureStore(Path(tmp) / "a").space(adapter.name, "w", {}),
            "plain": PlainSpace(Path(tmp) / "b" / "space", {"model": adapter.name}),
        }
        for phase in ("compute", "reuse"):
            for name, space in spaces.items():
                t0 = time.perf_counter()
                extract(adapter, ManifestSource(manifest), space, "mean", 120.0)
                out[f"{phase}/{name}"] = time.perf_counter() - t0
    return out


def extra_per_item(shape: tuple[int, int], n: int = 2000) -> float:
    """Seconds the checksums add to one item: verify a read instead of a stat, checksum a write."""
    arr = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "space" / "items" / "ab" / "abcd.npy"
        path.parent.mkdir(parents=True)
        key = item_key(path)
        path.write_bytes(item_bytes(arr, key))
        costs = {}
        for name, step in (
            ("verify", lambda: read_item(path)),
            ("stat", path.is_file),
            ("write", lambda: item_bytes(arr, key)),
            ("write-plain", lambda: item_bytes(arr, key)[:-12]),  # the same bytes, the checksum then dropped
        ):
            t0 = time.perf_counter()
            for _ in range(n):
                step()
            costs[name] = (time.perf_counter() - t0) / n
    return max(0.0, costs["verify"] - costs["stat"]) + max(0.0, costs["write"] - costs["write-plain"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mfcc,whisper-tiny.en")
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        manifest, seconds = write_clips(Path(folder), args.clips)
        print(f"{args.clips} clips, {seconds:.0f} s of audio, {args.rounds} rounds")
        for name in args.models.split(","):
            adapter = load_model(name, window="trimmed")
            one_round(adapter, manifest)  # warm-up (lazy imports, first allocations)
            rounds = [one_round(adapter, manifest) for _ in range(args.rounds)]
            extra = extra_per_item((adapter.num_layers, adapter.info.hidden_size))
            for phase in ("compute", "reuse"):
                ratios = [r[f"{phase}/checksum"] / r[f"{phase}/plain"] - 1 for r in rounds]
                per_clip = statistics.median(r[f"{phase}/plain"] for r in rounds) / args.clips
                print(
                    f"{name:>16} {phase:>7}: {1000 * per_clip:7.1f} ms per clip; checksums add {1e6 * extra:5.0f} us "
                    f"= {100 * extra / per_clip:.2f} % of it; A/B overhead {100 * statistics.median(ratios):+.1f} % "
                    f"(rounds {', '.join(f'{100 * x:+.1f}' for x in ratios)})"
                )


if __name__ == "__main__":
    main()
