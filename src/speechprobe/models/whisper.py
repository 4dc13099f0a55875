"""Whisper encoder adapter: every layer in one pass, pooled over real frames only.

Layers: ``0`` = convolutional front end + position embeddings; ``i`` = output of block ``i``;
the last layer includes the encoder's final layer norm, as in transformers' ``hidden_states``.

Window modes:

- ``full`` (default): the standard 30 s input, as in training. Real frames are pooled; the
  padding is computed (as Whisper always does) but never pooled.
- ``trimmed``: the log-mel input is cut to the clip's length (rounded up to two mel frames)
  and the position embeddings are sliced. Much faster for short clips, but activations differ
  from ``full`` because the model attends over less context. In a batch, padded positions are
  zeroed before each convolution and masked out of attention, so a batched clip gives the same
  features as the same clip alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError
from .base import AdapterInfo, ModelAdapter
from .family import Checkpoint, Family, LoadContext
from .hub import autocast, dtype_key
from .lazy import Lazy, inference_mode
from .pooling import frame_mask, masked_pool
from .trainable import Trainable, on_time_axis, run_block

torch, F = Lazy("torch"), Lazy("torch.nn.functional")

WINDOWS = ("full", "trimmed")
GPU_SHAPE_STEP = 64  # mel frames (0.64 s); even, so padded inputs keep whole encoder frames


class LogMel:
    """Whisper's log-mel front end in torch (batched), settings taken from the checkpoint."""

    def __init__(self, feature_extractor) -> None:
        fe = feature_extractor
        self.n_fft = int(fe.n_fft)
        self.hop = int(fe.hop_length)
        self.n_samples = int(fe.n_samples)
        self.sample_rate = int(fe.sampling_rate)
        self.n_mels = int(fe.feature_size)
        self.filters = torch.from_numpy(np.asarray(fe.mel_filters, dtype=np.float32))  # (n_freq, n_mels)
        self.window = torch.hann_window(self.n_fft)

    def __call__(self, audio: torch.Tensor, n_frames: int) -> torch.Tensor:
        """``(B, samples)`` zero-padded audio -> ``(B, n_mels, n_frames)`` normalised log-mel."""
        dev = audio.device
        stft = torch.stft(audio, self.n_fft, self.hop, window=self.window.to(dev), return_complex=True)
        power = (stft[..., :n_frames].abs() ** 2).contiguous()
        mel = self.filters.to(dev).T @ power
        log_spec = torch.clamp(mel, min=1e-10).log10()
        peak = log_spec.amax(dim=(1, 2), keepdim=True)
        return (torch.maximum(log_spec, peak - 8.0) + 4.0) / 4.0


