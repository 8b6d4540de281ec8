"""Hostile input, against both stores: every answer is a JSON 4xx
``{"error", "detail"}`` naming what is wrong (or a plain answer where the
input is only odd), never a 5xx, never a database message, never a hang.

In-process (Flask's test client over the session's stores) but for the
10 MB request line, which goes to a real `citystack serve`.
"""

from __future__ import annotations

import csv
import math
import socket
import threading

import numpy as np
import pytest

from citystack.settings import Settings
from conftest import citystack

LEAKS = ("duckdb", "psycopg", "postgres", "sql", "syntax", "bigint", "out of range", "traceback",
         "catalog", "binder")


@pytest.fixture(scope="module")
def app(sample_db, store):
    from citystack.app import create_app

    return create_app(Settings.from_env({}, db=str(sample_db), analysis_max_points=5_000), store)


@pytest.fixture
def client(app):
    return app.test_client()


def get(client, path, query=None, **kw):
    return client.get(path, query_string=query, **kw)


def refused(response, status=400, parameter=None):
    """A JSON error with the status, naming `parameter` when given, with nothing of the database in it."""
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.mimetype == "application/json", response.mimetype
    body = response.get_json()
    assert isinstance(body.get("error"), str) and isinstance(body.get("detail"), str), body
    if parameter is not None:
        assert body.get("parameter") == parameter, body
    text = (body["error"] + " " + body["detail"]).lower()
    assert not any(word in text for word in LEAKS), body
    return body


def extent(store, layer="listings"):
    return store.layer(layer).extent


# ---- SQL injection ----

@pytest.mark.parametrize("path,query", [
    ("/api/layers/listings';DROP TABLE layer_listings;--", None),
    ('/api/layers/listings"; DROP TABLE citystack_layers; --/features', None),
    ("/api/layers/listings%20OR%201=1/features", None),
    ("/api/layers/LISTINGS/bins", None),
    ("/api/layers/listings%00/features", None),
    ("/api/layers/" + "a" * 200 + "/features", None),
    ("/api/analyses/heatmap", {"layer": "listings' OR '1'='1"}),
    ("/api/analyses/heatmap", {"layer": 'listings";--'}),
    ("/api/analyses/drop table layer_listings", {"layer": "listings"}),
])
def test_injection_in_names_is_not_found(client, store, path, query):
    before = store.layer("listings").count
    refused(get(client, path, query), 404)
    assert store.layer("listings").count == before
    assert get(client, "/api/layers/listings/features", {"limit": 1}).status_code == 200


@pytest.mark.parametrize("query,parameter", [
    ({"properties": 'name,price"; DROP TABLE layer_listings; --'}, "properties"),
    ({"properties": "name,price FROM layer_listings --"}, "properties"),
    ({'price" OR 1=1 --': "1"}, 'price" OR 1=1 --'),
    ({'price" OR 1=1 --_min': "1"}, 'price" OR 1=1 --_min'),
    ({"name_min": "1"}, "name_min"),  # a text field cannot be bounded
    ({"id": "1"}, "id"),  # not a field filter
])
def test_injection_in_field_names_is_refused(client, query, parameter):
    refused(get(client, "/api/layers/listings/features", query), 400, parameter)


@pytest.mark.parametrize("path,query,parameter", [
    ("/api/layers/listings/bins", {"field": "price); DROP TABLE layer_listings; --"}, "field"),
    ("/api/layers/listings/bins", {"field": "name"}, "field"),  # text, not numeric
    ("/api/analyses/heatmap", {"layer": "listings", "weight": "price*0+1"}, "weight"),
    ("/api/analyses/interpolate", {"layer": "listings", "field": 'price" --'}, "field"),
    ("/api/analyses/heatmap", {"layer": "listings", "weight'; --": "1"}, "weight'; --"),
])
def test_injection_in_other_field_parameters_is_refused(client, path, query, parameter):
    refused(get(client, path, query), 400, parameter)


