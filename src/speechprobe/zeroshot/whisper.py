"""Whisper (any size, English-only or multilingual) prompted through its decoder.

The prompt goes in as previous-text tokens, as in OpenAI's ``initial_prompt``:

    <|startofprev|> ␣prompt <|startoftranscript|> [<|en|> <|transcribe|>] <|notimestamps|> ␣answer <|endoftext|>

(language and task tokens only for multilingual checkpoints; the language is ``language``, English by
default, since prompts and labels are English). The answer is the continuation: in likelihood mode
each label is scored as `` label`` (leading space, as Whisper writes words) followed by
``<|endoftext|>``; in generate mode the decoder writes freely, restricted to text tokens (every
special and timestamp token is suppressed except ``<|endoftext|>``, plus the checkpoint's own
``suppress_tokens`` / ``begin_suppress_tokens``).

Audio window: ``full`` (default) is the standard 30 s input, the clip followed by silence, as in
training. ``trimmed`` pads the clip with silence only to the next whole second (``bucket_seconds``)
and slices the position embeddings: the decoder sees the same kind of silence padding, far less of
it, so short clips encode 10-30x faster; answers can differ from ``full``. Clips are only batched
with clips of the same bucket, so a clip's answer never depends on its batch companions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.nn import functional as F

from ..errors import ConfigError, SpeechprobeError
from ..models.whisper import LogMel
from .base import DecoderState, Encoded, ZeroShotBackend, cache_kwarg, log_softmax, output_cache

if TYPE_CHECKING:
    from .models import BackendOptions, ZeroShotModel

WINDOWS = ("full", "trimmed")


class WhisperBackend(ZeroShotBackend):
    family = "whisper"
    pads_left = False

    def __init__(
        self,
        model,
        tokenizer,
        feature_extractor,
        name: str,
        source: str,
        fingerprint: str,
        device: str = "cpu",
        dtype: torch.dtype | None = None,
        batch_size: int = 8,
        language: str | None = "en",
        generation_config=None,
        window: str = "full",
        bucket_seconds: float = 1.0,
    ) -> None:
        super().__init__(name, source, fingerprint, int(feature_extractor.sampling_rate), device, dtype, batch_size)
        if window not in WINDOWS:
            raise ConfigError(f"unknown window {window!r}; choose one of {', '.join(WINDOWS)}")
        self.window = window
        self.bucket = max(1, round(bucket_seconds * self.sample_rate))
        self.model = self._place(model)
        self.tokenizer = tokenizer
        self.logmel = LogMel(feature_extractor)
        self.decoder = self.model.model.decoder
        self._cache_kw = cache_kwarg(self.decoder.forward)
        ids = {
            t: tokenizer.convert_tokens_to_ids(t)
            for t in ("<|startofprev|>", "<|startoftranscript|>", "<|endoftext|>", "<|notimestamps|>", "<|transcribe|>")
        }
        missing = [t for t, i in ids.items() if not _known(tokenizer, t, i)]
        if missing:
            raise SpeechprobeError(f"{source}: the tokenizer lacks Whisper's special tokens {', '.join(missing)}")
        self.ids = ids
        gen = generation_config or getattr(model, "generation_config", None)
        multilingual = getattr(gen, "is_multilingual", None)
        if multilingual is None:
            multilingual = model.config.vocab_size >= 51865
        self.multilingual = bool(multilingual)
        self.language = None
        if self.multilingual and language:
            token = f"<|{language}|>"
            lang_id = tokenizer.convert_tokens_to_ids(token)
            if not _known(tokenizer, token, lang_id):
                raise SpeechprobeError(f"{source}: no language token {token} in the tokenizer")
            self.language, self._lang_id = language, lang_id
        self.max_prompt = model.config.max_target_positions // 2 - 1
        vocab = model.config.vocab_size
        blocked = set(range(ids["<|endoftext|>"] + 1, vocab))  # every special and timestamp token
        blocked |= {int(t) for t in (getattr(gen, "suppress_tokens", None) or []) if 0 <= int(t) < vocab}
        blocked.discard(ids["<|endoftext|>"])
        self._blocked = torch.tensor(sorted(blocked), dtype=torch.long)
        begin = {int(t) for t in (getattr(gen, "begin_suppress_tokens", None) or []) if 0 <= int(t) < vocab}
        self._blocked_first = torch.tensor(sorted(blocked | begin | {ids["<|endoftext|>"]}), dtype=torch.long)
        self._prefix_cache: dict[str, list[int]] = {}

    def settings(self) -> dict:
        return {
            **super().settings(),
            "window": "30 s" if self.window == "full" else f"trimmed to {self.bucket / self.sample_rate:g} s buckets",
            "multilingual": self.multilingual,
            "language": self.language,
            "prompt_as": "previous-text tokens (<|startofprev|>)",
            "answer_prefix": "space",
            "generation": "greedy; special and timestamp tokens suppressed",
        }

    # -- prompt prefix --------------------------------------------------------------------------

    def prefix_ids(self, prompt: str) -> list[int]:
        if prompt not in self._prefix_cache:
            ids: list[int] = []
            text = prompt.strip()
            if text:
                body = self.tokenizer.encode(" " + text, add_special_tokens=False)
                ids = [self.ids["<|startofprev|>"], *body[-self.max_prompt :]]
            ids.append(self.ids["<|startoftranscript|>"])
            if self.language:
                ids += [self._lang_id, self.ids["<|transcribe|>"]]
            ids.append(self.ids["<|notimestamps|>"])
            self._prefix_cache[prompt] = ids
        return self._prefix_cache[prompt]

    def prefix_key(self, prompt: str):
        return tuple(self.prefix_ids(prompt))

    def answer_ids(self, label: str) -> list[int]:
        return self.tokenizer.encode(" " + label.strip(), add_special_tokens=False)

    @property
    def end_ids(self) -> tuple[int, ...]:
        return (self.ids["<|endoftext|>"],)

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def suppressed(self, first: bool) -> torch.Tensor:
        return self._blocked_first if first else self._blocked

    # -- primitives -----------------------------------------------------------------------------

    @torch.inference_mode()
    def encode(self, audios: Sequence[np.ndarray]) -> Encoded:
        n_samples = self.logmel.n_samples
        audios = [np.asarray(a, dtype=np.float32) for a in audios]
        truncated = [len(a) > n_samples for a in audios]
        if self.window == "full":
            return Encoded({"hidden": self._encode(audios, n_samples)}, len(audios), truncated)
        spans = [min(n_samples, max(1, -(-len(a) // self.bucket)) * self.bucket) for a in audios]
        parts: dict[int, torch.Tensor] = {}
        for span in sorted(set(spans)):
            rows = [i for i, s in enumerate(spans) if s == span]
            hidden = self._encode([audios[i] for i in rows], span)
            for j, i in enumerate(rows):
                parts[i] = hidden[j]
        longest = max(p.shape[0] for p in parts.values())
        hidden = parts[0].new_zeros(len(audios), longest, parts[0].shape[-1])
        for i, p in parts.items():
            hidden[i, : p.shape[0]] = p
        frames = [parts[i].shape[0] for i in range(len(audios))]
        return Encoded({"hidden": hidden}, len(audios), truncated, keys=spans, frames=frames, crop=("hidden",))

    def _encode(self, audios: Sequence[np.ndarray], span: int) -> torch.Tensor:
        """Encoder output for clips zero-padded (silence) to ``span`` samples."""
        hop, n_fft = self.logmel.hop, self.logmel.n_fft
        n_frames = 2 * (-(-span // (2 * hop)))  # mel frames, even (the second conv has stride 2)
        batch = torch.zeros(len(audios), n_frames * hop + n_fft)
        for i, a in enumerate(audios):
            a = a[:span]
            batch[i, : len(a)] = torch.from_numpy(a)
        mel = self.logmel(batch.to(self.device), n_frames)
        enc = self.model.model.encoder
        mel = mel.to(enc.conv1.weight.dtype)
        if n_frames * hop >= self.logmel.n_samples:
            return enc(input_features=mel).last_hidden_state
        x = F.gelu(enc.conv2(F.gelu(enc.conv1(mel)))).permute(0, 2, 1)
        h = x + enc.embed_positions.weight[: x.shape[1]]
        for layer in enc.layers:
            h = layer(h, None)
            h = h[0] if isinstance(h, tuple) else h
        return enc.layer_norm(h)

    @torch.inference_mode()
    def start(self, enc: Encoded, prompts: Sequence[str]) -> DecoderState:
        prefixes = [self.prefix_ids(p) for p in prompts]
        if len({len(p) for p in prefixes}) != 1:
            raise ValueError("Whisper rows of one batch need prompt prefixes of one length")
        ids = torch.tensor(prefixes, dtype=torch.long, device=self.device)
        hidden = enc.tensors["hidden"]
        out = self.decoder(input_ids=ids, encoder_hidden_states=hidden, use_cache=True)
        logits = self.model.proj_out(out.last_hidden_state[:, -1])
        n, length = ids.shape
        return DecoderState(
            cache=output_cache(out),
            mask=torch.ones(n, length, dtype=torch.long, device=self.device),
            next_pos=torch.full((n,), length, dtype=torch.long, device=self.device),
            last_logprobs=log_softmax(logits),
            context={"hidden": hidden},
        )

    @torch.inference_mode()
    def step(self, state: DecoderState, tokens: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
        # Right padding needs no mask: a causal decoder never lets a later pad reach an earlier token.
        out = self.decoder(
            input_ids=tokens.to(self.device),
            encoder_hidden_states=state.context["hidden"],
            use_cache=True,
            **{self._cache_kw: state.cache},
        )
        state.cache = output_cache(out)
        state.mask = torch.cat([state.mask, token_mask.to(state.mask)], dim=1)
        state.next_pos = state.next_pos + tokens.shape[1]
        return log_softmax(self.model.proj_out(out.last_hidden_state))


def _known(tokenizer, token: str, token_id) -> bool:
    """Whether ``token`` is really in the vocabulary (unknown tokens map to the unk id)."""
    return token_id is not None and tokenizer.convert_ids_to_tokens(int(token_id)) == token


def load_whisper_backend(
    source: str,
    name: str | None = None,
    device: str = "cpu",
    dtype: torch.dtype | None = None,
    batch_size: int = 8,
    language: str | None = "en",
    revision: str | None = None,
    window: str = "full",
) -> WhisperBackend:
    """A Whisper checkpoint (local dir or hub id) with its tokenizer, as a zero-shot backend."""
    from transformers import AutoTokenizer, WhisperFeatureExtractor, WhisperForConditionalGeneration

    from ..models.hub import load_pretrained, weights_fingerprint

    model = load_pretrained(WhisperForConditionalGeneration.from_pretrained, source, revision)
    try:
        tokenizer = load_pretrained(AutoTokenizer.from_pretrained, source, revision)
    except SpeechprobeError:
        raise SpeechprobeError(
            f"{source}: no tokenizer files; zero-shot needs Whisper's tokenizer "
            "(save the WhisperProcessor with the model)"
        ) from None
    try:
        fe = load_pretrained(WhisperFeatureExtractor.from_pretrained, source, revision)
    except SpeechprobeError:
        fe = WhisperFeatureExtractor(feature_size=model.config.num_mel_bins)
    return WhisperBackend(
        model,
        tokenizer,
        fe,
        name or Path(source).name,
        source,
        weights_fingerprint(source, model),
        device=device,
        dtype=dtype,
        batch_size=batch_size,
        language=language,
        window=window,
    )


def backend(model: ZeroShotModel, options: BackendOptions) -> WhisperBackend:
    """The Whisper family's zero-shot loader (``models.whisper.FAMILY.zeroshot``)."""
    o = options
    return load_whisper_backend(
        model.source, model.name, o.device, o.dtype, o.batch_size, o.language, model.revision, o.window
    )
