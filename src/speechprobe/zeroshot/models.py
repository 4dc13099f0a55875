"""Which models can answer zero-shot, and loading their backends: the model registry says.

Zero-shot needs a text decoder: a family that declares a zero-shot backend (``Family.zeroshot``:
Whisper, Qwen2-Audio, SeamlessM4T v2). Families without one (wav2vec2, HuBERT, WavLM, data2vec,
Resemblyzer, the hand-crafted baselines) and checkpoints saved without their decoder are refused
with a message naming the models that can. Names resolve as everywhere else: a registry short name,
a local checkpoint directory (its ``config.json`` model type) or a hub id.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from ..data.tasks import close_matches
from ..errors import ConfigError, SpeechprobeError
from ..models import registry
from ..models.family import Family
from .base import BackendOptions, ZeroShotModel


def _decoder(family: Family, model_type: str | None = None) -> bool:
    return family.zeroshot is not None and model_type not in family.encoder_only_types


def capable_models() -> list[str]:
    """Registered short names whose family has a text decoder."""
    fams = registry.families()
    return [n for n, c in registry.checkpoints().items() if _decoder(fams[c.family])]


def refusal(name: str, kind: str) -> SpeechprobeError:
    capable = capable_models()
    whisper = [n for n in capable if n.startswith("whisper")]
    others = [n for n in capable if not n.startswith("whisper")]
    titles = [f.title for f in registry.families().values() if f.zeroshot]
    local = ", ".join(titles[:-1]) + (" or " if len(titles) > 1 else "") + titles[-1]
    return ConfigError(
        f"{name} ({kind}) has no text decoder, so it cannot answer zero-shot. Zero-shot works with models "
        f"that decode text: Whisper ({', '.join(whisper)}), {', '.join(others)}, or a local {local} checkpoint "
        f"directory. Probe {name} with `speechprobe run` instead"
    )


def resolve_zeroshot_model(name: str, convert: bool = True) -> ZeroShotModel:
    """Resolve ``name`` to a decoder model, or refuse clearly (``convert=False``: a name check only)."""
    known = registry.checkpoints()
    if name in known:
        ck = known[name]
        if not _decoder(registry.family(ck.family)):
            raise refusal(name, f"a {ck.family} model")
        source = registry.resolve_model(name)[1] if convert else ck.hub_id or name
        return ZeroShotModel(ck.name, ck.family, source, ck.revision)
    path = Path(name).expanduser()
    if path.is_dir():
        model_type = registry.read_model_type(path)
        family = registry.family_of_model_type(model_type)
        if family is not None and not _decoder(family, model_type):
            raise refusal(str(path), f"a {model_type} checkpoint")
        if family is None:
            types = [t for f in registry.families().values() for t in f.model_types if _decoder(f, t)]
            raise ConfigError(f"{path}: a {model_type!r} checkpoint; zero-shot supports {', '.join(types)} checkpoints")
        return ZeroShotModel(path.name, family.name, str(path))
    if "/" in name and not name.startswith((".", "/")):
        family = registry.family_of_hub_id(name)
        if not _decoder(family):
            raise refusal(name, "an encoder-only model")
        return ZeroShotModel(name.split("/")[-1], family.name, registry.hf_cached(name) or name)
    raise SpeechprobeError(f"unknown model {name!r}; {close_matches(name, list(known))}")


def load_backend(name: str, options: BackendOptions | None = None, **kwargs):
    """The zero-shot backend of ``name`` (see :func:`resolve_zeroshot_model`) from its family's loader (a
    ``ZeroShotBackend`` subclass's ``load``, or a function of the model and options), built with ``options``
    (as a run's configuration checked them), else ``BackendOptions(**kwargs)``, checked here."""
    if options is None:
        options = BackendOptions(**kwargs)
        options.check_compute()
    model = resolve_zeroshot_model(name)
    module, _, attr = str(registry.family(model.family).zeroshot).partition(":")
    loader = getattr(importlib.import_module(module), attr)
    return getattr(loader, "load", loader)(model, options)
