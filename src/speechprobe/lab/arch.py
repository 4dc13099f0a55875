"""The lab's architectures: transformers ``Wav2Vec2Config`` (convolutional feature encoder plus transformer blocks).

Every size keeps wav2vec 2.0's convolutional stack (receptive field 400 samples, stride 320: 20 ms frames at
16 kHz), so frame-level targets align with 25 ms / 20 ms MFCC frames. ``tiny`` and ``small`` use pre-LN blocks and
layer-norm convolutions (stable from scratch at small batch sizes); ``base`` is wav2vec2-base's shape. The
pre-training mask (65 % of frames in spans of 10, wav2vec 2.0's) is part of the configuration.
"""

from __future__ import annotations

from pathlib import Path

from transformers import Wav2Vec2Config

from ..errors import ConfigError

SIZES = {  # hidden, blocks, heads, feed-forward, conv channels, codevectors per group, codevector dim
    "tiny": (64, 2, 2, 128, 32, 32, 32),
    "small": (256, 4, 4, 1024, 128, 160, 128),
    "base": (768, 12, 12, 3072, 512, 320, 256),
}
PRETRAIN_MASK = {"mask_time_prob": 0.65, "mask_time_length": 10}


def encoder_config(arch: str) -> Wav2Vec2Config:
    """The configuration named ``arch`` (tiny, small, base) or read from a wav2vec2 ``config.json`` path."""
    if arch not in SIZES:
        config = Wav2Vec2Config.from_json_file(str(Path(arch).expanduser()))
        if config.model_type != "wav2vec2":
            raise ConfigError(
                f"--arch {arch}: model_type {config.model_type!r}; the lab trains wav2vec2 configurations"
            )
        return config
    hidden, blocks, heads, ff, conv, codes, code_dim = SIZES[arch]
    stable = arch != "base"
    return Wav2Vec2Config(
        hidden_size=hidden,
        num_hidden_layers=blocks,
        num_attention_heads=heads,
        intermediate_size=ff,
        conv_dim=(conv,) * 7,
        feat_extract_norm="layer" if stable else "group",
        do_stable_layer_norm=stable,
        num_codevectors_per_group=codes,
        codevector_dim=code_dim,
        proj_codevector_dim=code_dim,
        num_conv_pos_embeddings=128 if arch == "base" else 16,
        num_conv_pos_embedding_groups=16 if arch == "base" else 4,
        layerdrop=0.0,
        **PRETRAIN_MASK,
    )
