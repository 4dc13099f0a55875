"""Value zeroing (Mohebbi et al. 2023) of one watched block: the exact path and the fast path.

``C_ij`` is the cosine distance between frame ``i``'s block output with and without frame ``j``'s value
vector (zeroed in every head); each row is normalised to sum to 1 over the clip's real frames ``j``.

- **exact** (:func:`value_zeroing`): the block is called again from its recorded input with ``v_j`` zeroed by
  a forward hook on the value projection, ``n`` calls (batched) per block;
- **fast** (:func:`fast_zeroing`, families that declare their attention's output projection): attention is
  linear in its values, so with ``v_j`` zeroed the attention output of query ``i`` is the recorded one minus
  ``Σ_h a^h_ij W_o^h v^h_j`` (the recorded head-wise weights, the recorded values, the output projection's
  weight slice of head ``h``); the attention is not computed again, only the rest of the block is called on
  that output (an attention stub returns it). The same quantity in exact arithmetic (float rounding apart:
  tests/analysis/test_mixing.py checks the two paths agree). Where the rest of the block is position-wise
  (Whisper, Qwen2-Audio, the wav2vec2 family: residuals, norms, feed-forward), it is called on the query
  rows only, so rows ``i`` can be a sample of the real frames (``rows``): each sampled row is exact, and
  the mean over the sampled rows of a per-row quantity (``C_ii``, ``Σ_j C_ij |i-j|``) is an unbiased
  estimate of its mean over every real frame. The Conformer (SeamlessM4T) convolves over time after its
  attention: there every row is computed.
- **folded first linear** (families that declare each block's feed-forward input, ``Encoder.ffn_in``: its layer
  norm and first linear, reading ``r_i - δ_ij``, the residual stream ``r`` = block input + attention output
  with the correction ``δ_ij`` above): the norm centres and scales by ``s_ij`` and the linear is linear, so
  ``W_1 LN(r_i - δ_ij) = (A_i - Σ_h a^h_ij B^h_j) / s_ij + c`` with ``A_i = W_1 γ P r_i``, ``B^h_j = W_1 γ P
  W_o^h v^h_j`` (``P`` centring), ``c = W_1 β + b_1``: ``H + 1`` rows through ``W_1`` per frame instead of
  ``n``; the first linear is stubbed to return that (the norm still runs, keeping its ``1 / s_ij``: post-LN
  blocks add its output back). The same quantity in exact arithmetic; the first linear was half the fast
  path's matrix products.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import numpy as np

from ..models.attention import Encoder, Record, block_output
from ..models.lazy import Lazy

torch = Lazy("torch")  # imported at first use: listing the analyses loads no torch

CHUNK = 32  # zeroed frames per batched block call (exact path)
ROWS = 4096  # frames per batched block call (fast path: zeroed frames x query rows)


def _expand(value, batch: int, name: str = ""):
    """A captured block argument repeated over a batch of ``batch`` (tensors of batch 1 only; WavLM's
    ``position_bias``, ``(batch x heads, T, T)``, repeated whole)."""
    if name == "position_bias" and isinstance(value, torch.Tensor):
        return value.repeat(batch, 1, 1)
    if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == 1:
        return value.expand(batch, *value.shape[1:])
    return value


def cosine_distance(out: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``1 - cos`` over the last axis, in float64, from the difference ``d = out - reference``: half the squared
    distance of the unit vectors, ``½|α d + (α - β) b|²`` (``b`` the reference, ``α = 1/|out|``, ``β = 1/|b|``,
    ``α - β`` from ``|out|² - |b|² = 2 b·d + |d|²``), so only the row sums ``b·d``, ``|d|²`` and ``|b|²`` are
    needed: stable where the two are nearly parallel (``1 - dot`` in float32 bottoms out at its rounding, about
    1e-7), with no float64 copy of the rows."""
    d = out - reference
    bd, dd = (d * reference).sum(dim=-1).double(), (d * d).sum(dim=-1).double()
    bb = (reference * reference).sum(dim=-1).double()
    na, nb = (bb + 2 * bd + dd).clamp_min(1e-300).sqrt(), bb.clamp_min(1e-300).sqrt()
    alpha, gap = 1 / na, -(2 * bd + dd) / (na * nb * (na + nb))  # α and α - β
    return (0.5 * (alpha**2 * dd + 2 * alpha * gap * bd + gap**2 * bb)).clamp_min(0.0)


