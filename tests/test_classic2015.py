"""The 2015 routes reproduce the 2015 server: its heat map (against a port of
the 2015 loop, tests/classic2015.py), a clean answer for a view with no area,
and the check-in category filter (against a brute force over the layer's rows).

In-process: the app on the session's store, through Flask's test client.
"""

from __future__ import annotations

import math
from collections import defaultdict
from itertools import combinations

import numpy as np
import pytest

import classic2015
from citystack.app import create_app
from citystack.settings import Settings
from citystack.stores import View
from conftest import AIRBNB, FOURSQUARE, needs_shared, flat

_apps: dict = {}


def client(store, **settings):
    """A test client of the app on `store`, with the settings given (from the
    environment's spelling, ``CITYSTACK_<NAME>``, so the names are tested too)."""
    key = (id(store), tuple(sorted(settings.items())))
    if key not in _apps:
        env = {f"CITYSTACK_{name.upper()}": str(value) for name, value in settings.items()}
        _apps[key] = create_app(Settings.from_env(env), store)
    return _apps[key].test_client()


def get_data(c, south, north, west, east, **extra):
    r = c.get("/getData/", query_string={"lat1": south, "lat2": north, "lng1": west, "lng2": east, **extra})
    return r.status_code, r.get_json()


# --- the heat map ------------------------------------------------------------------------------

