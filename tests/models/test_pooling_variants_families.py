"""Every adapter that pools its own frames (Whisper, the wav2vec2 family, SeamlessM4T, Qwen2-Audio) answers a
pooling-variants request from one forward: its mean is the mean-only forward's, bit for bit, and each variant of a
batched clip equals the clip alone (padding never counted); recipes do not claim to pool frames."""

import numpy as np
import pytest
from test_qwen2_audio import tiny_qwen  # noqa: F401 - the fixture
from test_seamless import tiny_seamless  # noqa: F401 - the fixture
from test_wav2vec2 import KINDS, make_tiny

from speechprobe.models.pooling import split_pooled, variants_spec
from speechprobe.models.registry import load_model

POOLINGS = ["mean", "first:2", "last:2", "max"]


@pytest.fixture(scope="module")
def tiny_w2v(tmp_path_factory):
    name, config_cls, model_cls, norm = KINDS[1]  # wav2vec2 with a masked (layer-norm) feature encoder
    return make_tiny(tmp_path_factory.mktemp(name), config_cls, model_cls, norm)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["whisper", "wav2vec2", "seamless", "qwen2-audio"])
def test_variants_from_one_forward(kind, request):
    path = {
        "whisper": lambda: request.getfixturevalue("tiny_whisper"),
        "wav2vec2": lambda: request.getfixturevalue("tiny_w2v"),
        "seamless": lambda: request.getfixturevalue("tiny_seamless"),
        "qwen2-audio": lambda: request.getfixturevalue("tiny_qwen")[0],
    }[kind]()
    adapter = load_model(str(path))
    assert adapter.pools_frames
    rng = np.random.default_rng(0)
    clips = [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (16000, 9000, 4000)]
    spec = variants_spec(POOLINGS)
    parts = split_pooled(adapter.forward(clips, spec), POOLINGS)
    assert np.ascontiguousarray(parts["mean"]).tobytes() == adapter.forward(clips, "mean").tobytes()
    assert (parts["max"] >= parts["mean"] - 1e-6).all() and not np.allclose(parts["first:2"], parts["last:2"])
    alone = split_pooled(np.concatenate([adapter.forward([c], spec) for c in clips]), POOLINGS)
    for name in POOLINGS:
        np.testing.assert_allclose(parts[name], alone[name], atol=2e-5, err_msg=name)


def test_recipes_do_not_claim_frame_pooling():
    """Recipes pool groups of frames of their own (or none): the pooling stage leaves them out."""
    from speechprobe.models import acoustic_cues, handcrafted, nuisance, opensmile_sets, resemblyzer

    recipes = (handcrafted.HandcraftedAdapter, nuisance.NuisanceAdapter, opensmile_sets.OpenSmileAdapter)
    assert not any(
        c.pools_frames for c in (*recipes, acoustic_cues.AcousticCuesAdapter, resemblyzer.ResemblyzerAdapter)
    )
