"""Label scores from phrasings, content-free inputs, and the calibrated likelihood modes.

A label's likelihood score aggregates its phrasings (verbalisers) by log-mean-exp: the log of the mean
probability of writing one of its phrasings,

    s_raw(y)  = log (1/|V_y|) sum_{v in V_y} P(v <end> | audio, prompt)
    s_norm(y) = log (1/|V_y|) sum_{v in V_y} exp( log P(v <end> | audio, prompt) / n_v )   (n_v scored tokens)

Content-free inputs (``content_free_inputs``): silence, low white noise at two levels, and the prompt
with no audio where the backend takes it (``accepts_no_audio``). Scored like any clip with the same
prompt and phrasings (and cached the same way, by their audio content), they give two calibrated
modes over the raw scores s = s_raw, with C the content-free inputs:

``likelihood_cc``   contextual calibration (Zhao et al. 2021): p(y|x) = softmax_y s(y|x) over the label
                    set, p_cf(y) = mean_{c in C} softmax_y s(y|c), score log p(y|x) - log p_cf(y);
``likelihood_pmi``  domain-conditional PMI (Holtzman et al. 2021): score s(y|x) - log mean_{c in C}
                    exp s(y|c), the sequence probability against its marginal under content-free audio.

Both divide by a per-label prior estimated without content; they differ in how the content-free inputs
are pooled (label-set-normalised distributions averaged vs unnormalised sequence probabilities
averaged), so with a single content-free input their predictions coincide.

A third calibrated mode estimates the prior from the evaluated clips themselves, without their labels:

``likelihood_bc``   batch calibration (Zhou et al. 2024): p_X(y) = mean_{x in X} softmax_y s(y|x) over the
                    clips X asked with the same prompt template, score log p(y|x) - log p_X(y). Label-free
                    but transductive: a clip's prediction depends on the other clips of the set.
``likelihood_pm``   prior matching (Ma et al. 2024, after Saerens et al. 2002): class weights w fitted by EM on
                    the same clips so that their mean reweighted label distribution equals a target prior
                    pi (uniform unless given): p_w(y|x) ∝ w_y p(y|x), and each step sets
                    w_y <- w_y pi_y / mean_{x in X} p_w(y|x) until the mean matches pi. Score log p_w(y|x).
                    Batch calibration is its first step (uniform pi); the fit is invariant to a per-label
                    offset of the scores (a decoder's taste for a label), which the weights absorb.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

CONTENT_FREE_SECONDS = 2.0
NOISE_DBFS = (-60.0, -40.0)


@dataclass(frozen=True)
class ContentFree:
    """One content-free input: a name (manifest, responses) and its audio (empty: no audio at all)."""

    name: str
    audio: np.ndarray


def content_free_inputs(sample_rate: int, accepts_no_audio: bool = False) -> list[ContentFree]:
    """Silence, low white noise (seeded; RMS at ``NOISE_DBFS``), and no audio when the backend takes it."""
    n = int(round(CONTENT_FREE_SECONDS * sample_rate))
    out = [ContentFree("silence", np.zeros(n, dtype=np.float32))]
    rng = np.random.default_rng(0)
    for level in NOISE_DBFS:
        noise = rng.standard_normal(n) * 10 ** (level / 20)
        out.append(ContentFree(f"noise{level:+.0f}dBFS", noise.astype(np.float32)))
    if accepts_no_audio:
        out.append(ContentFree("no-audio", np.zeros(0, dtype=np.float32)))
    return out


def log_mean_exp(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return logsumexp(x, axis=axis) - np.log(x.shape[axis])


@dataclass(frozen=True)
class Verbalised:
    """A task's labels and each label's phrasings, flattened in label order (what is scored)."""

    labels: tuple[str, ...]
    phrasings: tuple[tuple[str, ...], ...]

    @property
    def flat(self) -> tuple[str, ...]:
        return tuple(v for forms in self.phrasings for v in forms)

    def label_scores(self, per_phrasing: Sequence[float]) -> np.ndarray:
        """(labels,) log-mean-exp of each label's phrasing scores."""
        values = np.asarray(per_phrasing, dtype=float)
        out, start = np.empty(len(self.labels)), 0
        for j, forms in enumerate(self.phrasings):
            out[j] = log_mean_exp(values[start : start + len(forms)])
            start += len(forms)
        return out

    def likelihoods(self, raw: Sequence[float], n_tokens: Sequence[float]) -> dict[str, np.ndarray]:
        """``likelihood`` (per-token) and ``likelihood_raw`` label scores of one record."""
        raw = np.asarray(raw, dtype=float)
        return {
            "likelihood": self.label_scores(raw / np.asarray(n_tokens, dtype=float)),
            "likelihood_raw": self.label_scores(raw),
        }


def label_log_shares(raw: np.ndarray) -> np.ndarray:
    """log softmax over the label set (the last axis)."""
    return raw - logsumexp(raw, axis=-1, keepdims=True)


def batch_prior(raw: np.ndarray) -> np.ndarray:
    """(labels,) log of the mean label distribution of clips ``raw`` (clips, labels): batch calibration's prior."""
    return log_mean_exp(label_log_shares(np.atleast_2d(raw)), axis=0)


def prior_match(
    raw: np.ndarray, target: np.ndarray | None = None, tol: float = 1e-6, max_iter: int = 1000
) -> np.ndarray:
    """(labels,) log class weights ``log w`` of prior matching on clips ``raw`` (clips, labels), by EM: the mean of
    ``softmax_y(raw + log w)`` over the clips matches ``target`` (default uniform) to ``tol`` (max abs difference)
    or after ``max_iter`` steps (a label no clip gives any probability cannot be matched). Centred: mean 0."""
    shares = label_log_shares(np.atleast_2d(raw))
    k = shares.shape[1]
    pi = np.full(k, 1.0 / k) if target is None else np.asarray(target, dtype=float) / np.sum(target)
    log_w = np.zeros(k)
    for _ in range(max_iter):
        mean = np.exp(log_mean_exp(label_log_shares(shares + log_w), axis=0))
        if np.max(np.abs(mean - pi)) <= tol:
            break
        log_w = log_w + np.log(pi) - np.log(mean)
    return log_w - log_w.mean()


def calibrated(raw: np.ndarray, content_free: np.ndarray) -> dict[str, np.ndarray]:
    """``likelihood_cc`` and ``likelihood_pmi`` label scores of one clip's raw label scores ``raw`` (labels,)
    given the raw label scores of the same prompt on each content-free input, ``content_free`` (inputs, labels)."""
    cf = np.atleast_2d(content_free)
    return {
        "likelihood_cc": label_log_shares(raw) - batch_prior(cf),
        "likelihood_pmi": raw - log_mean_exp(cf, axis=0),
    }