def test_injection_in_values_is_a_plain_value(client, store):
    from citystack.stores.base import View

    rooms = store.columns("listings", View(), ["room_type"])["room_type"].tolist()
    for value in ("x' OR '1'='1", "' OR 1=1 --", '"; DROP TABLE layer_listings; --', "%", "_", "*", "\\",
                  "Private room' --", "Entire home/apt\n", "Zürich ✓"):
        response = get(client, "/api/layers/listings/features", {"room_type": value, "limit": 50_000,
                                                                  "properties": "room_type"})
        assert response.status_code == 200, (value, response.text[:300])
        assert response.get_json()["numberReturned"] == rooms.count(value) == 0, value
    # NUL: no stored text holds one (PostgreSQL refuses it): the same 400 on both stores
    refused(get(client, "/api/layers/listings/features", {"room_type": "Private room\x00"}), 400, "room_type")
    # the real value, for the reference: as many as the brute-force count
    response = get(client, "/api/layers/listings/features", {"room_type": "Private room", "limit": 50_000,
                                                              "properties": "room_type"})
    assert response.get_json()["numberReturned"] == rooms.count("Private room") > 0


@pytest.mark.parametrize("query,parameter", [
    ({"price": "1 OR 1=1"}, "price"),
    ({"price_min": "0; DROP TABLE layer_listings"}, "price_min"),
    ({"price_max": "1e3 --"}, "price_max"),
    ({"bbox": "114,22.5,114.1,22.6) OR (1=1"}, "bbox"),
    ({"limit": "1; SELECT 1"}, "limit"),
])
def test_injection_in_numbers_is_refused(client, query, parameter):
    refused(get(client, "/api/layers/listings/features", query), 400, parameter)


# ---- non-finite and too-large numbers ----

NOT_FINITE = ["nan", "NaN", "inf", "-inf", "Infinity", "-Infinity", "1e309", "-1e309", "0x10", "1_000", "１０"]


@pytest.mark.parametrize("value", NOT_FINITE)
@pytest.mark.parametrize("path,query,parameter", [
    ("/api/layers/listings/features", {}, "price_min"),
    ("/api/layers/listings/features", {}, "price"),
    ("/api/layers/listings/features", {}, "limit"),
    ("/api/layers/listings/bins", {}, "cells"),
    ("/api/analyses/heatmap", {"layer": "listings"}, "bandwidth"),
    ("/api/analyses/heatmap", {"layer": "listings"}, "cell_size"),
    ("/getData/", {"lat1": "22.5", "lat2": "22.6", "lng1": "114.0"}, "lng2"),
])
def test_non_finite_and_odd_numbers_are_refused(client, path, query, parameter, value):
    refused(get(client, path, {**query, parameter: value}), 400, parameter)


@pytest.mark.parametrize("value", ["nan", "inf", "1e309", "-inf"])
def test_non_finite_numbers_in_a_bbox_are_refused(client, value):
    refused(get(client, "/api/layers/listings/features", {"bbox": f"114.0,22.5,{value},22.6"}), 400, "bbox")


@pytest.mark.parametrize("offset", ["9223372036854775808", "99999999999999999999999999", "-1", "1e3",
                                    "18446744073709551616"])
def test_huge_and_negative_offsets_are_refused(client, offset):
    refused(get(client, "/api/layers/listings/features", {"offset": offset}), 400, "offset")


def test_the_largest_offset_is_an_empty_page(client):
    response = get(client, "/api/layers/listings/features", {"offset": str(2 ** 63 - 1), "limit": 50_000})
    assert response.status_code == 200, response.text[:300]
    body = response.get_json()
    assert body["numberReturned"] == 0 and body["features"] == [] and body["links"] == []


@pytest.mark.parametrize("limit", ["9223372036854775807", "50001", "0", "-5"])
def test_limits_out_of_range_are_refused(client, limit):
    refused(get(client, "/api/layers/listings/features", {"limit": limit}), 400, "limit")


# ---- strict parameters ----

