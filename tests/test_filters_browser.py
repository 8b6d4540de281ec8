"""The filter panel in a real browser (Playwright + /usr/bin/chromium, as test_browser.py):
charts shown, a brushed price range and two ticked neighbourhood groups give the map
exactly the listings of the file that pass them in the view, the Divvy hour chart is
the file's own hourly counts, and playback steps through the hours.

The panel keeps its state on ``#filters``'s dataset: ``params`` (the query parameters
of its filters, JSON), ``requests`` (chart answers drawn), ``busy``, ``total``.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import requests

import timelayer
from conftest import AIRBNB, SHARED, Server, citystack
from test_browser import browser, ARGS, CHROMIUM, IDLE, Page, wait_for  # noqa: F401,E402  (browser: the one launch of Chromium)

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.browser, pytest.mark.skipif(not AIRBNB.exists(), reason="../shared/data is absent")]

DIVVY = SHARED / "divvy_chicago_2021-01.csv"
CHARTS_IDLE = "document.getElementById('filters').dataset.busy === '0' && " + IDLE


@pytest.fixture(scope="module")
def filter_server(tmp_path_factory):
    db = tmp_path_factory.mktemp("filters") / "filters.duckdb"
    citystack("init", "--sample", "--db", db)
    citystack("load", AIRBNB, "--layer", "nyc", "--preset", "airbnb", "--db", db)
    if DIVVY.exists():
        timelayer.load_divvy(db, DIVVY, citystack)
    srv = Server(db)
    yield srv
    srv.stop()


@pytest.fixture
def web(browser, filter_server):
    page = Page(browser, filter_server, width=1400, height=1000)
    yield page
    assert not page.errors, page.errors
    assert not page.violations(), page.violations()
    page.close()


def choose(page, layer: str) -> None:
    before = page.evaluate("Number(document.getElementById('filters').dataset.requests)")
    page.evaluate(f"citystack.selectLayer({json.dumps(layer)})")
    wait_for(page, f"Number(document.getElementById('filters').dataset.requests) > {before}")
    settle(page)


def settle(page) -> None:
    page.wait_for_timeout(300)  # a throttled chart request may be waiting to go
    wait_for(page, CHARTS_IDLE)


def panel(page) -> dict:
    return page.evaluate("({...document.getElementById('filters').dataset})")


def counts(page, field: str, part: str) -> list[int]:
    raw = page.evaluate(f"document.querySelector('#filters .filter-card[data-field=\"{field}\"] "
                        f".filter-part[data-part=\"{part}\"] svg').dataset.counts")
    return [int(x) for x in raw.split(",")]


def drag(page, field: str, part: str, start: float, end: float) -> None:
    """Brush a chart with the mouse, from `start` to `end` (fractions of its width), in steps."""
    svg = page.locator(f"#filters .filter-card[data-field=\"{field}\"] .filter-part[data-part=\"{part}\"] svg")
    svg.scroll_into_view_if_needed()
    box = svg.bounding_box()
    y = box["y"] + box["height"] * 0.4
    page.mouse.move(box["x"] + box["width"] * start, y)
    page.mouse.down()
    for k in range(1, 9):
        page.mouse.move(box["x"] + box["width"] * (start + (end - start) * k / 8), y)
        page.wait_for_timeout(40)
    page.mouse.up()


def airbnb_rows() -> list[dict]:
    with open(AIRBNB, newline="", encoding="utf-8") as fh:
        return [r for r in csv.DictReader(fh) if r["latitude"] and r["longitude"]]


def test_brush_and_ticks_give_the_map_the_filtered_points(web):
    page = web.open()
    choose(page, "nyc")
    fields = page.evaluate("[...document.querySelectorAll('#filters .filter-card')].map((c) => c.dataset.field)")
    assert "price" in fields and "neighbourhood_group" in fields
    bbox = [-74.02, 40.67, -73.92, 40.75]  # lower Manhattan and north-west Brooklyn
    page.evaluate(f"citystack.fitBounds({bbox})")
    settle(page)
    view = [float(v) for v in page.evaluate("citystack.bbox()").split(",")]

    drag(page, "price", "bins", 0.06, 0.2)
    wait_for(page, "JSON.parse(document.getElementById('filters').dataset.params).price_min !== undefined")
    for group in ("Manhattan", "Brooklyn"):
        page.locator(f"#filters li[data-value=\"{group}\"] input").check()
    settle(page)
    params = json.loads(panel(page)["params"])
    assert sorted(params["neighbourhood_group"]) == ["Brooklyn", "Manhattan"]
    lo, hi = float(params["price_min"]), float(params["price_max"])
    assert 0 < lo < hi

    rows = airbnb_rows()
    inside = [r for r in rows if view[0] <= float(r["longitude"]) <= view[2] and view[1] <= float(r["latitude"]) <= view[3]]
    keep = [r for r in inside if lo <= float(r["price"]) <= hi and r["neighbourhood_group"] in ("Manhattan", "Brooklyn")]
    assert 100 < len(keep) <= 20_000
    wait_for(page, "document.body.dataset.mode === 'points'")
    assert int(page.evaluate("document.body.dataset.total")) == len(keep)
    assert int(page.evaluate("document.body.dataset.points")) == len(keep)
    assert int(panel(page)["total"]) == len(keep)

    # the page's export link gives the same points
    export = requests.get(web.server.url + page.evaluate("citystack.filters.exportUrl('csv')"), timeout=60)
    assert export.status_code == 200
    got = list(csv.DictReader(io.StringIO(export.text)))
    assert sorted(int(r["id"]) for r in got) == sorted(int(r["id"]) for r in keep)

    with page.expect_download() as png:
        page.click("#export-png")
    data = Path(png.value.path()).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == tuple(page.evaluate("[document.getElementById('map').clientWidth, "
                                                  "document.getElementById('map').clientHeight]"))
    with page.expect_download() as points_csv:
        page.click("#export-csv")
    assert len(list(csv.DictReader(open(points_csv.value.path(), newline="")))) == len(keep)

    # linked: the price chart counts the view's listings of the two groups, whatever the price
    groups = [r for r in inside if r["neighbourhood_group"] in ("Manhattan", "Brooklyn")]
    prices = np.array([float(r["price"]) for r in rows])
    want = np.histogram([float(r["price"]) for r in groups], bins=40, range=(prices.min(), prices.max()))[0]
    assert counts(page, "price", "bins") == want.tolist()
    # and the group list counts the listings in the price range, whatever the group
    ref = Counter(r["neighbourhood_group"] for r in inside if lo <= float(r["price"]) <= hi)
    shown = page.evaluate("Object.fromEntries([...document.querySelectorAll('#filters .filter-card"
                          "[data-field=\"neighbourhood_group\"] li')].map((li) => [li.dataset.value, "
                          "Number(li.dataset.count)]))")
    assert {k: v for k, v in shown.items() if v} == dict(ref)


def divvy_hours() -> tuple[list[dict], list[int]]:
    rows = []
    with open(DIVVY, newline="") as fh:
        for r in csv.DictReader(fh):
            if r["start_lat"] and r["start_lng"]:
                r["t"] = datetime.datetime.strptime(r["started_at"], "%Y-%m-%d %H:%M:%S")
                rows.append(r)
    return rows, [sum(r["t"].hour == h for r in rows) for h in range(24)]


@pytest.mark.skipif(not DIVVY.exists(), reason=f"{DIVVY} is absent")
def test_divvy_hour_chart_and_playback(web):
    page = web.open()
    choose(page, "divvy")
    page.locator("#filters-in-view").uncheck()  # the whole layer
    before = int(panel(page)["requests"])
    wait_for(page, f"Number(document.getElementById('filters').dataset.requests) > {before}")
    settle(page)
    rows, hours = divvy_hours()
    assert counts(page, "started_at", "hours") == hours

    page.select_option("#play-speed", "0.5")
    page.click("#play")
    wait_for(page, "Number(document.querySelector('.playback-controls').dataset.shown) >= 2", timeout=60_000)
    page.click("#play")  # pause
    settle(page)
    step = int(page.evaluate("document.querySelector('.playback-controls').dataset.step"))
    assert page.locator("#play-step").text_content() == f"{step:02d}:00–{step:02d}:59"
    assert json.loads(panel(page)["params"])["hours"] == f"{step}-{step}"
    view = [float(v) for v in page.evaluate("citystack.bbox()").split(",")]
    want = sum(r["t"].hour == step and view[0] <= float(r["start_lng"]) <= view[2]
               and view[1] <= float(r["start_lat"]) <= view[3] for r in rows)
    assert int(page.evaluate("document.body.dataset.total")) == want
    assert int(panel(page)["total"]) == hours[step]  # the charts count the whole layer
    page.click("#play-stop")
    settle(page)
    assert "hours" not in json.loads(panel(page)["params"])
