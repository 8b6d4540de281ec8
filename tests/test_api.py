"""The HTTP API: its answers in this process (Flask's test client on the app),
and its event streams through a real `citystack serve` process too."""

from __future__ import annotations

import csv
import io
import json
import logging

import pytest
import requests

from citystack.stores.base import StoreUnavailable
from conftest import AIRBNB, SSE, make_app, needs_shared, read_stream, response_lines

MANHATTAN = (-74.02, 40.70, -73.93, 40.80)
NOWHERE = "0.0,0.0,0.001,0.001"  # a view of the Gulf of Guinea: no points of any layer


def get(client, path, **params):
    return client.get(path, query_string=params)


def test_layers_describe_fields(client):
    body = get(client, "/api/layers").get_json()
    names = {layer["name"]: layer for layer in body["layers"]}
    listings = names["listings"]
    assert listings["kind"] == "points" and listings["count"] >= 20_000
    price = next(f for f in listings["fields"] if f["name"] == "price")
    assert price["type"] == "number" and 0 < price["min"] < price["max"]
    room = next(f for f in listings["fields"] if f["name"] == "room_type")
    assert room["type"] == "text" and room["top"][0][0] == "Entire home/apt"
    assert names["checkins"]["kind"] == "checkins"
    one = get(client, "/api/layers/listings").get_json()
    assert one["count"] == listings["count"] and len(one["extent"]) == 4


def test_features_are_rfc7946_and_inside_bbox(client):
    bbox = "114.04,22.53,114.06,22.55"
    r = get(client, "/api/layers/listings/features", bbox=bbox, limit=50_000)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/geo+json")
    fc = r.get_json()
    assert fc["type"] == "FeatureCollection" and fc["numberReturned"] == len(fc["features"]) > 100
    for f in fc["features"]:
        lon, lat = f["geometry"]["coordinates"]
        assert 114.04 <= lon <= 114.06 and 22.53 <= lat <= 22.55  # [lon, lat] order
        assert f["type"] == "Feature" and "price" in f["properties"]
    assert fc["links"] == []


def test_paging_with_next_link(client):
    bbox = "114.0,22.5,114.1,22.6"
    first = get(client, "/api/layers/listings/features", bbox=bbox, limit=100).get_json()
    assert first["numberReturned"] == 100
    nxt = next(link for link in first["links"] if link["rel"] == "next")["href"]
    assert nxt.startswith("/api/layers/listings/features?")  # relative: no CITYSTACK_BASE_URL
    second = client.get(nxt).get_json()
    ids = {f["id"] for f in first["features"]}
    assert second["numberReturned"] == 100 and not ids & {f["id"] for f in second["features"]}


def test_filters_and_properties(client):
    r = get(client, "/api/layers/listings/features", price_min=500, price_max=600,
            room_type="Private room", properties="price,room_type", limit=50_000)
    features = r.get_json()["features"]
    assert features
    for f in features:
        assert set(f["properties"]) == {"price", "room_type"}
        assert 500 <= f["properties"]["price"] <= 600 and f["properties"]["room_type"] == "Private room"


