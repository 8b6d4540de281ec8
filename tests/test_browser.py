"""The map page in a real browser: Debian's chromium driven by Playwright.

Map tiles are blocked (every request that does not go to the test server is
aborted), so these tests also check that the page works without tiles.
The page is served with its real Content-Security-Policy (no inline script,
no eval), so the tests wait on the page's state by polling `page.evaluate`
(which DevTools runs outside the policy) rather than with
`page.wait_for_function` (which evaluates its predicate in the page, and the
policy forbids that). Every violation the page reports is collected.

The page exposes a few hooks on ``window.citystack`` (fitBounds, setView,
selectLayer, bbox, pointAt, drawnPoints, update) and state on
``document.body.dataset`` (points, mode, busy, bins, total, overlay).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
IDLE = "document.body.dataset.busy === '0' && document.getElementById('status').textContent === 'idle'"
READY = "window.citystack && document.body.dataset.mode !== 'empty' && " + IDLE

# Every text the status line shows, in order, from before the page's scripts run;
# and every Content-Security-Policy violation the page reports.
RECORD_STATUS = """
window.__statuses = [];
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' ' + (e.sourceFile || '') + ':' + e.lineNumber);
});
document.addEventListener('DOMContentLoaded', () => {
  const el = document.getElementById('status');
  new MutationObserver(() => window.__statuses.push(el.textContent))
    .observe(el, {childList: true, characterData: true, subtree: true});
});
"""

CANVAS_PIXELS = """(id) => {
  const c = document.getElementById(id);
  if (!c) return -1;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
  return n;
}"""

# A drawn point that is alone within 12 px and not under the panel or a legend.
LONE_POINT = """() => {
  const pts = citystack.drawnPoints();
  const map = document.getElementById('map');
  const tree = d3.quadtree().x((p) => p.x).y((p) => p.y).addAll(pts);
  for (const p of pts) {
    if (p.x < 5 || p.y < 5 || p.x > innerWidth - 5 || p.y > innerHeight - 5) continue;
    if (!map.contains(document.elementFromPoint(p.x, p.y))) continue;
    let near = 0;
    tree.visit((node, x0, y0, x1, y1) => {
      if (!node.length) {
        do { const q = node.data; if (q !== p && Math.hypot(q.x - p.x, q.y - p.y) < 12) near++; } while ((node = node.next));
      }
      return x0 > p.x + 12 || x1 < p.x - 12 || y0 > p.y + 12 || y1 < p.y - 12;
    });
    if (!near && p.name) return p;
  }
  return null;
}"""


def wait_for(page, expression: str, timeout: float = 30_000) -> None:
    """Wait until `expression` is truthy in the page (polled from outside: see the module doc)."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout / 1000:g} s: {expression}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium`")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


