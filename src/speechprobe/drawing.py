"""Saving matplotlib figures: every text drawn literally, bytes ready for the one atomic writer.

Task names, labels and model names reach titles, axes and legends verbatim. Matplotlib reads
``$...$`` in any text as TeX math (mathtext), which fails on an unbalanced ``$`` and renders a
balanced pair wrongly; :func:`figure_bytes` turns that off for every text of a figure, so a name is
always shown as written. Shared by the analysis and zero-shot stages, hence below both.
"""

from __future__ import annotations

import io

from matplotlib import rc_context
from matplotlib.text import Text


def plain_text(fig):
    """Draw every text of ``fig`` literally (no mathtext); returns ``fig``."""
    for text in fig.findobj(Text):
        text.set_parse_math(False)
    return fig


def figure_bytes(fig, fmt: str, **savefig: object) -> bytes:
    """``fig`` rendered as ``fmt`` with every text literal, including those made while drawing (tick labels);
    an SVG's element ids are salted with a constant, so the same figure gives the same bytes."""
    buf = io.BytesIO()
    plain_text(fig)
    with rc_context({"text.parse_math": False, "svg.hashsalt": "speechprobe"}):  # SVG ids: the same every run
        fig.savefig(buf, format=fmt, **savefig)
    return buf.getvalue()
