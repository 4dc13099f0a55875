"""plotly.js for the self-contained report: the bundle shipped with the ``plotly`` package (no network), the
same bundle gzipped and base64-encoded for the page (:func:`plotly_js_packed`), the script that unpacks it
in the browser (:data:`BOOT_JS`) and the loader that draws each figure when it becomes visible
(:data:`LOADER_JS`)."""

from __future__ import annotations

import base64
import gzip
from functools import lru_cache


@lru_cache(maxsize=1)
def plotly_js() -> str:
    """The plotly.js bundle shipped with the ``plotly`` package (no network)."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


@lru_cache(maxsize=1)
def plotly_js_packed() -> str:
    """The plotly.js bundle gzipped and base64-encoded (4.8 MB -> about 2 MB in the page); :data:`BOOT_JS`
    unpacks it in the browser (``DecompressionStream``, no request). Deterministic bytes (``mtime=0``)."""
    return base64.b64encode(gzip.compress(plotly_js().encode("utf-8"), 6, mtime=0)).decode("ascii")


LOADER_JS = """
(function(){
  function shown(el){for(var d=el.closest('details');d;d=d.parentElement&&d.parentElement.closest('details'))
    if(!d.open)return false;return true;}
  function draw(el){
    if(el.getAttribute('data-drawn'))return;
    var spec=JSON.parse(document.getElementById(el.getAttribute('data-spec')).textContent);
    if(typeof Plotly==='undefined'){el.textContent='(interactive figure: plotly.js did not load)';return;}
    Plotly.newPlot(el,spec.data,spec.layout,spec.config);
    el.setAttribute('data-drawn','1');
  }
  function drawShown(){document.querySelectorAll('div.plot').forEach(function(el){if(shown(el))draw(el);});}
  document.querySelectorAll('details').forEach(function(d){d.addEventListener('toggle',function(){
    if(d.open)drawShown();});});
  drawShown();
  document.documentElement.setAttribute('data-plots','ready');
})();
"""

# Unpacks the gzipped plotly.js of ``<script id='plotly-gz'>`` into a script element, then runs the loader (which
# says "plotly.js did not load" in each figure if the browser cannot unpack it).
BOOT_JS = (
    """
(function(){
  function go(){"""
    + LOADER_JS
    + """}
  var el=document.getElementById('plotly-gz');
  if(!el||typeof DecompressionStream==='undefined'){go();return;}
  var bin=atob(el.textContent.trim()),bytes=new Uint8Array(bin.length);
  for(var i=0;i<bin.length;i++)bytes[i]=bin.charCodeAt(i);
  new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'))).text().then(function(js){
    var s=document.createElement('script');s.textContent=js;document.head.appendChild(s);go();
  },go);
})();
"""
)