def test_csv_format(client):
    r = get(client, "/api/layers/listings/features", bbox="114.04,22.53,114.05,22.54",
            properties="name,price", format="csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert r.headers["Content-Type"].startswith("text/csv")
    assert rows and set(rows[0]) == {"id", "lon", "lat", "name", "price"}


def test_bins_count_every_point(client, store):
    from citystack.stores import View

    bbox = (114.0, 22.5, 114.1, 22.6)
    body = get(client, "/api/layers/listings/bins", bbox=",".join(map(str, bbox)), cells=20, field="price").get_json()
    assert max(body["grid"]["nx"], body["grid"]["ny"]) == 20  # square cells, 20 along the longer side
    assert sum(f["properties"]["count"] for f in body["features"]) == store.count("listings", View(bbox=bbox))
    cell = max(body["features"], key=lambda f: f["properties"]["count"])["properties"]
    assert cell["min"] <= cell["mean"] <= cell["max"]


def test_time_filter_on_checkins(client, store):
    from citystack.stores import View

    fc = get(client, "/api/layers/checkins/features", days="Sat,Sun", hours="22-2",
             properties="day,hour", limit=50_000).get_json()
    assert fc["features"]
    for f in fc["features"]:
        assert f["properties"]["day"] in (5, 6) and (f["properties"]["hour"] >= 22 or f["properties"]["hour"] <= 2)
    assert fc["numberReturned"] == store.count("checkins", View(days=[5, 6], hours=(22, 2)))


@pytest.mark.parametrize("path,params,name", [
    ("/api/layers/listings/features", {"bbox": "1,2,3"}, "bbox"),
    ("/api/layers/listings/features", {"bbox": "a,b,c,d"}, "bbox"),
    ("/api/layers/listings/features", {"bbox": "10,10,5,5"}, "bbox"),
    ("/api/layers/listings/features", {"limit": "0"}, "limit"),
    ("/api/layers/listings/features", {"limit": "many"}, "limit"),
    ("/api/layers/listings/features", {"limit": "50001"}, "limit"),
    ("/api/layers/listings/features", {"price_min": "cheap"}, "price_min"),
    ("/api/layers/listings/features", {"nosuchfield": "1"}, "nosuchfield"),
    ("/api/layers/listings/features", {"properties": "name,nope"}, "properties"),
    ("/api/layers/listings/features", {"format": "xml"}, "format"),
    ("/api/layers/listings/features", {"days": "Mon"}, "days"),
    ("/api/layers/checkins/features", {"hours": "25-3"}, "hours"),
    ("/api/layers/listings/bins", {"cells": "0"}, "cells"),
    ("/api/layers/listings/bins", {"field": "room_type"}, "field"),
    ("/getData/", {"lat1": "x", "lat2": "1", "lng1": "1", "lng2": "2"}, "lat1"),
    ("/getData/", {"lat1": "1", "lat2": "1", "lng1": "1"}, "lng2"),
])
def test_bad_input_is_400_naming_the_parameter(client, path, params, name):
    r = get(client, path, **params)
    assert r.status_code == 400, r.text
    body = r.get_json()
    assert set(body) >= {"error", "detail"} and body["parameter"] == name


def test_unknown_layer_is_404(client):
    r = get(client, "/api/layers/atlantis/features")
    assert r.status_code == 404 and "atlantis" in r.get_json()["detail"]


def test_injection_attempts_are_plain_values(client):
    r = get(client, "/api/layers/listings/features", room_type="x' OR '1'='1", limit=10)
    assert r.status_code == 200 and r.get_json()["numberReturned"] == 0
    r = get(client, '/api/layers/listings";DROP TABLE _layers;--/features')
    assert r.status_code == 404
    assert get(client, "/api/layers/listings").status_code == 200


def test_progress_stream(server):
    """Through a real server: progress events, then one result, and the stream ends."""
    r = requests.get(server.url + "/api/layers/listings/features", params={"bbox": "114.04,22.53,114.06,22.55"},
                     headers=SSE, stream=True, timeout=(5, 30))
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/event-stream")
    events, _ = read_stream(r.iter_lines(decode_unicode=True))
    kinds = [e for e, _ in events]
    assert kinds[0] == "progress" and kinds[-1] == "result" and set(kinds[:-1]) == {"progress"}, kinds
    message = next(d for e, d in events if e == "progress")
    assert set(json.loads(message)) == {"message", "fraction"}
    assert json.loads(events[-1][1])["type"] == "FeatureCollection"


def test_bad_parameters_are_a_plain_400_before_any_stream(client):
    r = client.get("/api/analyses/heatmap", query_string={"layer": "listings", "bandwidth": "-5"}, headers=SSE)
    assert r.status_code == 400 and r.mimetype == "application/json" and r.get_json()["parameter"] == "bandwidth"


def test_error_after_the_stream_started_is_its_last_event(server, store):
    """Through a real server: an analysis that fails once its stream is under way (an
    interpolation over a view without points to fit) sends progress, then one `error`
    event with the status and body the same request answers without a stream, and the
    stream ends there."""
    from citystack.stores import View

    assert store.count("listings", View(bbox=tuple(map(float, NOWHERE.split(","))))) == 0
    url, params = server.url + "/api/analyses/interpolate", {"layer": "listings", "bbox": NOWHERE, "model": "knn"}
    plain = requests.get(url, params=params, timeout=30)
    assert plain.status_code == 400 and plain.json()["parameter"] == "field", plain.text
    r = requests.get(url, params=params, headers=SSE, stream=True, timeout=(5, 30))
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/event-stream")
    events, _ = read_stream(r.iter_lines(decode_unicode=True))
    kinds = [e for e, _ in events]
    assert kinds[0] == "progress" and kinds[-1] == "error" and set(kinds[:-1]) == {"progress"}, kinds
    assert json.loads(events[-1][1]) == {**plain.json(), "status": 400}


class FailingStore:
    """The session store, except that reading features fails with `exc`."""

    def __init__(self, store, exc: Exception):
        self._store, self._exc = store, exc

    def __getattr__(self, name):
        return getattr(self._store, name)

    def features(self, *args, **kwargs):
        raise self._exc


@pytest.mark.parametrize("exc,status,error", [
    (RuntimeError('relation "layer_listings" in SECRET-42 is broken'), 500, "internal error"),
    (StoreUnavailable("database unavailable: cannot connect to SECRET-42"), 503, "database unavailable"),
])
def test_store_failure_inside_a_stream(sample_db, store, caplog, exc, status, error):
    """A database fault after the stream started: the same error as without a stream,
    as the stream's last event, and no word of the database's message reaches the client."""
    client = make_app(sample_db, FailingStore(store, exc)).test_client()
    path, params = "/api/layers/listings/features", {"bbox": "114.04,22.53,114.06,22.55"}
    plain = client.get(path, query_string=params)
    assert plain.status_code == status and plain.get_json()["error"] == error and "SECRET" not in plain.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="citystack"):
        r = client.get(path, query_string=params, headers=SSE)
        assert r.status_code == 200 and r.mimetype == "text/event-stream"
        events, _ = read_stream(response_lines(r))
    kinds = [e for e, _ in events]
    assert kinds[0] == "progress" and kinds[-1] == "error" and set(kinds[:-1]) == {"progress"}, kinds
    body = json.loads(events[-1][1])
    assert "SECRET" not in events[-1][1] and body["status"] == status and body["error"] == error
    assert set(body) == set(plain.get_json()) | {"status"}
    if status == 500:  # the id in the answer finds the traceback in the log
        logged = [rec for rec in caplog.records if body["request_id"] in rec.getMessage()]
        assert body["request_id"] in body["detail"] and len(logged) == 1 and logged[0].exc_info[1] is exc


