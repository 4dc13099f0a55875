"""report.html in headless Chromium: no console errors, no failed or external requests, every static figure
displayed, the interactive (Plotly) figures drawn with their data points in the DOM (the summary's at once,
a collapsed section's when opened), sortable tables work, and the screenshots (first screen, one
interactive figure) are not blank; they are saved in the test's output directory.

Chromium is driven over the DevTools protocol on ``--remote-debugging-pipe`` (fd 3 in, fd 4 out,
NUL-terminated JSON), so the test needs no Python package beyond the standard library. When no
Chromium is found, the test setup tries ``apt-get install -y chromium`` (Debian) and skips this one
test with the reason if that fails.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from synthetic_run import PAIR_FOR_BROWSER, write_run

from speechprobe.report import build_report

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--disable-sync",
    "--mute-audio",
    "--hide-scrollbars",
    "--window-size=1280,1600",
]


TRAMPOLINE = """
import fcntl, os, sys
r, w = (fcntl.fcntl(int(fd), fcntl.F_DUPFD, 10) for fd in sys.argv[1:3])
os.dup2(r, 3)
os.dup2(w, 4)
os.close(r)
os.close(w)
os.execvp(sys.argv[3], sys.argv[3:])
"""


def _find_chromium() -> str | None:
    env = os.environ.get("SPEECHPROBE_CHROMIUM")
    if env:
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    path = _find_chromium()
    if path:
        return path
    apt = shutil.which("apt-get")
    if not apt or os.geteuid() != 0:
        pytest.skip(
            "Chromium is not installed and cannot be installed here (no apt-get or not root); "
            "install Debian's `chromium` to run the browser test"
        )
    try:
        proc = subprocess.run(
            [apt, "install", "-y", "chromium"],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.skip(f"Chromium is not installed and `apt-get install -y chromium` failed ({e})")
    path = _find_chromium()
    if proc.returncode != 0 or not path:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
        pytest.skip(f"Chromium is not installed and `apt-get install -y chromium` failed: {tail[0]}")
    return path


class DevTools:
    """A minimal Chrome DevTools Protocol client over --remote-debugging-pipe."""

    def __init__(self, binary: str, profile: Path) -> None:
        cmd_read, self._cmd_write = os.pipe()
        self._event_read, event_write = os.pipe()
        args = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"]
        # A tiny trampoline puts our pipe ends on the fds the browser expects (3: commands, 4: replies).
        self.proc = subprocess.Popen(
            [sys.executable, "-c", TRAMPOLINE, str(cmd_read), str(event_write), *args],
            pass_fds=(cmd_read, event_write),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        os.close(cmd_read)
        os.close(event_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._cmd_write, json.dumps(message).encode() + b"\0")
        return self._next_id

    def wait_for(self, predicate, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                message = json.loads(raw)
                if predicate(message):
                    return message
                self.events.append(message)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from Chromium")
            ready, _, _ = select.select([self._event_read], [], [], left)
            if ready:
                chunk = os.read(self._event_read, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"Chromium exited: {self.proc.stderr.read().decode(errors='replace')[-2000:]}")
                self._buffer += chunk

    def call(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30.0) -> dict:
        ident = self.send(method, params, session)
        reply = self.wait_for(lambda m: m.get("id") == ident, timeout)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def evaluate(self, expression: str, session: str):
        result = self.call(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}, session
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing is best effort; the process is killed below
            self.call("Browser.close", timeout=10)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        for fd in (self._cmd_write, self._event_read):
            os.close(fd)


def _problems(events: list[dict]) -> tuple[list[str], list[str]]:
    """(console errors, failed or external requests) seen in the DevTools events."""
    errors, requests = [], []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            errors.append(str(params.get("exceptionDetails", {}).get("text")))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            errors.append(params["entry"].get("text", ""))
        elif method == "Network.loadingFailed":
            requests.append(f"failed: {params.get('errorText')} {params.get('blockedReason', '')}")
        elif method == "Network.requestWillBeSent":
            url = params.get("request", {}).get("url", "")
            if not url.startswith(("file:", "data:", "about:")):
                requests.append(f"external request: {url}")
    return errors, requests


STATE_JS = (
    "({ready: document.documentElement.getAttribute('data-sortable'),"
    " images: Array.from(document.images).map(i => ({w: i.naturalWidth, h: i.naturalHeight, done: i.complete})),"
    " figures: document.querySelectorAll('figure figcaption').length, title: document.title,"
    " interactive: document.querySelectorAll('figure.interactive').length})"
)
# Interactive figures drawn, and their data marks in the DOM: heatmap cells (an <image> per heatmap) and
# scatter points and lines (path.point, path.js-line).
PLOTS_JS = (
    "({ready: document.documentElement.getAttribute('data-plots'),"
    " drawn: Array.from(document.querySelectorAll('div.plot[data-drawn]')).map(d => d.closest('figure').id),"
    " heatmaps: document.querySelectorAll('div.plot .heatmaplayer image').length,"
    " points: document.querySelectorAll('div.plot path.point').length,"
    " lines: document.querySelectorAll('div.plot path.js-line').length})"
)
OPEN_CURVES_JS = (
    "(() => { const d = document.getElementById('curves'); if (!d) return false; d.open = true; return true; })()"
)
FIGURE_BOX_JS = (
    "(() => { const f = document.querySelector('#curves figure.interactive'); if (!f) return null;"
    " f.scrollIntoView(); const r = f.getBoundingClientRect();"
    " return {x: r.x + window.scrollX, y: r.y + window.scrollY, width: r.width, height: r.height}; })()"
)
# Sort the first table by its macro_f1 column, twice (ascending, then descending).
SORT_JS = (
    "(() => { const t = document.querySelector('table.sortable'); if (!t) return null;"
    " const col = Array.from(t.tHead.rows[0].cells).findIndex(c => c.textContent === 'macro_f1');"
    " const read = () => Array.from(t.tBodies[0].rows).map(r => parseFloat(r.cells[col].textContent));"
    " t.tHead.rows[0].cells[col].click(); const up = read();"
    " t.tHead.rows[0].cells[col].click(); return [up, read()]; })()"
)


def inspect_page(chromium: str, page: Path, profile: Path) -> dict:
    """Load ``page``; return its state, the sort check, a screenshot and the problems seen."""
    browser = DevTools(chromium, profile)
    try:
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            browser.call(f"{domain}.enable", session=session)
        browser.call("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
        browser.wait_for(lambda m: m.get("method") == "Page.loadEventFired" and m.get("sessionId") == session, 60)
        time.sleep(0.3)  # let late console and network events arrive
        state = browser.evaluate(STATE_JS, session)
        plots = browser.evaluate(PLOTS_JS, session)
        shot = browser.call("Page.captureScreenshot", {"format": "png"}, session)
        opened = browser.evaluate(OPEN_CURVES_JS, session)
        time.sleep(0.5)  # the toggle event draws the section's figures
        opened_plots = browser.evaluate(PLOTS_JS, session) if opened else None
        box = browser.evaluate(FIGURE_BOX_JS, session) if opened else None
        figure_shot = None
        if box:
            clip = {**box, "scale": 1}
            figure_shot = browser.call("Page.captureScreenshot", {"format": "png", "clip": clip}, session)["data"]
        sort = browser.evaluate(SORT_JS, session)
    finally:
        browser.close()
    errors, requests = _problems(browser.events)
    pixels = mpimg.imread(io.BytesIO(base64.b64decode(shot["data"])), format="png")
    return {
        "state": state,
        "plots": plots,
        "opened_plots": opened_plots,
        "sort": sort,
        "pixels": pixels,
        "shot": base64.b64decode(shot["data"]),
        "figure_shot": base64.b64decode(figure_shot) if figure_shot else None,
        "errors": errors,
        "requests": requests,
    }


def save_screenshots(seen: dict, out_dir: Path, prefix: str = "report") -> list[Path]:
    """Write the first-screen and interactive-figure screenshots as PNGs into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for name, data in (("first_screen", seen["shot"]), ("interactive_figure", seen["figure_shot"])):
        if data:
            path = out_dir / f"{prefix}_{name}.png"
            path.write_bytes(data)
            out.append(path)
    return out


