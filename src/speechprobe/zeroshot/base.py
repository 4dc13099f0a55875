"""The zero-shot backend contract: encode audio once, then decode from a prompt prefix.

A backend wraps one speech model with a text decoder (Whisper, Qwen2-Audio, SeamlessM4T v2). The
shared code in :mod:`.scoring` drives every backend through four primitives:

``encode(audios)``        the audio encoder, run once per clip; the result is reused for every
                          prompt, every candidate label and both modes;
``start(enc, prompts)``   the decoder over the prompt prefix of each row (audio + prompt), returning
                          a ``DecoderState``: a KV cache, the attention mask, the next position and the
                          log-probabilities of the first answer token. ``enc`` has one row per prompt, or
                          one row that every prompt shares (one clip asked several prompts): then the
                          audio's keys and values are computed once and shared as views;
``step(state, tokens)``   feed answer tokens (right-padded) through the cached decoder;
``repeat(state, k)``      copy every row ``k`` times (one copy per candidate label), cache included.

Qwen2-Audio left-pads prefixes of different lengths with explicit position ids (``pads_left``), so it
batches any prompts together; Whisper and SeamlessM4T take absolute positions from the cache length
and batch only rows with prefixes of one length (:mod:`.scoring` groups rows). Whisper scores one
clip's prompts and labels in one packed sequence with a tree-shaped attention mask instead (``packs``,
``packed_logprobs``; :class:`.scoring.PackedTree`).

A subclass names the transformers classes of its model, tokenizer and processor (feature extractor);
:meth:`ZeroShotBackend.load` loads them and builds the backend from one :class:`BackendOptions`, checked
once where the run's configuration is (``ZeroShotConfig`` extends it). Adding an option is one field.

Besides prompting, a backend may have native heads (``native_heads`` / ``native_scores``, e.g.
Whisper's language identification; see :mod:`.native`), and may take a prompt without audio
(``accepts_no_audio``: an empty clip means "no audio", a content-free input for calibration).
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import SpeechprobeError
from .config import PROMPT_AS, BackendOptions  # noqa: F401  (re-exported: the backends name them here)


@dataclass(frozen=True)
class ZeroShotModel:
    """A model that can answer zero-shot: display name, family, source (local dir or hub id), revision."""

    name: str
    family: str
    source: str
    revision: str | None = None


@dataclass
class Encoded:
    """Encoder output for a batch of clips: tensors with the clip on the first axis.

    ``keys``: rows with equal keys may share a decoder batch (e.g. Whisper's trimmed window, where
    clips of one length bucket share an encoder length). ``frames``: each row's length along axis 1
    of the tensors named in ``crop``; ``select`` crops those to the longest selected row.
    """

    tensors: dict[str, torch.Tensor]
    n: int
    truncated: list[bool] = field(default_factory=list)  # clip longer than the encoder window
    keys: list[Any] | None = None
    frames: list[int] | None = None
    crop: tuple[str, ...] = ()

    def select(self, rows: Sequence[int]) -> Encoded:
        rows = list(rows)
        idx = torch.as_tensor(rows, dtype=torch.long)
        tensors = {k: v.index_select(0, idx.to(v.device)) for k, v in self.tensors.items()}
        frames = [self.frames[i] for i in rows] if self.frames is not None else None
        if frames:
            longest = max(frames)
            tensors = {k: (v[:, :longest] if k in self.crop else v) for k, v in tensors.items()}
        return Encoded(
            tensors,
            len(rows),
            [self.truncated[i] for i in rows] if self.truncated else [],
            [self.keys[i] for i in rows] if self.keys is not None else None,
            frames,
            self.crop,
        )

    def key(self, row: int) -> Any:
        return self.keys[row] if self.keys is not None else None

    def __len__(self) -> int:
        return self.n


@dataclass
class DecoderState:
    """The decoder after a prefix: cache, masks and the next-token log-probabilities."""

    cache: Any
    mask: torch.Tensor  # (rows, length) 1 = real token
    next_pos: torch.Tensor  # (rows,) position id of the next token
    last_logprobs: torch.Tensor  # (rows, vocab) float32 log-probabilities of the next token
    context: dict[str, torch.Tensor] = field(default_factory=dict)  # per-row tensors every step needs

    @property
    def rows(self) -> int:
        return int(self.mask.shape[0])


class ZeroShotBackend(ABC):
    """One speech model with a text decoder, ready to score and generate answers."""

    family: str = ""
    model_class: str = ""  # transformers class names: the model, its feature extractor, its tokenizer
    processor_class: str = ""
    tokenizer_class: str = "AutoTokenizer"
    pads_left: bool = False
    packs: bool = False  # scores a clip's prompts and labels in one packed sequence (packed_logprobs)
    accepts_no_audio: bool = False  # an empty clip is asked as the prompt alone (no audio at all)

    def __init__(
        self, model, tokenizer, processor, checkpoint: ZeroShotModel, fingerprint: str, options: BackendOptions
    ) -> None:
        from ..models.hub import autocast_dtype

        self.name, self.source, self.fingerprint = checkpoint.name, checkpoint.source, fingerprint
        self.sample_rate = int(processor.sampling_rate)
        self.device = torch.device(options.device)
        self.dtype = autocast_dtype(options.dtype)
        self.batch_size = int(options.batch_size)
        self.model = model.eval().to(self.device)
        if self.dtype is not None:
            self.model = self.model.to(self.dtype)
        self.tokenizer = tokenizer

    @classmethod
    def load(cls, checkpoint: ZeroShotModel, options: BackendOptions) -> ZeroShotBackend:
        """The family's zero-shot loader (its ``Family.zeroshot``): the checkpoint's model, tokenizer and
        processor, of the classes the subclass names, built into a backend with ``options``."""
        import transformers

        from ..models.hub import autocast_dtype, load_pretrained, weights_fingerprint

        def part(name: str, **kwargs):
            loader = getattr(transformers, name).from_pretrained
            return load_pretrained(loader, checkpoint.source, checkpoint.revision, **kwargs)

        dtype = autocast_dtype(options.dtype)
        model = part(cls.model_class, **({"dtype": dtype} if dtype is not None else {}))
        try:
            tokenizer = part(cls.tokenizer_class)
        except SpeechprobeError:
            raise SpeechprobeError(
                f"{checkpoint.source}: no tokenizer files; zero-shot needs the model's tokenizer "
                "(save its processor with the model)"
            ) from None
        try:
            processor = part(cls.processor_class)
        except SpeechprobeError:
            processor = cls.default_processor(model)
            if processor is None:
                raise
        return cls(model, tokenizer, processor, checkpoint, weights_fingerprint(checkpoint.source, model), options)

    @classmethod
    def default_processor(cls, model) -> Any:
        """The processor of a checkpoint saved without one (None: such a checkpoint is refused)."""
        return None

    # -- what identifies the answers ------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        """Everything that changes an answer, besides the model, prompt and clip (cache key, manifest)."""
        return {"family": self.family, "dtype": str(self.dtype or "float32"), "batch_size": self.batch_size}

    # -- primitives -------------------------------------------------------------------------------

    @abstractmethod
    def encode(self, audios: Sequence[np.ndarray]) -> Encoded:
        """Run the audio encoder once on clips at ``self.sample_rate``."""

    @abstractmethod
    def start(self, enc: Encoded, prompts: Sequence[str]) -> DecoderState:
        """Decode the prefix (audio + prompt) of each row; ``prompts[i]`` goes with ``enc`` row ``i``."""

    @abstractmethod
    def step(self, state: DecoderState, tokens: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
        """Feed ``tokens`` (rows, n), right-padded, through the cache; return (rows, n, vocab) log-probs."""

    def advance(
        self, state: DecoderState, out: Any, tokens: torch.Tensor, token_mask: torch.Tensor, head
    ) -> torch.Tensor:
        """``state`` moved past ``tokens`` from the decoder's output ``out`` on them (its cache, the mask and
        positions extended); the (rows, n, vocab) log-probabilities of the output projection ``head``."""
        state.cache = output_cache(out)
        state.mask = torch.cat([state.mask, token_mask.to(state.mask)], dim=1)
        state.next_pos = state.next_pos + tokens.shape[1]
        return log_softmax(head(out.last_hidden_state))

    def repeat(self, state: DecoderState, k: int) -> None:
        """Repeat each row ``k`` times in place (row ``i`` becomes rows ``i*k .. i*k+k-1``).

        A single row is repeated as zero-copy views (stride 0), the KV cache included, so the K/V of
        the audio (cross-attention or the audio tokens) exist once however many labels are scored.
        """
        if k == 1:
            return
        repeat_cache(state.cache, k)
        state.mask = repeat_rows(state.mask, k)
        state.next_pos = repeat_rows(state.next_pos, k)
        state.last_logprobs = repeat_rows(state.last_logprobs, k)
        state.context = {key: repeat_rows(v, k) for key, v in state.context.items()}

    @abstractmethod
    def answer_ids(self, label: str) -> list[int]:
        """The tokens of ``label`` as the model would write it as an answer (without the end token)."""

    @property
    @abstractmethod
    def end_ids(self) -> tuple[int, ...]:
        """Tokens that end an answer; the first closes every scored label."""

    @abstractmethod
    def decode(self, ids: Sequence[int]) -> str:
        """Text of generated ids (special tokens dropped)."""

    def prefix_key(self, prompt: str) -> Any:
        """Rows whose keys are equal may share a batch when ``pads_left`` is False."""
        return prompt

    def suppressed(self, first: bool) -> torch.Tensor | None:
        """Token ids greedy decoding never picks (at the first step when ``first``)."""
        return None

    def packed_logprobs(self, enc: Encoded, tree: Any) -> torch.Tensor:
        """(rows, vocab) next-token log-probabilities at ``tree.rows`` of a :class:`.scoring.PackedTree`
        decoded in one call with ``enc``'s one clip (backends with ``packs``)."""
        raise NotImplementedError(f"{self.family} does not pack prompts")

    # -- inside the decoder (docs/zeroshot.md, Decoder layers) ----------------------------------

    position_rules: tuple[str, ...] = ("last",)  # where prefix_states reads the decoder: the last prompt token

    def prefix_states(self, enc: Encoded, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Position rule -> (rows, layers, dim) float32 decoder hidden states of the prefix (``start``'s pass, with
        every layer's output): layer 0 the token embeddings, then one per decoder layer, the last after the
        decoder's final norm (the state ``start`` reads its next-token log-probabilities from)."""
        raise NotImplementedError(f"{self.family} has no decoder states")

    @staticmethod
    def layer_states(out) -> torch.Tensor:
        """(rows, layers, length, dim) float32: every layer's output of a decoder called with output_hidden_states."""
        return torch.stack(out.hidden_states, dim=1).float()

    def lens_parts(self) -> tuple[torch.nn.Module, torch.nn.Module]:
        """The decoder's final norm and its output projection (the logit lens)."""
        raise NotImplementedError(f"{self.family} has no logit lens")

    @torch.inference_mode()
    def lens(self, states: torch.Tensor) -> torch.Tensor:
        """(rows, layers, vocab) next-token log-probabilities of each layer's state (rows, layers, dim): the final
        norm and the output projection, as on the last layer (whose state is already normed: the head alone)."""
        norm, head = self.lens_parts()
        weight = next(head.parameters())
        states = states.to(weight.device, weight.dtype)
        normed = torch.cat([norm(states[:, :-1]), states[:, -1:]], dim=1)
        return log_softmax(head(normed))

    def native_heads(self) -> dict[str, dict[str, str]]:
        """Native heads and what they can name: head -> {spelling: target} (see :mod:`.native`)."""
        return {}

    def native_scores(self, enc: Encoded, head: str, targets: Sequence[str]) -> np.ndarray:
        """(clips, targets) log-scores of ``head`` for ``targets`` (values of :meth:`native_heads`)."""
        raise NotImplementedError(f"{self.family} has no native head {head!r}")


class CrossAttentionBackend(ZeroShotBackend):
    """A decoder that reads the audio by cross-attention, from prompt prefixes of one length (Whisper, SeamlessM4T):
    the subclass gives ``_run_prefix`` -> (ids, per-row context every step needs, decoder output), ``decoder`` and
    the output projection ``head``."""

    head: torch.nn.Module

    @abstractmethod
    def _run_prefix(self, enc: Encoded, prompts: Sequence[str], **kwargs) -> tuple[torch.Tensor, dict, Any]: ...

    @torch.inference_mode()
    def start(self, enc: Encoded, prompts: Sequence[str]) -> DecoderState:
        ids, context, out = self._run_prefix(enc, prompts, use_cache=True)
        n, length = ids.shape  # unpadded: every token real, the next one at the prefix length
        return DecoderState(
            cache=output_cache(out),
            mask=torch.ones(n, length, dtype=torch.long, device=ids.device),
            next_pos=torch.full((n,), length, dtype=torch.long, device=ids.device),
            last_logprobs=log_softmax(self.head(out.last_hidden_state[:, -1])),
            context=context,
        )

    @torch.inference_mode()
    def prefix_states(self, enc: Encoded, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        return {"last": self.layer_states(self._run_prefix(enc, prompts, output_hidden_states=True)[2])[:, :, -1]}

    def lens_parts(self) -> tuple[torch.nn.Module, torch.nn.Module]:
        return self.decoder.layer_norm, self.head


def repeat_rows(t: torch.Tensor, k: int) -> torch.Tensor:
    """Each row ``k`` times: a stride-0 view when every row is one row's view (or there is one row), else a copy."""
    if t.shape[0] == 1 or (t.stride(0) == 0 and t.dim() > 1):
        return t[:1].expand(t.shape[0] * k, *t.shape[1:])
    return t.repeat_interleave(k, dim=0)


def shared_rows(t: torch.Tensor, rows: int) -> torch.Tensor:
    """One row of ``t`` as ``rows`` stride-0 views (one clip asked several prompts)."""
    return t[:1].expand(rows, *t.shape[1:])


def shared_cross_cache(cache: Any, rows: int) -> Any:
    """A fresh encoder-decoder cache whose cross-attention keys and values are those of ``cache`` (one
    row, already filled) as ``rows`` stride-0 views: the audio's keys and values are computed once,
    however many prompts and labels read them. The self-attention part starts empty."""
    from transformers.cache_utils import DynamicCache, EncoderDecoderCache

    cross = cache.cross_attention_cache
    for layer in cross.layers:
        layer.keys, layer.values = shared_rows(layer.keys, rows), shared_rows(layer.values, rows)
    return EncoderDecoderCache(DynamicCache(), cross)  # is_updated: every filled layer is reused


def repeat_cache(cache: Any, k: int) -> None:
    """``batch_repeat_interleave`` that keeps plain dynamic layers of a one-row cache as views."""
    from transformers.cache_utils import DynamicLayer

    parts = (
        [cache.self_attention_cache, cache.cross_attention_cache]
        if hasattr(cache, "cross_attention_cache")
        else [cache]
    )
    for part in parts:
        if getattr(part, "layers", None) is None:  # pragma: no cover - older cache layouts
            part.batch_repeat_interleave(k)
            continue
        for layer in part.layers:
            if type(layer) is DynamicLayer and getattr(layer, "is_initialized", False) and _viewable(layer.keys):
                layer.keys, layer.values = repeat_rows(layer.keys, k), repeat_rows(layer.values, k)
            else:
                layer.batch_repeat_interleave(k)


def _viewable(t: torch.Tensor) -> bool:
    """Whether :func:`repeat_rows` repeats ``t`` as a view (one row, or rows that are one row's views)."""
    return t.shape[0] == 1 or t.stride(0) == 0


# -- helpers for transformers API drift (``past_key_values`` became ``cache`` in 5.x) ------------


def cache_kwarg(fn) -> str:
    """The name under which ``fn`` takes the KV cache."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return "past_key_values"
    return "cache" if "cache" in params else "past_key_values"


def output_cache(out) -> Any:
    """The KV cache of a model output, whatever the transformers version calls it."""
    for attr in ("cache", "past_key_values"):
        value = getattr(out, attr, None)
        if value is not None:
            return value
    raise RuntimeError("the decoder returned no cache; pass use_cache=True")


def log_softmax(logits: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(logits.float(), dim=-1)