def test_openapi_document(client):
    doc = get(client, "/api/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    for path in ("/api/layers", "/api/layers/{layer}/features", "/api/layers/{layer}/bins", "/getData/",
                 "/api/analyses/heatmap"):
        assert path in doc["paths"]
    names = {p["name"] for p in doc["paths"]["/api/analyses/heatmap"]["get"]["parameters"]}
    assert {"layer", "bbox", "bandwidth"} <= names


def test_page_is_served_with_local_assets(client):
    html = get(client, "/").text
    assert "<title>" in html and "//unpkg" not in html and "cdn" not in html.lower()
    assert get(client, "/static/vendor/leaflet/leaflet.js").status_code == 200
    assert get(client, "/static/vendor/d3/d3.min.js").status_code == 200


@needs_shared(AIRBNB)
def test_manhattan_window_matches_brute_force(client):
    with open(AIRBNB, newline="", encoding="utf-8") as fh:
        expected = {int(row["id"]) for row in csv.DictReader(fh)
                    if MANHATTAN[0] <= float(row["longitude"]) <= MANHATTAN[2]
                    and MANHATTAN[1] <= float(row["latitude"]) <= MANHATTAN[3]}
    fc = get(client, "/api/layers/nyc/features", bbox=",".join(map(str, MANHATTAN)), limit=50_000,
             properties="name").get_json()
    got = [f["id"] for f in fc["features"]]
    assert len(got) == len(set(got)) == len(expected) and set(got) == expected
    assert len(expected) > 15_000


def parse_sse(lines) -> list[tuple[str, str]]:
    """(event, data) pairs from an event stream, stopping after result or error."""
    events, event, data = [], "message", []
    for line in lines:
        if line == "":
            if data:
                events.append((event, "\n".join(data)))
                if event in ("result", "error"):
                    break
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
    return events
