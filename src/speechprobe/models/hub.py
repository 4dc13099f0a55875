"""Loading transformers checkpoints from a local dir or a hub id, offline-aware."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from safetensors import SafetensorError

from ..cache import weights_sha256
from ..errors import ConfigError, SpeechprobeError
from .lazy import Lazy

torch = Lazy("torch")

T = TypeVar("T")


def is_local(source: str) -> bool:
    return Path(source).expanduser().is_dir()


@contextlib.contextmanager
def quiet_transformers():
    """Silence transformers' load reports (unused decoder weights and the like)."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def load_pretrained(loader: Callable[..., T], source: str, revision: str | None = None, **kwargs) -> T:
    """``loader(source, revision=...)`` with a clear message when a hub id is not reachable."""
    try:
        with quiet_transformers():
            if is_local(source):
                return loader(source, **kwargs)
            return loader(source, revision=revision, **kwargs)
    except SafetensorError as e:  # a truncated or damaged .safetensors file
        raise SpeechprobeError(f"{source}: a weight file is damaged or truncated ({str(e).splitlines()[0]})") from None
    except OSError as e:
        if is_local(source):
            raise SpeechprobeError(f"{source}: cannot load checkpoint ({str(e).splitlines()[0]})") from None
        raise SpeechprobeError(
            f"{source} is neither reachable nor in the local HF cache (offline?). Download it where there is "
            f"network (`huggingface-cli download {source} --local-dir DIR`) and pass --models DIR"
        ) from None


def weight_files(source: str) -> list[Path]:
    """The weight files of a local checkpoint dir (``*.safetensors``, ``*.bin``, ``*.pt``), sorted."""
    path = Path(source).expanduser()
    files = sorted(p for p in path.iterdir() if p.suffix in (".safetensors", ".bin", ".pt") and p.is_file())
    if not files:
        raise SpeechprobeError(f"{path}: no weight files (*.safetensors, *.bin)")
    return files


def local_digest(files: list[Path]) -> dict:
    """What manifest.json records of a local checkpoint's weights: the files read and their full SHA-256."""
    return {"files": [str(p) for p in files], "sha256": weights_sha256(files)}


def weights_fingerprint(source: str, model: torch.nn.Module | None = None) -> str:
    """Identify the weights: the file content hash for a local dir, else the hub commit hash."""
    if is_local(source):
        return "sha256:" + weights_sha256(weight_files(source))[:16]
    commit = getattr(getattr(model, "config", None), "_commit_hash", None)
    return f"commit:{commit}" if commit else f"hub:{source}"


def random_fingerprint(config, seed: int) -> str:
    """Identify a random-init model: its config and seed."""
    blob = json.dumps(config.to_dict(), sort_keys=True, default=str)
    return f"random:seed{seed}:" + hashlib.sha256(blob.encode()).hexdigest()[:12]


def load_submodule_state(
    source: str, prefix: str, revision: str | None = None
) -> tuple[dict[str, torch.Tensor], list[Path]]:
    """Only the tensors under ``prefix`` (e.g. ``"audio_tower."``) of a safetensors checkpoint.

    Reads the shard index and opens only the shards that hold those tensors, so the rest of a
    large model (a 7B language model, a text decoder) is never loaded, nor downloaded from the hub.
    Keys are returned without the prefix; an empty prefix takes every tensor. Also returns the
    shard files read (to fingerprint them).
    """
    from safetensors import safe_open

    def fetch(src: str, filename: str, revision: str | None = None) -> Path:
        if is_local(src):
            path = Path(src).expanduser() / filename
            if not path.is_file():
                raise OSError(f"no {filename}")
            return path
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(src, filename, revision=revision))

    try:
        index = load_pretrained(fetch, source, revision, filename="model.safetensors.index.json")
        weight_map = json.loads(index.read_text())["weight_map"]
        shards = sorted({f for k, f in weight_map.items() if k.startswith(prefix)})
    except SpeechprobeError:
        shards = ["model.safetensors"]
    files = [load_pretrained(fetch, source, revision, filename=s) for s in shards]
    state: dict[str, torch.Tensor] = {}
    for file in files:
        with safe_open(str(file), framework="pt") as f:
            for key in f.keys():
                if key.startswith(prefix):
                    state[key[len(prefix) :]] = f.get_tensor(key)
    if not state:
        raise SpeechprobeError(f"{source}: no weights under {prefix!r} in {', '.join(shards)}")
    return state, files


