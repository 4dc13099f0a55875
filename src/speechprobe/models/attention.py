"""One clip through an adapter's transformer blocks, watched: what the attention analyses need.

The context-mixing and attribution analyses (``analysis/mixing.py``, ``analysis/attribution.py``) let
transformers run the model's own blocks and only watch them with forward hooks: each block's input
(positional and keyword arguments, to call the block again), its output, and its attention weights (eager
attention, so the weights are materialised). Per family only a small declaration is needed (:data:`HOOKS`):
the blocks, where their attention and value projection live, the norm the adapter applies after the last
block, and how one clip's waveform is driven through the blocks (differentiably: no ``inference_mode``); for
attribution on the model's own input, a family with a feature front end (log-mel, fbanks) declares it too
(:class:`Front`: the input tensor, how to drive the blocks from it, and its bins in Hz).

WavLM's attention calls torch's ``multi_head_attention_forward`` with its value weights (not its value
projection) and head-averaged weights; its hook puts the same maths in place with the projections called as
modules (:func:`_wavlm_attention`). Families without a hook (the hand-crafted recipes) raise a one-line
:class:`~speechprobe.errors.SpeechprobeError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from ..errors import SpeechprobeError
from .base import ModelAdapter
from .hub import autocast
from .lazy import Lazy

torch, F = Lazy("torch"), Lazy("torch.nn.functional")  # imported at first use: the registry lists analyses


@dataclass
class Encoder:
    """An adapter's blocks with what the hooks need. ``run(audio)`` drives one clip (a 1-D float tensor at the
    adapter's sample rate) through the blocks; ``frames(n_samples)`` is its number of real frames (the first
    ones) at the blocks' rate."""

    blocks: list[torch.nn.Module]
    attention: list[torch.nn.Module]
    values: list[torch.nn.Module]
    configs: list
    run: Callable[[torch.Tensor], None]
    frames: Callable[[int], int]
    last: Callable[[torch.Tensor], torch.Tensor] | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: torch.dtype | None = None  # the adapter's autocast dtype (None: float32)
    front: Front | None = None  # the model's own input features (None: it reads the waveform)
    # value zeroing's fast path (analysis/zeroing.py): each block's attention output projection (an entry None:
    # none, the heads' outputs concatenated), and whether the rest of the block after its attention is
    # position-wise (Whisper, wav2vec2 family: residuals, norms, feed-forward; not the Conformer's convolution)
    out_proj: list[torch.nn.Module | None] | None = None
    pointwise: bool = False
    # and each block's feed-forward input: the layer norm before its first linear, and that linear (the fast
    # path folds the linear into its correction); None: not folded
    ffn_in: list[tuple[torch.nn.Module, torch.nn.Module]] | None = None

    def autocast(self):
        """The adapter's autocast, for every call of the blocks."""
        return autocast(self.device, self.dtype)


@dataclass
class Front:
    """A family's own input features, for attribution on them: ``inputs(audio)`` the model's input tensor of one
    clip (its batch axis first; the graph starts there), ``drive(x)`` the blocks from it, ``grid(x)`` its values
    (or an attribution of that shape) as ``(bins, frames)``, ``hz`` the centre of each bin, ``frame_s`` a
    frame's hop in seconds and ``time_axis`` the frames' axis of ``x``."""

    inputs: Callable[[torch.Tensor], torch.Tensor]
    drive: Callable[[torch.Tensor], None]
    grid: Callable[[torch.Tensor], np.ndarray]
    hz: np.ndarray
    frame_s: float
    time_axis: int


def filter_centres(filters: np.ndarray, sample_rate: int) -> np.ndarray:
    """The centre in Hz (centroid of its weights) of each mel filter of a ``(n_freq, n_mels)`` filter bank."""
    filters = np.asarray(filters, dtype=float)
    freqs = np.linspace(0, sample_rate / 2, filters.shape[0])
    return freqs @ filters / np.maximum(filters.sum(axis=0), 1e-12)


