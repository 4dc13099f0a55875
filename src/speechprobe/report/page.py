"""The HTML page every report shares: head with its Content-Security-Policy, style, collapsible sections,
static and interactive figures, and the scripts (plotly.js only when a page has interactive figures).

The page loads nothing from anywhere: inline style and script only, images as ``data:`` URIs, and a
Content-Security-Policy that forbids every other source, so a report opened from a laptop, a mail or an
archive looks the same and makes no request.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable
from pathlib import Path

from ..errors import SpeechprobeError
from ..files import atomic_write
from .interactive import BOOT_JS, plotly_js_packed

PALETTE = 128  # colours of an embedded figure (line plots and heatmaps on white)
EMBED_CACHE = ".embedded"  # beside the figures: their compact forms, keyed by content
WEBP_EFFORT = 2  # libwebp's method (0-6): 2 is as small as 4-6 on the demo's figures and the quickest of them
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;margin:0;
  color:#1d232a;background:#fff}
main{max-width:1180px;margin:0 auto;padding:20px 28px 60px}
h1{font-size:1.6em;margin:.2em 0}h2{border-bottom:2px solid #e3e7ec;padding-bottom:4px;margin-top:1.6em}
h3{margin-bottom:.3em}.meta{color:#5b6570;margin:.2em 0 .8em}.note{color:#4a535c;font-size:.92em;max-width:70em}
.summary{display:grid;grid-template-columns:minmax(0,1.15fr) minmax(0,1fr);gap:6px 26px;align-items:start}
.summary .wide{grid-column:1/-1}
@media (max-width:900px){.summary{grid-template-columns:1fr}}
ul.findings{padding-left:1.2em}ul.findings li{margin:.35em 0;line-height:1.45}
.warn{background:#fff7e0;border-left:4px solid #e0a800;padding:6px 14px;margin:.6em 0}
.missing{background:#fdecea;border-left:4px solid #c62828;padding:6px 14px;margin:.6em 0}
.warn h3,.missing h3{margin:.3em 0}
details.section{border-top:1px solid #e3e7ec;padding:4px 0}
details.section>summary{cursor:pointer;font-size:1.22em;font-weight:600;padding:8px 0;list-style-position:outside}
details.section>summary .count{color:#6b7580;font-weight:400;font-size:.8em;margin-left:.5em}
.scroll{overflow-x:auto;max-height:34em;overflow-y:auto}
table{border-collapse:collapse;font-size:.86em;margin:.4em 0}
th,td{border:1px solid #d5dbe1;padding:3px 8px;text-align:left;white-space:nowrap}
td[data-n]{text-align:right;font-variant-numeric:tabular-nums}
thead th{background:#eef2f6;cursor:pointer;position:sticky;top:0;user-select:none}
thead th[aria-sort=ascending]::after{content:' \\25B2'}thead th[aria-sort=descending]::after{content:' \\25BC'}
tbody tr:nth-child(even){background:#f8fafb}
figure{margin:1em 0;padding:0}figure img{max-width:100%;height:auto;border:1px solid #eceff2}
figcaption{color:#3b444c;font-size:.9em;max-width:70em}
div.plot{width:100%}
pre{background:#f5f7f9;padding:10px;overflow-x:auto;font-size:.85em}
"""


# Click a header to sort a table (numbers as numbers); marks the page when ready (the browser test waits on it).
SORT_JS = """
(function(){
  function key(td){var v=td.getAttribute('data-v');if(v===null)v=td.textContent;
    return td.hasAttribute('data-n')?{n:parseFloat(v)}:{s:v};}
  function cmp(a,b){if('n' in a&&'n' in b)return a.n-b.n;if('n' in a)return -1;if('n' in b)return 1;
    return a.s.localeCompare(b.s);}
  document.querySelectorAll('table.sortable').forEach(function(table){
    var heads=table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads,function(th,col){
      th.addEventListener('click',function(){
        var asc=th.getAttribute('aria-sort')!=='ascending';
        Array.prototype.forEach.call(heads,function(h){h.removeAttribute('aria-sort');});
        th.setAttribute('aria-sort',asc?'ascending':'descending');
        var body=table.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
        rows.sort(function(r1,r2){var c=cmp(key(r1.cells[col]),key(r2.cells[col]));return asc?c:-c;});
        rows.forEach(function(r){body.appendChild(r);});
      });
    });
  });
  document.documentElement.setAttribute('data-sortable','ready');
})();
"""


