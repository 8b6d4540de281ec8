"""The page explores a user's own file: its names, colour by any field, the
tooltip and the pinned card, the permalink, and a phone-sized screen.

Driven like tests/test_browser.py (Debian's chromium through Playwright, outside
requests aborted, the page under its real Content-Security-Policy, state polled
with `wait_for`). The data is a street-tree CSV made here with the file's own
names (`Tree_ID`, `Common_Name`, `Trunk_Diameter`, `Genus`, `Date/Time`), loaded
with the CLI; every count the page shows is checked against the CSV read with
Python's `csv`.
"""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
import requests

from conftest import AIRBNB, Server, citystack, needs_shared
from test_browser import browser, ARGS, CHROMIUM, IDLE, LONE_POINT, READY, Page, sync_api, wait_for  # noqa: F401,E402  (browser: the one launch of Chromium)

pytestmark = pytest.mark.browser

NAMES = ["Tree_ID", "Common_Name", "Trunk_Diameter", "Genus", "Date/Time", "Latitude", "Longitude"]
GENERA = {"QUERCUS": ["Red Oak", "Pin Oak"], "ACER": ["Norway Maple", "Red Maple"], "PLATANUS": ["London Plane"],
          "TILIA": ["Littleleaf Linden"], "ULMUS": ["American Elm"]}

# What the legend lists: [{value, count, colour}] of its entries.
LEGEND_ITEMS = """() => [...document.querySelectorAll('#legend li')].map((li) => ({
  value: li.dataset.value, count: li.dataset.count === undefined ? null : Number(li.dataset.count),
  colour: getComputedStyle(li.querySelector('.swatch')).backgroundColor}))"""


def write_trees(path, n=300, seed=9):
    rng = random.Random(seed)
    genera = list(GENERA)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(NAMES)
        for i in range(n):
            genus = rng.choices(genera, [40, 25, 15, 12, 8])[0]
            w.writerow([5000 + i, rng.choice(GENERA[genus]), round(rng.uniform(2, 60), 1), genus,
                        f"{rng.randint(1, 12)}/{rng.randint(1, 28)}/2019 {rng.randint(0, 23)}:{rng.randint(0, 59):02d}:00",
                        round(40.70 + rng.uniform(0, 0.05), 6), round(-74.00 + rng.uniform(0, 0.05), 6)])


def write_alpha(path):
    """A second, small layer elsewhere: the page opens on it, so a link must choose trees."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name", "price", "lat", "lon"])
        for i in range(12):
            w.writerow([f"bench {i}", 10 + i, 51.50 + i * 0.001, -0.12 + i * 0.001])


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    folder = tmp_path_factory.mktemp("trees")
    write_trees(folder / "trees.csv")
    write_alpha(folder / "alpha.csv")
    db = folder / "trees.duckdb"
    citystack("load", folder / "trees.csv", "--layer", "trees", "--db", db)
    citystack("load", folder / "alpha.csv", "--layer", "alpha", "--db", db)
    with open(folder / "trees.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    srv = Server(db, env={"CITYSTACK_CLASSIC_LAYER": "alpha"})
    srv.rows = rows
    yield srv
    srv.stop()


@pytest.fixture
def web(browser, trees):
    page = Page(browser, trees)
    yield page
    page.close()


def api(server, path, **params):
    response = requests.get(server.url + path, params=params, timeout=30)
    response.raise_for_status()
    return response.json()


def field_name(server, name):
    """The API's name for the file's column `name` (the same once ingest keeps names)."""
    fields = [f["name"] for f in api(server, "/api/layers/trees")["fields"]]
    return next(f for f in fields if f.lower().replace("/", "_") == name.lower().replace("/", "_"))


def open_trees(web, fragment=""):
    """The page on the trees layer, the whole layer in view."""
    page = web.page
    page.goto(web.server.url + "/" + fragment)
    wait_for(page, READY)
    if page.evaluate("document.getElementById('layer').value") != "trees":
        page.select_option("#layer", "trees")
        wait_for(page, "document.body.dataset.points === '300' && " + IDLE)
    web.wait_idle()
    return page


def colour_by(web, field, scale=None):
    page = web.page
    page.select_option("#colour", field)
    if scale:
        page.select_option("#colour-scale", scale)
    wait_for(page, f"document.getElementById('legend').dataset.field === {field!r} && {IDLE}")


def hover_lone_point(page):
    point = page.evaluate(LONE_POINT)
    assert point, "no lone point to hover"
    page.mouse.move(point["x"], point["y"])
    page.locator("#tooltip").wait_for(state="visible", timeout=5000)
    return point


def feature(server, fid):
    """The API's feature `fid` with every field."""
    layer = api(server, "/api/layers/trees")
    features = api(server, "/api/layers/trees/features", limit=1000)["features"]
    assert len(features) == layer["count"] == 300
    return next(f for f in features if str(f["id"]) == str(fid))