class WhisperAdapter(ModelAdapter):
    """Layer-wise pooled features from a transformers ``WhisperEncoder``."""

    pools_frames = True  # every layer pooled with masked_pool: pooling variants from one forward

    def __init__(
        self,
        encoder: torch.nn.Module,
        feature_extractor,
        info: AdapterInfo,
        window: str = "full",
        device: str = "cpu",
        dtype: torch.dtype | None = None,
    ) -> None:
        if window not in WINDOWS:
            raise ConfigError(f"unknown window mode {window!r}; choose one of {', '.join(WINDOWS)}")
        self.encoder = encoder.eval().to(device)
        self.encoder.config.layerdrop = 0.0
        if dtype is not None:  # once, instead of autocast casting every weight at every forward
            for module in self.encoder.modules():
                if isinstance(module, (torch.nn.Linear, torch.nn.Conv1d)):
                    module.to(dtype)
        self.logmel = LogMel(feature_extractor)
        self.window = window
        self.device = torch.device(device)
        # trimmed batches on a GPU are padded to a multiple of this many mel frames: a few dozen input
        # shapes instead of one per batch, so kernels, attention plans and allocator blocks are reused
        self.shape_step = GPU_SHAPE_STEP if self.device.type == "cuda" else 1
        self.dtype = dtype
        self.info = info
        self.checkpointed = False  # fine-tuning: gradient checkpointing of the blocks (``frames``)

    def options(self) -> dict[str, object]:
        return {"window": self.window, "dtype": dtype_key(self.dtype, self.device)}

    def max_seconds(self) -> float:
        return self.logmel.n_samples / self.logmel.sample_rate

    def window_seconds(self, duration: float) -> float:
        return self.max_seconds() if self.window == "full" else duration

    def mel_frames(self, n_samples: int) -> int:
        """Mel frames whose centre lies inside a clip of ``n_samples``."""
        return max(1, math.ceil(n_samples / self.logmel.hop))

    @inference_mode
    def forward(self, batch: Sequence[np.ndarray], pooling: str = "mean") -> np.ndarray:
        mel, in_mel, real_frames = self._mel(batch)
        with autocast(self.device, self.dtype):
            pooled = self._encode(mel, in_mel, real_frames, pooling)
        return pooled.float().cpu().numpy()

    def _mel(self, batch: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """A batch's log-mel input, each clip's input length in mel frames (None in the full window) and
        its real encoder frames."""
        hop = self.logmel.hop
        lengths = [min(len(a), self.logmel.n_samples) for a in batch]
        real_mel = torch.tensor([self.mel_frames(n) for n in lengths])
        if self.window == "full":
            n_frames = self.logmel.n_samples // hop
            in_mel = None
        else:
            in_mel = 2 * torch.ceil(real_mel / 2).long()  # each clip's input, in mel frames (even)
            step = self.shape_step
            n_frames = min(self.logmel.n_samples // hop, math.ceil(int(in_mel.max()) / step) * step)
        n_pad = n_frames * hop + self.logmel.n_fft  # zeros beyond every frame's window
        audio = torch.zeros(len(batch), n_pad)
        for i, (a, n) in enumerate(zip(batch, lengths)):
            audio[i, :n] = torch.from_numpy(np.asarray(a[:n], dtype=np.float32))
        if self.device.type == "cuda":  # pinned host memory lets the copy overlap with compute
            audio = audio.pin_memory()
        audio = audio.to(self.device, non_blocking=True)
        mel = self.logmel(audio, n_frames)
        real_frames = (torch.ceil(real_mel / 2)).long().to(self.device)
        return mel, in_mel, real_frames

    def _encode(
        self, mel: torch.Tensor, in_mel: torch.Tensor | None, real_frames: torch.Tensor, pooling: str
    ) -> torch.Tensor:
        """The front end and every block pooled ``(B, layers + 1, D)``, the last as ``_output`` gives it."""
        h, mask, key_mask = self._inputs(mel, in_mel, real_frames)
        pooled = [masked_pool(h[None], mask, pooling)]
        last = len(self.encoder.layers) - 1
        n_real = int(real_frames.max())
        for i, layer in enumerate(self.encoder.layers):
            # Without a key mask, the last block needs only the longest clip's frames (encoder_block).
            h = encoder_block(
                layer, h, key_mask, min(n_real, h.shape[1]) if i == last and key_mask is None else h.shape[1]
            )
            if i < last:
                pooled.append(masked_pool(h[None], mask, pooling))
        out, out_frames = self._output(h, mask, in_mel, real_frames)
        pooled.append(masked_pool(out[None], frame_mask(out_frames, out.shape[1]), pooling))
        return torch.cat(pooled, dim=1)

    def _inputs(
        self, mel: torch.Tensor, in_mel: torch.Tensor | None, real_frames: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The first block's input ``(B, T, D)``, its real frames ``(B, T)`` and the blocks' key mask (``_front``)."""
        h, key_mask = self._front(mel, in_mel)
        return h, frame_mask(real_frames, h.shape[1]), key_mask

    def _output(
        self, h: torch.Tensor, mask: torch.Tensor, in_mel: torch.Tensor | None, real_frames: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The last block's output as the encoder returns it (final layer norm) and its real-frame counts."""
        return self.encoder.layer_norm(h), real_frames

    def _front(self, mel: torch.Tensor, in_mel: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The convolutional front end + positions ``(B, T, D)`` and the additive key mask of the batch
        padding (None when no clip is padded)."""
        enc = self.encoder
        mel = mel.to(enc.conv1.weight.dtype)
        key_mask = None
        if in_mel is not None and bool((in_mel < mel.shape[-1]).any()):
            in_mask = frame_mask(in_mel.to(mel.device), mel.shape[-1])[:, None, :]
            x = F.gelu(enc.conv1(mel * in_mask)) * in_mask
            x = F.gelu(enc.conv2(x))
            key_mask = additive_key_mask(frame_mask((in_mel // 2).to(mel.device), x.shape[-1]), x.dtype)
        else:
            x = F.gelu(enc.conv2(F.gelu(enc.conv1(mel))))
        return x.permute(0, 2, 1) + enc.embed_positions.weight[: x.shape[-1]], key_mask

    def frames(self, batch: Sequence[np.ndarray]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Every layer's frames ``(B, T, D)`` (the front end, each block, the last as ``_output`` gives it, brought
        to the blocks' frame rate) and real-frame counts, with gradients (fine-tuning: :mod:`.trainable`); blocks
        are checkpointed when ``self.checkpointed``."""
        mel, in_mel, real_frames = self._mel(batch)
        h, mask, key_mask = self._inputs(mel, in_mel, real_frames)
        layers = [h]
        for layer in self.encoder.layers:
            h = run_block(encoder_block, layer, h, key_mask, h.shape[1], checkpointed=self.checkpointed)
            layers.append(h)
        layers[-1] = on_time_axis(self._output(h, mask, in_mel, real_frames)[0], h.shape[1])
        return layers, real_frames

    def trainable(self) -> Trainable:
        """This encoder for fine-tuning (the family's ``trainable`` hook)."""
        return Trainable(
            self.encoder,
            self.encoder.layers,
            ("q_proj", "v_proj"),
            self.info.hidden_size,
            self.frames,
            lambda on: setattr(self, "checkpointed", on),
            self.num_layers,
        )


def additive_key_mask(valid: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``(B, T)`` valid keys -> ``(B, 1, 1, T)`` additive attention mask (0 or the dtype's minimum)."""
    mask = torch.zeros(valid.shape, dtype=dtype, device=valid.device)
    return mask.masked_fill(~valid, torch.finfo(dtype).min)[:, None, None, :]


def encoder_block(layer: torch.nn.Module, h: torch.Tensor, key_mask: torch.Tensor | None, n: int) -> torch.Tensor:
    """A Whisper encoder block for the first ``n`` frames, attending over all frames.

    Same maths as transformers' ``WhisperEncoderLayer`` (pre-norm attention with Whisper's query
    scaling, then the pre-norm feed-forward). The last block's outputs at padding frames are never
    pooled, so it needs only the real frames' queries: ``n`` instead of 1500 rows in a 30 s window.
    """
    attn = layer.self_attn
    # Norms and the residual stream stay float32; their outputs are cast once for the three
    # projections (autocast would cast the same tensor three times, a full-size copy each).
    x = layer.self_attn_layer_norm(h).to(attn.q_proj.weight.dtype)
    b, t, d = x.shape
    heads, hd = attn.num_heads, attn.head_dim
    q = (attn.q_proj(x[:, :n]) * attn.scaling).view(b, n, heads, hd).transpose(1, 2)
    k = attn.k_proj(x).view(b, t, heads, hd).transpose(1, 2)
    v = attn.v_proj(x).view(b, t, heads, hd).transpose(1, 2)
    ctx = _attend(q, k, v, key_mask).transpose(1, 2).reshape(b, n, d)
    r = h[:, :n] + attn.out_proj(ctx)
    return r + layer.fc2(layer.activation_fn(layer.fc1(layer.final_layer_norm(r).to(layer.fc1.weight.dtype))))


SCORE_BLOCK_BYTES = 6 * 2**20  # CPU low-precision attention: one block of scores, sized to stay in cache


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
    """Attention of pre-scaled queries ``(B, H, n, hd)`` over keys ``(B, H, T, hd)``.

    SDPA everywhere, except bf16/fp16 on CPU: there PyTorch's fused CPU kernel is no faster than in
    float32, while plain bf16 matrix products run several times faster on CPUs with native bf16
    (AVX512-BF16, AMX). So that case takes blocks of queries whose ``(B, H, rows, T)`` scores fill
    about ``SCORE_BLOCK_BYTES`` (cache-resident): scores, softmax and the value product in the
    low-precision dtype, as GPU flash attention does.
    """
    if key_mask is not None:
        key_mask = key_mask.to(q.dtype)
    if q.device.type != "cpu" or q.dtype == torch.float32:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask, scale=1.0)
    q, kt, v = q.contiguous(), k.transpose(-1, -2).contiguous(), v.contiguous()
    b, heads, _, t = kt.shape
    rows = max(16, SCORE_BLOCK_BYTES // (b * heads * t * q.element_size()))
    blocks = []
    for s in range(0, q.shape[2], rows):
        scores = q[:, :, s : s + rows] @ kt
        if key_mask is not None:
            scores = scores + key_mask
        blocks.append(torch.softmax(scores, dim=-1) @ v)
    return torch.cat(blocks, dim=2)


def _load(ctx: LoadContext) -> WhisperAdapter:
    from transformers import WhisperFeatureExtractor, WhisperForAudioClassification

    from .hub import load_feature_extractor

    config = ctx.config()
    fe = load_feature_extractor(
        WhisperFeatureExtractor,
        ctx.source,
        ctx.revision,
        lambda: WhisperFeatureExtractor(feature_size=config.num_mel_bins),
    )
    model = ctx.weights(
        config, WhisperForAudioClassification.from_pretrained, lambda: WhisperForAudioClassification(config)
    )
    info = ctx.info(
        sample_rate=int(fe.sampling_rate),
        num_layers=config.encoder_layers + 1,
        hidden_size=config.d_model,
        frame_rate=fe.sampling_rate / fe.hop_length / 2,
        padding=("30 s window, pooled over real frames" if ctx.window == "full" else "trimmed to clip, masked"),
    )
    return WhisperAdapter(model.encoder, fe, info, window=ctx.window, device=ctx.device, dtype=ctx.torch_dtype)


def _packaged(name: str) -> str:
    from .packaged import packaged_checkpoint

    return str(packaged_checkpoint(name))


def _checkpoint(name: str, blocks: int, width: int, packaged: bool = False) -> Checkpoint:
    return Checkpoint(name, f"openai/{name}", num_layers=blocks + 1, hidden_size=width, packaged=packaged)


FAMILY = Family(
    "whisper",
    _load,
    title="Whisper",
    model_types=("whisper",),
    checkpoints=(
        _checkpoint("whisper-tiny.en", 4, 384, packaged=True),
        _checkpoint("whisper-base", 6, 512, packaged=True),
        _checkpoint("whisper-tiny", 4, 384),
        _checkpoint("whisper-base.en", 6, 512),
        _checkpoint("whisper-small", 12, 768),
        _checkpoint("whisper-small.en", 12, 768),
        _checkpoint("whisper-medium", 24, 1024),
        _checkpoint("whisper-medium.en", 24, 1024),
        _checkpoint("whisper-large", 32, 1280),
        _checkpoint("whisper-large-v2", 32, 1280),
        _checkpoint("whisper-large-v3", 32, 1280),
        _checkpoint("whisper-large-v3-turbo", 32, 1280),  # large-v3's encoder size
    ),
    windows=WINDOWS,
    zeroshot="speechprobe.zeroshot.whisper:WhisperBackend",
    layer0="convolutional front end + position embeddings",
    packaged=_packaged,
    trainable=WhisperAdapter.trainable,
)
FAMILIES = (FAMILY,)