class Enough(Exception):
    """Raised by :func:`watch`'s hooks once the layer asked for is recorded: the rest of the forward is skipped."""


@dataclass
class Record:
    """What one watched clip left: each block's call (args, kwargs), output and head-wise attention; each
    attention module's whole output and each value projection's output (value zeroing's fast path)."""

    calls: list[tuple[tuple, dict]] = field(default_factory=list)
    outputs: list[torch.Tensor] = field(default_factory=list)
    attention: list[torch.Tensor | None] = field(default_factory=list)
    attention_out: list = field(default_factory=list)
    values: list[torch.Tensor] = field(default_factory=list)
    n_real: int = 0
    n_blocks: int = 0

    def layer(self, i: int, last: Callable | None) -> torch.Tensor:
        """Layer ``i`` as the adapter pools it: 0 the input of block 1, ``i`` the output of block ``i`` (the last
        one through ``last``, the norm the adapter applies after the last block)."""
        if i == 0:
            args, kwargs = self.calls[0]
            return args[0] if args else kwargs["hidden_states"]
        h = self.outputs[i - 1]
        return last(h) if last is not None and i == self.n_blocks else h


def block_output(out) -> torch.Tensor:
    """A block's hidden states, whether it returns a tensor or a tuple (WavLM: with its position bias)."""
    return out[0] if isinstance(out, (tuple, list)) else out


@contextmanager
def eager(encoder: Encoder) -> Iterator[None]:
    """Eager attention for the duration (fused kernels return no weights)."""
    before = [getattr(c, "_attn_implementation", None) for c in encoder.configs]
    for c in encoder.configs:
        c._attn_implementation = "eager"
    try:
        yield
    finally:
        for c, b in zip(encoder.configs, before):
            c._attn_implementation = b


@contextmanager
def watch(encoder: Encoder, upto: int | None = None) -> Iterator[Record]:
    """Hooks filling a :class:`Record` while the blocks run (eager attention); with ``upto``, :class:`Enough`
    is raised once layer ``upto`` is recorded (0: the first block's input; ``i``: block ``i``'s output)."""
    rec = Record(n_blocks=len(encoder.blocks))

    def on_call(module, args, kwargs):
        rec.calls.append((args, kwargs))
        if upto == 0:
            raise Enough

    def on_output(module, args, out):
        rec.outputs.append(block_output(out))
        if upto is not None and len(rec.outputs) >= upto:
            raise Enough

    def on_attention(module, args, out):
        rec.attention.append(out[1] if isinstance(out, tuple) and len(out) > 1 else None)
        rec.attention_out.append(out)

    handles = [b.register_forward_pre_hook(on_call, with_kwargs=True) for b in encoder.blocks]
    handles += [b.register_forward_hook(on_output) for b in encoder.blocks]
    handles += [a.register_forward_hook(on_attention) for a in encoder.attention]
    handles += [v.register_forward_hook(lambda m, a, out: rec.values.append(out)) for v in encoder.values]
    try:
        with eager(encoder):
            yield rec
    finally:
        for h in handles:
            h.remove()


# --------------------------------------------------------------------------------------------- the families


