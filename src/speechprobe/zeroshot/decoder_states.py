"""Inside the decoder: per-layer decoder states and the logit lens of one prompt, from the zero-shot run's encoding.

For every clip and the chosen prompt (``--decoder-prompt``, default the first prompt of the run), one extra
decoder pass over the prompt prefix (audio + prompt, the pass ``start`` makes before the answer) with every
layer's output kept. The clip's encoder output is the one the zero-shot answers of the same batch use
(:func:`.engines.answer_batch`), so the cost is one decoder prefix pass per clip. Per backend position rule
(``ZeroShotBackend.position_rules``): ``last``, the state at the last prompt position (the position whose
next-token distribution starts the answer; every family), and, for Qwen2-Audio, ``audio_mean``, the mean over
the audio-token positions. Layer 0 is the token embeddings, then one per decoder layer; the last one is after
the decoder's final norm, the very state the likelihood modes read the answer's first token from.

The logit lens applies the final norm and the output projection to each layer's ``last`` state
(:meth:`.base.ZeroShotBackend.lens`) and keeps each phrasing's first answer token: its log-probability and its
rank among the whole vocabulary (0 = the top token).

Both go into the feature store (``<cache>/features``), one space per (model, weights, rule, prompt text,
decoding settings) and one for the lens (plus the scored first tokens), keyed by the clip's audio content: a
rerun computes nothing already stored. ``manifest.json`` records the spaces under ``zeroshot.decoder`` for the
``decoder_layers`` analysis (:mod:`speechprobe.analysis.decoder_layers`), which probes and scores them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError
from ..features.store import FeatureSpace, FeatureStore
from ..models.base import DECODER_MARK
from ..rundir import RunDir
from .base import Encoded, ZeroShotBackend
from .prompts import PromptTemplate
from .scoring import _groups

log = logging.getLogger("speechprobe")
STATES = "states"  # the job kind of answer_batch and the Plan's requests
RULES = {
    "last": "the last prompt position (where the answer starts)",
    "audio_mean": "mean over the audio-token positions",
}


def decoder_template(templates: Sequence[PromptTemplate], asked: str | None) -> PromptTemplate:
    """The template of ``--decoder-prompt`` (default: the run's first template with one text per task); a
    template rendered per clip (the dataset's instruction) has no one prompt to key the states by: refused."""
    fixed = [t for t in templates if not t.per_clip]
    if asked is None and fixed:
        return fixed[0]
    found = next((t for t in templates if t.id == asked), None)
    if found is None or found.per_clip:
        raise ConfigError(
            f"--decoder-prompt {asked or '(default)'}: choose a prompt of the run with one text per task: "
            + (", ".join(t.id for t in fixed) or "none (add --prompts choose)")
        )
    return found


@torch.inference_mode()
def decoder_records(
    backend: ZeroShotBackend, enc: Encoded, prompts: Sequence[str], first_tokens: Sequence[int]
) -> list[dict]:
    """Per row of ``enc`` (asked ``prompts[i]``): ``{"states": {rule: (layers, dim)}, "lens": (layers, 2 P)}``,
    the lens holding each of the P phrasings' first-token log-probability, then its rank, per layer."""
    out: list[dict] = [{} for _ in range(len(enc))]
    firsts = torch.as_tensor(list(first_tokens), dtype=torch.long)
    for rows in _groups(backend, enc, prompts, backend.batch_size):
        states = backend.prefix_states(enc.select(rows), [prompts[i] for i in rows])
        lens = backend.lens(states["last"])  # (rows, layers, vocab)
        picked = lens[..., firsts.to(lens.device)]  # (rows, layers, P)
        ranks = torch.stack([(lens > picked[..., j : j + 1]).sum(-1) for j in range(len(firsts))], dim=-1)
        table = torch.cat([picked, ranks.to(picked.dtype)], dim=-1).cpu().numpy()
        for r, i in enumerate(rows):
            out[i] = {"states": {k: v[r].cpu().numpy() for k, v in states.items()}, "lens": table[r]}
    return out


class DecoderStore:
    """The feature-store spaces of one backend's decoder states and lens for one task's phrasings."""

    def __init__(self, root: Path, backend, first_tokens: Sequence[int]) -> None:
        self.store, self.backend = FeatureStore(root), backend
        self.rules, self.first_tokens = tuple(backend.position_rules), [int(t) for t in first_tokens]
        self._spaces: dict[str, dict[str, FeatureSpace]] = {}

    def spaces(self, prompt: str) -> dict[str, FeatureSpace]:
        """``rule`` -> its space, and ``lens`` -> the lens space, for ``prompt``."""
        if prompt not in self._spaces:
            self._spaces[prompt] = self._open(prompt)
        return self._spaces[prompt]

    def _open(self, prompt: str) -> dict[str, FeatureSpace]:
        b = self.backend
        base = {"prompt": prompt, "settings": b.settings(), "layers": "token embeddings, then each decoder layer"}
        out = {rule: self.store.space(b.name, b.fingerprint, {**base, "decoder": rule}) for rule in self.rules}
        lens = {**base, "lens": "first-token log-probability and rank", "first_tokens": self.first_tokens}
        out["lens"] = self.store.space(b.name, b.fingerprint, lens)
        return out

    def has(self, prompt: str, content_hash: str) -> bool:
        return all(space.has(content_hash) for space in self.spaces(prompt).values())

    def put(self, prompt: str, content_hash: str, record: dict) -> None:
        spaces = self.spaces(prompt)
        for rule in self.rules:
            spaces[rule].put(content_hash, np.asarray(record["states"][rule], dtype=np.float32))
        spaces["lens"].put(content_hash, np.asarray(record["lens"], dtype=np.float32))

    def describe(self, prompt: str, tid: str) -> dict:
        """What manifest.json records (``zeroshot.decoder.<model>.<task>``): where the items are and what they are."""
        spaces = self.spaces(prompt)
        return {
            "prompt_id": tid,
            "prompt": prompt,
            "store": str(self.store.root),
            "spaces": {k: s.root.name for k, s in spaces.items()},
            "rules": {r: RULES[r] for r in self.rules},
            "first_tokens": self.first_tokens,
        }


def warn_dropped(run_dir: RunDir, kept: set[str]) -> list[str]:
    """The probe stage run again replaces its rows of results.csv: the decoder states probed as models after the
    zero-shot stage (``speechprobe.decoder_stage``, in manifest.json ``models``) that ``kept`` lacks lose theirs.
    Logs one warning naming them and how to get them back (not recorded in manifest.json: ``run --zeroshot``
    puts them back right after); returns their names."""
    dropped = sorted(m for m in run_dir.read_manifest().get("models") or {} if DECODER_MARK in m and m not in kept)
    if dropped:
        log.warning(
            "results.csv drops the rows of the decoder states %s: the zero-shot stage probes them; run it again with "
            "--decoder-states (`speechprobe zeroshot --out %s --decoder-states` with its models, tasks and prompts) "
            "to put them back",
            ", ".join(dropped),
            run_dir.root,
        )
    return dropped