# ---- names, tooltip, default colour ----

def test_field_lists_and_tooltip_show_the_files_names(web):
    page = open_trees(web)
    colours = page.evaluate("[...document.querySelectorAll('#colour option')].map((o) => o.value)")
    assert {"Trunk_Diameter", "Genus", "Date/Time"} <= set(colours), colours
    tips = page.evaluate("[...document.querySelectorAll('#tip-fields .field-name')].map((e) => e.textContent)")
    assert {"Tree_ID", "Common_Name", "Trunk_Diameter", "Genus", "Date/Time"} <= set(tips), tips
    hover_lone_point(page)
    labels = page.evaluate("[...document.querySelectorAll('#tooltip dt')].map((e) => e.textContent)")
    assert {"Trunk_Diameter", "Genus"} <= set(labels), labels
    page.select_option("#analysis", "interpolate")
    analysis_fields = page.evaluate("[...document.querySelectorAll('#param-field option')].map((o) => o.value)")
    assert "Trunk_Diameter" in analysis_fields, analysis_fields
    assert web.errors == [] and web.violations() == []


def test_tooltip_leads_with_the_name_field(web, trees):
    page = open_trees(web)
    point = hover_lone_point(page)
    title = page.locator("#tooltip .tooltip-title").text_content()
    expected = feature(trees, point["id"])["properties"][field_name(trees, "Common_Name")]
    assert title == expected
    assert not title.startswith("feature ")
    # the other fields follow, under the API's names for them
    labels = page.evaluate("[...document.querySelectorAll('#tooltip dt')].map((e) => e.textContent)")
    assert field_name(trees, "Genus") in labels and field_name(trees, "Trunk_Diameter") in labels
    assert web.errors == []


def test_tooltip_fields_can_be_chosen(web, trees):
    page = open_trees(web)
    genus = field_name(trees, "Genus")
    page.click(".tip-choice summary")
    index = [f["name"] for f in api(trees, "/api/layers/trees")["fields"]].index(genus)
    box = page.locator("#tip-fields input").nth(index)
    assert box.get_attribute("value") == genus and box.is_checked()
    box.uncheck()
    web.wait_idle()
    hover_lone_point(page)
    labels = page.evaluate("[...document.querySelectorAll('#tooltip dt')].map((e) => e.textContent)")
    assert genus not in labels and field_name(trees, "Trunk_Diameter") in labels


def test_default_colour_is_not_an_id(web, trees):
    page = open_trees(web)
    colour = page.locator("#colour").input_value()
    assert colour and colour.lower() != "tree_id"
    assert colour != field_name(trees, "Tree_ID")
    assert page.locator("#legend").get_attribute("data-field") == colour
    # and an id is not offered to colour by at all
    options = page.evaluate("[...document.querySelectorAll('#colour option')].map((o) => o.value)")
    assert field_name(trees, "Tree_ID") not in options


# ---- colour by any field ----

def test_colour_by_a_category_lists_its_values_with_counts(web, trees):
    page = open_trees(web)
    genus = field_name(trees, "Genus")
    colour_by(web, genus)
    items = page.evaluate(LEGEND_ITEMS)
    expected = Counter(r["Genus"] for r in trees.rows)
    assert {i["value"]: i["count"] for i in items} == dict(expected)
    assert [i["value"] for i in items] == [v for v, _ in expected.most_common()]
    assert len({i["colour"] for i in items}) == len(items), items  # distinct colours
    # the drawn points take their value's colour: as many colours on the canvas as values in view
    assert web.errors == [] and web.violations() == []


