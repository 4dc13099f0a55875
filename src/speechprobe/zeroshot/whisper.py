"""Whisper (any size, English-only or multilingual) prompted through its decoder.

Where the prompt goes (``prompt_as``, a documented choice, recorded in ``settings()``):

``previous``      previous-text tokens, as in OpenAI's ``initial_prompt``:
    <|startofprev|> ␣prompt <|startoftranscript|> [<|en|> <|transcribe|>] <|notimestamps|> ␣answer <|endoftext|>
``transcript`` (default) after the forced transcription prefix, as text the decoder has already written:
    <|startoftranscript|> [<|en|> <|transcribe|>] <|notimestamps|> ␣prompt ␣answer <|endoftext|>

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

Generate mode batches rows with one prompt prefix (no padding, so an answer never depends on its
batch companions). Likelihood mode packs one clip's prompts and every candidate continuation into one
sequence with a tree-shaped attention mask (:class:`.scoring.PackedTree`): one decoder call per clip,
in which the audio's cross-attention keys and values are computed once and every prompt prefix once.

Native heads (:meth:`WhisperBackend.native_scores`, from the distribution after
``<|startoftranscript|>``, as OpenAI's ``detect_language`` and no-speech probability read it):
``language-id`` (multilingual checkpoints: the language tokens of the tokenizer's own language table)
and ``no-speech`` (the ``<|nocaptions|>`` token's probability).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.nn import functional as F

from ..errors import SpeechprobeError
from ..models.whisper import LogMel
from .base import PROMPT_AS as BASE_PROMPT_AS
from .base import BackendOptions, CrossAttentionBackend, DecoderState, Encoded, cache_kwarg, log_softmax

BUCKET_SECONDS = 1.0  # the trimmed window pads each clip to a whole number of these
PROMPT_AS = {  # where the prompt goes (base.PROMPT_AS, checked there) -> how settings() and manifest.json describe it
    "previous": "previous-text tokens (<|startofprev|>)",
    "transcript": "transcript text after the forced prefix (<|startoftranscript|> ... <|notimestamps|> prompt)",
}
DEFAULT_PROMPT_AS = BASE_PROMPT_AS[0]
#: why the default is the default (manifest.json: settings.prompt_as_default); docs/zeroshot.md has the table
PROMPT_AS_CHOICE = (
    "higher mean Macro-F1 than previous over the calibrated likelihood modes (the default score's) "
    "on the synthetic language, gender and emotion tasks"
)
NO_SPEECH_TOKENS = ("<|nospeech|>", "<|nocaptions|>")  # newer and older spellings


class WhisperBackend(CrossAttentionBackend):
    family = "whisper"
    model_class, processor_class = "WhisperForConditionalGeneration", "WhisperFeatureExtractor"
    pads_left = False
    packs = True

    def __init__(
        self, model, tokenizer, feature_extractor, checkpoint, fingerprint: str, options: BackendOptions
    ) -> None:
        # Over 60 lines because it reads the tokenizer's special, language and suppressed token ids, each
        # checked where it is set.
        super().__init__(model, tokenizer, feature_extractor, checkpoint, fingerprint, options)
        source, language, gen = self.source, options.language, getattr(model, "generation_config", None)
        self.window, self.prompt_as = options.window, options.prompt_as or DEFAULT_PROMPT_AS
        self.bucket = max(1, round(BUCKET_SECONDS * self.sample_rate))
        self.logmel = LogMel(feature_extractor)
        self.decoder = self.model.model.decoder
        self.head = self.model.proj_out
        self._cache_kw = cache_kwarg(self.decoder.forward)
        ids = {
            t: tokenizer.convert_tokens_to_ids(t)
            for t in ("<|startofprev|>", "<|startoftranscript|>", "<|endoftext|>", "<|notimestamps|>", "<|transcribe|>")
        }
        missing = [t for t, i in ids.items() if not _known(tokenizer, t, i)]
        if missing:
            raise SpeechprobeError(f"{source}: the tokenizer lacks Whisper's special tokens {', '.join(missing)}")
        self.ids = ids
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
        self._languages = _language_tokens(tokenizer, gen) if self.multilingual else {}
        self._no_speech = next(
            (i for t in NO_SPEECH_TOKENS if _known(tokenizer, t, i := _token_id(tokenizer, t))), None
        )

    def settings(self) -> dict:
        return {
            **super().settings(),
            "window": "30 s" if self.window == "full" else f"trimmed to {self.bucket / self.sample_rate:g} s buckets",
            "multilingual": self.multilingual,
            "language": self.language,
            "prompt_as": PROMPT_AS[self.prompt_as],
            "prompt_as_default": f"{DEFAULT_PROMPT_AS}: {PROMPT_AS_CHOICE} (docs/zeroshot.md)",
            "answer_prefix": "space",
            "generation": "greedy; special and timestamp tokens suppressed",
        }

    # -- prompt prefix --------------------------------------------------------------------------

    def prefix_ids(self, prompt: str) -> list[int]:
        if prompt not in self._prefix_cache:
            text = prompt.strip()
            body = self.tokenizer.encode(" " + text, add_special_tokens=False)[-self.max_prompt :] if text else []
            forced = [self.ids["<|startoftranscript|>"]]
            if self.language:
                forced += [self._lang_id, self.ids["<|transcribe|>"]]
            forced.append(self.ids["<|notimestamps|>"])
            if self.prompt_as == "transcript":
                ids = forced + body
            else:
                ids = ([self.ids["<|startofprev|>"], *body] if body else []) + forced
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

    def _run_prefix(self, enc: Encoded, prompts: Sequence[str], **kwargs):
        """(ids, context, decoder output) of the prompt prefixes of ``prompts`` with ``enc``'s clips in
        cross-attention."""
        prefixes = [self.prefix_ids(p) for p in prompts]
        if len({len(p) for p in prefixes}) != 1:
            raise ValueError("Whisper rows of one batch need prompt prefixes of one length")
        ids = torch.tensor(prefixes, dtype=torch.long, device=self.device)
        ctx = {"hidden": enc.tensors["hidden"]}
        return ids, ctx, self.decoder(input_ids=ids, encoder_hidden_states=ctx["hidden"], **kwargs)

    @torch.inference_mode()
    def step(self, state: DecoderState, tokens: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
        # Right padding needs no mask: a causal decoder never lets a later pad reach an earlier token.
        out = self.decoder(
            input_ids=tokens.to(self.device),
            encoder_hidden_states=state.context["hidden"],
            use_cache=True,
            **{self._cache_kw: state.cache},
        )
        return self.advance(state, out, tokens, token_mask, self.model.proj_out)

    @torch.inference_mode()
    def packed_logprobs(self, enc: Encoded, tree) -> torch.Tensor:
        """One decoder call over a packed tree of prompts and continuations (one clip, its audio's keys
        and values computed once); the tree's mask as an additive 4D attention mask."""
        blocked = torch.finfo(self.decoder.embed_tokens.weight.dtype).min
        mask = torch.zeros(tree.allowed.shape, dtype=self.decoder.embed_tokens.weight.dtype)
        mask = mask.masked_fill(~tree.allowed, blocked)[None, None].to(self.device)
        out = self.decoder(
            input_ids=tree.ids[None].to(self.device),
            position_ids=tree.positions[None].to(self.device),
            attention_mask=mask,
            encoder_hidden_states=enc.tensors["hidden"],
            use_cache=False,
        )
        return log_softmax(self.model.proj_out(out.last_hidden_state[0, tree.rows.to(self.device)]))

    # -- native heads ---------------------------------------------------------------------------

    def native_heads(self) -> dict[str, dict[str, str]]:
        heads: dict[str, dict[str, str]] = {}
        if self._languages:
            heads["language-id"] = language_table(self._languages)
        if self._no_speech is not None:
            heads["no-speech"] = {}
        return heads

    @torch.inference_mode()
    def native_scores(self, enc: Encoded, head: str, targets: Sequence[str]) -> np.ndarray:
        """Restricted language-token log-probabilities (``language-id``: log-softmax over the targets'
        language tokens only) or the no-speech probability as log p / log(1 - p) (``no-speech``), read
        from the distribution after ``<|startoftranscript|>``."""
        if head not in self.native_heads():
            raise ValueError(f"{self.source}: no native head {head!r}")
        out = np.zeros((len(enc), len(targets)))
        for key in dict.fromkeys(enc.key(i) for i in range(len(enc))):
            rows = [i for i in range(len(enc)) if enc.key(i) == key]
            sub = enc.select(rows)
            ids = torch.full((len(rows), 1), self.ids["<|startoftranscript|>"], dtype=torch.long, device=self.device)
            hidden = self.decoder(input_ids=ids, encoder_hidden_states=sub.tensors["hidden"]).last_hidden_state
            logp = log_softmax(self.model.proj_out(hidden[:, -1]))
            if head == "language-id":
                picked = logp[:, [self._languages[t] for t in targets]]
                out[rows] = torch.log_softmax(picked.double(), -1).cpu().numpy()
            else:
                lp = logp[:, self._no_speech].double().clamp(max=0)
                cols = [lp if t == "no-speech" else torch.log1p(-lp.exp().clamp(max=1 - 1e-12)) for t in targets]
                out[rows] = torch.stack(cols, -1).cpu().numpy()
        return out