def _whisper(adapter) -> Encoder:
    """Whisper and the Qwen2-Audio audio tower: log-mel, two convolutions, positions, then the HF blocks
    (the adapter's own forward fuses the blocks' maths; here transformers' block modules run them)."""
    enc, lm = adapter.encoder, adapter.logmel
    qwen = hasattr(enc, "avg_pooler")

    def mel_frames(n_samples: int) -> int:
        return max(1, math.ceil(min(n_samples, lm.n_samples) / lm.hop))

    def inputs(audio: torch.Tensor) -> torch.Tensor:  # (1, n_mels, frames): the normalised log-mel
        n = min(len(audio), lm.n_samples)
        n_mel = lm.n_samples // lm.hop if adapter.window == "full" else 2 * math.ceil(mel_frames(n) / 2)
        padded = F.pad(audio[:n].float(), (0, n_mel * lm.hop + lm.n_fft - n))
        return lm(padded[None], n_mel)

    def drive(mel: torch.Tensor) -> None:
        x = F.gelu(enc.conv2(F.gelu(enc.conv1(mel.to(enc.conv1.weight.dtype)))))
        h = x.permute(0, 2, 1) + enc.embed_positions.weight[: x.shape[-1]]
        for block in enc.layers:
            h = block_output(block(h, attention_mask=None))

    def grid(x: torch.Tensor) -> np.ndarray:
        return x[0].detach().float().cpu().numpy()

    def last(h: torch.Tensor) -> torch.Tensor:
        if qwen:  # the tower's last layer: average pooling (stride 2), then its layer norm
            return enc.layer_norm(enc.avg_pooler(h.permute(0, 2, 1)).permute(0, 2, 1))
        return enc.layer_norm(h)

    blocks = list(enc.layers)
    attn = [b.self_attn for b in blocks]
    frames = lambda n_samples: math.ceil(mel_frames(n_samples) / 2)  # noqa: E731
    front = Front(inputs, drive, grid, filter_centres(lm.filters.numpy(), lm.sample_rate), lm.hop / lm.sample_rate, 2)
    run = lambda audio: drive(inputs(audio))  # noqa: E731
    out = dict(
        out_proj=[a.out_proj for a in attn], pointwise=True, ffn_in=[(b.final_layer_norm, b.fc1) for b in blocks]
    )
    return Encoder(blocks, attn, [a.v_proj for a in attn], [enc.config], run, frames, last, front=front, **out)


def _wav2vec2(adapter) -> Encoder:
    """wav2vec2, HuBERT, data2vec-audio: the model's own forward on one clip (no padding)."""
    model = adapter.model
    if type(model).__name__.startswith("WavLM"):
        for layer in model.encoder.layers:
            layer.attention.torch_multi_head_self_attention = _wavlm_attention(layer.attention)

    def run(audio: torch.Tensor) -> None:  # one clip (samples,), or versions of it (B, samples)
        x = audio.float() if audio.dim() == 2 else audio.float()[None]
        if adapter.normalize:
            x = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + 1e-7)
        x = F.pad(x, (0, max(0, adapter.min_samples - x.shape[-1])))
        mask = torch.ones(x.shape, dtype=torch.long, device=x.device) if adapter.use_mask else None
        model(x.to(next(model.parameters()).dtype), attention_mask=mask)

    def frames(n_samples: int) -> int:
        return int(adapter._frames(torch.tensor(max(n_samples, adapter.min_samples))))

    blocks = list(model.encoder.layers)
    attn = [b.attention for b in blocks]
    values, out = [a.v_proj for a in attn], [a.out_proj for a in attn]
    # post-LN blocks norm the residual stream after attention (layer_norm), pre-LN ones before the feed-forward
    ffn = [(b.final_layer_norm if "StableLayerNorm" in type(b).__name__ else b.layer_norm) for b in blocks]
    ffn_in = [(norm, b.feed_forward.intermediate_dense) for norm, b in zip(ffn, blocks)]
    fast = dict(out_proj=out, pointwise=True, ffn_in=ffn_in)
    return Encoder(blocks, attn, values, [model.config], run, frames, adapter.final_norm, **fast)


