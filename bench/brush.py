"""The page on the 1,000,000-point layer in headless Chromium: the time from a brush move
on the price chart to the map redrawn (the view's bins, with the new filter), and to the
other charts redrawn. The whole layer is in view (the page draws bins); each move is a
new price range, so no answer comes from a cache.

`python bench/run.py --only brush` (after `--only histograms`, which builds the layer).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import histograms  # noqa: E402

MOVES = 20
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def poll(page, expression: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise TimeoutError(expression)
        time.sleep(0.005)


def step(r):
    from playwright.sync_api import sync_playwright

    from common import Server

    db = histograms.build()
    with Server(db, workers=1) as srv, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.route("**/*", lambda route: route.continue_() if "127.0.0.1" in route.request.url else route.abort())
        page.goto(srv.url + "/")
        poll(page, "window.citystack && document.body.dataset.busy === '0' && document.body.dataset.mode !== 'empty'")
        page.evaluate("citystack.selectLayer('trips')")
        poll(page, "Number(document.getElementById('filters').dataset.requests) > 0 && "
                   "document.body.dataset.busy === '0' && document.getElementById('filters').dataset.busy === '0'")
        map_ms, charts_ms = [], []
        for k in range(MOVES + 2):
            lo = 1 + k % 5
            hi = lo + 3 + k % 7
            before = page.evaluate("[document.body.dataset.drawnAt, document.getElementById('filters').dataset.requests]")
            t0 = page.evaluate(f"(() => {{ const t = performance.now(); citystack.filters.brush('price', 'bins', {lo}, {hi}); return t; }})()")
            poll(page, f"document.body.dataset.drawnAt !== {before[0]!r} && document.body.dataset.busy === '0'")
            poll(page, f"document.getElementById('filters').dataset.requests !== {before[1]!r} && "
                       "document.getElementById('filters').dataset.busy === '0'")
            drawn = float(page.evaluate("document.body.dataset.drawnAt"))
            charts = page.evaluate("performance.now()")
            if k >= 2:  # two warm-up moves
                map_ms.append(drawn - t0)
                charts_ms.append(charts - t0)
        mode = page.evaluate("document.body.dataset.mode")
        browser.close()
    import os

    p50, p50c = statistics.median(map_ms), statistics.median(charts_ms)
    r.row("Brush move to map redrawn, 1,000,000-point layer, headless Chromium (the price brush moved; "
          "whole layer in view): p50", "-", f"{p50:.0f} ms", None,
          f"max {max(map_ms):.0f} ms, {MOVES} moves, map drawn as {mode}; the other charts redrawn: p50 "
          f"{p50c:.0f} ms (they wait out the panel's 120 ms request throttle); `serve`, 1 worker; the map's bins "
          f"are counted in SQL; load average {os.getloadavg()[0]:.1f}")
    return {"map_ms": map_ms, "charts_ms": charts_ms}