def test_clicking_a_legend_entry_filters_by_it(web, trees):
    page = open_trees(web)
    genus = field_name(trees, "Genus")
    colour_by(web, genus)
    counts = Counter(r["Genus"] for r in trees.rows)
    assert page.evaluate("document.body.dataset.points") == "300"
    with page.expect_request(lambda r: "/api/layers/trees/features" in r.url and
                             parse_qs(urlparse(r.url).query).get(genus) == ["ACER"]):
        page.locator("#legend button.category", has_text="ACER").click()
    wait_for(page, f"document.body.dataset.points === '{counts['ACER']}' && {IDLE}")
    assert page.locator("#legend li.off").count() == len(counts) - 1
    assert page.locator("#legend button[aria-pressed=true]").text_content().startswith("ACER")
    # the filter is in the shared state, for every request
    assert page.evaluate("citystack.state.filters") == [{"field": genus, "op": "in", "value": ["ACER"]}]
    assert page.evaluate("citystack.lastQuery")[genus] == ["ACER"]
    # clicking it again takes the filter away
    page.locator("#legend button.category", has_text="ACER").click()
    wait_for(page, f"document.body.dataset.points === '300' && {IDLE}")
    assert page.evaluate("citystack.state.filters") == []


def test_clicking_two_legend_entries_keeps_both(web, trees):
    """Several values of one field: the contract's repeated FIELD=v (needs the query helper's multi-value filters)."""
    page = open_trees(web)
    genus = field_name(trees, "Genus")
    colour_by(web, genus)
    counts = Counter(r["Genus"] for r in trees.rows)
    page.locator("#legend button.category", has_text="TILIA").click()
    wait_for(page, f"document.body.dataset.points === '{counts['TILIA']}' && {IDLE}")
    with page.expect_request(lambda r: "/api/layers/trees/bins" in r.url and
                             parse_qs(urlparse(r.url).query).get(genus) == ["TILIA", "ULMUS"]):
        page.locator("#legend button.category", has_text="ULMUS").click()
    wait_for(page, "document.body.dataset.busy === '0'")
    assert page.locator("#status").text_content() == "idle"
    assert int(page.evaluate("document.body.dataset.points")) == counts["TILIA"] + counts["ULMUS"]
    page.click("#legend .legend-all")
    wait_for(page, f"document.body.dataset.points === '300' && {IDLE}")


def test_a_numeric_colour_keeps_its_scale_while_the_view_moves(web, trees):
    page = open_trees(web)
    diameter = field_name(trees, "Trunk_Diameter")
    colour_by(web, diameter, "linear")
    legend = page.locator("#legend")
    values = sorted(float(r["Trunk_Diameter"]) for r in trees.rows)
    assert float(legend.get_attribute("data-min")) == values[0]
    assert float(legend.get_attribute("data-max")) == values[-1]
    # zoom into a corner: the colours keep their meaning (the legend too)
    page.evaluate("citystack.setView(40.71, -73.99, 17)")
    web.wait_idle()
    shown = int(page.evaluate("document.body.dataset.points"))
    assert 0 < shown < 300
    assert float(legend.get_attribute("data-min")) == values[0]
    assert float(legend.get_attribute("data-max")) == values[-1]
    # until the user resets them to the view
    bbox = page.evaluate("citystack.bbox()")
    here = [f["properties"][diameter] for f in
            api(trees, "/api/layers/trees/features", bbox=bbox, limit=1000, properties=diameter)["features"]]
    assert len(here) == shown
    page.click("#reset-scale")
    wait_for(page, f"Number(document.getElementById('legend').dataset.max) === {max(here)} && {IDLE}")
    assert float(legend.get_attribute("data-min")) == min(here)
    labels = legend.locator(".legend-labels").text_content()
    assert "median" in labels


def test_colour_by_hour_of_day(web, trees):
    page = open_trees(web)
    colour_by(web, "Date/Time", "hour")
    legend = page.locator("#legend")
    assert legend.get_attribute("data-scale") == "hour"
    assert "hour of day" in legend.text_content()


# ---- the pinned card ----