def load_state_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """``load_state_dict`` that names the missing and unexpected tensors when the layouts differ."""
    missing, unexpected = module.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise SpeechprobeError(
            f"{source}: weights do not fit {type(module).__name__} "
            f"(missing: {', '.join(missing[:5]) or 'none'}; unexpected: {', '.join(unexpected[:5]) or 'none'})"
        )


def shards_fingerprint(source: str, files: list[Path], config) -> str:
    """Like ``weights_fingerprint``, for a model read from some shards only: hash just those."""
    if is_local(source):
        return "sha256:" + weights_sha256(files)[:16]
    commit = getattr(config, "_commit_hash", None)
    return f"commit:{commit}" if commit else f"hub:{source}"


def autocast_dtype(dtype: str | None) -> torch.dtype | None:
    """The torch dtype for ``--dtype``: None (float32) unless bf16 or fp16 is asked for."""
    if dtype in (None, "float32", "fp32"):
        return None
    table = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}
    if dtype not in table:
        raise ConfigError(f"unknown dtype {dtype!r}; choose float32, bf16 or fp16")
    return table[dtype]


def dtype_key(dtype: torch.dtype | None, device: torch.device) -> str:
    """The dtype as a feature-space key: on a CPU in low precision it names the float32 convolutions of
    :class:`~.cpu_autocast.CpuLowPrecisionFixes`, so features from before that fix (wrong on some CPUs) are not
    reused."""
    if dtype is None:
        return "float32"
    return f"{dtype}+f32conv" if device.type == "cpu" else str(dtype)


@contextlib.contextmanager
def autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    """``torch.autocast`` to ``dtype`` (nothing when None), with contiguous ``linear`` inputs on CPU."""
    with contextlib.ExitStack() as stack:
        if dtype is not None:
            stack.enter_context(torch.autocast(device.type, dtype=dtype))
            if device.type == "cpu":
                from .cpu_autocast import CpuLowPrecisionFixes

                stack.enter_context(CpuLowPrecisionFixes())
        yield


def cpu_bf16_native() -> bool | None:
    """Whether this CPU has bfloat16 arithmetic (AVX512-BF16 or AMX); None where it cannot tell."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), None)
    return None if flags is None else bool({"avx512_bf16", "amx_bf16"} & set(flags))


def load_feature_extractor(cls, source: str, revision: str | None, default: Callable[[], T]) -> T:
    """The checkpoint's own feature extractor, or ``default()`` when it ships none."""
    try:
        return load_pretrained(cls.from_pretrained, source, revision)
    except SpeechprobeError:
        return default()


def load_submodule(
    module_cls, config, source: str, prefix: str, revision: str | None, random_init: bool, seed: int, full_config=None
) -> tuple[torch.nn.Module, str, dict | None]:
    """Build ``module_cls(config)`` (seeded) and fill it with only the ``prefix`` weights of ``source``.

    Returns the module, its weights fingerprint and, for a local dir, the ``local_digest`` of the
    shards read; with ``random_init`` the seeded random weights are kept and the fingerprint names
    the seed and config.
    """
    torch.manual_seed(seed)
    module = module_cls(config)
    if random_init:
        return module, random_fingerprint(config, seed), None
    state, files = load_submodule_state(source, prefix, revision)
    load_state_strict(module, state, source)
    digest = local_digest(files) if is_local(source) else None
    return module, shards_fingerprint(source, files, full_config or config), digest
