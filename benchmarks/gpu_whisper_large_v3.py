"""One-GPU benchmark: whisper-large-v3 all-layer extraction in bf16, both window modes, vs a naive loop.

Random-initialised weights of the real architecture (speed does not depend on the weights' values),
so it needs no network. Clips are 2-5 s. The naive loop runs the same encoder on the same GPU one
clip at a time: stock feature extractor (30 s pad), ``output_hidden_states=True``, mean per layer.
Reports audio seconds per wall second (x real time) and ratios, measured in this run.
Targets on an H100: ``full`` >= 500x real time, ``trimmed`` >= 2000x real time.

    python benchmarks/gpu_whisper_large_v3.py                # on a GPU machine, < 5 minutes
    python benchmarks/gpu_whisper_large_v3.py --smoke        # tiny config on CPU, checks the script
"""

from __future__ import annotations

import argparse
import copy
import functools
import time

import numpy as np
import torch
from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForAudioClassification

from speechprobe.features.batching import duration_batches
from speechprobe.models.base import AdapterInfo
from speechprobe.models.whisper import WhisperAdapter

LARGE_V3 = dict(d_model=1280, encoder_layers=32, encoder_attention_heads=20, encoder_ffn_dim=5120, num_mel_bins=128)
SMOKE = dict(d_model=64, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=128, num_mel_bins=128)


def clips(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(int(16000 * rng.uniform(2, 5)))).astype(np.float32) for _ in range(n)]


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: str) -> float:
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def _forward_all(adapter: WhisperAdapter, batches: list) -> None:
    for batch in batches:
        adapter.forward(batch)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true", help="tiny config on CPU")
    ap.add_argument("--clips", type=int, default=None)
    ap.add_argument("--full-budgets", default="120,960,1920", help="--max-batch-seconds values, full window (GPU)")
    ap.add_argument("--trimmed-budgets", default="120,960", help="the same for the trimmed window (GPU)")
    args = ap.parse_args()
    device = "cpu" if args.smoke or not torch.cuda.is_available() else "cuda"
    dims = SMOKE if args.smoke else LARGE_V3
    n = args.clips or (8 if args.smoke else 512)
    dtype = torch.bfloat16 if device == "cuda" else None
    torch.manual_seed(0)
    config = WhisperConfig(
        **dims,
        decoder_layers=1,
        decoder_attention_heads=4,
        decoder_ffn_dim=64,
        vocab_size=100,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
    )
    with torch.device(device):  # initialise on the GPU: seconds instead of a minute for 635M parameters
        encoder = WhisperForAudioClassification(config).encoder.eval()
    # The naive loop casts the whole model (``model.to(bfloat16)``); our adapter casts linear and
    # convolution weights and keeps norms float32, as ``speechprobe --dtype bf16`` does.
    plain = copy.deepcopy(encoder).to(dtype) if dtype is not None else encoder
    fe = WhisperFeatureExtractor(feature_size=dims["num_mel_bins"])
    data = clips(n)
    audio_s = sum(len(c) for c in data) / 16000
    print(
        f"device {torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}; {n} clips, {audio_s:.0f} s of audio; "
        f"{'bf16' if dtype else 'fp32'}; {dims['encoder_layers'] + 1} layers x {dims['d_model']}"
    )

    @torch.inference_mode()
    def naive(sample: list[np.ndarray]) -> None:
        for c in sample:
            feats = fe(c, sampling_rate=16000, return_tensors="pt").input_features.to(device, plain.conv1.weight.dtype)
            hs = plain(feats, output_hidden_states=True).hidden_states
            real = int(np.ceil(np.ceil(len(c) / 160) / 2))
            torch.stack([h[0, :real].float().mean(0) for h in hs]).cpu()

    sample = data[: max(4, n // 8)]  # the naive loop is slow: time a subset, report its rate
    naive(sample[:2])  # warm-up
    t_naive = timed(lambda: naive(sample), device)
    naive_rt = sum(len(c) for c in sample) / 16000 / t_naive
    print(f"  naive loop : {naive_rt:9.1f} x real time")
    plain = None  # frees the naive copy of the weights
    if device == "cuda":
        budgets = {
            w: [float(b) for b in v.split(",")]
            for w, v in (("full", args.full_budgets), ("trimmed", args.trimmed_budgets))
        }
    else:
        budgets = {"full": [60.0], "trimmed": [40.0]}
    for window, sizes in budgets.items():
        info = AdapterInfo(
            "whisper-large-v3+random",
            "whisper",
            "random",
            "random",
            16000,
            dims["encoder_layers"] + 1,
            dims["d_model"],
            50.0,
            window,
        )
        adapter = WhisperAdapter(encoder, fe, info, window=window, device=device, dtype=dtype)
        for budget in sizes:
            batches = list(duration_batches(data, lambda a, cost=adapter.window_seconds: cost(len(a) / 16000), budget))
            # First pass: new input shapes pick their kernels and attention plans; second pass: steady state.
            run = functools.partial(_forward_all, adapter, batches)
            cold, warm = (audio_s / timed(run, device) for _ in range(2))
            print(
                f"  ours {window:<7} (--max-batch-seconds {budget:4.0f}): {warm:9.1f} x real time  "
                f"({warm / naive_rt:6.1f}x naive; first pass {cold:7.1f}; {len(batches)} batches)"
            )
    if device == "cuda":
        print(f"  peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


if __name__ == "__main__":
    main()
