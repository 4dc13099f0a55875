"""Qwen2-Audio (7B Instruct and base) as a zero-shot backend.

The audio goes through the audio tower and projector once per clip (as ``Qwen2AudioModel`` does:
128-bin log-mel padded to 30 s, padding masked in attention, one embedding per 40 ms of real audio)
and its embeddings are placed between ``<|audio_bos|>`` and ``<|audio_eos|>``:

chat template on (default for Instruct checkpoints; Qwen2-Audio-Instruct's own template)::

    <|im_start|>system\\n{system}<|im_end|>\\n
    <|im_start|>user\\nAudio 1: <|audio_bos|>AUDIO<|audio_eos|>\\n{prompt}<|im_end|>\\n
    <|im_start|>assistant\\n

    answers are scored as ``{label}<|im_end|>``; generation stops at ``<|im_end|>`` or ``<|endoftext|>``.
    An empty ``system_prompt`` drops the system turn.

chat template off (default for the base model, its documented prompt format)::

    <|audio_bos|>AUDIO<|audio_eos|>{prompt}

    answers are scored as `` {label}<|endoftext|>`` (leading space).

An empty clip is asked with nothing between ``<|audio_bos|>`` and ``<|audio_eos|>``: the prompt with no
audio, a content-free input for calibration (:mod:`.calibration`). Qwen2-Audio has no native head
(:mod:`.native`): it names languages, speech and everything else through its prompt.

Whether the template is on, the system prompt and the batch size are part of ``settings()`` and so
of the response-cache key and manifest.json: all three are known to change answers. Prefixes of
different lengths (clips differ in audio length) are left-padded with explicit position ids.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..errors import SpeechprobeError
from .base import BackendOptions, DecoderState, Encoded, ZeroShotBackend, cache_kwarg, log_softmax, output_cache

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
CHAT_PREFIX = "<|im_start|>system\n{system}<|im_end|>\n"
CHAT_USER = "<|im_start|>user\nAudio 1: <|audio_bos|>"
CHAT_AFTER_AUDIO = "<|audio_eos|>\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
PLAIN_USER = "<|audio_bos|>"
PLAIN_AFTER_AUDIO = "<|audio_eos|>{prompt}"


class Qwen2AudioBackend(ZeroShotBackend):
    family = "qwen2-audio"
    model_class, processor_class = "Qwen2AudioForConditionalGeneration", "WhisperFeatureExtractor"
    pads_left = True
    accepts_no_audio = True  # an empty clip: nothing between <|audio_bos|> and <|audio_eos|>

    def __init__(
        self, model, tokenizer, feature_extractor, checkpoint, fingerprint: str, options: BackendOptions
    ) -> None:
        super().__init__(model, tokenizer, feature_extractor, checkpoint, fingerprint, options)
        chat_template, system_prompt = options.chat_template, options.system_prompt
        if chat_template is None:  # on for Instruct checkpoints (name or path says so), off for the base model
            chat_template = "instruct" in f"{self.name} {self.source}".lower()
        self.fe = feature_extractor
        self.chat_template = bool(chat_template)
        self.system_prompt = DEFAULT_SYSTEM_PROMPT if system_prompt is None else system_prompt
        inner = self.model.model
        self.tower, self.projector, self.lm = inner.audio_tower, inner.multi_modal_projector, inner.language_model
        self.embed = self.lm.get_input_embeddings()
        self._cache_kw = cache_kwarg(self.lm.forward)
        vocab = tokenizer.get_vocab()
        needed = ["<|audio_bos|>", "<|audio_eos|>", "<|endoftext|>"] + (
            ["<|im_start|>", "<|im_end|>"] if self.chat_template else []
        )
        missing = [t for t in needed if t not in vocab]
        if missing:
            raise SpeechprobeError(
                f"{self.source}: the tokenizer lacks {', '.join(missing)}; is this a Qwen2-Audio checkpoint?"
            )
        self._ends = tuple(
            vocab[t] for t in (["<|im_end|>", "<|endoftext|>"] if self.chat_template else ["<|endoftext|>"])
        )
        self._parts: dict[str, tuple[list[int], list[int]]] = {}

    def settings(self) -> dict:
        return {
            **super().settings(),
            "chat_template": self.chat_template,
            "system_prompt": self.system_prompt if self.chat_template else None,
            "template": (
                (CHAT_PREFIX if self.system_prompt else "") + CHAT_USER + "AUDIO" + CHAT_AFTER_AUDIO
                if self.chat_template
                else PLAIN_USER + "AUDIO" + PLAIN_AFTER_AUDIO
            ),
            "answer_prefix": "none" if self.chat_template else "space",
        }

    # -- prompt ---------------------------------------------------------------------------------

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []

    def parts(self, prompt: str) -> tuple[list[int], list[int]]:
        """Token ids before and after the audio embeddings."""
        if prompt not in self._parts:
            if self.chat_template:
                before = (CHAT_PREFIX.format(system=self.system_prompt) if self.system_prompt else "") + CHAT_USER
                after = CHAT_AFTER_AUDIO.format(prompt=prompt.strip())
            else:
                before, after = PLAIN_USER, PLAIN_AFTER_AUDIO.format(prompt=prompt.strip())
            self._parts[prompt] = (self._ids(before), self._ids(after))
        return self._parts[prompt]

    def answer_ids(self, label: str) -> list[int]:
        return self._ids(label.strip() if self.chat_template else " " + label.strip())

    @property
    def end_ids(self) -> tuple[int, ...]:
        return self._ends

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    # -- primitives -----------------------------------------------------------------------------

    @torch.inference_mode()
    def encode(self, audios: Sequence[np.ndarray]) -> Encoded:
        from transformers.masking_utils import create_bidirectional_mask

        empty = [len(a) == 0 for a in audios]  # no audio: the prompt alone (a content-free input)
        audios = [np.asarray(a, dtype=np.float32) if len(a) else np.zeros(160, np.float32) for a in audios]
        feats = self.fe(
            audios,
            sampling_rate=self.sample_rate,
            return_attention_mask=True,
            padding="max_length",
            return_tensors="pt",
        )
        mel = feats["input_features"].to(self.device, self.tower.conv1.weight.dtype)
        mel_mask = feats["attention_mask"].to(self.device)
        conv_lengths, out_lengths = self.tower._get_feat_extract_output_lengths(mel_mask.sum(-1))
        frames = (mel.shape[-1] - 2) // 2 + 1
        valid = (torch.arange(frames, device=self.device)[None, :] < conv_lengths[:, None]).long()
        dummy = torch.zeros(len(audios), frames, 1, dtype=mel.dtype, device=self.device)
        mask = create_bidirectional_mask(config=self.tower.config, inputs_embeds=dummy, attention_mask=valid)
        hidden = self.tower(mel, attention_mask=mask).last_hidden_state
        audio = self.projector(hidden)
        n = [0 if e else max(1, int(x)) for e, x in zip(empty, out_lengths.tolist())]
        limit = self.fe.n_samples
        return Encoded({"audio": audio}, len(audios), [len(a) > limit for a in audios], frames=n, crop=("audio",))

    def _run_prefix(self, enc: Encoded, prompts: Sequence[str], **kwargs):
        """(attention mask, audio spans, LM output) of the prefixes (text, audio embeddings, prompt) of
        ``prompts``, left-padded; a row's audio tokens are at ``spans[i] = (start, stop)``."""
        audio = enc.tensors["audio"]
        rows, spans = [], []
        for i, prompt in enumerate(prompts):
            a = 0 if len(enc) == 1 else i  # one clip may be asked several prompts
            before, after = self.parts(prompt)
            ids = torch.tensor(before + after, dtype=torch.long, device=self.device)
            emb = self.embed(ids)
            rows.append(torch.cat([emb[: len(before)], audio[a, : enc.frames[a]].to(emb.dtype), emb[len(before) :]]))
            spans.append((len(before), len(before) + enc.frames[a]))
        length = max(r.shape[0] for r in rows)
        embeds = rows[0].new_zeros(len(rows), length, rows[0].shape[-1])
        mask = torch.zeros(len(rows), length, dtype=torch.long, device=self.device)
        for i, r in enumerate(rows):  # left padding
            embeds[i, length - r.shape[0] :] = r
            mask[i, length - r.shape[0] :] = 1
            spans[i] = (spans[i][0] + length - r.shape[0], spans[i][1] + length - r.shape[0])
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        return mask, spans, self.lm(inputs_embeds=embeds, attention_mask=mask, position_ids=positions, **kwargs)

    @torch.inference_mode()
    def start(self, enc: Encoded, prompts: Sequence[str]) -> DecoderState:
        mask, _, out = self._run_prefix(enc, prompts, use_cache=True)
        logits = self.model.lm_head(out.last_hidden_state[:, -1])
        return DecoderState(output_cache(out), mask, mask.sum(-1), log_softmax(logits))

    position_rules = ("last", "audio_mean")

    @torch.inference_mode()
    def prefix_states(self, enc: Encoded, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        """``last``: the last prompt token; ``audio_mean``: the mean over the clip's audio-token positions (no
        audio, as for a content-free input without audio: zeros)."""
        _, spans, out = self._run_prefix(enc, prompts, output_hidden_states=True)
        states = self.layer_states(out)
        mean = torch.stack(
            [states[i, :, a:b].mean(1) if b > a else states[i, :, 0] * 0 for i, (a, b) in enumerate(spans)]
        )
        return {"last": states[:, :, -1], "audio_mean": mean}

    def lens_parts(self):
        return self.lm.norm, self.model.lm_head

    @torch.inference_mode()
    def step(self, state: DecoderState, tokens: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
        tokens, token_mask = tokens.to(self.device), token_mask.to(self.device)
        mask = torch.cat([state.mask, token_mask.to(state.mask.dtype)], dim=1)
        positions = state.next_pos[:, None] + torch.arange(tokens.shape[1], device=self.device)[None, :]
        out = self.lm(
            inputs_embeds=self.embed(tokens),
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            **{self._cache_kw: state.cache},
        )
        state.cache, state.mask = output_cache(out), mask
        state.next_pos = state.next_pos + tokens.shape[1]
        return log_softmax(self.model.lm_head(out.last_hidden_state))
