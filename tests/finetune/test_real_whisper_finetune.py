"""LoRA on the real (packaged) whisper-tiny.en weights: its frames are the extracted layers, and a few steps
fit a small pitch task (gradients reach the adapters through the real encoder)."""

import numpy as np
import pytest
import torch
from ft_threads import one_thread  # noqa: F401

from speechprobe.finetune.methods import classifier, prepare
from speechprobe.finetune.settings import FinetuneSettings
from speechprobe.models.registry import family, load_model

pytestmark = pytest.mark.slow


def tones(n: int, seed: int = 0) -> tuple[list[np.ndarray], torch.Tensor]:
    """``n`` noisy 0.5 s tones, alternately low (150 Hz) and high (400 Hz)."""
    rng = np.random.default_rng(seed)
    t = np.arange(8000) / 16000
    audio = [
        (0.3 * np.sin(2 * np.pi * (150, 400)[i % 2] * t) + 0.02 * rng.standard_normal(len(t))).astype(np.float32)
        for i in range(n)
    ]
    return audio, torch.tensor([i % 2 for i in range(n)])


def test_lora_on_real_whisper_tiny_en_fits_and_keeps_the_base_weights():
    adapter = load_model("whisper-tiny.en", window="trimmed")
    trainable = family("whisper").trainable(adapter)
    audio, labels = tones(8)
    with torch.no_grad():
        layers, lengths = trainable.frames(audio[:2])
    pooled = np.stack([[x[i, : int(n)].mean(0).numpy() for x in layers] for i, n in enumerate(lengths)])
    np.testing.assert_allclose(pooled, adapter.forward(audio[:2]), rtol=1e-4, atol=1e-4)  # every layer
    q_before = adapter.encoder.layers[0].self_attn.q_proj.weight.detach().clone()
    model = classifier(trainable, 2, prepare(trainable, "lora", FinetuneSettings(lora_rank=4)), seed=0)
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(12):
        loss = torch.nn.functional.cross_entropy(model(audio), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    base = adapter.encoder.layers[0].self_attn.q_proj.base_layer.weight
    assert torch.equal(base, q_before)