def _known(tokenizer, token: str, token_id) -> bool:
    """Whether ``token`` is really in the vocabulary (unknown tokens map to the unk id)."""
    return token_id is not None and tokenizer.convert_ids_to_tokens(int(token_id)) == token


def _token_id(tokenizer, token: str):
    return tokenizer.convert_tokens_to_ids(token)


def _language_tokens(tokenizer, generation_config) -> dict[str, int]:
    """Language code -> token id: the checkpoint's ``lang_to_id``, else every ``<|code|>`` of the
    tokenizer's language table that the vocabulary holds."""
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    found = getattr(generation_config, "lang_to_id", None) or {}
    table = {tok.strip("<|>"): int(i) for tok, i in found.items()}
    if not table:
        for code in LANGUAGES:
            token = f"<|{code}|>"
            if _known(tokenizer, token, i := _token_id(tokenizer, token)):
                table[code] = int(i)
    return table


def language_table(codes: Sequence[str]) -> dict[str, str]:
    """Every spelling of each language code -> the code: the code itself, its English name and the
    aliases of the Whisper tokenizer's table (``castilian`` -> ``es``), lower-cased."""
    from transformers.models.whisper.tokenization_whisper import LANGUAGES, TO_LANGUAGE_CODE

    out = {code: code for code in codes}
    out.update({LANGUAGES[c]: c for c in codes if c in LANGUAGES})
    out.update({name: c for name, c in TO_LANGUAGE_CODE.items() if c in out})
    return out

    @classmethod
    def default_processor(cls, model):
        """Whisper's log-mel front end at the checkpoint's mel bins (a checkpoint saved without it)."""
        from transformers import WhisperFeatureExtractor

        return WhisperFeatureExtractor(feature_size=model.config.num_mel_bins)
