"""Interactive figures in report.html: Plotly specifications (:mod:`speechprobe.figures`), drawn by plotly.js
inlined in the page.

Why Plotly: a pure-Python wheel whose package carries the whole plotly.js bundle (4.8 MB minified), so
the report inlines it once and stays one file that loads nothing from anywhere (the page's
Content-Security-Policy forbids it); hover, zoom and legend toggling come built in. Vega-Lite would be
smaller in the page (~1 MB) but needs a native helper (vl-convert) to get its JavaScript offline.

Each figure is a JSON specification in a ``<script type="application/json">`` block beside an empty
``<div class="plot">``; :data:`LOADER_JS` draws a figure when it becomes visible (figures inside closed
``<details>`` are drawn when opened, so they get their real width). The static PNG/SVG of every figure
stay in ``figures/`` for papers; the page carries each figure once (the specification, not the PNG too).
"""

from __future__ import annotations

import html
import json

from .plotly_bundle import BOOT_JS, LOADER_JS, plotly_js, plotly_js_packed

CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}


def _json(spec: dict) -> str:
    """JSON safe inside a <script> element (no ``</`` can close it)."""
    return json.dumps(spec, allow_nan=False, separators=(",", ":")).replace("</", "<\\/")


def figure_html(key: str, spec: dict, caption: str, number: int | None = None, height: int | None = None) -> str:
    """An interactive figure: the plot's div, its JSON specification and a caption."""
    spec = {**spec, "config": CONFIG}
    style = f" style='min-height:{int(height)}px'" if height else ""
    label = f"<b>Figure {number}.</b> " if number is not None else ""
    return (
        f"<figure class='interactive' id='fig-{html.escape(key, quote=True)}'>"
        f"<div class='plot' data-spec='spec-{html.escape(key, quote=True)}'{style}></div>"
        f"<script type='application/json' id='spec-{html.escape(key, quote=True)}'>{_json(spec)}</script>"
        f"<figcaption>{label}{html.escape(caption)}</figcaption></figure>"
    )


__all__ = [
    "BOOT_JS",
    "LOADER_JS",
    "figure_html",
    "plotly_js",
    "plotly_js_packed",
]
