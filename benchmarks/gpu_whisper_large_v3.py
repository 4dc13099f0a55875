"""One-GPU benchmark: all-layer extraction of whisper-large-v3 (bf16; full and trimmed windows) and a
wav2vec2-large-shaped model, with achieved TFLOP/s and MFU from an analytic FLOP count, vs a naive loop.

Random-initialised weights of the real architectures (speed does not depend on the weights' values),
so it needs no network. Clips are 2-5 s. For every batch budget it prints x real time of the bare
batched forwards, the TFLOP/s they achieve and the model FLOPs utilisation (MFU: achieved / the GPU's
bf16 dense peak), and the ratio to a naive loop (one clip at a time, ``output_hidden_states=True``,
mean per layer; for Whisper the stock feature extractor's 30 s pad). Then the whole driver
(``features.extract``: hashing, input prefetch, store writes) at the device's default budget, with its
overhead over the bare forwards. Ratios are measured in this run.

FLOPs: matrix products only, 2 per multiply-add, for the frames each clip really needs (padding
added by batching is not counted): the convolutional front end, then per block Q/K/V/output
projections ``8*T*d^2``, attention ``4*T^2*d`` and feed-forward ``4*T*d*d_ff`` (``T``: 1500 frames
for Whisper's full window, the clip's own frames when trimmed; wav2vec2: one per 20 ms).

    python benchmarks/gpu_whisper_large_v3.py                # on a GPU machine, about 2 minutes
    python benchmarks/gpu_whisper_large_v3.py --smoke        # tiny configs on CPU, checks the script

The GPU figures of this version are still to be measured (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import copy
import functools
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from speechprobe.data.clip import Clip
from speechprobe.features.batching import default_batch_seconds, duration_batches
from speechprobe.features.engine import LocalEngine
from speechprobe.features.extract import extract
from speechprobe.features.store import FeatureStore
from speechprobe.models.base import AdapterInfo, ModelAdapter

WHISPER_LARGE_V3 = dict(
    d_model=1280, encoder_layers=32, encoder_attention_heads=20, encoder_ffn_dim=5120, num_mel_bins=128
)
WHISPER_SMOKE = dict(d_model=64, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=128, num_mel_bins=128)
W2V2_LARGE = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096)
W2V2_SMOKE = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128)
# bf16 dense peak TFLOP/s by GPU name (vendor data sheets, SXM parts; without sparsity)
PEAK_BF16 = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "L4": 121.0}


@dataclass
class Subject:
    """A model under test: its adapter per window, its per-clip FLOPs, and the naive loop."""

    name: str
    adapters: dict[str, ModelAdapter]  # window ("full", "trimmed"; "clip" for models without one) -> adapter
    flops: Callable[[np.ndarray, str], float]  # (clip, window) -> FLOPs the clip needs
    naive: Callable[[list[np.ndarray]], None]


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


def block_flops(t: float, d: int, d_ff: int) -> float:
    """One transformer block over ``t`` frames: projections, attention, feed-forward."""
    return 8 * t * d * d + 4 * t * t * d + 4 * t * d * d_ff


def whisper_flops(dims: dict) -> Callable[[np.ndarray, str], float]:
    d, n_mels, layers, d_ff = dims["d_model"], dims["num_mel_bins"], dims["encoder_layers"], dims["encoder_ffn_dim"]

    def count(clip: np.ndarray, window: str) -> float:
        mel = 3000 if window == "full" else 2 * math.ceil(math.ceil(len(clip) / 160) / 2)
        t = mel // 2
        convs = 2 * mel * 3 * n_mels * d + 2 * t * 3 * d * d
        return convs + layers * block_flops(t, d, d_ff)

    return count


def wav2vec2_flops(config) -> Callable[[np.ndarray, str], float]:
    d, layers, d_ff = config.hidden_size, config.num_hidden_layers, config.intermediate_size

    def count(clip: np.ndarray, window: str) -> float:
        n, c_in, total = len(clip), 1, 0.0
        for c_out, k, s in zip(config.conv_dim, config.conv_kernel, config.conv_stride):
            n = (n - k) // s + 1
            total += 2 * n * k * c_in * c_out
            c_in = c_out
        total += 2 * n * c_in * d  # feature projection
        total += 2 * n * config.num_conv_pos_embeddings * (d // config.num_conv_pos_embedding_groups) * d
        return total + layers * block_flops(n, d, d_ff)

    return count


def peak_tflops(device: str, override: float | None) -> float | None:
    if override:
        return override
    if device != "cuda":
        return None
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


def whisper_subject(smoke: bool, device: str, dtype) -> Subject:
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForAudioClassification

    from speechprobe.models.whisper import WhisperAdapter

    dims = WHISPER_SMOKE if smoke else WHISPER_LARGE_V3
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
    torch.manual_seed(0)
    with torch.device(device):  # initialise on the GPU: seconds instead of a minute for 635M parameters
        encoder = WhisperForAudioClassification(config).encoder.eval()
    # The naive loop casts the whole model (``model.to(bfloat16)``); our adapter casts linear and
    # convolution weights and keeps norms float32, as ``speechprobe --dtype bf16`` does.
    plain = copy.deepcopy(encoder).to(dtype) if dtype is not None else encoder
    fe = WhisperFeatureExtractor(feature_size=dims["num_mel_bins"])

    @torch.inference_mode()
    def naive(sample: list[np.ndarray]) -> None:
        for c in sample:
            feats = fe(c, sampling_rate=16000, return_tensors="pt").input_features.to(device, plain.conv1.weight.dtype)
            hs = plain(feats, output_hidden_states=True).hidden_states
            real = int(np.ceil(np.ceil(len(c) / 160) / 2))
            torch.stack([h[0, :real].float().mean(0) for h in hs]).cpu()

    layers = dims["encoder_layers"] + 1
    adapters = {}
    for window in ("full", "trimmed"):
        info = AdapterInfo(
            "whisper-large-v3+random", "whisper", "random", "random", 16000, layers, dims["d_model"], 50.0, window
        )
        adapters[window] = WhisperAdapter(encoder, fe, info, window=window, device=device, dtype=dtype)
    return Subject("whisper-large-v3" + (" (smoke)" if smoke else ""), adapters, whisper_flops(dims), naive)


def wav2vec2_subject(smoke: bool, device: str, dtype) -> Subject:
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    from speechprobe.models.wav2vec2 import Wav2Vec2Adapter

    dims = W2V2_SMOKE if smoke else W2V2_LARGE
    config = Wav2Vec2Config(**dims, feat_extract_norm="layer", do_stable_layer_norm=True)
    torch.manual_seed(0)
    with torch.device(device):
        model = Wav2Vec2Model(config).eval()
    plain = copy.deepcopy(model).to(dtype) if dtype is not None else model

    @torch.inference_mode()
    def naive(sample: list[np.ndarray]) -> None:
        for c in sample:
            x = torch.from_numpy((c - c.mean()) / (c.std() + 1e-7)).to(device, plain.dtype)[None]
            hs = plain(x, output_hidden_states=True).hidden_states
            torch.stack([h[0].float().mean(0) for h in hs]).cpu()

    n = dims["num_hidden_layers"] + 1
    info = AdapterInfo(
        "wav2vec2-large+random", "wav2vec2", "random", "random", 16000, n, dims["hidden_size"], 50.0, "masked"
    )
    adapter = Wav2Vec2Adapter(model, info, normalize=True, device=device, dtype=dtype)
    attn = model.config._attn_implementation
    return Subject(
        f"wav2vec2-large-shaped, {attn} attention" + (" (smoke)" if smoke else ""),
        {"clip": adapter},
        wav2vec2_flops(config),
        naive,
    )


def batched(adapter: ModelAdapter, data: list[np.ndarray], budget: float) -> list[list[np.ndarray]]:
    """The driver's batches of ``data`` (by the adapter's batching cost) within ``budget`` padded seconds."""
    return list(duration_batches(data, lambda a: adapter.window_seconds(len(a) / 16000), budget))


def bare_forwards(adapter: ModelAdapter, batches: list[list[np.ndarray]]) -> None:
    for batch in batches:
        adapter.forward(batch)


def through_driver(adapter: ModelAdapter, data: list[np.ndarray], budget: float) -> float:
    """Seconds for ``features.extract`` (hashing, prefetch, store writes) of every clip into a fresh store."""
    items = [Clip(f"c{i}", a, 16000, "x") for i, a in enumerate(data)]
    with tempfile.TemporaryDirectory() as tmp:
        space = FeatureStore(tmp).space(adapter.name, adapter.info.revision, adapter.options())
        device = adapter.device.type
        return timed(lambda: extract(LocalEngine(adapter), items, space, max_batch_seconds=budget), device)


def report(subject: Subject, data: list[np.ndarray], budgets: dict[str, list[float]], device: str, peak) -> None:
    audio_s = sum(len(c) for c in data) / 16000
    sample = data[: max(4, len(data) // 8)]  # the naive loop is slow: time a subset, report its rate
    subject.naive(sample[:2])  # warm-up
    naive_rt = sum(len(c) for c in sample) / 16000 / timed(lambda: subject.naive(sample), device)
    print(f"{subject.name}\n  naive loop : {naive_rt:9.1f} x real time")
    for window, adapter in subject.adapters.items():
        flops = sum(subject.flops(c, window) for c in data)
        for budget in budgets.get(window, budgets["trimmed"]):  # a clip-length model batches like trimmed
            batches = batched(adapter, data, budget)
            # First pass: new input shapes pick their kernels and attention plans; second pass: steady state.
            run = functools.partial(bare_forwards, adapter, batches)
            cold, warm = (timed(run, device) for _ in range(2))
            tflops = flops / warm / 1e12
            mfu = f"MFU {100 * tflops / peak:5.1f} %" if peak else "MFU n/a (no bf16 peak known for this device)"
            print(
                f"  ours {window:<7} (--max-batch-seconds {budget:4.0f}): {audio_s / warm:9.1f} x real time  "
                f"({audio_s / warm / naive_rt:6.1f}x naive; first pass {audio_s / cold:7.1f}; {len(batches)} batches)  "
                f"{tflops:8.3g} TFLOP/s  {mfu}"
            )
        budget = default_batch_seconds(device)
        run = functools.partial(bare_forwards, adapter, batched(adapter, data, budget))
        bare = min(timed(run, device) for _ in range(2))
        whole = through_driver(adapter, data, budget)
        print(
            f"  driver {window:<7} (features.extract, --max-batch-seconds {budget:4.0f}): "
            f"{audio_s / whole:9.1f} x real time; {whole / bare:4.2f}x the bare forwards"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true", help="tiny configs on CPU")
    ap.add_argument("--clips", type=int, default=None)
    ap.add_argument("--models", default="whisper,wav2vec2", help="whisper, wav2vec2 or both")
    ap.add_argument("--full-budgets", default="120,960,1920", help="--max-batch-seconds values, full window (GPU)")
    ap.add_argument("--trimmed-budgets", default="120,960", help="the same for the trimmed window (GPU)")
    ap.add_argument("--peak-tflops", type=float, default=None, help="bf16 dense peak for MFU (default: by GPU name)")
    args = ap.parse_args()
    device = "cpu" if args.smoke or not torch.cuda.is_available() else "cuda"
    n = args.clips or (8 if args.smoke else 512)
    dtype = torch.bfloat16 if device == "cuda" else None
    data = clips(n)
    peak = peak_tflops(device, args.peak_tflops)
    print(
        f"device {torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}; {n} clips, "
        f"{sum(len(c) for c in data) / 16000:.0f} s of audio; {'bf16' if dtype else 'fp32'}; "
        f"peak {f'{peak:g} TFLOP/s' if peak else 'unknown'}"
    )
    if device == "cuda":
        budgets = {
            w: [float(b) for b in v.split(",")]
            for w, v in (("full", args.full_budgets), ("trimmed", args.trimmed_budgets))
        }
    else:
        budgets = {"full": [60.0], "trimmed": [40.0]}
    builders = {"whisper": whisper_subject, "wav2vec2": wav2vec2_subject}
    for name in args.models.split(","):
        subject = builders[name.strip()](args.smoke, device, dtype)
        report(subject, data, budgets, device, peak)
        del subject
        if device == "cuda":
            torch.cuda.empty_cache()
    if device == "cuda":
        print(f"  peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


if __name__ == "__main__":
    main()
