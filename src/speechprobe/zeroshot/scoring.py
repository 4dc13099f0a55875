"""The two scoring modes over any backend, and the zero-shot metrics.

``score_labels``  likelihood mode: for every clip and candidate label, the log-probability of the
                  label's tokens followed by the end-of-answer token, given the audio and the prompt.
                  The audio is encoded once (by the caller) and the prompt prefix is decoded once per
                  clip; its KV cache is then repeated as zero-copy views, one row per label, and only
                  the label tokens run through the decoder. ``raw`` = the summed log-probability; ``normalised`` = raw /
                  number of scored tokens (label tokens + end token).
``greedy_generate`` generate mode: greedy decoding (argmax, first index on ties), batched, stopping
                  at the backend's end tokens or ``max_new_tokens``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.metrics import f1_score

from .base import Encoded, ZeroShotBackend


@dataclass
class LabelScores:
    """Log-probabilities of every candidate label for every clip."""

    labels: tuple[str, ...]
    raw: np.ndarray  # (clips, labels) summed log-probability
    n_tokens: np.ndarray  # (labels,) scored tokens per label, end token included

    @property
    def normalised(self) -> np.ndarray:
        return self.raw / self.n_tokens[None, :]

    def predict(self, normalised: bool = True) -> list[str]:
        scores = self.normalised if normalised else self.raw
        return [self.labels[int(i)] for i in np.argmax(scores, axis=1)]  # first label on ties


def _groups(backend: ZeroShotBackend, enc: Encoded, prompts: Sequence[str], size: int) -> list[list[int]]:
    """Row index chunks of at most ``size``; rows of a chunk share an encoder key and, unless the
    backend pads left, a prompt prefix."""
    by_key: dict[object, list[int]] = defaultdict(list)
    for i, p in enumerate(prompts):
        by_key[(enc.key(i), None if backend.pads_left else backend.prefix_key(p))].append(i)
    return [rows[i : i + size] for rows in by_key.values() for i in range(0, len(rows), size)]


def label_tokens(backend: ZeroShotBackend, labels: Sequence[str]) -> list[list[int]]:
    """Each label's scored tokens: its answer tokens, then the backend's end-of-answer token."""
    end = backend.end_ids[0]
    return [backend.answer_ids(label) + [end] for label in labels]


@torch.inference_mode()
def score_labels(backend: ZeroShotBackend, enc: Encoded, prompts: Sequence[str], labels: Sequence[str]) -> LabelScores:
    """Log-probability of each label for each clip of ``enc`` (row ``i`` uses ``prompts[i]``).

    Per clip, the prefix (audio + prompt) is decoded once; its cache is repeated as zero-copy views
    for the K labels, and one decoder call scores all K label continuations (right-padded).
    """
    if len(prompts) != len(enc):
        raise ValueError(f"{len(prompts)} prompts for {len(enc)} clips")
    cands = label_tokens(backend, labels)
    k = len(cands)
    width = max(len(c) for c in cands) - 1
    tokens = torch.zeros(k, max(width, 1), dtype=torch.long)
    targets = torch.zeros(k, max(width, 1), dtype=torch.long)
    tmask = torch.zeros(k, max(width, 1), dtype=torch.long)
    for j, c in enumerate(cands):
        tokens[j, : len(c) - 1] = torch.tensor(c[:-1], dtype=torch.long)
        targets[j, : len(c) - 1] = torch.tensor(c[1:], dtype=torch.long)
        tmask[j, : len(c) - 1] = 1
    first = torch.tensor([c[0] for c in cands], dtype=torch.long)
    raw = np.zeros((len(enc), k), dtype=np.float64)
    for i in range(len(enc)):
        state = backend.start(enc.select([i]), [prompts[i]])
        total = state.last_logprobs[0, first.to(state.last_logprobs.device)].double().cpu()  # (k,)
        if width > 0:
            backend.repeat(state, k)
            dev = state.mask.device
            lp = backend.step(state, tokens.to(dev), tmask.to(dev))  # (k, width, vocab)
            picked = lp.gather(-1, targets.to(lp.device)[..., None])[..., 0].double().cpu()
            total = total + (picked * tmask).sum(-1)
        raw[i] = total.numpy()
        del state
    n_tokens = np.array([len(c) for c in cands], dtype=np.float64)
    return LabelScores(tuple(labels), raw, n_tokens)


@torch.inference_mode()
def greedy_generate(
    backend: ZeroShotBackend, enc: Encoded, prompts: Sequence[str], max_new_tokens: int = 32
) -> list[str]:
    """Greedy answers for each clip of ``enc`` (row ``i`` uses ``prompts[i]``), decoded to text."""
    out: list[str] = [""] * len(enc)
    ends = torch.tensor(backend.end_ids, dtype=torch.long)
    for rows in _groups(backend, enc, prompts, backend.batch_size):
        state = backend.start(enc.select(rows), [prompts[i] for i in rows])
        dev = state.last_logprobs.device
        lp = state.last_logprobs
        done = torch.zeros(len(rows), dtype=torch.bool, device=dev)
        generated: list[list[int]] = [[] for _ in rows]
        for t in range(max_new_tokens):
            blocked = backend.suppressed(first=(t == 0))
            if blocked is not None and len(blocked):
                lp = lp.clone()
                lp[:, blocked.to(dev)] = -float("inf")
            nxt = lp.argmax(dim=-1)
            is_end = torch.isin(nxt, ends.to(dev))
            for r in range(len(rows)):
                if not done[r] and not is_end[r]:
                    generated[r].append(int(nxt[r]))
            done |= is_end
            if bool(done.all()) or t == max_new_tokens - 1:
                break
            nxt = torch.where(done, ends[0].to(dev), nxt)
            lp = backend.step(state, nxt[:, None], torch.ones_like(nxt)[:, None])[:, -1]
        for r, i in enumerate(rows):
            out[i] = backend.decode(generated[r]).strip()
        del state
    return out


# -- metrics ---------------------------------------------------------------------------------------


def zeroshot_metrics(
    y_true: Sequence[str], y_pred: Sequence[str | None], with_failures: bool = False
) -> dict[str, float]:
    """Macro-F1 (over the classes present in ``y_true``), accuracy and, optionally, the parse-failure rate.

    A ``None`` prediction (a parse failure) counts as wrong for every class.
    """
    truth = [str(t) for t in y_true]
    pred = ["\x00unparsed" if p is None else str(p) for p in y_pred]
    classes = sorted(set(truth))
    out = {
        "macro_f1": float(f1_score(truth, pred, labels=classes, average="macro", zero_division=0)),
        "accuracy": float(np.mean([a == b for a, b in zip(truth, pred)])) if truth else float("nan"),
    }
    if with_failures:
        out["parse_failure_rate"] = float(np.mean([p is None for p in y_pred])) if y_pred else float("nan")
    return out
