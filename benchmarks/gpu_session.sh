#!/usr/bin/env bash
# Every GPU check in one prepared run (about 5 minutes on one H100/H200): the extraction benchmark
# (whisper-large-v3 and a wav2vec2-large-shaped model: x real time, TFLOP/s, MFU), the CUDA tests
# (`pytest -m cuda`: every adapter, the probe kernels, a real out-of-memory retry, end-to-end runs and
# zero-shot against the CPU) and probing on the GPU.
#   bash benchmarks/gpu_session.sh            # logs under $OUT, else ./gpu-logs
#   SKIP_PROBING=1 bash benchmarks/gpu_session.sh   # without the probing benchmark (about 80 s)
#   SKIP_PROBE_SCALE=1 bash benchmarks/gpu_session.sh   # without probing at scale (33 x 1280, up to 5 min)
#   SKIP_FINETUNE=1 / SKIP_LAB=1                   # without the ladder's (issue 27) or the lab's (issue 30) targets
# A device call runs at most 600 s: run the script in two calls, e.g. first SKIP_FINETUNE=1 SKIP_LAB=1, then
# SKIP_BASE=1 (the ladder's and the lab's targets alone).
set -uo pipefail
cd "$(dirname "$0")/.."
LOG="${OUT:-gpu-logs}"
mkdir -p "$LOG"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-python3}"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  "$PY" -c "import torch, transformers, sklearn; print('torch', torch.__version__, 'transformers',
transformers.__version__, 'scikit-learn', sklearn.__version__, 'cuda', torch.cuda.is_available())"
} 2>&1 | tee "$LOG/gpu.txt"
if [ -z "${SKIP_BASE:-}" ]; then
timeout 200 "$PY" benchmarks/gpu_whisper_large_v3.py 2>&1 | tee "$LOG/whisper_large_v3.txt"
CUDA_TESTS=$(grep -rl "cuda_only\|DEVICES" tests --include="test_*.py" | sort)
timeout 180 "$PY" -m pytest -q -m cuda -p no:cacheprovider --continue-on-collection-errors $CUDA_TESTS 2>&1 \
  | tee "$LOG/pytest_cuda.txt"
[ -n "${SKIP_PROBING:-}" ] || timeout 150 "$PY" benchmarks/bench_probing.py --rounds 1 --shapes 500x13x768 \
  --no-kernels 2>&1 | tee "$LOG/probing.txt"
# Probing at scale on the GPU (issue 18): 10,000 clips x 33 layers x 1280 dims, KNN + MLP on CUDA, k-means and
# the selection-aware test on the CPU cores; ours only (the naive CPU loop would take far longer than the session).
[ -n "${SKIP_PROBE_SCALE:-}" ] || timeout 300 "$PY" benchmarks/bench_probe_scale.py --layers 33 --dims 1280 \
  --backend torch --device cuda --jobs "$(nproc)" --no-naive --workdir /tmp 2>&1 | tee "$LOG/probe_scale.txt"
fi
# The fine-tuning ladder on a GPU (issue 27): whisper-large-v3-shaped (random weights) lora, emotion, 1,000 clips,
# 5 folds, bf16, timed per fold; and the lab (issue 30): `base` per objective for 20 steps, s/step in bf16.
[ -n "${SKIP_FINETUNE:-}" ] || (cd benchmarks && timeout 300 "$PY" gpu_finetune.py) 2>&1 | tee "$LOG/finetune.txt"
[ -n "${SKIP_LAB:-}" ] || timeout 240 "$PY" benchmarks/bench_lab.py --arch base --run-steps 20 --steps 50000 \
  --objectives contrastive,masked,regression --device cuda --dtype bf16 --corpus-clips 20 2>&1 | tee "$LOG/lab.txt"
