"""Analyses through the API: validation, streaming, limits, cache and the 2015
routes' analysis answers in this process (Flask's test client on the app);
cancellation and concurrency through a real `citystack serve` process."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import requests

from conftest import FOURSQUARE, AIRBNB, SSE, citystack, needs_shared, read_stream, response_lines

VIEW = "114.03,22.52,114.09,22.57"


def run(client, name, stream=False, **params):
    return client.get(f"/api/analyses/{name}", query_string=params, headers=SSE if stream else {})


def run_http(server, name, stream=False, **params):
    return requests.get(f"{server.url}/api/analyses/{name}", params=params, headers=SSE if stream else {},
                        timeout=(5, 120), stream=stream)


def health(server):
    return requests.get(server.url + "/api/health", timeout=10).json()


def test_catalogue_declares_parameters(client):
    body = client.get("/api/analyses").get_json()
    by_name = {a["name"]: a for a in body["analyses"]}
    assert set(by_name) >= {"heatmap", "interpolate", "clusters", "network"}
    bandwidth = next(p for p in by_name["heatmap"]["params"] if p["name"] == "bandwidth")
    assert bandwidth["type"] == "float" and bandwidth["min"] > 0 and bandwidth["default"] > 0
    model = next(p for p in by_name["interpolate"]["params"] if p["name"] == "model")
    assert set(model["choices"]) == {"svr", "knn", "gbr", "gp"}
    assert by_name["network"]["kinds"] == ["checkins"]


@pytest.mark.parametrize("name,params,bad", [
    ("heatmap", {"bandwidht": "300"}, "bandwidht"),          # unknown name
    ("heatmap", {"bandwidth": "1"}, "bandwidth"),            # below its bounds
    ("heatmap", {"cells": "4000"}, "cells"),                 # above its bounds
    ("heatmap", {"cells": "ten"}, "cells"),                  # wrong type
    ("heatmap", {"bandwidth": "nan"}, "bandwidth"),          # not finite
    ("heatmap", {"weight": "room_type"}, "weight"),          # not a numeric field
    ("interpolate", {"model": "xgboost"}, "model"),          # not a choice
    ("interpolate", {"log": "maybe"}, "log"),                # not a boolean
    ("clusters", {"bbox": "1,2,3"}, "bbox"),
    ("network", {}, "layer"),                                # wrong kind of layer
])
def test_bad_parameter_is_400_naming_it(client, name, params, bad):
    r = run(client, name, layer="listings", **params)
    assert r.status_code == 400, r.text
    body = r.get_json()
    assert body["parameter"] == bad and bad in body["detail"] + body["error"]


def test_unknown_analysis_and_missing_layer(client):
    assert run(client, "astrology", layer="listings").status_code == 404
    r = run(client, "heatmap")
    assert r.status_code == 400 and r.get_json()["parameter"] == "layer"


def test_heatmap_grid_result(client):
    body = run(client, "heatmap", layer="listings", bbox=VIEW, bandwidth=250, cells=40).get_json()
    grid = body["grid"]
    assert body["kind"] == "grid" and max(grid["nx"], grid["ny"]) == 40
    values = np.array(grid["values"], dtype=float)
    assert values.shape == (grid["ny"], grid["nx"]) and values.max() == 1.0 and values.min() >= 0
    assert body["input"]["count"] > 1000 and body["input"]["sampled"] is False


def test_interpolate_reports_model_and_baseline(client):
    body = run(client, "interpolate", layer="listings", bbox=VIEW, model="knn", cells=20).get_json()
    assert body["model"]["name"] == "knn" and set(body["metrics"]) == {"rmse", "mae", "r2"}
    # The sample city's prices follow a spatial trend: the model beats the mean.
    assert body["metrics"]["rmse"] < body["baseline"]["rmse"] and body["metrics"]["r2"] > 0.2


def test_clusters_and_network(client):
    body = run(client, "clusters", layer="listings", bbox=VIEW, method="kmeans", k=5).get_json()
    assert len(body["clusters"]) == 5 and sum(c["size"] for c in body["clusters"]) == body["input"]["used"]
    net = run(client, "network", layer="checkins", min_shared=3).get_json()
    assert net["edges"] and all(e["weight"] >= 3 for e in net["edges"])
    ids = {n["id"] for n in net["nodes"]}
    assert all(e["source"] in ids and e["target"] in ids for e in net["edges"])


def test_time_filter_applies_to_analyses(client):
    all_day = run(client, "heatmap", layer="checkins", cells=10).get_json()["input"]["count"]
    evenings = run(client, "heatmap", layer="checkins", cells=10, days="Fri,Sat", hours="20-23").get_json()
    assert 0 < evenings["input"]["count"] < all_day / 4


def test_stream_progress_then_result(client):
    r = run(client, "interpolate", stream=True, layer="listings", bbox=VIEW, model="svr", max_train=500)
    assert r.status_code == 200 and r.mimetype == "text/event-stream"
    events, _ = read_stream(response_lines(r))
    kinds = [e for e, _ in events]
    messages = [json.loads(d)["message"] for e, d in events if e == "progress"]
    assert any(m.startswith("training model 3/6: SVR C=") for m in messages), messages
    assert kinds[-1] == "result" and set(kinds[:-1]) == {"progress"}, kinds
    assert json.loads(events[-1][1])["model"]["name"] == "svr"


def test_identical_requests_are_cached_until_data_changes(client, sample_db, tmp_path):
    params = dict(layer="listings", bbox=VIEW, bandwidth=400, cells=30)
    first, second = run(client, "heatmap", **params).get_json(), run(client, "heatmap", **params).get_json()
    assert first["cached"] is False and second["cached"] is True and second["grid"] == first["grid"]
    # Loading while the app runs: it sees the new data at once, and the cache does not answer.
    extra = tmp_path / "extra.csv"
    extra.write_text("lat,lon,name\n22.54,114.05,a\n22.55,114.06,b\n")
    citystack("load", extra, "--layer", "extra", "--db", sample_db)
    assert client.get("/api/layers/extra").get_json()["count"] == 2
    assert run(client, "heatmap", **params).get_json()["cached"] is False


def progress_until(lines, text: str) -> list[str]:
    """The stream's lines up to the first progress event whose data holds `text`;
    fails if the stream ends (or has a result or error) first."""
    seen = []
    for line in lines:
        seen.append(line)
        if line.startswith("data:") and text in line:
            return seen
        assert not line.startswith(("event: result", "event: error")), seen
    raise AssertionError(f"the stream ended without {text!r}: {seen}")


def test_disconnect_stops_the_work(server):
    """Through a real server: the client that asked for the analysis goes away mid-run,
    and the analysis stops (counted as cancelled, never as completed)."""
    before = health(server)["analyses"]
    r = run_http(server, "interpolate", stream=True, layer="listings", model="svr", max_train=8000, folds=10)
    progress_until(r.iter_lines(decode_unicode=True), "training model 1/")
    assert health(server)["analyses"].get("running", 0) == before.get("running", 0) + 1
    r.close()  # the browser went away
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        now = health(server)["analyses"]
        if now.get("cancelled", 0) > before.get("cancelled", 0):
            break
        time.sleep(0.5)
    assert now.get("cancelled", 0) == before.get("cancelled", 0) + 1
    assert now.get("completed", 0) == before.get("completed", 0) and now.get("running", 0) == 0


def test_analyses_do_not_block_features(server):
    """Through a real server: a features request is answered while an analysis runs (it
    has reported training; after the answer it is still running and its stream goes on)."""
    before = health(server)["analyses"]
    r = run_http(server, "interpolate", stream=True, layer="listings", model="gbr", max_train=4000)
    try:
        lines = r.iter_lines(decode_unicode=True)
        progress_until(lines, "training model 1/")
        f = requests.get(server.url + "/api/layers/listings/features",
                         params={"bbox": "114.05,22.54,114.06,22.55"}, timeout=30)
        assert f.status_code == 200 and f.json()["numberReturned"] > 0
        now = health(server)["analyses"]
        assert now.get("running", 0) == before.get("running", 0) + 1  # the analysis goes on meanwhile
        assert now.get("completed", 0) == before.get("completed", 0)
        following = next((line for line in lines if line), None)  # a keep-alive within 0.5 s, or progress
        assert following is not None and following.startswith((":", "event: progress")), following
    finally:
        r.close()  # and is cancelled: the next tests get the server to themselves


@pytest.fixture(scope="module")
def limited(client_with):
    return client_with(analysis_max_points=1000, analysis_time_limit=1)


def test_large_views_are_sampled(limited):
    body = run(limited, "heatmap", layer="listings", cells=20).get_json()
    assert body["input"]["sampled"] is True and body["input"]["used"] == 1000
    assert body["input"]["count"] >= 20_000


def test_time_limit_gives_clear_error(limited):
    """A 503 naming the limit; and when the limit passes once a stream is under way,
    the same error is the stream's last event, and the stream ends."""
    params = dict(layer="listings", model="gp", folds=10)  # seconds of fitting
    plain = run(limited, "interpolate", **params)
    assert plain.status_code == 503
    assert plain.get_json()["error"] == "time limit" and "time limit" in plain.get_json()["detail"]
    r = run(limited, "interpolate", stream=True, **params)
    assert r.status_code == 200 and r.mimetype == "text/event-stream"
    events, _ = read_stream(response_lines(r))
    kinds = [e for e, _ in events]
    assert kinds[0] == "progress" and kinds[-1] == "error" and set(kinds[:-1]) == {"progress"}, kinds
    assert json.loads(events[-1][1]) == {**plain.get_json(), "status": 503}