def _normalised(scores: np.ndarray) -> np.ndarray:
    scores = np.clip(scores, 0.0, None)
    total = scores.sum(axis=1, keepdims=True)
    return np.divide(scores, total, out=np.zeros_like(scores), where=total > 0)


def value_zeroing(encoder: Encoder, rec: Record, i: int, chunk: int = CHUNK) -> np.ndarray:
    """``(n, n)`` row-normalised value-zeroing scores of block ``i`` over the clip's ``n`` real frames (exact)."""
    n, (args, kwargs) = rec.n_real, rec.calls[i]
    block, reference = encoder.blocks[i], rec.outputs[i][0, :n]
    scores = np.zeros((n, n))
    mask: list[torch.Tensor] = []
    hook = encoder.values[i].register_forward_hook(lambda m, a, out: out * mask[0].to(out.device, out.dtype))
    try:
        for start in range(0, n, chunk):
            js = torch.arange(start, min(n, start + chunk))
            keep = torch.ones(len(js), rec.outputs[i].shape[1], 1)
            keep[torch.arange(len(js)), js] = 0.0
            mask[:] = [keep]
            batch = [_expand(a, len(js)) for a in args], {k: _expand(v, len(js), k) for k, v in kwargs.items()}
            out = block_output(block(*batch[0], **batch[1]))
            scores[:, js.numpy()] = cosine_distance(out[:, :n], reference[None]).T.cpu().numpy()  # (n, J)
    finally:
        hook.remove()
    return _normalised(scores)


def head_updates(encoder: Encoder, rec: Record, i: int) -> torch.Tensor:
    """``(H, T, d)``: head ``h``'s value of frame ``j`` through the output projection, ``W_o^h v^h_j`` (no bias)."""
    weights, v = rec.attention[i][0], rec.values[i][0]  # (H, T, T), (T, d)
    heads, frames = weights.shape[0], v.shape[0]
    proj = encoder.out_proj[i]
    w = proj.weight if proj is not None else torch.eye(v.shape[-1], dtype=v.dtype, device=v.device)
    return torch.einsum("thk,ohk->hto", v.reshape(frames, heads, -1), w.to(v.dtype).reshape(w.shape[0], heads, -1))