def png_data_uri(path: Path) -> str:
    """A PNG file as a ``data:`` URI in its compact form (:func:`compact_image`), kept beside the figure in
    ``figures/.embedded/`` under the hash of the PNG's bytes, so a report built again encodes only new figures."""
    data, mime = cached_compact(Path(path).read_bytes(), Path(path).parent / EMBED_CACHE)
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def cached_compact(data: bytes, cache: Path) -> tuple[bytes, str]:
    """:func:`compact_image` of ``data``, read from ``cache`` when done before (keyed by the bytes' xxHash3-64
    and the encoding settings); a cache that cannot be written is skipped."""
    import xxhash

    key = f"{xxhash.xxh3_64_hexdigest(data)}-p{PALETTE}-w{WEBP_EFFORT}"
    for ext, mime in (("webp", "image/webp"), ("png", "image/png")):
        try:
            return (cache / f"{key}.{ext}").read_bytes(), mime
        except OSError:
            continue
    packed, mime = compact_image(data)
    try:
        atomic_write(cache / f"{key}.{mime.split('/')[1]}", packed)
    except (OSError, SpeechprobeError):
        pass
    return packed, mime


def compact_image(data: bytes) -> tuple[bytes, str]:
    """A PNG's bytes and MIME type for embedding: reduced to a 128-colour palette, then stored as lossless WebP.

    Figures are line plots and heatmaps on white: a palette keeps them visually unchanged and cuts the bytes
    about threefold (128 colours: 12 % less than 256 on the demo's figures); lossless WebP of that palette image
    is another ~20 % smaller than an optimised PNG of it (every current browser shows WebP). The files under
    figures/ keep full colour for papers. Whichever of the two is smaller is used; unreadable data is embedded
    as it is.
    """
    from PIL import Image

    try:
        image = Image.open(io.BytesIO(data))
        if image.mode in ("RGBA", "LA", "P"):
            image = image.convert("RGBA")
            flat = Image.new("RGB", image.size, "white")
            flat.paste(image, mask=image.getchannel("A"))
            image = flat
        image = image.convert("RGB").quantize(colors=PALETTE, method=Image.Quantize.MEDIANCUT)
        webp = io.BytesIO()
        image.save(webp, "WEBP", lossless=True, method=WEBP_EFFORT)
    except (OSError, ValueError):
        return data, "image/png"
    return min([(data, "image/png"), (webp.getvalue(), "image/webp")], key=lambda c: len(c[0]))


def image_figure(path: Path, caption: str, number: int, key: str) -> str:
    """A static figure (PNG inlined) with its numbered caption."""
    alt = html.escape(f"Figure {number}: {Path(path).stem}", quote=True)
    return (
        f"<figure id='fig-{html.escape(key, quote=True)}'><img src='{png_data_uri(path)}' alt='{alt}'>"
        f"<figcaption><b>Figure {number}.</b> {html.escape(caption)}</figcaption></figure>"
    )


def section(title: str, inner: Iterable[str], key: str, is_open: bool = False, count: str = "") -> str:
    """A collapsible section (``<details>``): closed by default, so the first screen stays a summary."""
    extra = f"<span class='count'>{html.escape(count)}</span>" if count else ""
    return (
        f"<details class='section' id='{html.escape(key, quote=True)}'{' open' if is_open else ''}>"
        f"<summary>{html.escape(title)}{extra}</summary>{''.join(inner)}</details>"
    )


def bullet_box(title: str, items: Iterable[str], css: str) -> str:
    """A titled list in a coloured box (warnings, missing data); empty when there are no items."""
    items = list(items)
    if not items:
        return ""
    lis = "".join(f"<li>{html.escape(i)}</li>" for i in items)
    return f"<div class='{css}'><h3>{html.escape(title)}</h3><ul>{lis}</ul></div>"


def page(title: str, body: Iterable[str], interactive: bool) -> str:
    """The whole document: one file, no request. ``interactive``: plotly.js inline, gzipped (4.8 MB -> 2 MB,
    unpacked by the browser), and the figure loader."""
    scripts = [f"<script>{SORT_JS}</script>"]
    if interactive:
        packed = f"<script type='application/gzip;base64' id='plotly-gz'>{plotly_js_packed()}</script>"
        scripts = [packed, *scripts, f"<script>{BOOT_JS}</script>"]
    return "\n".join(
        [
            "<!DOCTYPE html>",
            "<html lang='en'><head><meta charset='utf-8'>",
            "<meta name='viewport' content='width=device-width, initial-scale=1'>",
            f"<title>{html.escape(title)}</title>",
            f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">",
            f"<style>{CSS}</style></head><body><main>",
            *body,
            *scripts,
            "</main></body></html>",
            "",
        ]
    )


__all__ = ["CSP", "CSS", "SORT_JS", "bullet_box", "image_figure", "page", "png_data_uri", "section"]
