"""``speechprobe pretrain``: one objective, one seed, resumable.

Every objective gets the same crops, masks, steps, batch, optimiser and schedule for a seed: AdamW (betas 0.9,
0.98, eps 1e-6, weight decay 0.01), linear warm-up then linear decay to 0, gradients clipped to norm 10. Each step
reseeds Python's, NumPy's and torch's generators from (seed, step), so a resumed run draws exactly what the
uninterrupted run drew, and its weights come out the same.
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import ConfigError
from ..models.hub import autocast, autocast_dtype
from . import checkpoint as ck
from .arch import encoder_config
from .config import PretrainSettings
from .corpus import Corpus, load_corpus
from .objectives import build, time_mask
from .targets import crop_targets, frame_targets, n_frames

log = logging.getLogger("speechprobe.lab")
MAX_GRAD_NORM = 10.0


def _reseed(seed: int, step: int) -> None:
    s = (seed * 1_000_003 + step) % 2**32
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device here; use --device cpu or auto")
    return torch.device(name)


def _schedule(optimizer: torch.optim.Optimizer, steps: int, warmup: float) -> torch.optim.lr_scheduler.LambdaLR:
    w = max(1, int(warmup * steps))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / w if s < w else max(0.0, (steps - s) / max(1, steps - w))
    )


def _layer_features(encoder, layer: int, device: torch.device):
    """A clip's frames at block ``layer`` of ``encoder`` (for the masked objective's second iteration)."""

    @torch.no_grad()
    def features(audio: np.ndarray) -> np.ndarray:
        x = torch.from_numpy((audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)).float()[None].to(device)
        return encoder(x, output_hidden_states=True).hidden_states[layer][0].float().cpu().numpy()

    return features


def pretrain(settings: PretrainSettings, cache_root: Path, corpus: Corpus | None = None, progress: bool = True) -> Path:
    """Train (or resume, or find done) the run of ``settings`` in ``settings.out``; returns the checkpoint folder."""
    settings.validate()
    t = settings.train
    out = Path(settings.out).expanduser()
    corpus = corpus or load_corpus(t.data, cache_root, t.corpus_clips, progress)
    record = {
        "objective": settings.objective,
        "seed": settings.seed,
        "settings": t.fingerprint(),
        "corpus": corpus.digest,
    }
    found = ck.read_lab(out)
    if found is not None and {k: found.get(k) for k in record} != record:
        raise ConfigError(f"{out} holds a pre-training run of other settings; choose another --out or remove it")
    if found is not None and found.get("status") == "done":
        log.info("%s: already trained", out)
        return out
    config = encoder_config(t.arch)
    module = build(settings.objective, config, settings.seed, t.clusters, t.steps)
    record |= {"arch_config": config.to_diff_dict(), "corpus_seconds": round(corpus.seconds, 1), "status": "training"}
    if settings.objective == "random":
        ck.save_encoder(module.encoder, out)
        ck.write_losses([], out)
        ck.write_lab(out, record | {"status": "done", "steps_done": 0})
        return out
    _train(settings, module, config, corpus, out, record, progress)
    return out


def _train(settings, module, config, corpus, out, record, progress) -> None:
    t = settings.train
    device = _device(t.device)
    dtype = autocast_dtype(t.dtype)
    module.to(device).train()
    trainable = [p for p in module.parameters() if p.requires_grad]  # not data2vec's EMA teacher
    optimizer = torch.optim.AdamW(trainable, lr=t.lr, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01)
    schedule = _schedule(optimizer, t.steps, t.warmup)
    masked = settings.objective == "masked"
    if masked and any(int(module.encoder._get_feat_extract_output_lengths(n)) != n_frames(n) for n in (16000, 33333)):
        raise ConfigError(
            f"--arch {t.arch}: the masked objective needs wav2vec 2.0's 25 ms / 20 ms convolutional stack"
        )
    targets = frame_targets(corpus, t.clusters, settings.seed, progress=progress)[0] if masked else None
    switch = t.steps // 2 if masked and t.iterations == 2 else None
    rows: list[dict] = []
    start = 0
    state = ck.load_state(out)
    if state is not None:
        module.load_state_dict(state["module"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        rows, start = state["rows"], state["step"]
        targets = state.get("targets") or targets
        log.warning("%s: resuming from step %d of %d", out, start, t.steps)
    ck.write_lab(out, record | {"steps_done": start})
    began = time.perf_counter() - (rows[-1]["seconds"] if rows else 0.0)
    bar = tqdm(
        total=t.steps, initial=start, desc=f"pretrain {settings.objective} s{settings.seed}", disable=not progress
    )
    for step in range(start, t.steps):
        if step == switch:
            targets = _recluster(module, config, corpus, t.clusters, settings.seed, device, progress)
        _reseed(settings.seed, step)
        crops = corpus.batch(settings.seed, step, t.batch_size, t.crop_seconds)
        audio = torch.from_numpy(crops.audio).to(device)
        frames = int(module.encoder._get_feat_extract_output_lengths(audio.shape[1]))
        mask = time_mask(config, len(audio), frames)
        tg = crop_targets(targets, crops.clips, crops.starts, frames) if targets is not None else None
        with autocast(device, dtype):
            loss, extras = module(audio, mask, step, tg)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, MAX_GRAD_NORM)
        optimizer.step()
        lr = schedule.get_last_lr()[0]
        schedule.step()
        rows.append(
            {"step": step + 1, "loss": float(loss.detach()), "lr": lr, "seconds": time.perf_counter() - began, **extras}
        )
        bar.update(1)
        bar.set_postfix(loss=f"{rows[-1]['loss']:.3f}")
        if (step + 1) % t.save_every == 0 or step + 1 == t.steps:
            _checkpoint(out, step + 1, module, optimizer, schedule, rows, targets if switch is not None else None)
            ck.write_lab(out, record | {"steps_done": step + 1})
    bar.close()
    ck.write_lab(out, record | {"status": "done", "steps_done": t.steps, "seconds": rows[-1]["seconds"] if rows else 0})
    ck.clear_state(out)


def _checkpoint(out, step, module, optimizer, schedule, rows, targets) -> None:
    state = {"module": module.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict()}
    ck.save_state(out, step, state | {"step": step, "rows": rows, "targets": targets})
    ck.save_encoder(module.encoder, out)
    ck.write_losses(rows, out)


def _recluster(module, config, corpus: Corpus, k: int, seed: int, device, progress: bool) -> list[np.ndarray]:
    """Iteration 2: k-means of the middle block's features of the model trained so far."""
    module.eval()
    layer = max(1, config.num_hidden_layers // 2)
    targets = frame_targets(corpus, k, seed, _layer_features(module.encoder, layer, device), progress)[0]
    module.train()
    return targets