@pytest.mark.slow
def test_report_renders_in_headless_chromium(chromium: str, tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", **PAIR_FOR_BROWSER)
    report = build_report(run)
    text = report.read_text()
    n_figures, n_images = text.count("<figure"), text.count("<img ")
    assert n_images >= 3 and n_figures > n_images
    seen = inspect_page(chromium, report, tmp_path / "profile")
    assert seen["errors"] == [], f"console errors: {seen['errors']}"
    assert seen["requests"] == [], f"failed or external requests: {seen['requests']}"
    state = seen["state"]
    assert state["ready"] == "ready" and state["title"].startswith("speechprobe report")
    assert state["figures"] == n_figures and state["interactive"] == n_figures - n_images
    assert len(state["images"]) == n_images
    for img in state["images"]:
        assert img["done"] and img["w"] > 0 and img["h"] > 0
    plots = seen["plots"]  # the summary's headline heatmap is drawn at once, its cells in the DOM
    assert plots["ready"] == "ready" and "fig-headline" in plots["drawn"] and plots["heatmaps"] >= 1
    opened = seen["opened_plots"]  # opening "Layer curves" draws its figures: lines and below-chance points
    assert len(opened["drawn"]) > len(plots["drawn"]) and opened["lines"] > plots["lines"]
    shots = save_screenshots(seen, tmp_path / "screenshots")
    assert [p.name for p in shots] == ["report_first_screen.png", "report_interactive_figure.png"]
    up, down = seen["sort"]
    assert len(up) >= 2 and up == sorted(up) and down == sorted(up, reverse=True)
    pixels = seen["pixels"]
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    rgb = pixels[..., :3]
    assert float(rgb.std()) > 0.02, "screenshot is blank"
    assert float(np.mean(rgb < 0.5)) > 0.005, "screenshot has (almost) no dark pixels: no text rendered"


def test_the_browser_check_catches_broken_pages(chromium: str, tmp_path: Path) -> None:
    """The same inspection flags console errors, failed requests and undisplayed images."""
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><html><head><title>bad</title></head><body style='background:#fff'>"
        "<img src='data:image/png;base64,AAAA' alt='broken'><img src='missing.png' alt='missing'>"
        "<script>console.error('boom'); undefinedFunction();</script></body></html>"
    )
    seen = inspect_page(chromium, page, tmp_path / "profile")
    assert any("boom" in e for e in seen["errors"])
    assert any("undefinedFunction" in e or "Uncaught" in e for e in seen["errors"])
    assert any("failed" in r for r in seen["requests"])
    assert [img["w"] for img in seen["state"]["images"]] == [0, 0]
    assert seen["sort"] is None