class Page:
    """A page on the test server with outside requests blocked and errors collected."""

    def __init__(self, browser, server, width=1280, height=800):
        self.server = server
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.page = self.context.new_page()
        self.blocked: set[str] = set()
        self.errors: list[str] = []
        self.page.route("**/*", self._route)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        self.page.add_init_script(RECORD_STATUS)

    def _route(self, route):
        url = route.request.url
        if urlparse(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            self.blocked.add(url)
            route.abort()

    def _console(self, msg):
        if msg.type != "error":
            return
        # Chromium reports each aborted tile as a failed resource: those, and only those, are expected.
        if msg.location.get("url") in self.blocked and "net::ERR_FAILED" in msg.text:
            return
        self.errors.append(f"console error: {msg.text} ({msg.location.get('url')})")

    def open(self):
        self.page.goto(self.server.url + "/")
        wait_for(self.page, READY, timeout=30_000)
        return self.page

    def wait_idle(self, timeout=30_000):
        wait_for(self.page, IDLE, timeout=timeout)

    def statuses(self) -> list[str]:
        return self.page.evaluate("window.__statuses")

    def violations(self) -> list[str]:
        return self.page.evaluate("window.__csp")

    def close(self):
        self.context.close()


@pytest.fixture(scope="module")
def server(duckdb_server):
    """The page is the same whatever the store: the browser tests use DuckDB's."""
    return duckdb_server


@pytest.fixture
def web(browser, server):
    page = Page(browser, server)
    yield page
    page.close()


def dataset(page, key):
    return page.evaluate(f"document.body.dataset.{key}")


def api(server, path, **params):
    response = requests.get(server.url + path, params=params, timeout=30)
    response.raise_for_status()
    return response.json()


def test_page_loads_without_errors(web):
    page = web.open()
    assert page.title() == "citystack"
    assert page.locator("#status").text_content() == "idle"
    assert dataset(page, "mode") == "points"
    page.wait_for_timeout(300)
    assert web.errors == []
    # Nothing but map tiles was asked of any other host.
    tile_host = urlparse(page.evaluate("citystack.config.tileUrl")).hostname
    assert web.blocked, "the page should have asked for tiles"
    assert {urlparse(u).hostname for u in web.blocked} == {tile_host}
    assert web.violations() == []


def test_page_runs_under_its_content_security_policy(web, server):
    """The policy is there and enforced (an injected inline script does not run, and
    says so), and the page itself breaks none of it: scripts, styles, tiles, overlays."""
    response = requests.get(server.url + "/", timeout=30)
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    page = web.open()
    assert web.violations() == []
    page.evaluate("""() => {
      const s = document.createElement('script');
      s.textContent = 'window.__inline = 1';
      document.head.append(s);
    }""")
    assert page.evaluate("window.__inline") is None
    wait_for(page, "window.__csp.length > 0", 5000)
    assert any(v.startswith("script-src") for v in web.violations()), web.violations()
    assert len(web.errors) == 1 and "Content Security Policy" in web.errors[0], web.errors
    page.evaluate("window.__csp = []")
    web.errors.clear()
    run_analysis(web, "heatmap", {"cells": 40})  # a data: PNG overlay and D3-drawn legends
    page.hover("#layer")
    assert web.violations() == [] and web.errors == []


def test_points_are_drawn(web, server):
    page = web.open()
    shown = int(dataset(page, "points"))
    assert shown > 0
    # All the points the API has for the view are drawn.
    bbox = page.evaluate("citystack.bbox()")
    features = api(server, "/api/layers/listings/features", bbox=bbox, limit=50000, properties="name")
    assert shown == features["numberReturned"]
    assert page.locator("#count").text_content().replace(",", "") == str(shown)
    assert page.evaluate(CANVAS_PIXELS, "points-canvas") > 1000


def test_hover_shows_the_name(web):
    page = web.open()
    point = page.evaluate(LONE_POINT)
    assert point, "no lone point to hover"
    tooltip = page.locator("#tooltip")
    assert tooltip.is_hidden()
    page.mouse.move(point["x"], point["y"])
    tooltip.wait_for(state="visible", timeout=5000)
    assert point["name"] in tooltip.text_content()
    assert "price" in tooltip.text_content()
    # away from every point, the tooltip goes
    page.mouse.move(point["x"] + 40, point["y"] + 40)
    page.mouse.move(page.viewport_size["width"] - 60, page.viewport_size["height"] // 2)
    tooltip.wait_for(state="hidden", timeout=5000)


def test_status_shows_progress_then_idle(web):
    page = web.open()
    page.evaluate("window.__statuses = []")
    page.click("#update")
    wait_for(page, "window.__statuses.length > 0")
    web.wait_idle()
    texts = web.statuses()
    assert texts[-1] == "idle"
    progress = [t for t in texts if t != "idle"]
    # the server's own progress events reached the status line
    assert any(re.search(r"querying listings|binning listings|\d+ features", t) for t in progress), texts
    assert texts.index(progress[0]) < len(texts) - 1


def test_legend_follows_the_colour_field(web, server):
    page = web.open()
    legend = page.locator("#legend")
    assert legend.get_attribute("data-field") == "price"
    page.select_option("#colour", "bedrooms")
    wait_for(page, "document.getElementById('legend').dataset.field === 'bedrooms'")
    web.wait_idle()
    bbox = page.evaluate("citystack.bbox()")
    values = [f["properties"]["bedrooms"] for f in
              api(server, "/api/layers/listings/features", bbox=bbox, limit=50000, properties="bedrooms")["features"]]
    lo, hi = min(values), max(values)
    assert float(legend.get_attribute("data-min")) == lo
    assert float(legend.get_attribute("data-max")) == hi
    assert "bedrooms" in legend.locator(".legend-title").text_content()
    assert legend.locator(".legend-label-min").text_content() == f"{lo:g}"
    assert legend.locator(".legend-label-max").text_content() == f"{hi:g}"


def test_menu_at_360px(browser, server):
    web = Page(browser, server, 360, 740)
    try:
        page = web.open()
        toggle = page.locator("#menu-toggle")
        assert toggle.is_visible()
        assert toggle.get_attribute("aria-expanded") == "false"
        assert page.locator("#layer").is_hidden()
        toggle.click()
        assert toggle.get_attribute("aria-expanded") == "true"
        for control in ("#layer", "#colour", "#update", "#update-on-move", "#count"):
            box = page.locator(control).bounding_box()
            assert page.locator(control).is_visible(), control
            assert box["x"] >= 0 and box["x"] + box["width"] <= 360, control
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        page.select_option("#layer", "checkins_places")
        wait_for(page, "document.body.dataset.points > 0 && " + IDLE)
        # choosing a layer folds the menu, so that the map it was fitted to shows
        assert toggle.get_attribute("aria-expanded") == "false"
        assert page.locator("#layer").is_hidden()
        toggle.click()
        assert page.locator("#colour").input_value() == "category"  # the layer's colour_field: a category first
        page.locator("#update").click()
        web.wait_idle()
        toggle.click()
        assert page.locator("#layer").is_hidden()
        assert web.errors == []
    finally:
        web.close()


def test_menu_by_keyboard(web):
    page = web.open()
    order = []
    for _ in range(25):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.id"))
        if order[-1] == "update":
            break
    assert "layer" in order and "colour" in order, order
    assert order[-1] == "update", order
    assert order.index("layer") < order.index("update")
    # keyboard focus is visible
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    with page.expect_request(re.compile(r"/api/layers/listings/(bins|features)")):
        page.keyboard.press("Enter")
    web.wait_idle()
    # a select changes from the keyboard too
    page.focus("#colour")
    following = page.evaluate("(() => { const s = document.getElementById('colour'); return s.options[s.selectedIndex + 1].value; })()")
    page.keyboard.press("ArrowDown")
    wait_for(page, f"document.getElementById('legend').dataset.field === {following!r}")


def test_bins_when_the_view_holds_too_many_points(web, server):
    page = web.open()
    layer = api(server, "/api/layers/checkins")
    threshold = page.evaluate("citystack.config.binsThreshold")
    assert layer["count"] > threshold
    page.evaluate("citystack.selectLayer('checkins')")
    page.evaluate("(e) => citystack.fitBounds(e)", layer["extent"])
    web.wait_idle()
    assert dataset(page, "mode") == "bins"
    assert dataset(page, "points") == "0"
    assert int(dataset(page, "bins")) > 0
    notice = page.locator("#notice")
    assert notice.is_visible()
    text = notice.text_content()
    assert "density" in text and "per pixel" in text, text
    bbox = page.evaluate("citystack.lastQuery.bbox")  # the view the page asked for (the whole extent, or nearly)
    # the same cells as the page: a check-in layer withholds cells of fewer than 3 users (privacy)
    in_view = api(server, f"/api/layers/checkins/bins?cells=64&bbox={bbox}")["total"]
    assert in_view > threshold and f"{in_view:,} points in view" in text and "zoom in" in text, \
        (text, page.evaluate("citystack.lastQuery"))
    assert page.evaluate(CANVAS_PIXELS, "density-canvas") > 1000  # the density image, not coarse bins
    # coloured by a category (the layer's colour_field), whose clickable legend stays over the density image
    assert page.evaluate("document.getElementById('legend').dataset.field") == "category"
    # zoomed in far enough, points again
    lon, lat = (layer["extent"][0] + layer["extent"][2]) / 2, (layer["extent"][1] + layer["extent"][3]) / 2
    page.evaluate("([lat, lon]) => citystack.setView(lat, lon, 16)", [lat, lon])
    assert dataset(page, "mode") == "points"
    assert int(dataset(page, "points")) > 0
    assert notice.is_hidden()


def test_time_filter_narrows_checkins(web, server):
    page = web.open()
    page.evaluate("citystack.selectLayer('checkins')")
    web.wait_idle()
    total = int(dataset(page, "total"))
    assert page.locator("#time-filter").is_visible()
    with page.expect_request(re.compile(r"/bins\?.*hours=8-17")):
        page.select_option("#hour-from", "8")
        page.select_option("#hour-to", "17")
    web.wait_idle()
    wait_for(page, f"Number(document.body.dataset.total) < {total}")
    with page.expect_request(re.compile(r"/bins\?.*days=Mon,Tue,Wed,Thu,Fri&hours=8-17")):
        page.locator("label.day", has_text="Sat").click()
        page.locator("label.day", has_text="Sun").click()
    web.wait_idle()


# ---- analyses ----

def run_analysis(web, name, params=None, layer="listings"):
    page = web.page
    if layer != "listings":
        page.evaluate("(l) => citystack.selectLayer(l)", layer)
        web.wait_idle()
    page.select_option("#analysis", name)
    for key, value in (params or {}).items():
        page.fill(f"#param-{key}", str(value))
    page.evaluate("window.__statuses = []")
    page.click("#run-analysis")
    wait_for(page, f"document.body.dataset.overlay && {IDLE}", timeout=90_000)
    texts = web.statuses()
    assert texts[-1] == "idle", texts
    assert any(t not in ("idle", "") and not t.startswith("error") for t in texts), texts
    assert not any(t.startswith("error") for t in texts), texts
    return page.evaluate("citystack.lastResult")


def check_clear(web):
    page = web.page
    page.click("#clear-analysis")
    assert dataset(page, "overlay") == ""
    assert page.locator(".leaflet-pane.leaflet-analysis-pane > *").count() == 0
    assert page.locator("#overlay-legend").is_hidden()


def test_heatmap(web):
    web.open()
    result = run_analysis(web, "heatmap", {"cells": 60})
    page = web.page
    assert result["kind"] == "grid"
    image = page.locator(".leaflet-analysis-pane img.grid-overlay")
    assert image.count() == 1
    assert image.get_attribute("src").startswith("data:image/png")
    assert page.locator("#overlay-legend").is_visible()
    assert "points in view" in page.locator("#results").text_content()
    # anchored to the map: it moves with a pan
    before = image.bounding_box()
    page.evaluate("() => { citystack.map.panBy([120, 0], {animate: false}); }")
    after = image.bounding_box()
    assert abs((before["x"] - after["x"]) - 120) < 2
    check_clear(web)
    assert web.errors == []


def test_interpolate(web):
    web.open()
    result = run_analysis(web, "interpolate", {"max_train": 300, "folds": 2, "cells": 30})
    assert result["kind"] == "grid"
    page = web.page
    assert page.locator(".leaflet-analysis-pane img.grid-overlay").count() == 1
    text = page.locator("#results").text_content()
    assert result["model"]["name"] in text
    assert "RMSE" in text and "R²" in text
    assert page.locator("#results table.metrics tr").count() == 1 + len(result["metrics"])
    if result["input"]["sampled"]:
        assert "sampled" in text
    check_clear(web)
    assert web.errors == []


def test_clusters(web):
    web.open()
    result = run_analysis(web, "clusters")
    page = web.page
    assert result["kind"] == "clusters"
    assert page.evaluate(CANVAS_PIXELS, "overlay-canvas") > 100
    assert "cluster" in page.locator("#overlay-legend").text_content()
    check_clear(web)
    assert web.errors == []


NODE_CENTRES = """() => [...document.querySelectorAll('circle.node')].map((c) => {
  const b = c.getBoundingClientRect();
  const x = b.x + b.width / 2, y = b.y + b.height / 2;
  return {id: c.dataset.id, x, y, top: document.elementFromPoint(x, y) === c};
})"""

EDGES = """() => [...document.querySelectorAll('line.edge')].map((e) => [e.dataset.source, e.dataset.target])"""

# A spot on the map at least 40 px from every place, not under the panel or a legend.
EMPTY_SPOT = """() => {
  const nodes = [...document.querySelectorAll('circle.node')].map((c) => {
    const b = c.getBoundingClientRect();
    return [b.x + b.width / 2, b.y + b.height / 2];
  });
  const map = document.getElementById('map');
  for (let y = 60; y < innerHeight - 60; y += 20) {
    for (let x = innerWidth - 80; x > 0; x -= 20) {
      const el = document.elementFromPoint(x, y);
      if (!map.contains(el) || el.closest('.leaflet-control')) continue;
      if (nodes.every(([a, b]) => Math.hypot(a - x, b - y) > 40)) return {x, y};
    }
  }
  return null;
}"""


def test_network(web):
    web.open()
    result = run_analysis(web, "network", {"min_shared": 3}, layer="checkins")
    page = web.page
    assert result["kind"] == "network"
    nodes = page.evaluate(NODE_CENTRES)
    edges = page.evaluate(EDGES)
    assert len(nodes) == len(result["nodes"]) > 2
    assert len(edges) == len(result["edges"]) > 0
    neighbours = {}
    for s, t in edges:
        neighbours.setdefault(s, set()).add(t)
        neighbours.setdefault(t, set()).add(s)
    # a place with links, clickable (on top), that is not linked to everything
    pick = max((n for n in nodes if n["top"] and 0 < len(neighbours.get(n["id"], ())) < len(nodes) - 1),
               key=lambda n: len(neighbours[n["id"]]))
    page.mouse.click(pick["x"], pick["y"])
    keep = 1 + len(neighbours[pick["id"]])
    wait_for(page, f"document.querySelectorAll('circle.node').length === {keep}", timeout=5000)
    remaining = page.evaluate(EDGES)
    assert remaining and all(pick["id"] in pair for pair in remaining)
    shown = {n["id"] for n in page.evaluate(NODE_CENTRES)}
    assert shown == {pick["id"]} | neighbours[pick["id"]]
    # the empty map brings everything back
    spot = page.evaluate(EMPTY_SPOT)
    assert spot, "no empty spot on the map"
    page.mouse.click(spot["x"], spot["y"])
    wait_for(page, f"document.querySelectorAll('circle.node').length === {len(nodes)}", timeout=5000)
    wait_for(page, f"document.querySelectorAll('line.edge').length === {len(edges)}", timeout=5000)
    check_clear(web)
    assert web.errors == []


# ---- hostile names ----

XSS_ELEMENTS = """() => document.querySelectorAll(
  'script:not([src]):not([type="application/json"]), img[src="x"], [onerror], [onload], [onmouseover]'
).length"""

TOOLTIP_TAGS = """() => [...document.querySelectorAll('#tooltip *')].map((e) => e.tagName.toLowerCase())"""


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    """A server whose classic layer is `names`, loaded from a CSV of names that are markup."""
    from conftest import Server, citystack
    from test_hostile import write_hostile_csv

    folder = tmp_path_factory.mktemp("xss")
    write_hostile_csv(folder / "names.csv")
    db = folder / "names.duckdb"
    citystack("load", folder / "names.csv", "--layer", "names", "--name", "name", "--price", "price", "--db", db)
    srv = Server(db, env={"CITYSTACK_CLASSIC_LAYER": "names"})
    yield srv
    srv.stop()


def test_names_that_are_markup_are_shown_as_text(browser, hostile_server):
    from test_hostile import HOSTILE_NAMES

    web = Page(browser, hostile_server)
    try:
        page = web.open()
        assert page.evaluate("document.getElementById('layer').value") == "names"
        assert int(dataset(page, "points")) == 40
        assert page.evaluate(XSS_ELEMENTS) == 0
        shown = set()
        for point in page.evaluate("citystack.drawnPoints()"):
            if point["name"] in shown or not (20 < point["x"] < 1260 and 20 < point["y"] < 780):
                continue
            page.mouse.move(point["x"], point["y"])
            tooltip = page.locator("#tooltip")
            tooltip.wait_for(state="visible", timeout=5000)
            title = page.locator("#tooltip .tooltip-title").text_content()
            assert title in HOSTILE_NAMES
            shown.add(title)
            assert set(page.evaluate(TOOLTIP_TAGS)) <= {"div", "dl", "dt", "dd"}
            if shown == set(HOSTILE_NAMES):
                break
        assert shown == set(HOSTILE_NAMES)
        # the colour control lists the hostile column by its plain identifier
        options = page.evaluate("[...document.querySelectorAll('#colour option')].map((o) => o.value)")
        # the file's own names, markup and all, offered as text (option values, not HTML)
        names = {f["name"] for f in api(hostile_server, "/api/layers/names")["fields"]}
        assert {o for o in options if o} <= names and any("<" in o for o in options), options
        assert page.evaluate(XSS_ELEMENTS) == 0
        assert page.evaluate("window.__xss") is None
        assert web.errors == [] and web.violations() == []
    finally:
        web.close()
