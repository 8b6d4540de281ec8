"""Privacy thresholds: cells below min_count points or min_users users are withheld,
exactly those, on bins, hexagons, the heatmap analysis and the 2015 heat map."""

from __future__ import annotations

import collections
import math

import h3
import numpy as np
import pytest

BBOX = (114.03, 22.52, 114.09, 22.57)


def points(client, layer, **query):
    r = client.get(f"/api/layers/{layer}/features", query_string={"limit": 50000, **query})
    assert r.status_code == 200
    return [(f["geometry"]["coordinates"], f["properties"]) for f in r.get_json()["features"]]


def bins(client, layer, **query):
    r = client.get(f"/api/layers/{layer}/bins", query_string=query)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


def square_cells(grid, pts):
    """Each point's (i, j) cell of a bins answer's grid, as the bins formula puts it."""
    minx, miny = grid["bbox"][0], grid["bbox"][1]
    for (lon, lat), p in pts:
        i = min(math.floor((lon - minx) / grid["dx"]), grid["nx"] - 1)
        j = min(math.floor((lat - miny) / grid["dy"]), grid["ny"] - 1)
        yield (i, j), p


@pytest.mark.parametrize("shape", ["square", "h3"])
def test_min_count_withholds_exactly_the_small_cells(client, shape):
    query = {"shape": shape, "cells": 40, "resolution": 9}
    full = bins(client, "listings", **query)
    key = (lambda p: p["h3"]) if shape == "h3" else (lambda p: (p["i"], p["j"]))
    counts = {key(f["properties"]): f["properties"]["count"] for f in full["features"]}
    assert min(counts.values()) < 4 < max(counts.values())
    kept = bins(client, "listings", min_count=4, **query)
    assert {key(f["properties"]): f["properties"]["count"] for f in kept["features"]} == \
        {k: c for k, c in counts.items() if c >= 4}
    assert kept["withheld"] == sum(1 for c in counts.values() if c < 4) and kept["min_count"] == 4


def test_min_users_on_checkin_bins(client_with):
    client = client_with(checkin_min_users=0)
    pts = points(client, "checkins", bbox=",".join(map(str, BBOX)))
    full = bins(client, "checkins", bbox=",".join(map(str, BBOX)), cells=30)
    users = collections.defaultdict(set)
    for cell, p in square_cells(full["grid"], pts):
        users[cell].add(p["user"])
    assert {(f["properties"]["i"], f["properties"]["j"]) for f in full["features"]} == set(users)
    got = bins(client, "checkins", bbox=",".join(map(str, BBOX)), cells=30, min_users=4)
    assert {(f["properties"]["i"], f["properties"]["j"]): f["properties"]["users"] for f in got["features"]} == \
        {c: len(u) for c, u in users.items() if len(u) >= 4}
    assert got["withheld"] == sum(1 for u in users.values() if len(u) < 4) > 0
    hexes = collections.defaultdict(set)
    for (lon, lat), p in pts:
        hexes[h3.latlng_to_cell(lat, lon, 9)].add(p["user"])
    got = bins(client, "checkins", bbox=",".join(map(str, BBOX)), shape="h3", resolution=9, min_users=4)
    assert {f["properties"]["h3"] for f in got["features"]} == {c for c, u in hexes.items() if len(u) >= 4}
    assert got["withheld"] == sum(1 for u in hexes.values() if len(u) < 4) > 0


def test_checkin_default_and_server_floor(client_with):
    default = bins(client_with(), "checkins", cells=30)
    assert default["min_users"] == 3  # check-in layers: 3 users unless the server says otherwise
    assert bins(client_with(), "checkins", cells=30, min_users=1)["min_users"] == 3
    assert bins(client_with(), "listings", cells=30).get("min_users", 0) == 0  # none in force: the plain bins
    floor = client_with(min_count=5)
    assert bins(floor, "listings", cells=30, min_count=2)["min_count"] == 5
    assert bins(floor, "listings", cells=30, min_count=9)["min_count"] == 9
    r = floor.get("/api/layers/listings/bins?min_users=2")
    assert r.status_code == 400 and r.get_json()["parameter"] == "min_users"


def test_heatmap_cells_withheld(client):
    bbox = ",".join(map(str, BBOX))
    full = client.get("/api/analyses/heatmap", query_string={"layer": "listings", "bbox": bbox, "cells": 20}).get_json()
    got = client.get("/api/analyses/heatmap",
                     query_string={"layer": "listings", "bbox": bbox, "cells": 20, "min_count": 6}).get_json()
    grid = got["grid"]
    minx, miny, maxx, maxy = grid["bbox"]
    counts = np.zeros((grid["ny"], grid["nx"]), int)
    for (lon, lat), _ in points(client, "listings", bbox=bbox):
        i = min(math.floor((lon - minx) / ((maxx - minx) / grid["nx"])), grid["nx"] - 1)
        j = min(math.floor((lat - miny) / ((maxy - miny) / grid["ny"])), grid["ny"] - 1)
        counts[grid["ny"] - 1 - j, i] += 1  # rows north to south, as sent
    density = np.array(got["grid"]["density"], dtype=float)
    assert np.array_equal(np.isnan(density), counts < 6) and 0 < got["withheld"] == int((counts < 6).sum())
    plain = np.array(full["grid"]["density"], dtype=float)
    assert np.array_equal(density[counts >= 6], plain[counts >= 6])


def test_classic_heat_map_cells_withheld(client_with):
    """The 2015 /getData/ heat map: cells holding fewer points than the server's min_count are not sent."""
    view = {"lat1": 22.53, "lat2": 22.55, "lng1": 114.04, "lng2": 114.07, "w": 300, "h": 200, "cell_size": 20,
            "analysis": "true"}
    full = client_with(classic_layer="listings").get("/getData/", query_string=view).get_json()
    got = client_with(classic_layer="listings", min_count=3).get("/getData/", query_string=view).get_json()
    # The reference: each returned point's nearest cell centre (the 2015 grid: 15 x 10 cells of 20 px).
    nx, ny, minx, maxx, miny, maxy = 15, 10, 114.04, 114.07, 22.53, 22.55
    counts = collections.Counter()
    for f in full["features"]:
        lat, lon = f["geometry"]["coordinates"]  # the 2015 order
        i = math.floor((lon - minx) / (maxx - minx) * 300 / 20)
        j = math.floor((maxy - lat) / (maxy - miny) * 200 / 20)
        if 0 <= i < nx and 0 <= j < ny:
            counts[(i * 20, j * 20)] += 1
    assert len(full["analysis"]) == nx * ny
    want = [c for c in full["analysis"] if counts[(c["x"], c["y"])] >= 3]
    assert [(c["x"], c["y"]) for c in got["analysis"]] == [(c["x"], c["y"]) for c in want]
    assert got["withheld"] == nx * ny - len(want) > 0