def fast_zeroing(encoder: Encoder, rec: Record, i: int, rows: np.ndarray | None = None) -> np.ndarray:
    """``(len(rows), n)`` row-normalised value-zeroing scores of block ``i`` for the query frames ``rows``
    (default: every real frame) over the clip's ``n`` real frames, by the fast path (module docstring)."""
    n, (args, kwargs) = rec.n_real, rec.calls[i]
    rows = np.arange(n) if rows is None or not encoder.pointwise else np.asarray(rows)
    block, attn, recorded = encoder.blocks[i], encoder.attention[i], rec.attention_out[i]
    first = recorded[0] if isinstance(recorded, tuple) else recorded  # (1, T, d)
    weights, updates = rec.attention[i][0], head_updates(encoder, rec, i)  # (H, T, T), (H, T, d)
    picked = torch.from_numpy(rows)
    called = picked if encoder.pointwise else torch.arange(first.shape[1])  # the rows the block is called on
    x, reference = args[0] if args else kwargs["hidden_states"], rec.outputs[i][0, picked]
    scores = np.zeros((len(rows), n))
    given: list[torch.Tensor] = []

    def stub(*a, **k):  # the attention's output with v_j zeroed, for the batch
        return (given[0], *recorded[1:]) if isinstance(recorded, tuple) else given[0]

    fold = _Fold.of(encoder, i, x[0, called] + first[0, called], updates[:, :n])
    attn.forward = stub
    try:
        chunk = max(1, ROWS // len(called))
        for start in range(0, n, chunk):
            js = torch.arange(start, min(n, start + chunk))
            aw = weights[:, called][:, :, js]  # (H, rows, J)
            delta = torch.einsum("hrj,hjd->jrd", aw, updates[:, js])  # (J, rows, d)
            given[:] = [(first[0, called][None] - delta.to(first.dtype))]
            hidden = _expand(x[:, called], len(js))
            pos = [hidden, *(_expand(a, len(js)) for a in args[1:])] if args else []
            kw = {k: hidden if k == "hidden_states" else _expand(v, len(js), k) for k, v in kwargs.items()}
            with fold.folding(aw, js) if fold else nullcontext():
                out = block_output(block(*pos, **kw))
            out = out if encoder.pointwise else out[:, picked]
            scores[:, js.numpy()] = cosine_distance(out, reference[None]).T.cpu().numpy()  # (rows, J)
    finally:
        del attn.forward
    return _normalised(scores)


class _Fold:
    """A block's feed-forward first linear folded into the value-zeroing correction (module docstring)."""

    def __init__(self, norm: torch.nn.LayerNorm, fc1: torch.nn.Linear, r: torch.Tensor, updates: torch.Tensor):
        d = r.shape[-1]
        w = fc1.weight * (norm.weight if norm.weight is not None else 1.0)  # W_1 diag(γ): (4d, d)
        centred = lambda t: t - t.mean(dim=-1, keepdim=True)  # noqa: E731
        self.norm, self.fc1 = norm, fc1
        self.a = centred(r).to(w.dtype) @ w.T  # (rows, 4d)
        self.b = (centred(updates).to(w.dtype).reshape(-1, d) @ w.T).reshape(*updates.shape[:2], -1)  # (H, n, 4d)
        self.c = fc1.weight @ norm.bias if norm.bias is not None else torch.zeros_like(self.a[0])
        self.c = self.c + fc1.bias if fc1.bias is not None else self.c

    @classmethod
    def of(cls, encoder: Encoder, i: int, r: torch.Tensor, updates: torch.Tensor) -> _Fold | None:
        """The fold of block ``i`` (None where the family declares no feed-forward input or it is not a layer
        norm over the hidden size then a linear)."""
        norm, fc1 = encoder.ffn_in[i] if encoder.ffn_in else (None, None)
        if not (isinstance(norm, torch.nn.LayerNorm) and isinstance(fc1, torch.nn.Linear)):
            return None
        return cls(norm, fc1, r, updates) if tuple(norm.normalized_shape) == (r.shape[-1],) else None

    @contextmanager
    def folding(self, a: torch.Tensor, js: torch.Tensor) -> Iterator[None]:
        """For one batched block call (head-wise weights ``a`` (H, rows, J) of the zeroed frames ``js``): the norm
        runs as torch's layer norm, keeping its ``1 / s_ij``, and the first linear returns the folded product."""
        kept: list[torch.Tensor] = []
        norm = self.norm

        def layer_norm(v: torch.Tensor) -> torch.Tensor:
            out, _, rstd = torch.native_layer_norm(v, norm.normalized_shape, norm.weight, norm.bias, norm.eps)
            kept.append(rstd)
            return out

        def first_linear(_normed: torch.Tensor) -> torch.Tensor:
            heads = a.permute(2, 1, 0).to(self.b.dtype)  # (J, rows, H)
            mixed = torch.bmm(heads, self.b[:, js].transpose(0, 1))  # Σ_h a^h_ij B^h_j: (J, rows, 4d)
            num = torch.sub(self.a, mixed, out=mixed)
            return torch.addcmul(self.c, num, kept[0].to(num.dtype), out=num)

        norm.forward, self.fc1.forward = layer_norm, first_linear
        try:
            yield
        finally:
            del norm.forward, self.fc1.forward