# --- the 2015 routes ---------------------------------------------------------------------------

def classic(client, **params):
    base = {"lat1": 22.52, "lat2": 22.57, "lng1": 114.03, "lng2": 114.09}
    return client.get("/getData/", query_string={**base, **params})


@pytest.mark.parametrize("kind", ["heatmap", "interp"])
def test_classic_analysis_cells(client, kind):
    w, h, cell = 803, 457, 20
    body = classic(client, w=w, h=h, cell_size=cell, analysis="true", analysisType=kind).get_json()
    cells = body["analysis"]
    nx, ny = w // cell, h // cell
    assert len(cells) == nx * ny and body["features"]
    left, top = (w - nx * cell) / 2, (h - ny * cell) / 2
    assert cells[0]["x"] == left and cells[0]["y"] == top
    assert all(c["width"] == c["height"] == cell - 1 for c in cells)
    assert [c["y"] for c in cells[:nx]] == [top] * nx and cells[nx]["y"] == top + cell  # rows north to south
    values = [c["value"] for c in cells]
    assert min(values) >= 0 and max(values) == 1


def test_classic_heatmap_rows_run_north_to_south(client, store):
    """A view whose listings all lie in its southern half: the heat is in the last rows."""
    from citystack.stores import View

    north = store.layer("listings").extent[3]
    params = {"lat1": north - 0.04, "lat2": north + 0.04, "lng1": 114.0, "lng2": 114.12}
    body = client.get("/getData/", query_string={**params, "w": 240, "h": 160, "cell_size": 40,
                                                 "analysis": "true"}).get_json()
    values = np.array([c["value"] for c in body["analysis"]]).reshape(4, 6)
    assert store.count("listings", View(bbox=(114.0, north - 0.04, 114.12, north))) > 10
    rows = values.sum(axis=1)
    assert rows[0] < rows[1] < rows[2] and rows[0] < rows[2] / 2


