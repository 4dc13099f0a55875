"""hub.autocast's CPU fixes (a torch function mode), in a module of their own so that importing hub loads no torch."""

from __future__ import annotations

import torch
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode


class CpuLowPrecisionFixes(TorchFunctionMode):
    """Two workarounds for PyTorch's CPU kernels under bf16 autocast.

    - ``linear`` (and multi-head attention, which calls it) gets contiguous copies of non-contiguous
      inputs of 3 or more dimensions: PyTorch's CPU ``linear`` in bf16 turns such an input (e.g. the
      ``(T, B, E)`` transpose that WavLM's attention passes) into a batched product against the weight
      expanded per row: measured 287 ms instead of 2.8 ms for a 135x4x768 input and a 2304x768 weight,
      8x slower WavLM forwards.
    - ``conv1d`` runs in float32: oneDNN's bf16 1-D convolution gave relative errors of 1.0-1.2 (garbage)
      on an Intel Xeon with AMX (torch 2.13) for some shapes (wav2vec2's 16-group positional convolution
      at any batch; a 16-channel feature-encoder layer in a batch of two padded clips), which made every
      later layer 30 % off; the same convolutions in float32 are exact and cost little of a forward.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _LINEAR_CALLERS:
            args = tuple(
                a.contiguous() if isinstance(a, torch.Tensor) and a.dim() > 2 and not a.is_contiguous() else a
                for a in args
            )
        elif func is F.conv1d:
            with torch.autocast("cpu", enabled=False):
                return func(*(a.float() if isinstance(a, torch.Tensor) else a for a in args), **kwargs)
        return func(*args, **kwargs)


_LINEAR_CALLERS = (F.linear, F.multi_head_attention_forward)