def test_a_click_pins_a_card_with_every_field(web, trees):
    page = open_trees(web)
    point = page.evaluate(LONE_POINT)
    page.mouse.click(point["x"], point["y"])
    card = page.locator("#card")
    card.wait_for(state="visible", timeout=5000)
    wait_for(page, "document.getElementById('card').dataset.complete === '1'", 10_000)
    expected = feature(trees, point["id"])
    names = page.evaluate("[...document.querySelectorAll('#card dt:not(.card-id)')].map((e) => e.textContent)")
    values = page.evaluate("[...document.querySelectorAll('#card dd:not(.card-id)')].map((e) => e.textContent)")
    layer_fields = [f["name"] for f in api(trees, "/api/layers/trees")["fields"]]
    assert names == layer_fields
    shown = dict(zip(names, values))
    for name, value in expected["properties"].items():
        if isinstance(value, float):
            assert float(shown[name].replace(",", "")) == pytest.approx(value, rel=1e-3), name
        else:
            assert shown[name].replace(",", "") == str(value), name
    assert page.locator("#card .card-title").text_content() == expected["properties"][field_name(trees, "Common_Name")]
    page.click("#card .card-close")
    assert card.is_hidden()
    assert web.errors == [] and web.violations() == []


# ---- the permalink ----

def copy_link(browser, trees, steps):
    """Do `steps(web, page)` on a page of its own; the URL it ends with."""
    web = Page(browser, trees)
    try:
        page = open_trees(web)
        out = steps(web, page)
        return page.url, out
    finally:
        web.close()


def open_link(browser, trees, link, ready):
    web = Page(browser, trees)
    web.page.goto(link)
    wait_for(web.page, ready + " && " + IDLE, 90_000)
    return web


def test_a_permalink_restores_layer_view_colour_and_filters(browser, trees):
    genus = field_name(trees, "Genus")
    counts = Counter(r["Genus"] for r in trees.rows)

    def steps(web, page):
        page.evaluate("citystack.setView(40.722, -73.978, 15)")
        web.wait_idle()
        colour_by(web, genus)
        page.locator("#legend button.category", has_text="QUERCUS").click()
        wait_for(page, f"citystack.state.filters.length === 1 && {IDLE}")
        return int(page.evaluate("document.body.dataset.points"))

    link, shown = copy_link(browser, trees, steps)
    assert 0 < shown <= counts["QUERCUS"]
    hash_ = parse_qs(urlparse(link).fragment)
    assert hash_["layer"] == ["trees"] and hash_["colour"] == [genus]

    fresh = open_link(browser, trees, link, "citystack.state.layer && citystack.state.layer.name === 'trees'")
    try:
        page = fresh.page
        assert page.locator("#layer").input_value() == "trees"
        centre = page.evaluate("[citystack.map.getCenter().lat, citystack.map.getCenter().lng, citystack.map.getZoom()]")
        assert centre[0] == pytest.approx(40.722, abs=1e-4) and centre[1] == pytest.approx(-73.978, abs=1e-4)
        assert centre[2] == 15
        assert page.locator("#colour").input_value() == genus
        assert page.evaluate("citystack.state.filters") == [{"field": genus, "op": "in", "value": ["QUERCUS"]}]
        assert int(page.evaluate("document.body.dataset.points")) == shown
        # the drawn points are the QUERCUS trees of that view, as the API counts them
        bbox = page.evaluate("citystack.bbox()")
        assert shown == len(api(trees, "/api/layers/trees/features", bbox=bbox, limit=1000, **{genus: "QUERCUS"})["features"])
        assert page.locator("#legend button[aria-pressed=true]").text_content().startswith("QUERCUS")
        assert page.locator("#link-note").is_hidden()
        assert fresh.errors == [] and fresh.violations() == []
    finally:
        fresh.close()


def test_a_permalink_reruns_the_open_analysis(browser, trees):
    def steps(web, page):
        page.evaluate("citystack.setView(40.725, -73.975, 15)")
        web.wait_idle()
        page.select_option("#analysis", "clusters")
        page.select_option("#param-method", "kmeans")
        page.fill("#param-k", "3")
        page.click("#run-analysis")
        wait_for(page, f"document.body.dataset.overlay === 'clusters' && {IDLE}", 90_000)
        return page.evaluate("citystack.lastResult")

    link, first = copy_link(browser, trees, steps)
    hash_ = parse_qs(urlparse(link).fragment)
    assert hash_["analysis"] == ["clusters"] and hash_["p.k"] == ["3"] and hash_["p.method"] == ["kmeans"]
    fresh = open_link(browser, trees, link, "document.body.dataset.overlay === 'clusters'")
    try:
        page = fresh.page
        assert page.locator("#analysis").input_value() == "clusters"
        assert page.locator("#param-k").input_value() == "3"
        again = page.evaluate("citystack.lastResult")
        assert again["input"]["count"] == first["input"]["count"]
        assert len(again["clusters"]) == len(first["clusters"]) == 3
        assert page.locator("#overlay-legend").is_visible()
        assert fresh.errors == [] and fresh.violations() == []
    finally:
        fresh.close()


