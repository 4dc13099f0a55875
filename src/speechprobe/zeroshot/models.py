"""Which models can answer zero-shot, and loading their backends.

Zero-shot needs a text decoder: Whisper (every size, decoder prompting), Qwen2-Audio (7B Instruct
and base) and SeamlessM4T v2 (its text decoder). Encoder-only models (wav2vec2, HuBERT, WavLM,
data2vec, Resemblyzer) and the hand-crafted baselines are refused with a message naming the models
that can. Names resolve like everywhere else: a registry short name, a local checkpoint directory
(its ``config.json`` ``model_type``) or a hub id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, SpeechprobeError
from ..models.hub import autocast_dtype

#: zero-shot family -> how registry families and transformers model types spell it
DECODER_FAMILIES = {
    "whisper": ("whisper",),
    "qwen2-audio": ("qwen2-audio", "qwen2_audio"),
    "seamless": ("seamless", "seamless_m4t_v2", "seamless-m4t-v2"),
}
#: transformers model types / registry families without a text decoder
ENCODER_ONLY = (
    "wav2vec2",
    "hubert",
    "wavlm",
    "data2vec-audio",
    "data2vec_audio",
    "unispeech",
    "unispeech-sat",
    "unispeech_sat",
    "wav2vec2-bert",
    "wav2vec2_bert",
    "wav2vec2-conformer",
    "wav2vec2_conformer",
    "qwen2_audio_encoder",
    "resemblyzer",
    "handcrafted",
    "mfcc",
    "librosa",
)
_HUB_PATTERNS = (
    ("whisper", "whisper"),
    ("qwen2-audio", "qwen2-audio"),
    ("qwen2_audio", "qwen2-audio"),
    ("seamless-m4t-v2", "seamless"),
    ("seamless_m4t_v2", "seamless"),
)
_HUB_ENCODER_PATTERNS = ("wav2vec2", "hubert", "wavlm", "data2vec", "unispeech", "resemblyzer", "w2v-bert")
EXTRA_MODELS = {  # zero-shot names beside the registry's (used when the registry lacks them)
    "qwen2-audio-7b-instruct": ("qwen2-audio", "Qwen/Qwen2-Audio-7B-Instruct"),
    "qwen2-audio-7b": ("qwen2-audio", "Qwen/Qwen2-Audio-7B"),
    "seamless-m4t-v2-large": ("seamless", "facebook/seamless-m4t-v2-large"),
}


@dataclass(frozen=True)
class ZeroShotModel:
    """A model that can answer zero-shot: display name, family, source (local dir or hub id), revision."""

    name: str
    family: str
    source: str
    revision: str | None = None


def capable_models() -> list[str]:
    """Registered names (plus the zero-shot extras) whose family has a text decoder."""
    from ..models.registry import MODELS

    names = [n for n, s in MODELS.items() if _decoder_family(s.family)]
    return list(dict.fromkeys([*names, *EXTRA_MODELS]))


def _decoder_family(spelling: str | None) -> str | None:
    for family, spellings in DECODER_FAMILIES.items():
        if (spelling or "").lower() in spellings:
            return family
    return None


def refusal(name: str, kind: str) -> SpeechprobeError:
    whisper = [n for n in capable_models() if n.startswith("whisper")]
    others = [n for n in capable_models() if not n.startswith("whisper")]
    return ConfigError(
        f"{name} ({kind}) has no text decoder, so it cannot answer zero-shot. Zero-shot works with models "
        f"that decode text: Whisper ({', '.join(whisper)}), {', '.join(others)}, or a local Whisper, "
        f"Qwen2-Audio or SeamlessM4T-v2 checkpoint directory. Probe {name} with `speechprobe run` instead"
    )


def resolve_zeroshot_model(name: str, convert: bool = True) -> ZeroShotModel:
    """Resolve ``name`` to a decoder model, or refuse clearly (``convert=False``: a name check only)."""
    from ..data.tasks import close_matches
    from ..models.registry import MODELS, resolve_model

    if name in MODELS:
        spec = MODELS[name]
        family = _decoder_family(spec.family)
        if family is None:
            raise refusal(name, f"a {spec.family} model")
        if not convert:
            return ZeroShotModel(spec.name, family, spec.hub_id or name, spec.revision)
        _, source = resolve_model(name)
        return ZeroShotModel(spec.name, family, source, spec.revision)
    if name in EXTRA_MODELS:
        family, hub_id = EXTRA_MODELS[name]
        return ZeroShotModel(name, family, _cached_or_hub(hub_id), None)
    path = Path(name).expanduser()
    if path.is_dir():
        cfg = path / "config.json"
        if not cfg.is_file():
            raise SpeechprobeError(f"{path}: no config.json; not a transformers checkpoint directory")
        model_type = str(json.loads(cfg.read_text()).get("model_type", ""))
        family = _decoder_family(model_type)
        if family is None:
            if model_type.lower() in ENCODER_ONLY:
                raise refusal(str(path), f"a {model_type} checkpoint")
            raise ConfigError(
                f"{path}: a {model_type!r} checkpoint; "
                "zero-shot supports whisper, qwen2_audio and seamless_m4t_v2 checkpoints"
            )
        return ZeroShotModel(path.name, family, str(path))
    if "/" in name and not name.startswith((".", "/")):
        lowered = name.lower()
        for pattern, family in _HUB_PATTERNS:
            if pattern in lowered:
                return ZeroShotModel(name.split("/")[-1], family, _cached_or_hub(name))
        if any(p in lowered for p in _HUB_ENCODER_PATTERNS):
            raise refusal(name, "an encoder-only model")
        raise ConfigError(f"cannot tell the model family of {name!r}; pass a local checkpoint directory instead")
    known = list(dict.fromkeys([*MODELS, *EXTRA_MODELS]))
    raise SpeechprobeError(f"unknown model {name!r}; {close_matches(name, known)}")


def _cached_or_hub(hub_id: str) -> str:
    from ..models.registry import _hf_cached

    return _hf_cached(hub_id, None) or hub_id


def load_backend(
    name: str,
    device: str = "cpu",
    dtype: str | None = None,
    batch_size: int = 8,
    chat_template: bool | None = None,
    system_prompt: str | None = None,
    language: str | None = "en",
    window: str = "full",
    prompt_as: str | None = None,
):
    """The zero-shot backend of ``name`` (see :func:`resolve_zeroshot_model`); ``prompt_as``: Whisper only."""
    model = resolve_zeroshot_model(name)
    td = autocast_dtype(dtype)
    if model.family == "whisper":
        from .whisper import load_whisper_backend

        return load_whisper_backend(
            model.source, model.name, device, td, batch_size, language, model.revision, window, prompt_as
        )
    if model.family == "qwen2-audio":
        from .qwen2_audio import DEFAULT_SYSTEM_PROMPT, load_qwen2_audio_backend

        system = DEFAULT_SYSTEM_PROMPT if system_prompt is None else system_prompt
        return load_qwen2_audio_backend(
            model.source, model.name, device, td, batch_size, chat_template, system, model.revision
        )
    from .seamless import load_seamless_backend

    return load_seamless_backend(
        model.source, model.name, device, td, batch_size, _seamless_language(language), model.revision
    )


_ISO3 = {
    "en": "eng",
    "de": "deu",
    "fr": "fra",
    "es": "spa",
    "it": "ita",
    "pt": "por",
    "nl": "nld",
    "zh": "cmn",
    "ja": "jpn",
}


def _seamless_language(language: str | None) -> str:
    lang = (language or "en").lower()
    return _ISO3.get(lang, lang)
