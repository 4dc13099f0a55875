"""The objective lab: losses as specified, targets from the training audio only, determinism, resume."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from transformers.models.wav2vec2.modeling_wav2vec2 import _sample_negative_indices

from speechprobe.lab import targets as targets_module
from speechprobe.lab.objectives import Contrastive, Masked, Regression, masked_loss, time_mask
from speechprobe.lab.targets import mfcc_frames, n_frames
from speechprobe.lab.train import pretrain

from .micro import cut_off, micro_config, settings, weights


def test_contrastive_loss_is_transformers_loss_per_masked_frame():
    config = micro_config()
    module = Contrastive(config, seed=0).eval()  # eval: no dropout, hard Gumbel choice
    audio = torch.from_numpy(np.random.default_rng(1).standard_normal((2, 8000)).astype(np.float32))
    frames = int(module.encoder._get_feat_extract_output_lengths(8000))
    np.random.seed(3)
    mask = time_mask(config, 2, frames)
    np.random.seed(4)
    ours, parts = module(audio, mask, step=0)
    np.random.seed(4)  # the same negatives as the objective drew
    negatives = _sample_negative_indices(mask.shape, config.num_negatives, mask_time_indices=mask)
    theirs = module.model(
        audio, mask_time_indices=torch.from_numpy(mask), sampled_negative_indices=torch.from_numpy(negatives)
    )
    assert mask.sum() >= 2 and 0 < float(ours.detach()) < 50
    torch.testing.assert_close(ours * float(mask.sum()), theirs.loss)
    assert parts["contrastive"] == pytest.approx(float(theirs.contrastive_loss.detach()) / mask.sum(), rel=1e-6)


def test_masked_loss_counts_masked_frames_only():
    rng = np.random.default_rng(0)
    logits = torch.from_numpy(rng.standard_normal((2, 12, 5)).astype(np.float32))
    targets = torch.from_numpy(rng.integers(0, 5, (2, 12)))
    mask = torch.from_numpy(rng.random((2, 12)) < 0.5)
    loss = masked_loss(logits, targets, mask)
    expected = -torch.log_softmax(logits, -1).gather(-1, targets[..., None])[..., 0][mask].mean()
    torch.testing.assert_close(loss, expected)
    changed = targets.clone()
    changed[~mask] = (changed[~mask] + 1) % 5  # every unmasked target differs: the loss does not move
    torch.testing.assert_close(masked_loss(logits, changed, mask), loss)
    changed[mask] = (changed[mask] + 1) % 5  # the masked ones: it does
    assert abs(float(masked_loss(logits, changed, mask)) - float(loss)) > 1e-3


@torch.no_grad()
def test_masked_objective_scores_masked_frames_only_and_hides_them_from_the_encoder():
    config = micro_config()
    module = Masked(config, seed=0, clusters=4).eval()
    audio = torch.from_numpy(np.random.default_rng(1).standard_normal((2, 8000)).astype(np.float32))
    frames = int(module.encoder._get_feat_extract_output_lengths(8000))
    np.random.seed(0)
    mask = time_mask(config, 2, frames)
    targets = np.random.default_rng(2).integers(0, 4, (2, frames))
    loss, _ = module(audio, mask, step=0, targets=targets)
    other = targets.copy()
    other[~mask] = (other[~mask] + 1) % 4  # every unmasked frame's target changes: the loss does not
    torch.testing.assert_close(module(audio, mask, step=0, targets=other)[0], loss)
    other[mask] = (other[mask] + 1) % 4
    assert abs(float(module(audio, mask, step=0, targets=other)[0]) - float(loss)) > 1e-4
    hidden = module.encoder(audio, mask_time_indices=torch.from_numpy(mask)).last_hidden_state
    expected = masked_loss(module.logits(hidden), torch.from_numpy(targets), torch.from_numpy(mask))
    torch.testing.assert_close(loss, expected)
    seen = module.encoder(audio).last_hidden_state  # unmasked input: other outputs, so the mask reached the encoder
    assert not torch.allclose(seen, hidden)


def test_regression_teacher_follows_the_student_by_ema_and_gets_no_gradient():
    config = micro_config()
    module = Regression(config, seed=0, steps=10)
    start = [p.detach().clone() for p in module.teacher.parameters()]
    audio = torch.from_numpy(np.random.default_rng(1).standard_normal((2, 8000)).astype(np.float32))
    np.random.seed(0)
    mask = time_mask(config, 2, int(module.encoder._get_feat_extract_output_lengths(8000)))
    loss, _ = module(audio, mask, step=0)  # step 0: teacher and student are both the initial encoder
    loss.backward()
    assert float(loss.detach()) > 0 and all(p.grad is None for p in module.teacher.parameters())
    assert all(p.grad is not None for p in module.encoder.parameters() if p.requires_grad and p.dim() > 1)
    with torch.no_grad():
        for p in module.encoder.parameters():
            p.add_(1.0)
    module.update_teacher(9)  # the last step: decay 0.9999
    for t, s0, s in zip(module.teacher.parameters(), start, module.encoder.parameters()):
        torch.testing.assert_close(t, 0.9999 * s0 + 0.0001 * s)


@pytest.mark.slow
def test_masked_targets_come_from_training_audio_only(arch, corpus, tmp_path, monkeypatch):
    seen = []
    fit = targets_module.fit_kmeans
    monkeypatch.setattr(
        targets_module, "fit_kmeans", lambda frames, k, seed: seen.append(frames) or fit(frames, k, seed)
    )
    pretrain(settings(arch, tmp_path / "m", "masked", steps=1), tmp_path, corpus=corpus, progress=False)
    assert len(seen) == 1 and len(seen[0]) == len(corpus.clips)
    for frames, clip in zip(seen[0], corpus.clips):
        assert frames.shape == (n_frames(len(clip)), 39)
        np.testing.assert_array_equal(frames, mfcc_frames(clip))


@pytest.mark.slow
def test_pretrain_is_deterministic_resumes_to_the_same_weights_and_loads_as_wav2vec2(
    arch, corpus, tmp_path, monkeypatch
):
    runs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        runs[name] = pretrain(
            settings(arch, tmp_path / name, "contrastive", seed), tmp_path, corpus=corpus, progress=False
        )
    a, b, c = (weights(runs[k]) for k in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)  # same seed: bit-equal
    assert not all(torch.equal(a[k], c[k]) for k in a)  # another seed: other weights
    losses = (runs["a"] / "pretext_loss.csv").read_text().splitlines()
    assert losses[0].startswith("step,loss,lr,seconds") and len(losses) == 4

    # interrupted at step 3 (after the checkpoint at step 2), then resumed: the same weights and curve
    cut_off(settings(arch, tmp_path / "r", "contrastive"), corpus, 2, monkeypatch)
    assert (tmp_path / "r" / "state" / "step-2.pt").is_file()
    resumed = pretrain(settings(arch, tmp_path / "r", "contrastive"), tmp_path, corpus=corpus, progress=False)
    r = weights(resumed)
    assert all(torch.equal(a[k], r[k]) for k in a)
    curve = pd.read_csv(resumed / "pretext_loss.csv")
    pd.testing.assert_frame_equal(
        curve[["step", "loss"]], pd.read_csv(runs["a"] / "pretext_loss.csv")[["step", "loss"]]
    )
    assert not (resumed / "state").exists()

    from speechprobe.models.registry import load_model, resolve_model

    spec, source = resolve_model(str(runs["a"]))  # an ordinary checkpoint folder: the wav2vec2 family, no special path
    assert (spec.family, spec.name, source) == ("wav2vec2", "a", str(runs["a"]))
    adapter = load_model(str(runs["a"]))
    twin = load_model(str(runs["a"]), random_init=True, seed=0)
    clip = corpus.clips[0][:8000]
    trained, control = adapter.forward([clip]), twin.forward([clip])
    assert adapter.info.num_layers == 3 and trained.shape == (1, 3, 16) and np.isfinite(trained).all()
    assert not np.allclose(trained, control)
