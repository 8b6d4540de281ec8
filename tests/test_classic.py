"""The 2015 routes answer the 2015 client's requests as the 2015 server did: their
answers in this process (Flask's test client on the app), their status-line
streams through a real `citystack serve` process."""

from __future__ import annotations

import time

import requests

from citystack.stores import View
from conftest import open_stream, read_until_idle, flat

SOUTH, NORTH, WEST, EAST = 22.53, 22.55, 114.04, 114.07


PARAMS = {"lat1": SOUTH, "lat2": NORTH, "lng1": WEST, "lng2": EAST}


def classic(client, path="/getData/", **extra):
    return client.get(path, query_string={**PARAMS, **extra})


def classic_http(server):
    return requests.get(server.url + "/getData/", params=PARAMS, timeout=60)


def test_get_data_answers_lat_lng_features(client, store):
    r = classic(client)
    assert r.status_code == 200
    fc = r.get_json()
    assert fc["type"] == "FeatureCollection"
    expected = flat(store.features("listings", View(bbox=(WEST, SOUTH, EAST, NORTH)), ["name", "price"], 50_000))
    assert len(fc["features"]) == len(expected["id"]) > 100
    by_id = dict(zip(expected["id"].tolist(), zip(expected["lat"].tolist(), expected["lon"].tolist(),
                                                  expected["name"].tolist(), expected["price"].tolist())))
    prices = [f["properties"]["price"] for f in fc["features"]]
    lo, hi = min(prices), max(prices)
    for f in fc["features"]:
        lat, lng, name, price = by_id[f["id"]]
        assert f["geometry"] == {"type": "Point", "coordinates": [lat, lng]}  # [lat, lng], the 2015 order
        assert SOUTH <= f["geometry"]["coordinates"][0] <= NORTH
        assert set(f["properties"]) == {"name", "price", "priceNorm"}
        assert f["properties"]["name"] == name and f["properties"]["price"] == price
        assert f["properties"]["priceNorm"] == (price - lo) / (hi - lo)
    norms = [f["properties"]["priceNorm"] for f in fc["features"]]
    assert min(norms) == 0 and max(norms) == 1


def test_get_data_without_slash_does_not_redirect(client):
    with_slash, without = classic(client), classic(client, "/getData")
    assert without.status_code == 200 and without.get_json() == with_slash.get_json()


def test_bounds_given_in_any_order(client):
    swapped = client.get("/getData/", query_string={"lat1": NORTH, "lat2": SOUTH, "lng1": EAST, "lng2": WEST})
    assert swapped.get_json() == classic(client).get_json()


def test_event_source_status_lines_reach_every_stream(server):
    streams = [open_stream(server.url) for _ in range(2)]
    assert classic_http(server).status_code == 200
    for lines, stop in streams:
        seen = read_until_idle(lines)
        stop.set()
        assert "starting data query..." in seen and seen[-1] == "idle"
        assert seen.index("starting data query...") < seen.index("idle")


def test_dropped_streams_are_released(server):
    def streams():
        return requests.get(server.url + "/api/health", timeout=10).json()["event_streams"]

    def released(limit=15) -> bool:
        deadline = time.monotonic() + limit
        while streams() and time.monotonic() < deadline:
            classic_http(server)  # status lines make the server write, and notice the closed sockets
            time.sleep(0.5)
        return streams() == 0

    # From none (the streams earlier tests closed are gone too) to exactly the 12 opened, and back.
    assert released(), streams()
    opened = [requests.get(server.url + "/eventSource", stream=True, timeout=10) for _ in range(12)]
    readers = [r.iter_lines() for r in opened]  # kept: a dropped reader closes its connection
    for lines in readers:
        next(lines)
    assert streams() == 12
    for r in opened:
        r.close()
    assert released(), streams()
