"""Loading transformers checkpoints from a local dir or a hub id, offline-aware."""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Callable, TypeVar

import torch

from ..cache import weights_sha256
from ..errors import SpeechprobeError

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
    except OSError as e:
        if is_local(source):
            raise SpeechprobeError(f"{source}: cannot load checkpoint ({str(e).splitlines()[0]})") from None
        raise SpeechprobeError(
            f"{source} is neither reachable nor in the local HF cache (offline?). Download it where there is "
            f"network (`huggingface-cli download {source} --local-dir DIR`) and pass --models DIR"
        ) from None


def weights_fingerprint(source: str, model: torch.nn.Module | None = None) -> str:
    """Identify the weights: the file content hash for a local dir, else the hub commit hash."""
    if is_local(source):
        path = Path(source).expanduser()
        files = sorted(p for p in path.iterdir() if p.suffix in (".safetensors", ".bin", ".pt") and p.is_file())
        if not files:
            raise SpeechprobeError(f"{path}: no weight files (*.safetensors, *.bin)")
        return "sha256:" + weights_sha256(files)[:16]
    commit = getattr(getattr(model, "config", None), "_commit_hash", None)
    return f"commit:{commit}" if commit else f"hub:{source}"


def random_fingerprint(config, seed: int) -> str:
    """Identify a random-init model: its config and seed."""
    blob = json.dumps(config.to_dict(), sort_keys=True, default=str)
    return f"random:seed{seed}:" + hashlib.sha256(blob.encode()).hexdigest()[:12]
