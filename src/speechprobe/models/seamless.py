"""SeamlessM4T v2 speech encoder (w2v-BERT 2.0 Conformer): every Conformer layer in one pass.

The speech encoder is ``feature_projection`` -> Conformer encoder (N layers, then a layer norm)
-> intermediate FFN -> length adaptor (stride 8) -> layer norm. transformers' ``hidden_states``
do not describe these layers consistently: in transformers 5 ``hidden_states[-1]`` is replaced by
``last_hidden_state``, the length adaptor's output, which has 8x fewer frames than the others
(in 4.x the tuple ends with the Conformer's layer-normed output instead). So the layers are
defined here explicitly, over the Conformer at its own frame rate (50 Hz after the feature
extractor's stride-2 stacking of 100 Hz fbank frames):

- ``0``: the feature projection's output (layer norm + linear of the 160-dim stacked fbanks),
  padded frames zeroed, i.e. the input of Conformer layer 1;
- ``i`` (1..N): the output of Conformer layer ``i``; the last one includes the Conformer
  encoder's final layer norm.

So ``num_layers == speech_encoder_layers + 1`` (25 for seamless-m4t-v2-large). The intermediate
FFN and the length adaptor only feed the text decoder; they are not run.

Input: the checkpoint's ``SeamlessM4TFeatureExtractor`` (80 Kaldi fbanks, per-clip mean/variance
normalisation over the clip's own frames, stride-2 stacking to 160 dims). Batches are padded and
masked (the attention mask reaches the attention and the depthwise convolutions), so a batched clip
equals the clip alone; pooling covers the frames the feature extractor marks real. Only the speech
encoder's weights (``speech_encoder.*``) are loaded; the text and speech decoders are not.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import AdapterInfo, ModelAdapter
from .family import Checkpoint, Family, LoadContext
from .hub import autocast, dtype_key
from .lazy import Lazy, inference_mode
from .pooling import block_outputs, frame_mask, pooled_blocks
from .trainable import Trainable, hf_checkpointing

torch = Lazy("torch")

_MIN_SAMPLES = 400 + 160  # two 25 ms fbank frames = one stacked frame


class SeamlessAdapter(ModelAdapter):
    """Layer-wise pooled features from a ``SeamlessM4Tv2SpeechEncoder``."""

    pools_frames = True  # every layer pooled with masked_pool: pooling variants from one forward

    def __init__(
        self, encoder: torch.nn.Module, feature_extractor, info: AdapterInfo, device: str = "cpu", dtype=None
    ) -> None:
        self.encoder = encoder.eval().to(device)
        self.encoder.config.speech_encoder_layerdrop = 0.0
        self.fe = feature_extractor
        self.device = torch.device(device)
        self.dtype = dtype
        self.info = info

    def options(self) -> dict[str, object]:
        return {"dtype": dtype_key(self.dtype, self.device)}

    def _inputs(self, batch: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """Stacked fbank features ``(B, T, 160)`` and their attention mask ``(B, T)``."""
        audio = [np.pad(a, (0, max(0, _MIN_SAMPLES - len(a)))).astype(np.float32) for a in batch]
        inputs = self.fe(
            audio, sampling_rate=self.fe.sampling_rate, padding=True, return_attention_mask=True, return_tensors="pt"
        )
        return inputs["input_features"].to(self.device, non_blocking=True), inputs["attention_mask"].to(self.device)

    def frames(self, batch: Sequence[np.ndarray]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Every layer's frames (as ``forward`` pools them: the last with the final layer norm) and real-frame
        counts, with gradients."""
        features, attention = self._inputs(batch)
        conformer = self.encoder.encoder
        with block_outputs(conformer.layers, last=conformer.layer_norm) as layers:
            conformer(self.encoder.feature_projection(features), attention_mask=attention)
        return layers, attention.sum(-1)

    def trainable(self) -> Trainable:
        """This encoder for fine-tuning (the family's ``trainable`` hook): the Conformer's attention projections."""
        layers = self.encoder.encoder.layers
        return Trainable(
            self.encoder,
            layers,
            ("linear_q", "linear_v"),
            self.info.hidden_size,
            self.frames,
            hf_checkpointing(self.encoder),
            self.num_layers,
        )

    @inference_mode
    def forward(self, batch: Sequence[np.ndarray], pooling: str = "mean") -> np.ndarray:
        features, attention = self._inputs(batch)
        mask = frame_mask(attention.sum(-1), features.shape[1])
        conformer = self.encoder.encoder
        with (
            autocast(self.device, self.dtype),
            pooled_blocks(conformer.layers, mask, pooling, last=conformer.layer_norm) as pooled,
        ):
            conformer(self.encoder.feature_projection(features), attention_mask=attention)
        return torch.cat(pooled, dim=1).float().cpu().numpy()


def _load(ctx: LoadContext) -> SeamlessAdapter:
    from transformers import SeamlessM4TFeatureExtractor
    from transformers.models.seamless_m4t_v2.modeling_seamless_m4t_v2 import SeamlessM4Tv2SpeechEncoder

    from .hub import load_feature_extractor

    config = ctx.config()
    config.speech_encoder_layerdrop = 0.0
    fe = load_feature_extractor(SeamlessM4TFeatureExtractor, ctx.source, ctx.revision, SeamlessM4TFeatureExtractor)
    encoder = ctx.submodule(SeamlessM4Tv2SpeechEncoder, config, "speech_encoder.")
    info = ctx.info(
        sample_rate=int(fe.sampling_rate),
        num_layers=config.speech_encoder_layers + 1,
        hidden_size=config.hidden_size,
        frame_rate=fe.sampling_rate / 160 / fe.stride,
        padding="padded fbank frames, masked in attention and convolutions; pooled over real frames",
    )
    return SeamlessAdapter(encoder, fe, info, device=ctx.device, dtype=ctx.torch_dtype)


FAMILY = Family(
    "seamless",
    _load,
    title="SeamlessM4T v2",
    model_types=("seamless_m4t_v2",),
    checkpoints=(
        # Speech encoder only: feature projection + 24 Conformer layers.
        Checkpoint("seamless-m4t-v2-large", "facebook/seamless-m4t-v2-large", num_layers=25, hidden_size=1024),
    ),
    zeroshot="speechprobe.zeroshot.seamless:SeamlessBackend",
    layer0="feature projection of the stacked fbanks (the input of Conformer layer 1)",
    trainable=SeamlessAdapter.trainable,
)
FAMILIES = (FAMILY,)
