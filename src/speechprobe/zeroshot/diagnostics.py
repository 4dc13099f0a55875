"""What a zero-shot answer set says besides its score: did the answers parse, and did they collapse?

Per (model, task, prompt, mode), from the true labels ``y`` and the predictions ``ŷ`` (None: an answer
that did not parse, see :mod:`.parser`), over the ``n`` clips:

``parse_rate``     share of answers mapped to exactly one label, ``#{ŷ ≠ None} / n`` (1 for the
                   likelihood modes, which always pick a label).
``top_share``      share of the clips given the most frequent predicted label, ``max_c #{ŷ = c} / n``.
``pred_entropy``   Shannon entropy (bits) of the predicted labels among the parsed answers,
                   ``−Σ_c q_c log2 q_c``; ``true_entropy`` the same of the true labels. On balanced
                   data with K classes the true entropy is ``log2 K``; a model that names one label for
                   everything has 0.
``collapsed``      1 when one label takes most predictions beyond what the data explain:
                   ``top_share > max(1/2, (1 + p_max) / 2)``, ``p_max`` the largest true class share
                   (balanced 2 classes: > 0.75; 4 classes: > 0.625). Such a score measures the label
                   prior of the decoder (Zhao et al., 2021), not the audio; it is flagged in tables and
                   findings and kept out of the zero-shot ↔ probe correlation.
``chance_macro_f1`` the chance Macro-F1 of these clips (max of majority-class and uniform guessing,
                   :func:`speechprobe.analysis.chance_levels`), for chance-normalised scores.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

DIAGNOSTICS = ("parse_rate", "top_share", "pred_entropy", "true_entropy", "collapsed", "chance_macro_f1")


def entropy_bits(values: Sequence[str]) -> float:
    """Shannon entropy in bits of the empirical distribution of ``values`` (0 for none)."""
    counts = np.array(list(Counter(values).values()), dtype=float)
    if not counts.size:
        return 0.0
    q = counts / counts.sum()
    return float(-(q * np.log2(q)).sum() + 0.0)


def is_collapsed(top_share: float, true_max_share: float) -> bool:
    """One label takes most predictions beyond the largest true class (see the module docstring)."""
    return top_share > max(0.5, (1 + true_max_share) / 2)


def answer_diagnostics(y_true: Sequence[str], y_pred: Sequence[str | None]) -> dict[str, float]:
    """The diagnostics of the module docstring for one answer set."""
    from ..analysis.summary import chance_levels

    truth = [str(t) for t in y_true]
    parsed = [str(p) for p in y_pred if p is not None]
    n = len(truth)
    if not n:
        return {name: float("nan") for name in DIAGNOSTICS}
    top = max(Counter(parsed).values()) / n if parsed else 0.0
    true_max = max(Counter(truth).values()) / n
    return {
        "parse_rate": len(parsed) / n,
        "top_share": top,
        "pred_entropy": entropy_bits(parsed),
        "true_entropy": entropy_bits(truth),
        "collapsed": float(is_collapsed(top, true_max)),
        "chance_macro_f1": chance_levels(truth)["macro_f1"],
    }
