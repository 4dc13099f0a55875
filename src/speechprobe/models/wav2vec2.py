"""wav2vec 2.0, HuBERT, WavLM and data2vec-audio: one adapter for the CTC-style speech encoders.

These four share one shape: a convolutional feature encoder on raw 16 kHz audio (20 ms frames),
a feature projection, a convolutional position embedding, then N transformer blocks. Layers:

- ``0``: the input of block 1 (feature projection + positional convolution; for post-LN models
  also the encoder's layer norm), i.e. transformers' ``hidden_states[0]``;
- ``i`` (1..N): the output of block ``i``. For pre-LN ("stable layer norm") models such as
  wav2vec2-large-lv60, XLS-R, HuBERT-large and WavLM-large, the last layer includes the encoder's
  final layer norm, as Whisper's does (transformers 4.x ``hidden_states[-1]``; in transformers 5
  that is ``last_hidden_state``).

So ``num_layers == num_hidden_layers + 1`` (13 for base, 25 for large models).

Input and padding follow each checkpoint's training:

- each clip is normalised to zero mean / unit variance over its own samples when the checkpoint's
  feature extractor says ``do_normalize`` (without a preprocessor config: when the feature encoder
  uses layer norm, the fairseq convention);
- group-norm feature encoders (``feat_extract_norm == "group"``: wav2vec2-base, HuBERT-base,
  WavLM-base(+)) get zero-padded batches *without* an attention mask, as in their training and as
  transformers recommends. Their first group norm then sees the padded zeros, so a clip's features
  depend slightly on how much padding its batch adds (measured in ``tests/models/test_wav2vec2.py``;
  the extractor batches clips of similar duration, which keeps the padding small);
- layer-norm feature encoders get an attention mask, so a batched clip equals the clip alone.

Pooling always covers the clip's real frames only: ``_get_feat_extract_output_lengths`` of its
sample count. Clips shorter than the feature encoder's receptive field (25 ms) are zero-padded to it.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from ..errors import SpeechprobeError
from .base import AdapterInfo, ModelAdapter
from .family import Checkpoint, Family, LoadContext
from .hub import autocast, dtype_key
from .lazy import Lazy, inference_mode
from .pooling import block_outputs, frame_mask, pooled_blocks
from .trainable import Trainable, hf_checkpointing

torch = Lazy("torch")


class Wav2Vec2Adapter(ModelAdapter):
    """Layer-wise pooled features from a transformers wav2vec2-style base model."""

    pools_frames = True  # every layer pooled with masked_pool: pooling variants from one forward

    def __init__(
        self,
        model: torch.nn.Module,
        info: AdapterInfo,
        normalize: bool,
        device: str = "cpu",
        dtype: torch.dtype | None = None,
    ) -> None:
        self.model = model.eval().to(device)
        self.model.config.layerdrop = 0.0
        self.normalize = normalize
        self.use_mask = getattr(model.config, "feat_extract_norm", "layer") != "group"
        encoder = self.model.encoder
        # Pre-LN encoders apply their layer norm after the last block; post-LN ones before the first.
        self.final_norm = encoder.layer_norm if "StableLayerNorm" in type(encoder).__name__ else None
        self.device = torch.device(device)
        self.dtype = dtype
        self.info = info
        self.min_samples = _receptive_field(self._frames)

    def options(self) -> dict[str, object]:
        """Unmasked (group-norm) models see their batch's padding: the batch budget is part of the key."""
        return {"dtype": dtype_key(self.dtype, self.device), "unmasked_padding": not self.use_mask}

    def _frames(self, n_samples: torch.Tensor) -> torch.Tensor:
        fn = self.model._get_feat_extract_output_lengths
        kw = {"add_adapter": False} if "add_adapter" in inspect.signature(fn).parameters else {}
        return fn(n_samples, **kw)

    @inference_mode
    def forward(self, batch: Sequence[np.ndarray], pooling: str = "mean") -> np.ndarray:
        audio, attention, mask = self._inputs(batch)
        with autocast(self.device, self.dtype):
            with (
                pooled_blocks(self.model.encoder.layers, mask, pooling, last=self.final_norm) as pooled,
                self._masked_pos_conv(mask if self.use_mask else None),
            ):
                self.model(audio, attention_mask=attention)
        return torch.cat(pooled, dim=1).float().cpu().numpy()

    def _inputs(self, batch: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """The padded (normalised) audio, its attention mask (None for group-norm models) and the real frames."""
        lengths = torch.tensor([max(len(a), self.min_samples) for a in batch])
        audio = torch.zeros(len(batch), int(lengths.max()))
        for i, a in enumerate(batch):
            x = torch.from_numpy(np.asarray(a, dtype=np.float32))
            if self.normalize and len(x):  # over the clip's own samples, as the feature extractor does
                x = (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + 1e-7)
            audio[i, : len(x)] = x
        audio = audio.to(self.device, non_blocking=True)
        attention = frame_mask(lengths, audio.shape[1]).long().to(self.device) if self.use_mask else None
        frames = self._frames(lengths).to(self.device)
        return audio, attention, frame_mask(frames, int(self._frames(torch.tensor(audio.shape[1]))))

    def frames(self, batch: Sequence[np.ndarray]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Every layer's frames (as ``forward`` pools them) and real-frame counts, with gradients (fine-tuning:
        ``.trainable``)."""
        audio, attention, mask = self._inputs(batch)
        with (
            block_outputs(self.model.encoder.layers, last=self.final_norm) as layers,
            self._masked_pos_conv(mask if self.use_mask else None),
        ):
            self.model(audio, attention_mask=attention)
        return layers, mask.sum(-1)

    def trainable(self) -> Trainable:
        """This encoder for fine-tuning (the family's ``trainable`` hook)."""
        blocks = self.model.encoder.layers
        return Trainable(
            self.model,
            blocks,
            ("q_proj", "v_proj"),
            self.info.hidden_size,
            self.frames,
            hf_checkpointing(self.model),
            self.num_layers,
        )

    @contextmanager
    def _masked_pos_conv(self, mask: torch.Tensor | None) -> Iterator[None]:
        """Keep padded frames at zero between stacked position convolutions (data2vec-audio).

        transformers zeroes the padded frames once, before the positional convolution; with a stack
        of convolutions (data2vec-audio has 5) the padding becomes non-zero after the first and leaks
        into the last real frames, so a batched clip would differ from the clip alone.
        """
        layers = getattr(self.model.encoder.pos_conv_embed, "layers", None)
        if mask is None or layers is None:
            yield
            return
        keep = mask[:, None, :]
        handles = [layer.register_forward_hook(lambda m, args, out: out * keep.to(out.dtype)) for layer in layers]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()


def _receptive_field(frames) -> int:
    """Fewest samples that give one frame."""
    n = 1
    while int(frames(torch.tensor(n))) < 1:
        n *= 2
    lo, hi = n // 2, n
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if int(frames(torch.tensor(mid))) >= 1 else (mid, hi)
    return hi


def _load(ctx: LoadContext) -> Wav2Vec2Adapter:
    from transformers import AutoModel, Wav2Vec2FeatureExtractor

    from .hub import load_pretrained

    config = ctx.config(*FAMILIES)  # the checkpoint's model type picks the family
    config.layerdrop = 0.0
    norm = getattr(config, "feat_extract_norm", "layer")
    try:
        fe = load_pretrained(Wav2Vec2FeatureExtractor.from_pretrained, ctx.source, ctx.revision)
        normalize = bool(fe.do_normalize)
    except SpeechprobeError:
        normalize = norm == "layer"
    model = ctx.weights(config, AutoModel.from_pretrained, lambda: AutoModel.from_config(config))
    info = ctx.info(
        sample_rate=16000,
        num_layers=config.num_hidden_layers + 1,
        hidden_size=config.hidden_size,
        frame_rate=16000 / int(np.prod(config.conv_stride)),
        padding=(
            "zero-padded, no attention mask (group-norm feature encoder, as trained); pooled over real frames"
            if norm == "group"
            else "zero-padded with attention mask; pooled over real frames"
        ),
    )
    return Wav2Vec2Adapter(model, info, normalize=normalize, device=ctx.device, dtype=ctx.torch_dtype)


def _family(name: str, title: str, *checkpoints: tuple[str, str, int, int]) -> Family:
    """A family of this loader (its transformers model type is its name); ``checkpoints``: (short name, hub
    id, blocks, width)."""
    return Family(
        name,
        _load,
        title=title,
        model_types=(name,),
        checkpoints=tuple(Checkpoint(n, hub, num_layers=b + 1, hidden_size=w) for n, hub, b, w in checkpoints),
        layer0=LAYER0,
        trainable=Wav2Vec2Adapter.trainable,
    )


LAYER0 = "feature projection + positional convolution (the input of block 1)"
CHECKPOINTS = (  # family, short name, hub id, blocks, width
    ("wav2vec2", "wav2vec2-base", "facebook/wav2vec2-base", 12, 768),
    ("wav2vec2", "wav2vec2-large-960h-lv60-self", "facebook/wav2vec2-large-960h-lv60-self", 24, 1024),
    ("wav2vec2", "xls-r", "facebook/wav2vec2-xls-r-300m", 24, 1024),
    ("hubert", "hubert-base-ls960", "facebook/hubert-base-ls960", 12, 768),
    ("hubert", "hubert-large-ll60k", "facebook/hubert-large-ll60k", 24, 1024),
    ("wavlm", "wavlm-base-plus", "microsoft/wavlm-base-plus", 12, 768),
    ("wavlm", "wavlm-large", "microsoft/wavlm-large", 24, 1024),
    ("data2vec-audio", "data2vec-audio-base", "facebook/data2vec-audio-base", 12, 768),
)
TITLES = {"wav2vec2": "wav2vec 2.0", "hubert": "HuBERT", "wavlm": "WavLM", "data2vec-audio": "data2vec-audio"}
FAMILIES = tuple(_family(f, title, *(c[1:] for c in CHECKPOINTS if c[0] == f)) for f, title in TITLES.items())
