"""Rendering and caching of the synthetic suite: one folder per (task, size, seed), checked on reuse.

Each generation writes ``wav/NNNN.wav``, ``checksums.json`` (xxHash3-64 of every WAV and of the
manifest) and its ``manifest.csv`` last, all atomically. A reused generation is checked against its
checksums: a clip or manifest whose bytes changed (a label swapped at the same size, say) is logged,
written again (rendering is deterministic) and reported, so a damaged cache never feeds a wrong
waveform or label to a model. A generation whose checksums lack the manifest (speechprobe before
they covered it) gets its manifest written again and its checksum added.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
import xxhash
from filelock import FileLock
from tqdm import tqdm

from ...errors import ConfigError
from ...files import atomic_write, write_error
from ..tasks import close_matches
from . import effects, espeak
from .suite import _GENERATORS, DEFAULT_N_PER_CLASS, GENERATOR_VERSION, SAMPLE_RATE, Item, Speech

log = logging.getLogger("speechprobe")
WORKERS = min(4, os.cpu_count() or 1)
MANIFEST = "manifest.csv"


@lru_cache(maxsize=32)  # crossed tasks render one speech for consecutive items
def _render_speech(speech: Speech) -> np.ndarray:
    audio, sr = espeak.synthesize(**dataclasses.asdict(speech))  # a Speech's fields are synthesize's parameters
    return effects.resample(audio, sr, SAMPLE_RATE)


def render(item: Item) -> np.ndarray:
    """The item's 16 kHz float32 waveform (deterministic)."""
    audio = [_render_speech(s) for s in item.speech]
    return item.post(audio, np.random.default_rng(item.seed)).astype(np.float32)


def _wav_bytes(item: Item) -> bytes:
    """The item as a 16 kHz mono PCM16 WAV file (deterministic bytes)."""
    buf = io.BytesIO()
    sf.write(buf, effects.to_pcm16(render(item)), SAMPLE_RATE, subtype="PCM_16", format="WAV")
    return buf.getvalue()


def _write(job: tuple[Item, Path]) -> str:
    """Write one clip atomically; returns the checksum of its bytes."""
    item, path = job
    data = _wav_bytes(item)
    atomic_write(path, data, hint="pass a writable --cache")
    return xxhash.xxh3_64_hexdigest(data)


def _file_checksum(path: Path) -> str | None:
    try:
        return xxhash.xxh3_64_hexdigest(path.read_bytes())
    except OSError:
        return None


def _damaged(out_dir: Path, params: dict) -> list[str] | None:
    """Files of a finished generation whose bytes changed (``[]``: all sound); None when it must be redone.

    The manifest counts as damaged when checksums.json has no entry for it (an older generation).
    """
    try:
        same = json.loads((out_dir / "params.json").read_text()) == params
        sums = json.loads((out_dir / "checksums.json").read_text())
    except (OSError, ValueError):
        return None
    if not same or not isinstance(sums, dict) or not (out_dir / MANIFEST).is_file():
        return None
    return [rel for rel in {**sums, MANIFEST: None} if _file_checksum(out_dir / rel) != sums.get(rel)]


def generate_task(
    name: str,
    out_dir: Path,
    n_per_class: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> Path:
    """Generate (or reuse) a synthetic task in ``out_dir`` and return its ``manifest.csv``.

    See :func:`ensure_task`, which also says which clips were found damaged and written again.
    """
    return ensure_task(name, out_dir, n_per_class, seed, progress)[0]


def ensure_task(
    name: str,
    out_dir: Path,
    n_per_class: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> tuple[Path, list[str]]:
    """Generate (or reuse) a synthetic task in ``out_dir``: its ``manifest.csv`` and the clips repaired.

    Writes ``wav/NNNN.wav`` (16 kHz mono PCM16), ``checksums.json`` (xxHash3-64 of every file) and a
    manifest with columns ``path,label,group,text`` (paths relative to it), last. The same ``seed``
    gives byte-identical audio. ``out_dir`` is owned by the generator: a complete generation with the
    same task, size, seed, generator and eSpeak versions is reused after its files are checked against
    their checksums (a damaged clip is logged and rendered again; a read-only cache is fine when all are
    sound); anything else is redone. ``n_per_class`` defaults to ``DEFAULT_N_PER_CLASS[name]``.
    """
    if name not in _GENERATORS:
        hint = close_matches(name, list(_GENERATORS))
        raise ConfigError(f"unknown synthetic task {name!r}: {hint}")
    n = DEFAULT_N_PER_CLASS[name] if n_per_class is None else int(n_per_class)
    if n < 1:
        raise ConfigError(f"n_per_class must be at least 1, got {n}")
    out_dir = Path(out_dir)
    manifest = out_dir / MANIFEST
    params = {
        "task": name,
        "n_per_class": n,
        "seed": int(seed),
        "generator_version": GENERATOR_VERSION,
        "espeak": espeak.version(),
    }
    if _damaged(out_dir, params) == []:  # no lock needed to read a sound generation (read-only caches too)
        return manifest, []
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(out_dir / ".lock"))
        lock.acquire()
    except OSError as e:
        raise write_error(e, out_dir, "pass a writable --cache") from None
    try:
        items = _GENERATORS[name](n, np.random.default_rng(seed))
        paths = [Path("wav") / f"{i:04d}.wav" for i in range(len(items))]
        damaged = _damaged(out_dir, params)
        if damaged is not None:
            if damaged:
                log.warning("synthetic task %s: %d file(s) changed on disk; writing them again", name, len(damaged))
                jobs = [(it, out_dir / p) for it, p in zip(items, paths) if p.as_posix() in set(damaged)]
                with ThreadPoolExecutor(max_workers=WORKERS) as pool:
                    list(pool.map(_write, jobs))
                if MANIFEST in damaged:
                    sums = json.loads((out_dir / "checksums.json").read_text())
                    _write_manifest(out_dir, items, paths, {k: v for k, v in sums.items() if k != MANIFEST})
            return manifest, damaged
        _generate(name, out_dir, items, paths, params, progress)
    finally:
        lock.release()
    return manifest, []


def _generate(name: str, out_dir: Path, items: list[Item], paths: list[Path], params: dict, progress: bool) -> None:
    """Render every clip, then checksums.json and the manifest (the completion mark)."""
    (out_dir / MANIFEST).unlink(missing_ok=True)
    shutil.rmtree(out_dir / "wav", ignore_errors=True)
    atomic_write(out_dir / "params.json", (json.dumps(params, indent=2) + "\n").encode())
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        jobs = pool.map(_write, [(it, out_dir / p) for it, p in zip(items, paths)])
        sums = list(tqdm(jobs, total=len(items), desc=name, disable=not progress, unit="clip"))
    _write_manifest(out_dir, items, paths, dict(zip([p.as_posix() for p in paths], sums)))


def _write_manifest(out_dir: Path, items: list[Item], paths: list[Path], wav_sums: dict[str, str]) -> None:
    """checksums.json (the WAVs' and the manifest's), then the manifest itself, last."""
    import pandas as pd  # here: listing the tasks needs no pandas

    frame = pd.DataFrame(
        {
            "path": [p.as_posix() for p in paths],
            "label": [it.label for it in items],
            "group": [it.group for it in items],
            "text": [it.text for it in items],
        }
    )
    data = frame.to_csv(index=False, lineterminator="\n").encode()
    sums = {**wav_sums, MANIFEST: xxhash.xxh3_64_hexdigest(data)}
    atomic_write(out_dir / "checksums.json", json.dumps(sums).encode())
    atomic_write(out_dir / MANIFEST, data)