def test_classic_analysis_bad_input(client):
    r = classic(client, w=100, h=100, cell_size=10, analysis="true", analysisType="kriging")
    assert r.status_code == 400 and r.get_json()["parameter"] == "analysisType"
    r = classic(client, w=5, h=100, cell_size=10, analysis="true")
    assert r.status_code == 400 and r.get_json()["parameter"] == "cell_size"


def test_classic_checkin_layer(client_with, store):
    body = classic(client_with(classic_layer="checkins")).get_json()
    from citystack.stores import View

    pairs = store.covisits("checkins", View(bbox=(114.03, 22.52, 114.09, 22.57)), 2)
    assert len(body["lines"]) == len(pairs["a"]) > 0
    score = {}
    for a, b in zip(pairs["a"].tolist(), pairs["b"].tolist()):
        score[a], score[b] = score.get(a, 0) + 1, score.get(b, 0) + 1
    assert {f["id"]: f["properties"]["score"] for f in body["features"]} == score
    f = body["features"][0]
    assert set(f["properties"]) == {"name", "cat", "score"}
    lat, lng = f["geometry"]["coordinates"]
    assert 22.52 <= lat <= 22.57 and 114.03 <= lng <= 114.09
    line = body["lines"][0]
    assert set(line) == {"from", "to", "coordinates"} and len(line["coordinates"]) == 4


@needs_shared(AIRBNB)
def test_interpolate_beats_baseline_on_manhattan_prices(client):
    body = run(client, "interpolate", layer="nyc", bbox="-74.02,40.70,-73.93,40.80", model="knn", log="true",
               max_train=5000).get_json()
    assert body["log"] is True
    assert body["metrics"]["rmse"] < body["baseline"]["rmse"]
    assert body["metrics"]["mae"] < body["baseline"]["mae"]


@needs_shared(FOURSQUARE)
def test_network_edges_equal_brute_force_on_foursquare(store):
    """Every pair of places, counted from the raw file: a place-by-user incidence
    matrix times its transpose counts the shared users of all pairs at once."""
    import csv

    from scipy import sparse

    from citystack.stores import View

    with open(FOURSQUARE, newline="") as fh:
        visits = {(row["poi"], row["label"]) for row in csv.DictReader(fh)}
    places = sorted({p for p, _ in visits})
    users = sorted({u for _, u in visits})
    pi, ui = {p: i for i, p in enumerate(places)}, {u: i for i, u in enumerate(users)}
    rows, cols = zip(*((pi[p], ui[u]) for p, u in visits))
    incidence = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(places), len(users)))
    shared = sparse.triu(incidence @ incidence.T, k=1).tocoo()
    expected = {(places[a], places[b]): int(w) for a, b, w in zip(shared.row, shared.col, shared.data) if w >= 2}
    expected = {(min(a, b), max(a, b)): w for (a, b), w in expected.items()}

    pairs = store.covisits("fsq", View(), 2)
    got = {(a, b): w for a, b, w in zip(pairs["a"].tolist(), pairs["b"].tolist(), pairs["weight"].tolist())}
    assert got == expected and len(expected) > 1000
