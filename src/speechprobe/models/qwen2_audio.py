"""Qwen2-Audio audio encoder: a Whisper-large-v3-like encoder, read without the 7B language model.

Only ``audio_tower.*`` is read from the checkpoint's safetensors shards (via the shard index), into
a ``Qwen2AudioEncoder`` built from ``config.audio_config``; the language model and the projector
are never loaded (nor downloaded from the hub).

The encoder is Whisper's (128 mels, 30 s window, conv front end, 32 blocks in the 7B models) plus an
average pooling (stride 2) before its final layer norm. It reuses the Whisper adapter's log-mel
front end, window modes and batching; it differs where Qwen2-Audio itself differs:

- padding is masked in attention (Qwen2-Audio passes a key mask built from each clip's length;
  Whisper does not), so in the ``full`` window a batched clip equals the clip alone and the
  ``trimmed`` window differs from ``full`` only through the convolutions at the clip's end;
- layers follow transformers' ``hidden_states``: ``0`` = conv front end + positions, ``i`` = output
  of block ``i`` for ``i < N``, and ``N`` = the encoder output as the language model receives it:
  block ``N`` average-pooled to 25 Hz and layer-normed, pooled over its real frames
  (``_get_feat_extract_output_lengths``; at least one).

So ``num_layers == encoder_layers + 1`` (33 for Qwen2-Audio-7B and -7B-Instruct).
"""

from __future__ import annotations

from .base import AdapterInfo
from .family import Checkpoint, Family, LoadContext
from .lazy import Lazy
from .pooling import frame_mask
from .whisper import WINDOWS, WhisperAdapter, additive_key_mask

torch, F = Lazy("torch"), Lazy("torch.nn.functional")


class Qwen2AudioAdapter(WhisperAdapter):
    """Layer-wise pooled features from a transformers ``Qwen2AudioEncoder``."""

    def __init__(self, encoder: torch.nn.Module, feature_extractor, info: AdapterInfo, **kwargs) -> None:
        super().__init__(encoder, feature_extractor, info, **kwargs)
        self.encoder.layerdrop = 0.0
        self.encoder.config.encoder_layerdrop = 0.0

    def _front(self, mel: torch.Tensor, in_mel: torch.Tensor | None) -> tuple[torch.Tensor, None]:
        """The front end ``(B, T, D)``; the key mask comes from the real frames (``_inputs``)."""
        enc = self.encoder
        mel = mel.to(enc.conv1.weight.dtype)
        if in_mel is not None:  # trimmed window: zero the batch padding, as the clip alone sees it
            keep = frame_mask(in_mel.to(mel.device), mel.shape[-1])[:, None, :]
            x = F.gelu(enc.conv2(F.gelu(enc.conv1(mel * keep)) * keep))
        else:
            x = F.gelu(enc.conv2(F.gelu(enc.conv1(mel))))
        return x.permute(0, 2, 1) + enc.embed_positions.weight[: x.shape[-1]], None

    def _inputs(
        self, mel: torch.Tensor, in_mel: torch.Tensor | None, real_frames: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h, _ = self._front(mel, in_mel)
        mask = frame_mask(real_frames, h.shape[1])
        return h, mask, additive_key_mask(mask, h.dtype)

    def _output(
        self, h: torch.Tensor, mask: torch.Tensor, in_mel: torch.Tensor | None, real_frames: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The last block's output as the language model receives it (average-pooled, layer-normed) and its
        real-frame counts (at least one)."""
        enc = self.encoder
        if in_mel is not None:  # trimmed: padding as the clip alone has it (zeros; odd lengths padded)
            h = F.pad(h * mask[..., None], (0, 0, 0, h.shape[1] % 2))
        out = enc.layer_norm(enc.avg_pooler(h.permute(0, 2, 1)).permute(0, 2, 1))
        # The output lengths from mel lengths; 2 * real_frames mel frames give real_frames frames.
        _, out_frames = enc._get_feat_extract_output_lengths(2 * real_frames)
        return out, out_frames.clamp_min(1)


def _load(ctx: LoadContext) -> Qwen2AudioAdapter:
    from transformers import WhisperFeatureExtractor
    from transformers.models.qwen2_audio.modeling_qwen2_audio import Qwen2AudioEncoder

    from .hub import load_feature_extractor

    config = ctx.config()
    full = config.model_type == "qwen2_audio"  # else an encoder-only checkpoint
    audio_config = config.audio_config if full else config
    audio_config.encoder_layerdrop = 0.0
    fe = load_feature_extractor(
        WhisperFeatureExtractor,
        ctx.source,
        ctx.revision,
        lambda: WhisperFeatureExtractor(feature_size=audio_config.num_mel_bins),
    )
    encoder = ctx.submodule(Qwen2AudioEncoder, audio_config, "audio_tower." if full else "", full_config=config)
    info = ctx.info(
        sample_rate=int(fe.sampling_rate),
        num_layers=audio_config.encoder_layers + 1,
        hidden_size=audio_config.d_model,
        frame_rate=fe.sampling_rate / fe.hop_length / 2,
        padding=(
            "30 s window, padding masked in attention; pooled over real frames"
            if ctx.window == "full"
            else "trimmed to clip, masked"
        ),
    )
    return Qwen2AudioAdapter(encoder, fe, info, window=ctx.window, device=ctx.device, dtype=ctx.torch_dtype)


FAMILY = Family(
    "qwen2-audio",
    _load,
    title="Qwen2-Audio",
    model_types=("qwen2_audio", "qwen2_audio_encoder"),
    checkpoints=(
        # Audio encoder only (the 7B language model is never loaded).
        Checkpoint("qwen2-audio-7b-instruct", "Qwen/Qwen2-Audio-7B-Instruct", num_layers=33, hidden_size=1280),
        Checkpoint("qwen2-audio-7b", "Qwen/Qwen2-Audio-7B", num_layers=33, hidden_size=1280),
    ),
    windows=WINDOWS,
    zeroshot="speechprobe.zeroshot.qwen2_audio:Qwen2AudioBackend",
    encoder_only_types=("qwen2_audio_encoder",),
    layer0="convolutional front end + position embeddings",
    trainable=Qwen2AudioAdapter.trainable,
)
FAMILIES = (FAMILY,)