@pytest.mark.parametrize("path,query,parameter", [
    ("/api/layers/listings/features", {"limit": "1_000"}, "limit"),
    ("/api/layers/listings/features", {"limit": "１０"}, "limit"),
    ("/api/layers/listings/features", {"limit": "10.0"}, "limit"),
    ("/api/layers/checkins/features", {"days": "Mondayyy"}, "days"),
    ("/api/layers/checkins/features", {"days": "7"}, "days"),
    ("/api/layers/checkins/features", {"days": "Mon,,Tue"}, "days"),
    ("/api/layers/checkins/features", {"hours": "08-017"}, "hours"),
    ("/api/layers/checkins/features", {"hours": "8-24"}, "hours"),
    ("/api/layers/checkins/features", {"hours": "８-17"}, "hours"),
    ("/api/layers/listings/features", {"days": "Mon"}, "days"),  # no times in listings
    ("/api/layers/listings/features", {"format": "CSV"}, "format"),
    ("/getData/", {"lat1": "22.5", "lat2": "22.6", "lng1": "114.0", "lng2": "114.1", "analysis": "maybe"},
     "analysis"),
])
def test_loose_values_are_refused(client, path, query, parameter):
    refused(get(client, path, query), 400, parameter)


@pytest.mark.parametrize("path,query,parameter", [
    ("/api/layers/listings/features", "price_min=1&price_min=2", "price_min"),
    ("/api/layers/listings/features", "price_max=900&price_max=100", "price_max"),
    ("/api/layers/listings/features", "days=Mon&days=Tue", "days"),  # the view's own, too (not a field)
    ("/api/layers/listings/features", "limit=5&limit=6", "limit"),
    ("/api/layers/listings/features", "bbox=114,22.5,114.1,22.6&bbox=0,0,1,1", "bbox"),
    ("/api/layers/listings/bins", "cells=10&cells=20", "cells"),
    ("/api/analyses/heatmap", "layer=listings&layer=checkins", "layer"),
    ("/api/analyses/heatmap", "layer=listings&bandwidth=100&bandwidth=200", "bandwidth"),
    ("/getData/", "lat1=22.5&lat1=22.55&lat2=22.6&lng1=114.0&lng2=114.1", "lat1"),
])
def test_repeated_parameters_are_refused(client, path, query, parameter):
    """Every parameter given once, but a field filter's values (FIELD=a&FIELD=b: either)."""
    refused(client.get(f"{path}?{query}"), 400, parameter)


# ---- degenerate and inverted views ----