def test_stale_values_in_a_link_are_ignored_with_a_note(web, trees):
    page = web.page
    page.goto(trees.url + "/#layer=gone&colour=Nope&filters=%5B1%2C2&analysis=nothing&days=Xyz")
    wait_for(page, READY)
    note = page.locator("#link-note")
    note.wait_for(state="visible", timeout=5000)
    text = note.text_content()
    assert "gone" in text and "Nope" in text and "days=Xyz" in text and "filters" in text
    assert page.locator("#layer").input_value() == "alpha"
    assert page.locator("#status").text_content() == "idle"
    assert int(page.evaluate("document.body.dataset.points")) == 12
    note.locator("button").click()
    assert note.is_hidden()
    # the URL now says what is shown
    assert "layer=alpha" in page.url and "gone" not in page.url
    # a stale field on a layer that exists: the rest still applies
    page.goto(trees.url + "/#layer=trees&colour=Nope&analysis=clusters&p.nonsense=1")
    wait_for(page, f"document.body.dataset.overlay === 'clusters' && {IDLE}", 90_000)
    assert page.locator("#layer").input_value() == "trees"
    text = page.locator("#link-note").text_content()
    assert "Nope" in text and "nonsense" in text
    assert web.errors == []


def test_a_filter_value_the_server_refuses_is_dropped_with_a_note(web, trees):
    diameter = field_name(trees, "Trunk_Diameter")
    filters = json.dumps([{"field": diameter, "op": "min", "value": "abc"}])
    page = web.page
    page.goto(trees.url + "/#" + urlencode({"layer": "trees", "filters": filters}))
    wait_for(page, "citystack.state.layer && document.body.dataset.points === '300' && " + IDLE)
    note = page.locator("#link-note")
    note.wait_for(state="visible", timeout=5000)
    assert "filters" in note.text_content()
    assert page.evaluate("citystack.state.filters") == []


# Colourings of a time field, made by the page's own module over a layer description and ISO times.
TIME_COLOURS = """async () => {
  const {colouring} = await import('/static/js/colourby.js');
  const layer = {name: 't', count: 4, fields: [{name: 'Date/Time', type: 'time', min: '2019-01-01T00:00:00', max: '2019-12-31T23:00:00'}]};
  const values = ['2019-03-01T23:10:00', '2019-03-02T00:05:00', '2019-07-04 12:00:00', '2019-12-31T06:00:00.250', null];
  const hour = colouring(layer, {field: 'Date/Time', scale: 'hour', domain: null}, values);
  const date = colouring(layer, {field: 'Date/Time', scale: 'date', domain: null}, values);
  return {
    hours: values.map(hour.index), colours: hour.colours, hourNote: hour.legend.note,
    dates: values.map(date.index), dateLabels: date.legend.labels,
  };
}"""


def test_colour_by_time_uses_the_hour_on_a_cycle_or_the_date_in_order(web):
    page = open_trees(web)
    out = page.evaluate(TIME_COLOURS)
    assert out["hours"] == [23, 0, 12, 6, -1]
    assert out["hourNote"] == "hour of day"
    # cyclic: 23:00 and 00:00 are neighbours in colour, noon is far from both
    def rgb(c):
        return [int(c[i:i + 2], 16) for i in (1, 3, 5)] if c.startswith("#") else [int(v) for v in c[4:-1].split(",")]
    def gap(a, b):
        return sum(abs(x - y) for x, y in zip(rgb(a), rgb(b)))
    colours = out["colours"]
    assert len(set(colours)) == 24
    assert gap(colours[23], colours[0]) < gap(colours[12], colours[0]) / 3
    # by date: in time order, the first and last dates at the ends
    dates = out["dates"]
    assert dates[0] <= dates[1] < dates[2] < dates[3] and dates[4] == -1
    assert dates[0] == 0 and dates[3] == 47
    assert out["dateLabels"][0] == "2019-03-01" and out["dateLabels"][2] == "2019-12-31"


