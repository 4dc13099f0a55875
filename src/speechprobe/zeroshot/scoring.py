"""The two scoring modes over any backend, and the zero-shot metrics.

``score_prompts`` likelihood mode: for every (clip, prompt) item and candidate phrasing, the
                  log-probability of the phrasing's tokens followed by the end-of-answer token, given the
                  audio and the prompt. The audio is encoded once (by the caller). Per clip, the prefixes
                  of all its prompts are decoded in one call that reads the audio's keys and values once;
                  the prefix KV caches are repeated, one row per phrasing, and one more decoder call scores
                  every phrasing after every prompt (right-padded). ``score_labels`` is the one-prompt-per-
                  clip form: ``raw`` = the summed log-probability; ``normalised`` = raw / number of scored
                  tokens (label tokens + end token).
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


#: decoder rows (prompts x phrasings) per scoring call; bounds the (rows, tokens, vocab) log-probabilities
MAX_SCORING_ROWS = 64


@torch.inference_mode()
def score_labels(backend: ZeroShotBackend, enc: Encoded, prompts: Sequence[str], labels: Sequence[str]) -> LabelScores:
    """Log-probability of each label for each clip of ``enc`` (row ``i`` uses ``prompts[i]``)."""
    if len(prompts) != len(enc):
        raise ValueError(f"{len(prompts)} prompts for {len(enc)} clips")
    raw = score_prompts(backend, enc, list(enumerate(prompts)), labels)
    n_tokens = np.array([len(c) for c in label_tokens(backend, labels)], dtype=np.float64)
    return LabelScores(tuple(labels), raw, n_tokens)


def _continuations(cands: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """First tokens (k,), then the right-padded inputs, targets and mask (k, width) of the rest."""
    width = max(len(c) for c in cands) - 1
    tokens, targets, mask = (torch.zeros(len(cands), max(width, 1), dtype=torch.long) for _ in range(3))
    for j, c in enumerate(cands):
        tokens[j, : len(c) - 1] = torch.tensor(c[:-1], dtype=torch.long)
        targets[j, : len(c) - 1] = torch.tensor(c[1:], dtype=torch.long)
        mask[j, : len(c) - 1] = 1
    return torch.tensor([c[0] for c in cands], dtype=torch.long), tokens, targets, mask, width


def _prompt_chunks(backend: ZeroShotBackend, prompts: Sequence[str], size: int) -> list[list[int]]:
    """Indices of ``prompts`` in chunks of at most ``size`` that one ``start`` call takes (backends that
    cannot left-pad need one prefix length per call)."""
    groups: dict[object, list[int]] = defaultdict(list)
    for i, p in enumerate(prompts):
        groups[None if backend.pads_left else len(backend.prefix_key(p))].append(i)
    return [g[i : i + size] for g in groups.values() for i in range(0, len(g), size)]


@torch.inference_mode()
def score_prompts(
    backend: ZeroShotBackend, enc: Encoded, items: Sequence[tuple[int, str]], phrasings: Sequence[str]
) -> np.ndarray:
    """(items, phrasings) summed log-probability of each phrasing + end token after item (row, prompt).

    Items of one clip row are scored together: one ``start`` over all their prompts (the row's audio
    shared), its caches repeated as views per phrasing, one ``step`` over every (prompt, phrasing).
    """
    first, tokens, targets, tmask, width = _continuations(label_tokens(backend, phrasings))
    k = len(first)
    out = np.zeros((len(items), k), dtype=np.float64)
    by_row: dict[int, list[int]] = defaultdict(list)
    for j, (row, _) in enumerate(items):
        by_row[row].append(j)
    for row, js in by_row.items():
        one = enc.select([row])
        for chunk in _prompt_chunks(backend, [items[j][1] for j in js], max(1, MAX_SCORING_ROWS // k)):
            rows = [js[c] for c in chunk]
            state = backend.start(one, [items[j][1] for j in rows])
            dev = state.last_logprobs.device
            total = state.last_logprobs[:, first.to(dev)].double()  # (prompts, k)
            if width > 0:
                n = len(rows)
                backend.repeat(state, k)
                mask = tmask.repeat(n, 1).to(dev)
                lp = backend.step(state, tokens.repeat(n, 1).to(dev), mask)  # (n*k, width, vocab)
                picked = lp.gather(-1, targets.repeat(n, 1).to(lp.device)[..., None])[..., 0].double()
                total = total + (picked * mask).sum(-1).view(n, k)
            out[rows] = total.cpu().numpy()
            del state
    return out


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
