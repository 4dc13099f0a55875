"""SeamlessM4T v2 through its text decoder (speech-to-text), as a zero-shot backend.

The speech encoder (w2v-BERT 2.0 Conformer + length adaptor) runs once per clip, batched and masked
as ``SeamlessM4Tv2ForSpeechToText`` does. SeamlessM4T has no prompt input, so the prompt is written
into the decoder as text it has already produced after the target-language token (decoder prompting):

    </s> __eng__ {prompt} {answer} </s>

(no prompt text when the prompt is empty). Likelihood mode scores ``{label}</s>``; generate mode
continues greedily until ``</s>``. The decoder takes its positions from the token count, so only
rows with prefixes of one length share a batch; when one clip is asked several such prompts, the
audio's cross-attention keys and values are computed once and shared as views.

SeamlessM4T v2 has no native head (:mod:`.native`): its target-language token is given to the
decoder, never predicted from the audio, and it has no speech / no-speech output.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..errors import SpeechprobeError
from .base import (
    BackendOptions,
    CrossAttentionBackend,
    DecoderState,
    Encoded,
    cache_kwarg,
    output_cache,
    shared_cross_cache,
    shared_rows,
)

_MIN_SAMPLES = 400 + 160  # two 25 ms fbank frames = one stacked frame
ISO3 = {  # --language (ISO 639-1) -> SeamlessM4T's ISO 639-3 target language
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


class SeamlessBackend(CrossAttentionBackend):
    family = "seamless"
    model_class, processor_class = "SeamlessM4Tv2ForSpeechToText", "SeamlessM4TFeatureExtractor"
    pads_left = False

    def __init__(
        self, model, tokenizer, feature_extractor, checkpoint, fingerprint: str, options: BackendOptions
    ) -> None:
        super().__init__(model, tokenizer, feature_extractor, checkpoint, fingerprint, options)
        language = (options.language or "en").lower()
        language = ISO3.get(language, language)  # SeamlessM4T names languages in ISO 639-3
        self.fe = feature_extractor
        self.decoder = self.model.text_decoder
        self.head = self.model.lm_head
        self._cache_kw = cache_kwarg(self.decoder.forward)
        self.language = language
        lang_token = f"__{language}__"
        lang_id = tokenizer.convert_tokens_to_ids(lang_token)
        if lang_id is None or tokenizer.convert_ids_to_tokens(int(lang_id)) != lang_token:
            raise SpeechprobeError(f"{self.source}: no target-language token {lang_token} in the tokenizer")
        cfg = self.model.config
        self._start_ids = [int(cfg.decoder_start_token_id), int(lang_id)]
        self._eos = int(cfg.eos_token_id)
        self._pad = int(cfg.pad_token_id)
        self._prefix: dict[str, list[int]] = {}

    def settings(self) -> dict:
        return {
            **super().settings(),
            "target_language": self.language,
            "prompt_as": "decoder text after the target-language token",
            "answer_prefix": "none",
        }

    def prefix_ids(self, prompt: str) -> list[int]:
        if prompt not in self._prefix:
            text = prompt.strip()
            body = self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []
            self._prefix[prompt] = self._start_ids + list(body)
        return self._prefix[prompt]

    def prefix_key(self, prompt: str):
        return tuple(self.prefix_ids(prompt))

    def answer_ids(self, label: str) -> list[int]:
        return list(self.tokenizer(label.strip(), add_special_tokens=False)["input_ids"])

    @property
    def end_ids(self) -> tuple[int, ...]:
        return (self._eos,)

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def suppressed(self, first: bool) -> torch.Tensor:
        return torch.tensor([self._pad, *self._start_ids[1:]] + ([self._eos] if first else []), dtype=torch.long)

    @torch.inference_mode()
    def encode(self, audios: Sequence[np.ndarray]) -> Encoded:
        from transformers.models.seamless_m4t_v2.modeling_seamless_m4t_v2 import _compute_new_attention_mask

        padded = [np.pad(np.asarray(a, dtype=np.float32), (0, max(0, _MIN_SAMPLES - len(a)))) for a in audios]
        feats = self.fe(
            padded, sampling_rate=self.sample_rate, return_attention_mask=True, padding=True, return_tensors="pt"
        )
        features = feats["input_features"].to(self.device, next(self.model.speech_encoder.parameters()).dtype)
        mask = feats["attention_mask"].to(self.device)
        hidden = self.model.speech_encoder(input_features=features, attention_mask=mask).last_hidden_state
        lengths = self.model._compute_sub_sample_lengths_from_attention_mask(mask).to(self.device)
        enc_mask = _compute_new_attention_mask(hidden, lengths).long()
        return Encoded({"hidden": hidden, "mask": enc_mask}, len(audios), [False] * len(audios))

    def _run_prefix(self, enc: Encoded, prompts: Sequence[str], **kwargs):
        """(ids, context, decoder output) of the prompt prefixes of ``prompts`` with ``enc``'s clips in
        cross-attention (one clip, several prompts: the audio's K/V once, as views)."""
        prefixes = [self.prefix_ids(p) for p in prompts]
        if len({len(p) for p in prefixes}) != 1:
            raise ValueError("SeamlessM4T rows of one batch need prompt prefixes of one length")
        ids = torch.tensor(prefixes, dtype=torch.long, device=self.device)
        ctx = {"hidden": enc.tensors["hidden"], "mask": enc.tensors["mask"]}
        if len(enc) == 1 and len(prompts) > 1:
            first = self.decoder(ids[:1, :1], encoder_hidden_states=ctx["hidden"], encoder_attention_mask=ctx["mask"])
            kwargs[self._cache_kw] = shared_cross_cache(output_cache(first), len(prompts))
            ctx = {k: shared_rows(v, len(prompts)) for k, v in ctx.items()}
        out = self.decoder(
            input_ids=ids, encoder_hidden_states=ctx["hidden"], encoder_attention_mask=ctx["mask"], **kwargs
        )
        return ids, ctx, out

    @torch.inference_mode()
    def step(self, state: DecoderState, tokens: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
        tokens = tokens.to(self.device)
        tokens = torch.where(token_mask.to(self.device).bool(), tokens, torch.full_like(tokens, self._pad))
        out = self.decoder(
            input_ids=tokens,
            encoder_hidden_states=state.context["hidden"],
            encoder_attention_mask=state.context["mask"],
            use_cache=True,
            **{self._cache_kw: state.cache},
        )
        return self.advance(state, out, tokens, token_mask, self.model.lm_head)