def check_against_port(c, store, layer, view, w, h, cell):
    south, north, west, east = view
    status, body = get_data(c, *view, w=w, h=h, cell_size=cell, analysis="true", analysisType="heatmap")
    assert status == 200
    pts = flat(store.features(layer, View(bbox=(west, south, east, north)), [], 1_000_000))
    assert len(body["features"]) == len(pts["id"]) > 0  # the server used every point in view
    ref = classic2015.heatmap(list(zip(pts["lat"].tolist(), pts["lon"].tolist())), south, north, west, east,
                              w, h, cell)
    cells = body["analysis"]
    assert len(cells) == len(ref) == (w // cell) * (h // cell)
    assert [(c["x"], c["y"], c["width"], c["height"]) for c in cells] == \
        [(r["x"], r["y"], r["width"], r["height"]) for r in ref]  # same shape, same cell order
    got = np.array([c["value"] for c in cells], dtype=float)
    want = np.array([r["value"] for r in ref])
    assert np.all((got >= 0) & (got <= 1)) and got.min() == 0 and got.max() == 1  # min-max
    corr = np.corrcoef(got, want)[0, 1]
    assert corr >= 0.99, corr
    return corr


# A view of 1,509 sample listings on a 80 x 60 grid, and a sparse one (119 on 120 x 80).
SAMPLE_VIEWS = [((22.53, 22.55, 114.04, 114.07), (640, 480, 8)),
                ((22.58, 22.60, 114.00, 114.05), (600, 400, 5))]


@pytest.mark.parametrize("view,window", SAMPLE_VIEWS, ids=["dense", "sparse"])
def test_heatmap_reproduces_the_2015_loop(store, view, window):
    check_against_port(client(store), store, "listings", view, *window)


@needs_shared(AIRBNB)
def test_heatmap_reproduces_the_2015_loop_on_nyc_listings(store):
    # Williamsburg: 1,793 listings on a 100 x 62 grid.
    check_against_port(client(store, classic_layer="nyc"), store, "nyc", (40.71, 40.72, -73.96, -73.94),
                       803, 500, 8)


def test_heatmap_of_one_point_is_the_2015_kernel(store):
    """One listing alone in view: a Gaussian of 6 cells cut square at 12 cells,
    remapped to 0..1 (the rest of the grid is 0: the minimum)."""
    every = store.columns("listings", View(bbox=tuple(store.layer("listings").extent)), ["lon", "lat"])
    lons, lats = every["lon"], every["lat"]
    for lon, lat in zip(lons.tolist(), lats.tolist()):  # a listing with no other within 0.005 degrees
        near = (np.abs(lons - lon) < 0.005) & (np.abs(lats - lat) < 0.005)
        if near.sum() == 1:
            break
    else:
        pytest.fail("no isolated listing in the sample city")
    south, north, west, east = lat - 0.0031, lat + 0.0019, lon - 0.0021, lon + 0.0029
    w, h, cell = 400, 400, 10  # 40 x 40 cells of 0.000125 degrees
    status, body = get_data(client(store), south, north, west, east, w=w, h=h, cell_size=cell,
                            analysis="true")
    assert status == 200 and len(body["features"]) == 1
    i0 = math.floor((lon - west) / (east - west) * w / cell)  # the point's cell, columns west to east
    j0 = math.floor((north - lat) / (north - south) * h / cell)  # rows north to south
    values = np.array([c["value"] for c in body["analysis"]]).reshape(40, 40)
    jj, ii = np.mgrid[0:40, 0:40]
    inside = (np.abs(ii - i0) <= 12) & (np.abs(jj - j0) <= 12)
    expected = np.where(inside, np.exp(-((ii - i0) ** 2 + (jj - j0) ** 2) / 72.0), 0.0)
    assert values[j0, i0] == 1 and values[j0, i0 + 12] == pytest.approx(math.exp(-2.0))
    assert np.abs(values - expected).max() < 1e-12


# --- a view with no area -----------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["heatmap", "interp"])
@pytest.mark.parametrize("view", [(22.54, 22.54, 114.04, 114.07), (22.53, 22.55, 114.05, 114.05)],
                         ids=["no-height", "no-width"])
def test_view_with_no_area_answers_an_empty_analysis(store, kind, view):
    c = client(store)
    status, body = get_data(c, *view, w=300, h=200, cell_size=10, analysis="true", analysisType=kind)
    assert status == 200 and body["analysis"] == []
    plain_status, plain = get_data(c, *view)
    assert plain_status == 200 and body["features"] == plain["features"]


# --- the check-in category filter --------------------------------------------------------------

def brute_force_network(store, layer, places_layer, view, category):
    """Places of `category` in view linked by at least two shared users (over
    the check-ins in view), from the layers' rows."""
    south, north, west, east = view
    bbox = View(bbox=(west, south, east, north))
    rows = store.columns(layer, bbox, ["user", "place"])
    places = store.columns(places_layer, bbox, ["id", "lon", "lat", "name", "category"])
    kept = {pid: (lat, lon, name) for pid, lon, lat, name, cat in
            zip(places["id"].tolist(), places["lon"].tolist(), places["lat"].tolist(),
                places["name"].tolist(), places["category"].tolist()) if cat == category}
    by_user = defaultdict(set)
    for user, place in zip(rows["user"].tolist(), rows["place"].tolist()):
        if place in kept:
            by_user[user].add(place)
    shared = defaultdict(int)
    for visited in by_user.values():
        for p, q in combinations(sorted(visited), 2):
            shared[p, q] += 1
    lines = {frozenset(pair) for pair, n in shared.items() if n >= 2}
    score = defaultdict(int)
    for pair in lines:
        for p in pair:
            score[p] += 1
    return kept, lines, dict(score)


def check_category(store, layer, view, category):
    c = client(store, classic_layer=layer, classic_category=category)
    status, body = get_data(c, *view)
    assert status == 200
    places_layer = store.layer(layer).places
    kept, lines, score = brute_force_network(store, layer, places_layer, view, category)
    assert len(lines) > 0
    got_lines = [frozenset((line["from"], line["to"])) for line in body["lines"]]
    assert len(got_lines) == len(set(got_lines)) and set(got_lines) == lines
    assert {f["id"]: f["properties"]["score"] for f in body["features"]} == score
    for f in body["features"]:
        lat, lon, name = kept[f["id"]]
        assert f["properties"] == {"name": name, "cat": category, "score": score[f["id"]]}
        assert f["geometry"] == {"type": "Point", "coordinates": [lat, lon]}
    for line in body["lines"]:
        assert line["coordinates"] == [*kept[line["from"]][:2], *kept[line["to"]][:2]]
    # Not vacuous: without the setting, other categories answer too.
    _, everything = get_data(client(store, classic_layer=layer), *view)
    assert {f["properties"]["cat"] for f in everything["features"]} - {category}
    assert len(everything["lines"]) > len(body["lines"])


def test_category_filter_keeps_only_that_category(store):
    check_category(store, "checkins", (22.52, 22.57, 114.03, 114.09), "Food")


@needs_shared(FOURSQUARE)
def test_category_filter_on_foursquare(store):
    check_category(store, "fsq", (40.70, 40.73, -74.01, -73.97), "Food")


def test_category_filter_is_an_exact_match(store):
    for category in ("food", "Foo", "Food "):
        status, body = get_data(client(store, classic_layer="checkins", classic_category=category),
                                22.52, 22.57, 114.03, 114.09)
        assert status == 200 and body["features"] == [] and body["lines"] == []


def test_category_setting_is_off_by_default():
    assert Settings.from_env({}).classic_category == ""
    assert Settings.from_env({"CITYSTACK_CLASSIC_CATEGORY": "Food/Drinks"}).classic_category == "Food/Drinks"
