"""Every family with weights hands fine-tuning its encoder: tiny random checkpoints train one LoRA step (only the
adapters move) and one top-k step (only the last blocks move); a fixed recipe is refused in one line."""

import numpy as np
import pytest
import torch
from ft_threads import one_thread  # noqa: F401
from transformers import HubertConfig, HubertModel, Wav2Vec2Config, Wav2Vec2ForCTC

from speechprobe.errors import ConfigError
from speechprobe.finetune.methods import classifier, prepare
from speechprobe.finetune.settings import FinetuneSettings
from speechprobe.finetune.stage import check_models
from speechprobe.models.registry import family, load_model


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, tiny_whisper):
    from models.test_qwen2_audio import tiny_qwen
    from models.test_seamless import tiny_seamless
    from models.test_wav2vec2 import make_tiny

    made = {"whisper": tiny_whisper}
    made["wav2vec2"] = make_tiny(tmp_path_factory.mktemp("w2v"), Wav2Vec2Config, Wav2Vec2ForCTC, "layer")
    made["hubert"] = make_tiny(tmp_path_factory.mktemp("hubert"), HubertConfig, HubertModel, "group")
    made["seamless"] = tiny_seamless.__wrapped__(tmp_path_factory)
    made["qwen2-audio"] = tiny_qwen.__wrapped__(tmp_path_factory)[0]
    return made


def one_step(path, method: str, window: str | None = None):
    adapter = load_model(str(path), window=window)
    trainable = family(adapter.info.family).trainable(adapter)
    trained = prepare(trainable, method, FinetuneSettings(lora_rank=2, top_k=1))
    model = classifier(trainable, 2, trained, seed=0)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    rng = np.random.default_rng(0)
    audio = [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (8000, 12000)]
    layers, lengths = model.encode(audio)
    assert len(layers) == adapter.num_layers and len(model.head.layer_weights()) == adapter.num_layers
    assert float(model.head.layer_weights().sum()) == pytest.approx(1.0)
    assert all(x.shape == (2, layers[0].shape[1], adapter.info.hidden_size) for x in layers)
    assert 0 < int(lengths[0]) < int(lengths[1]) <= layers[0].shape[1]  # real frames only, longer clip more
    torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1).zero_grad()
    loss = torch.nn.functional.cross_entropy(model(audio), torch.tensor([0, 1]))
    loss.backward()
    torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1).step()
    moved = {k for k, v in model.named_parameters() if not torch.equal(v, before[k])}
    return trainable, moved


@pytest.mark.parametrize("name", ["whisper", "wav2vec2", "hubert", "seamless", "qwen2-audio"])
def test_lora_trains_only_the_adapters_and_the_head(checkpoints, name):
    _, moved = one_step(checkpoints[name], "lora", window="trimmed")
    encoder = {k for k in moved if k.startswith("encoder.")}
    assert encoder and all("lora_B" in k or "lora_A" in k for k in encoder)
    assert any(k.startswith("head.") for k in moved) and "head.layer_logits" in moved  # the layer weights train


def test_top_k_trains_only_the_last_blocks(checkpoints):
    trainable, moved = one_step(checkpoints["whisper"], "top-k", window="trimmed")
    last = len(trainable.blocks) - 1
    encoder = {k for k in moved if k.startswith("encoder.")}
    assert encoder and all(k.startswith(f"encoder.layers.{last}.") for k in encoder)


def test_families_without_weights_are_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"^--ft-models mfcc: .* has no trainable encoder; fine-tune one of: whisper"):
        check_models(["mfcc"])
    check_models(["whisper-tiny.en+random"])  # a random twin of a family with weights passes


@pytest.mark.parametrize("name", ["whisper", "wav2vec2", "hubert", "seamless", "qwen2-audio"])
def test_frames_are_every_layer_that_extraction_pools(checkpoints, name):
    """The mean of each layer of ``frames`` over each clip's real frames is that layer of the extracted features
    (clip lengths with an even count of 50 Hz frames: Qwen2-Audio's 25 Hz output, repeated, covers them exactly)."""
    adapter = load_model(str(checkpoints[name]), window="trimmed")
    rng = np.random.default_rng(1)
    audio = [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (9600, 16000)]
    with torch.no_grad():
        layers, lengths = family(adapter.info.family).trainable(adapter).frames(audio)
    assert len(layers) == adapter.num_layers
    pooled = [[x[i, : int(n)].mean(0).numpy() for x in layers] for i, n in enumerate(lengths)]
    np.testing.assert_allclose(np.stack(pooled), adapter.forward(audio), rtol=1e-4, atol=1e-5)