def _wavlm_attention(attn: torch.nn.Module) -> Callable:
    """WavLM's self-attention maths (scaled dot product plus its gated relative position bias, key padding
    masked), in place of its call of torch's ``multi_head_attention_forward``, which reads the value weights
    without calling the value projection (so value zeroing could not hook it) and averages the weights over
    heads. Here the projections are called as modules and the weights are returned per head; the output is
    the same (tests/analysis/test_mixing.py)."""

    def attend(hidden: torch.Tensor, attention_mask, gated_position_bias: torch.Tensor):
        b, t, d = hidden.shape
        heads = lambda x: x.view(b, t, attn.num_heads, -1).transpose(1, 2)  # noqa: E731
        q, k, v = heads(attn.q_proj(hidden)), heads(attn.k_proj(hidden)), heads(attn.v_proj(hidden))
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + gated_position_bias.view(b, -1, t, t)
        if attention_mask is not None:
            scores = scores.masked_fill(attention_mask.ne(1)[:, None, None, :], float("-inf"))
        weights = scores.softmax(dim=-1)
        return attn.out_proj((weights @ v).transpose(1, 2).reshape(b, t, d)), weights

    return attend


def _seamless(adapter) -> Encoder:
    """SeamlessM4T v2's Conformer: its feature extractor (NumPy: attribution starts at its output, the stacked
    fbanks), then the model's own layers."""
    conformer, fe = adapter.encoder.encoder, adapter.fe
    n_mels = int(fe.num_mel_bins)

    def features(audio: np.ndarray):
        fe = adapter.fe
        return fe([audio], sampling_rate=fe.sampling_rate, return_attention_mask=True, return_tensors="pt")

    def inputs(audio: torch.Tensor) -> torch.Tensor:  # (1, frames / stride, stride x n_mels)
        given = features(audio.detach().float().cpu().numpy())
        return given["input_features"][:, : int(given["attention_mask"].sum())].to(adapter.device)

    def drive(x: torch.Tensor) -> None:
        mask = torch.ones(x.shape[:2], dtype=torch.long, device=x.device)
        conformer(adapter.encoder.feature_projection(x), attention_mask=mask)

    def grid(x: torch.Tensor) -> np.ndarray:  # the stacked frames side by side again: (n_mels, frames)
        return x[0].detach().float().cpu().numpy().reshape(-1, n_mels).T

    def frames(n_samples: int) -> int:
        return int(features(np.zeros(n_samples, np.float32))["attention_mask"].sum())

    blocks = list(conformer.layers)
    attn = [b.self_attn for b in blocks]
    config = [adapter.encoder.config]
    hop = fe.sampling_rate // 100  # Kaldi fbanks: 10 ms frames
    front = Front(inputs, drive, grid, filter_centres(fe.mel_filters, fe.sampling_rate), hop / fe.sampling_rate, 1)
    run = lambda audio: drive(inputs(audio))  # noqa: E731
    values, out = [a.linear_v for a in attn], [a.linear_out for a in attn]
    return Encoder(blocks, attn, values, config, run, frames, conformer.layer_norm, front=front, out_proj=out)


HOOKS: dict[str, Callable[[ModelAdapter], Encoder]] = {
    "WhisperAdapter": _whisper,
    "Qwen2AudioAdapter": _whisper,
    "Wav2Vec2Adapter": _wav2vec2,
    "SeamlessAdapter": _seamless,
}


def encoder_of(adapter: ModelAdapter) -> Encoder:
    """The :class:`Encoder` of ``adapter``, from its family's hook (one-line error without one)."""
    hook = HOOKS.get(type(adapter).__name__)
    if hook is None:
        raise SpeechprobeError(f"{adapter.name}: no transformer blocks to watch (family {adapter.info.family})")
    encoder = hook(adapter)
    encoder.device, encoder.dtype, drive = adapter.device, adapter.dtype, encoder.run

    def run(audio: torch.Tensor) -> None:  # on the adapter's device, under its autocast
        with encoder.autocast():
            drive(audio.to(encoder.device))

    encoder.run = run
    if encoder.front is not None:
        drive_front = encoder.front.drive

        def from_inputs(x: torch.Tensor) -> None:
            with encoder.autocast():
                drive_front(x.to(encoder.device))

        encoder.front.drive = from_inputs
    return encoder
