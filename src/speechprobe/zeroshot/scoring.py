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


@dataclass
class PackedTree:
    """Several prompt prefixes and every candidate continuation of each, packed into one sequence.

    Token ``i`` may attend to token ``j`` (``allowed[i, j]``) when both belong to one prompt, ``j <= i``,
    and ``j`` is in the prefix or in ``i``'s own continuation: each continuation sees its prompt and
    itself only, exactly as if decoded alone after a cached prefix, and every prefix is computed once.
    ``positions`` restart at 0 for each prompt. ``rows`` are the tokens whose next-token distribution
    is read; pick ``n`` adds log p(``target[n]``) at ``rows[row[n]]`` to score (``prompt[n]``, ``cand[n]``).
    """

    ids: torch.Tensor  # (L,)
    positions: torch.Tensor  # (L,)
    allowed: torch.Tensor  # (L, L) bool
    rows: torch.Tensor  # (R,)
    prompt: torch.Tensor  # (picks,)
    cand: torch.Tensor
    row: torch.Tensor
    target: torch.Tensor


def pack_tree(prefixes: Sequence[Sequence[int]], cands: Sequence[Sequence[int]]) -> PackedTree:
    """The packed sequence of ``prefixes`` (one per prompt) each followed by every candidate of ``cands``."""
    ids: list[int] = []
    pos: list[int] = []
    owner: list[int] = []  # prompt of each token
    branch: list[int] = []  # -1: the prefix, else the candidate
    rows: list[int] = []
    picks: list[tuple[int, int, int, int]] = []
    for p, prefix in enumerate(prefixes):
        ids += prefix
        pos += range(len(prefix))
        owner += [p] * len(prefix)
        branch += [-1] * len(prefix)
        rows.append(len(ids) - 1)
        last_prefix_row = len(rows) - 1
        for k, cand in enumerate(cands):
            picks.append((p, k, last_prefix_row, cand[0]))
            for t, token in enumerate(cand[:-1]):
                ids.append(token)
                pos.append(len(prefix) + t)
                owner.append(p)
                branch.append(k)
                rows.append(len(ids) - 1)
                picks.append((p, k, len(rows) - 1, cand[t + 1]))
    o, b = torch.tensor(owner), torch.tensor(branch)
    order = torch.arange(len(ids))
    allowed = (
        (o[:, None] == o[None, :])
        & (order[None, :] <= order[:, None])
        & ((b[None, :] == -1) | (b[None, :] == b[:, None]))
    )
    p_, k_, r_, t_ = (torch.tensor(col, dtype=torch.long) for col in zip(*picks))
    return PackedTree(torch.tensor(ids), torch.tensor(pos), allowed, torch.tensor(rows), p_, k_, r_, t_)


#: tokens per packed sequence (prompts are split into several sequences beyond it)
MAX_PACKED_TOKENS = 1024


def _packed_chunks(prefixes: Sequence[Sequence[int]], cands: Sequence[Sequence[int]]) -> list[list[int]]:
    """Prompt indices in groups whose packed length stays within ``MAX_PACKED_TOKENS`` (one prompt at least)."""
    branches = sum(len(c) - 1 for c in cands)
    chunks: list[list[int]] = [[]]
    used = 0
    for i, prefix in enumerate(prefixes):
        size = len(prefix) + branches
        if chunks[-1] and used + size > MAX_PACKED_TOKENS:
            chunks.append([])
            used = 0
        chunks[-1].append(i)
        used += size
    return chunks


def _score_packed(backend: ZeroShotBackend, one: Encoded, prompts: Sequence[str], cands: list[list[int]]) -> np.ndarray:
    """(prompts, cands) scores of one clip through packed sequences (:class:`PackedTree`)."""
    prefixes = [backend.prefix_ids(p) for p in prompts]
    out = np.zeros((len(prompts), len(cands)), dtype=np.float64)
    for chunk in _packed_chunks(prefixes, cands):
        tree = pack_tree([prefixes[i] for i in chunk], cands)
        lp = backend.packed_logprobs(one, tree)  # (rows, vocab)
        picked = lp[tree.row.to(lp.device), tree.target.to(lp.device)].double().cpu()
        scores = torch.zeros(len(chunk), len(cands), dtype=torch.float64)
        scores.index_put_((tree.prompt, tree.cand), picked, accumulate=True)
        out[chunk] = scores.numpy()
    return out


@torch.inference_mode()
def score_prompts(
    backend: ZeroShotBackend, enc: Encoded, items: Sequence[tuple[int, str]], phrasings: Sequence[str]
) -> np.ndarray:
    """(items, phrasings) summed log-probability of each phrasing + end token after item (row, prompt).

    Items of one clip row are scored together. Backends that pack (``packs``: Whisper) score them in one
    decoder call over a :class:`PackedTree` (every prefix once, every continuation attending to its own
    prefix); the others run one ``start`` over the prompts (the row's audio shared), repeat its caches
    as views per phrasing, and one ``step`` over every (prompt, phrasing).
    """
    cands = label_tokens(backend, phrasings)
    first, tokens, targets, tmask, width = _continuations(cands)
    k = len(first)
    out = np.zeros((len(items), k), dtype=np.float64)
    by_row: dict[int, list[int]] = defaultdict(list)
    for j, (row, _) in enumerate(items):
        by_row[row].append(j)
    for row, js in by_row.items():
        one = enc.select([row])
        if backend.packs:
            out[js] = _score_packed(backend, one, [items[j][1] for j in js], cands)
            continue
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
