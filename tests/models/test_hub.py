import pytest
import torch
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

from speechprobe.models.hub import autocast


class _LinearInputs(TorchFunctionMode):
    """Records whether each ``linear`` call (after the modes inside it) got a contiguous input."""

    def __init__(self):
        super().__init__()
        self.contiguous = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is F.linear:
            self.contiguous.append(args[0].is_contiguous())
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("dtype, contiguous", [(torch.bfloat16, True), (None, False)])
def test_cpu_low_precision_hands_linear_contiguous_inputs(dtype, contiguous):
    x = torch.randn(4, 9, 16).transpose(0, 1)  # (T, B, E), as WavLM's attention passes it
    w = torch.randn(8, 16)
    with _LinearInputs() as seen, autocast(torch.device("cpu"), dtype):
        y = F.linear(x, w)
        mha = F.multi_head_attention_forward(
            x,
            x,
            x,
            16,
            4,
            None,
            None,
            None,
            None,
            False,
            0.0,
            torch.randn(16, 16),
            None,
            training=False,
            need_weights=False,
            use_separate_proj_weight=True,
            q_proj_weight=torch.randn(16, 16),
            k_proj_weight=torch.randn(16, 16),
            v_proj_weight=torch.randn(16, 16),
        )[0]
    assert seen.contiguous[0] is contiguous
    assert y.dtype == (dtype or torch.float32) and mha.shape == (9, 4, 16)
    want = F.linear(x.contiguous().to(y.dtype), w.to(y.dtype))
    torch.testing.assert_close(y, want)
