"""One-GPU target of the fine-tuning ladder (issue 27): whisper-large-v3 ``lora`` on one task with 1,000 clips, timed.

No network reaches the GPU machine, so the encoder is whisper-large-v3's architecture (32 blocks x 1280, 128
mel bins) with random weights, saved as a local checkpoint that resolves through the family registry like any
other folder; the time of a step does not depend on the weights' values, the ladder's scores do (they are
printed, but only the times are the target). The run is ``bench_finetune.py`` on that folder: the demo's
emotion task at 250 clips per class (4 classes: 1,000 clips), trimmed window, 5 folds, on CUDA in bf16.

    python benchmarks/gpu_finetune.py                 # on a GPU machine
    python benchmarks/gpu_finetune.py --smoke         # a tiny Whisper on the CPU, checks the script
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench_finetune import main as bench_finetune


def random_whisper(out: Path, smoke: bool) -> Path:
    """A whisper-large-v3-shaped encoder (or a tiny one with ``smoke``) with random weights, saved in ``out``."""
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForAudioClassification

    dims = dict(d_model=1280, encoder_layers=32, encoder_attention_heads=20, encoder_ffn_dim=5120, num_mel_bins=128)
    if smoke:
        dims = dict(d_model=64, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=128, num_mel_bins=80)
    config = WhisperConfig(**dims, decoder_layers=1, max_source_positions=1500, num_labels=2)
    WhisperForAudioClassification(config).save_pretrained(out)
    WhisperFeatureExtractor(feature_size=dims["num_mel_bins"]).save_pretrained(out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-per-class", type=int, default=250)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help="a tiny Whisper, 6 clips per class, 2 folds, 1 epoch, CPU")
    args = ap.parse_args()
    model = random_whisper(Path(tempfile.mkdtemp(prefix="whisper-large-v3-random-")), args.smoke)
    argv = ["--model", str(model), "--tasks", "emotion", "--method", "lora"]
    if args.smoke:
        argv += ["--n-per-class", "6", "--folds", "2", "--epochs", "1", "--device", "cpu"]
    else:
        argv += ["--n-per-class", str(args.n_per_class), "--epochs", str(args.epochs), "--device", "cuda"]
        argv += ["--dtype", "bf16"]
    bench_finetune(argv)


if __name__ == "__main__":
    main()
