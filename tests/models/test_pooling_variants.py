"""Pooling variants over real frames only (models/pooling.py): values by hand, one request, unchanged keys."""

import numpy as np
import pytest
import torch
import xxhash

from speechprobe.errors import ConfigError
from speechprobe.features.store import space_key
from speechprobe.models.pooling import frame_mask, masked_pool, parse_variants, split_pooled, variants_spec

POOLINGS = ["mean", "first:2", "last:2", "max"]


def test_variants_by_hand_with_padding():
    # (L=1, B=2, T=6, D=2): frame t of clip b holds [12b + 2t, 12b + 2t + 1]; clip 0 has 5 real frames, clip 1 has 3.
    h = torch.arange(24, dtype=torch.float32).reshape(1, 2, 6, 2)
    h[0, 1, 3:] = 1000.0  # padding of clip 1: never counted
    h[0, 0, 5] = 1000.0  # padding of clip 0
    out = masked_pool(h, frame_mask(torch.tensor([5, 3]), 6), variants_spec(POOLINGS))
    assert out.shape == (2, 1, 8)
    parts = split_pooled(out.numpy(), POOLINGS)
    assert parts["mean"][:, 0].tolist() == [[4.0, 5.0], [14.0, 15.0]]  # (0+2+4+6+8)/5; (12+14+16)/3
    assert parts["first:2"][:, 0].tolist() == [[1.0, 2.0], [13.0, 14.0]]  # frames 0, 1
    assert parts["last:2"][:, 0].tolist() == [[7.0, 8.0], [15.0, 16.0]]  # frames 3, 4; frames 1, 2
    assert parts["max"][:, 0].tolist() == [[8.0, 9.0], [16.0, 17.0]]


def test_edges_longer_than_the_clip_are_its_mean_and_max_of_negatives():
    h = -torch.tensor([[1.0, 5.0, 3.0, 0.0]])[None, :, :, None]  # one clip, 3 real frames, padding 0 (> any real)
    out = split_pooled(
        masked_pool(h, frame_mask(torch.tensor([3]), 4), "first:10|last:10|max").numpy(), ["a", "b", "c"]
    )
    assert [float(out[k][0, 0, 0]) for k in "abc"] == [-3.0, -3.0, -1.0]


def test_default_mean_unchanged_bit_for_bit():
    """The mean-only pooling and the mean of a variants request give the bytes the code before the variants gave
    (digest recorded with speechprobe at commit 657cd24), and the default space key is the one recorded then."""
    g = torch.Generator().manual_seed(0)
    h = torch.randn(3, 2, 7, 5, generator=g)
    mask = frame_mask(torch.tensor([7, 4]), 7)
    alone = masked_pool(h, mask, "mean").numpy()
    assert xxhash.xxh3_64(alone.tobytes()).hexdigest() == "ed9eff13e4134c72"
    together = split_pooled(masked_pool(h, mask, variants_spec(POOLINGS)).numpy(), POOLINGS)["mean"]
    assert np.ascontiguousarray(together).tobytes() == alone.tobytes()
    key = space_key("whisper-base", "abc123", {"window": "trimmed", "dtype": "float32", "pooling": "mean"})
    assert key == "4b8b3ca395625a39b319"


def test_bad_variant_names_are_one_line_errors():
    for bad in ("first", "last:0", "first:x", "median", "mean|min"):
        with pytest.raises(ConfigError, match="first:K"):
            parse_variants(bad)
    with pytest.raises(ValueError, match="cannot hold"):
        split_pooled(np.zeros((1, 1, 5), dtype=np.float32), POOLINGS)