# ---- a phone ----

def test_phone_fits_the_layer_into_the_visible_map_and_folds_legends(browser, trees):
    web = Page(browser, trees, 390, 844)
    try:
        page = web.page
        page.goto(trees.url + "/")
        wait_for(page, READY)
        legend = page.locator("#legend")
        assert legend.is_visible()
        assert page.locator("#legend .legend-body").is_hidden()  # folded
        page.click("#legend .legend-title")
        assert page.locator("#legend .legend-body").is_visible()
        page.click("#legend .legend-title")
        assert page.locator("#legend .legend-body").is_hidden()
        # choose the layer from the menu, as a user does
        page.click("#menu-toggle")
        page.select_option("#layer", "trees")
        wait_for(page, f"document.body.dataset.points === '300' && {IDLE}")
        page.screenshot(path="/tmp/p1-phone.png")
        assert page.locator("#menu-toggle").get_attribute("aria-expanded") == "false"
        panel = page.locator("#panel").bounding_box()
        legends = page.locator(".legends").bounding_box()
        points = page.evaluate("citystack.drawnPoints()")
        assert len(points) == 300
        xs = [p["x"] for p in points]
        ys = [p["y"] for p in points]
        top = panel["y"] + panel["height"]
        assert min(ys) > top, (min(ys), top)  # nothing under the menu
        under_legend = [p for p in points if p["x"] < legends["x"] + legends["width"] and p["y"] > legends["y"]]
        assert not under_legend
        assert min(xs) >= 0 and max(xs) <= 390 and max(ys) <= 844
        # the data fills the visible map: most of its width or height
        assert (max(xs) - min(xs)) > 0.6 * 390 or (max(ys) - min(ys)) > 0.6 * (844 - top)
        assert web.errors == []
    finally:
        web.close()


# ---- clusters ----

CLUSTER_LEGEND = """async () => {
  const {clustersLegend} = await import('/static/js/clusters.js');
  const sizes = [40, 300, 12, 12, 90, 5, 5, 5, 7, 8, 9, 10, 11, 30, 2];
  const clusters = sizes.map((size, label) => ({label, size, hull: []}));
  const label = [-1, -1, -1, ...sizes.flatMap((s, l) => Array(s).fill(l))];
  const target = document.createElement('div');
  document.body.append(target);
  clustersLegend(target, {clusters, points: {label, lon: [], lat: []}});
  const items = [...target.querySelectorAll('li')].map((li) => ({
    text: li.textContent, colour: getComputedStyle(li.querySelector('.swatch')).backgroundColor}));
  target.remove();
  return items;
}"""


def test_cluster_colours_are_distinct_and_the_largest_is_not_grey(web):
    page = open_trees(web)
    items = page.evaluate(CLUSTER_LEGEND)
    colours = [i["colour"] for i in items]
    assert len(set(colours)) == len(colours), items
    assert items[0]["text"].startswith("cluster 1:")  # the largest first
    noise = next(i for i in items if i["text"].startswith("noise"))
    assert items[0]["colour"] != noise["colour"]
    # the largest cluster's colour is not a grey
    r, g, b = (int(v) for v in items[0]["colour"][4:-1].split(","))
    assert max(r, g, b) - min(r, g, b) > 40


# ---- the real listings ----

@needs_shared(AIRBNB)
def test_colour_airbnb_by_room_type(browser, duckdb_server):
    with open(AIRBNB, newline="", encoding="utf-8") as f:
        expected = Counter(r["room_type"] for r in csv.DictReader(f))
    web = Page(browser, duckdb_server)
    try:
        page = web.page
        page.goto(duckdb_server.url + "/#layer=nyc&colour=room_type")
        wait_for(page, READY, 60_000)
        web.wait_idle(60_000)
        assert page.locator("#layer").input_value() == "nyc"
        wait_for(page, "document.getElementById('legend').dataset.field === 'room_type'")
        items = page.evaluate(LEGEND_ITEMS)
        assert {i["value"]: i["count"] for i in items} == dict(expected)
        assert len(items) == 3
        assert web.errors == []
    finally:
        web.close()