def test_zero_width_and_zero_height_views(client, store):
    """A bbox that is a line through real points holds exactly the points on it."""
    from citystack.stores.base import View

    cols = store.columns("listings", View(), ["lon", "lat"])
    lon, lat = cols["lon"], cols["lat"]
    x0, y0, x1, y1 = extent(store)
    on_line = float(lon[len(lon) // 2])
    for bbox, expected in [((on_line, y0, on_line, y1), int((lon == on_line).sum())),
                           ((x0, float(lat[7]), x1, float(lat[7])), int((lat == lat[7]).sum())),
                           ((float(lon[3]), float(lat[3]), float(lon[3]), float(lat[3])),
                            int(((lon == lon[3]) & (lat == lat[3])).sum()))]:
        text = ",".join(repr(v) for v in bbox)
        features = get(client, "/api/layers/listings/features", {"bbox": text, "limit": 50_000}).get_json()
        assert features["numberReturned"] == expected >= 1, (bbox, features["numberReturned"], expected)
        bins = get(client, "/api/layers/listings/bins", {"bbox": text, "cells": 16})
        assert bins.status_code == 200 and bins.get_json()["total"] == expected
        for name, extra in [("heatmap", {"cells": 20}), ("clusters", {}), ("interpolate", {"cells": 8})]:
            response = get(client, f"/api/analyses/{name}", {"layer": "listings", "bbox": text, **extra})
            assert response.status_code in (200, 400), (name, response.text[:300])
            if response.status_code == 400:
                refused(response)
        network = get(client, "/api/analyses/network", {"layer": "checkins", "bbox": text})
        assert network.status_code == 200, network.text[:300]


@pytest.mark.parametrize("lat1,lat2,lng1,lng2", [
    ("22.55", "22.55", "114.0", "114.1"), ("22.5", "22.6", "114.05", "114.05"),
])
def test_classic_analysis_of_a_view_without_area_is_empty(client, lat1, lat2, lng1, lng2):
    """A line view covers no ground: its points are answered, its analysis is an empty list
    (the 2015 client keeps its features; tests/test_classic2015.py checks the same on both stores)."""
    query = {"lat1": lat1, "lat2": lat2, "lng1": lng1, "lng2": lng2, "analysis": "true", "w": "400",
             "h": "300", "cell_size": "10"}
    plain = get(client, "/getData/", {k: v for k, v in query.items() if k != "analysis"})
    assert plain.status_code == 200
    for kind in ("heatmap", "interp"):
        answer = get(client, "/getData/", {**query, "analysisType": kind})
        assert answer.status_code == 200, answer.text[:300]
        body = answer.get_json()
        assert body["analysis"] == [] and body["features"] == plain.get_json()["features"]


def test_inverted_bboxes_are_refused(client):
    for path, extra in [("/api/layers/listings/features", {}), ("/api/layers/listings/bins", {}),
                        ("/api/analyses/heatmap", {"layer": "listings"}),
                        ("/api/analyses/network", {"layer": "checkins"})]:
        for bbox in ("114.1,22.5,114.0,22.6", "114.0,22.6,114.1,22.5", "1,2,3", "1,2,3,4,5", "0,91,1,92",
                     "-181,0,0,1", ",,,"):
            refused(get(client, path, {"bbox": bbox, **extra}), 400, "bbox")


def test_classic_view_corners_in_either_order_are_the_same_view(client):
    a = get(client, "/getData/", {"lat1": "22.53", "lat2": "22.55", "lng1": "114.04", "lng2": "114.06"}).get_json()
    b = get(client, "/getData/", {"lat1": "22.55", "lat2": "22.53", "lng1": "114.06", "lng2": "114.04"}).get_json()
    assert a == b and len(a["features"]) > 0
    refused(get(client, "/getData/", {"lat1": "91", "lat2": "22.5", "lng1": "114", "lng2": "114.1"}), 400, "lat1")


# ---- giant grids ----

@pytest.mark.parametrize("path,query,parameter", [
    ("/api/layers/listings/bins", {"cells": "100000"}, "cells"),
    ("/api/analyses/heatmap", {"layer": "listings", "cells": "100000"}, "cells"),
    ("/api/analyses/heatmap", {"layer": "listings", "cell_size": "1"}, "cell_size"),
    ("/api/analyses/interpolate", {"layer": "listings", "cells": "100000"}, "cells"),
    ("/api/analyses/clusters", {"layer": "listings", "k": "100000"}, "k"),
    ("/api/analyses/clusters", {"layer": "listings", "min_points": "100000000"}, "min_points"),
    ("/getData/", {"w": "10000", "h": "10000", "cell_size": "2"}, "cell_size"),
    ("/getData/", {"w": "100000", "h": "800", "cell_size": "10"}, "w"),
    ("/getData/", {"w": "1280", "h": "800", "cell_size": "1"}, "cell_size"),
    ("/getData/", {"w": "1280", "h": "800", "cell_size": "2000000"}, "cell_size"),
])
def test_giant_grids_are_refused(client, path, query, parameter):
    if path == "/getData/":
        query = {"lat1": "22.5", "lat2": "22.6", "lng1": "114.0", "lng2": "114.1", "analysis": "true", **query}
    refused(get(client, path, query), 400, parameter)


def test_the_largest_classic_grid_is_answered(client):
    from citystack.api.classic import MAX_CELLS

    side = int(math.isqrt(MAX_CELLS)) * 2
    body = get(client, "/getData/", {"lat1": "22.53", "lat2": "22.55", "lng1": "114.04", "lng2": "114.06",
                                     "analysis": "true", "w": side, "h": side, "cell_size": 2}).get_json()
    assert len(body["analysis"]) == MAX_CELLS


# ---- request size ----

def test_a_10_mb_query_string_is_a_json_414(client):
    refused(client.get("/api/layers/listings/features?properties=" + "name," * 2_000_000), 414)
    refused(client.get("/getData/?lat1=" + "9" * 10_000_000), 414)


def test_a_10_mb_request_line_is_refused_by_the_server(server):
    """gunicorn refuses it before the app (its own 414, text): no 5xx, no hang."""
    status = _raw_status(server.port, b"GET /api/layers/listings/features?bbox=" + b"1," * 5_000_000
                         + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert status == 414


def _raw_status(port: int, request: bytes) -> int:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sender = threading.Thread(target=_send_all, args=(sock, request), daemon=True)
    sender.start()
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
        sender.join(30)
    return int(data.split(b" ", 2)[1])


def _send_all(sock, data):
    try:
        sock.sendall(data)
    except OSError:
        pass  # the server stopped reading (and closed): what it answered is what counts


# ---- XSS in loaded names ----

HOSTILE_NAMES = ["<script>window.__xss = 1</script>", '<img src=x onerror="window.__xss = 2">',
                 '"><svg onload=window.__xss=3>', "</script><script>window.__xss=4</script>"]
HOSTILE_COLUMN = "<b onmouseover=alert(1)>score</b>"


def write_hostile_csv(path, extent=(114.04, 22.53, 114.06, 22.55)) -> list[dict]:
    rng = np.random.default_rng(5)
    rows = []
    for i in range(40):
        rows.append({"id": i + 1, "latitude": round(float(rng.uniform(extent[1], extent[3])), 6),
                     "longitude": round(float(rng.uniform(extent[0], extent[2])), 6),
                     "name": HOSTILE_NAMES[i % len(HOSTILE_NAMES)], "price": 100 + i,
                     HOSTILE_COLUMN: i % 7})
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows


@pytest.fixture(scope="module", params=["duckdb", "postgis"])
def hostile_db(request, tmp_path_factory):
    """A database holding one layer, `names`, loaded from a CSV of hostile names."""
    folder = tmp_path_factory.mktemp("hostile")
    rows = write_hostile_csv(folder / "names.csv")
    if request.param == "duckdb":
        db = str(folder / "names.duckdb")
    else:
        import psycopg

        cluster = request.getfixturevalue("pg_cluster")
        db = cluster.url.rsplit("/", 1)[0] + "/hostile_names"
        with psycopg.connect(cluster.url, autocommit=True) as con:
            con.execute("DROP DATABASE IF EXISTS hostile_names")
            con.execute("CREATE DATABASE hostile_names")
    citystack("load", folder / "names.csv", "--layer", "names", "--name", "name", "--price", "price", "--db", db)
    return db, rows


def test_hostile_names_are_carried_as_text(hostile_db):
    from citystack.app import create_app

    db, rows = hostile_db
    app = create_app(Settings.from_env({}, db=db, classic_layer="names"))
    client = app.test_client()
    info = client.get("/api/layers/names").get_json()
    fields = [f["name"] for f in info["fields"]]
    assert fields == ["name", "price", HOSTILE_COLUMN]  # names as the file writes them (quoted SQL inside)
    score = client.get("/api/layers/names/features", query_string={"limit": 100, HOSTILE_COLUMN + "_min": 0})
    assert score.status_code == 200, score.get_json()  # a filter by that name reaches its column (quoted)
    response = client.get("/api/layers/names/features", query_string={"limit": 100})
    assert response.mimetype == "application/geo+json" and response.headers["X-Content-Type-Options"] == "nosniff"
    got = {f["id"]: f["properties"]["name"] for f in response.get_json()["features"]}
    assert got == {row["id"]: row["name"] for row in rows}
    assert b"<script>" in response.data  # JSON strings as they are: text, not markup (the page shows text)
    as_csv = client.get("/api/layers/names/features", query_string={"limit": 100, "format": "csv"})
    assert as_csv.mimetype == "text/csv" and as_csv.headers["X-Content-Type-Options"] == "nosniff"
    assert {r["name"] for r in csv.DictReader(as_csv.text.splitlines())} == set(HOSTILE_NAMES)
    classic = client.get("/getData/", query_string={"lat1": 22.5, "lat2": 22.6, "lng1": 114.0, "lng2": 114.1})
    assert {f["properties"]["name"] for f in classic.get_json()["features"]} == set(HOSTILE_NAMES)
    top = next(f for f in info["fields"] if f["name"] == "name")["top"]
    assert {value for value, _ in top} == set(HOSTILE_NAMES)
