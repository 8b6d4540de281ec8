"""The runner's guarantees on every route: analyses (and the 2015 grids) run in
worker processes that are killed at the time limit or when the client leaves,
a full queue is a 503 at once, the result cache is bounded in bytes, DBSCAN
and the co-visit network are bounded in memory, and a worker computes exactly
what the server's own thread computes.

Most tests use the app in-process (Flask's test client); those about a
client's connection use a real server. Worker processes are checked in /proc,
by the ids /api/health gives."""

from __future__ import annotations

import json
import math
import socket
import time
from pathlib import Path

import numpy as np
import orjson
import pytest
import requests

from conftest import Server
from test_api import parse_sse

SLOW_DBSCAN = {"layer": "listings", "method": "dbscan", "eps": "3000"}  # ~30 s inside scikit-learn, no progress
NO_MEMORY_BOUND = 10 ** 12


def proc_state(pid: int) -> str | None:
    """The process's state letter (R, S, Z, ...), or None when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def gone(pid: int) -> bool:
    return proc_state(pid) in (None, "Z", "X")


def wait_for(condition, seconds: float = 60) -> bool:
    """Whether `condition()` became true within `seconds` (a bound on waiting, not a measurement)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def make_app(db, **overrides):
    from citystack.app import create_app
    from citystack.settings import Settings
    from citystack.stores import open_store

    settings = Settings(db=str(db)).replace(**overrides)
    app = create_app(settings, open_store(str(db), settings))
    app.testing = True
    return app


def close_app(app) -> None:
    shared = app.extensions["citystack"]
    shared.runner.close()
    shared.store.close()


@pytest.fixture
def apps():
    made = []

    def make(db, **overrides):
        made.append(make_app(db, **overrides))
        return made[-1]

    yield make
    for app in made:
        close_app(app)


def analyses(client) -> dict:
    return client.get("/api/health").get_json()["analyses"]


def body_without_timing(raw: bytes) -> dict:
    body = orjson.loads(raw)
    for key in ("seconds", "cached"):
        body.pop(key, None)
    return body


# --- time limit ------------------------------------------------------------------------------------

def test_time_limit_kills_a_library_call_that_never_polls(duckdb_db, apps):
    client = apps(duckdb_db, analysis_time_limit=1.0, analysis_slots=1,
                  analysis_max_bytes=NO_MEMORY_BOUND).test_client()
    [pid] = analyses(client)["workers"]
    assert proc_state(pid) is not None
    r = client.get("/api/analyses/clusters", query_string=SLOW_DBSCAN)
    assert r.status_code == 503 and r.get_json()["error"] == "time limit"
    assert gone(pid)  # killed before the answer, in the middle of DBSCAN
    after = analyses(client)
    assert after["timed_out"] == 1 and after.get("completed", 0) == 0
    [fresh] = after["workers"]
    assert fresh != pid and wait_for(lambda: proc_state(fresh) == "S")  # a new worker, idle
    # ... and it works: the next analysis is answered by it.
    ok = client.get("/api/analyses/heatmap", query_string={"layer": "listings", "cells": "10"})
    assert ok.status_code == 200 and analyses(client)["workers"] == [fresh]


def test_get_data_analysis_runs_under_the_time_limit(duckdb_db, apps):
    client = apps(duckdb_db, analysis_time_limit=0.01, analysis_slots=1).test_client()
    [pid] = analyses(client)["workers"]
    view = {"lat1": 22.52, "lat2": 22.57, "lng1": 114.03, "lng2": 114.09}
    r = client.get("/getData/", query_string={**view, "w": 400, "h": 300, "cell_size": 10,
                                               "analysis": "true", "analysisType": "interp"})
    assert r.status_code == 503 and r.get_json()["error"] == "time limit"
    assert gone(pid) and analyses(client)["timed_out"] == 1


# --- the client leaves -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def patient(duckdb_db):
    """One analysis slot, no memory bound, a long time limit: a slow job runs until stopped."""
    srv = Server(duckdb_db, env={"CITYSTACK_ANALYSIS_SLOTS": "1", "CITYSTACK_ANALYSIS_TIME_LIMIT": "300",
                                 "CITYSTACK_ANALYSIS_MAX_BYTES": str(NO_MEMORY_BOUND)})
    yield srv
    srv.stop()


def health(srv) -> dict:
    return requests.get(srv.url + "/api/health", timeout=10).json()["analyses"]


def request(srv, path: str, query: dict, headers: str = "") -> socket.socket:
    """A GET on a plain socket, so that the test alone decides when the connection closes."""
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=60)
    line = f"GET {path}?" + "&".join(f"{k}={v}" for k, v in query.items())
    sock.sendall(f"{line} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode())
    return sock


def test_client_leaving_a_stream_kills_the_worker(patient):
    before = health(patient)
    [pid] = before["workers"]
    sock = request(patient, "/api/analyses/clusters", SLOW_DBSCAN, "Accept: text/event-stream\r\n")
    seen = b""
    while b"clustering" not in seen:
        seen += sock.recv(65536)  # until the worker is inside DBSCAN
    assert proc_state(pid) not in (None, "Z")
    sock.close()  # the browser went away
    assert wait_for(lambda: gone(pid))
    assert wait_for(lambda: health(patient)["running"] == 0)  # counted once the replacement is started
    after = health(patient)
    assert after.get("cancelled", 0) == before.get("cancelled", 0) + 1
    assert pid not in after["workers"] and after.get("completed", 0) == before.get("completed", 0)


def test_client_leaving_a_plain_request_kills_the_worker(patient):
    """No stream, nothing written until the answer: the server notices the closed connection itself."""
    before = health(patient)
    [pid] = before["workers"]
    sock = request(patient, "/api/analyses/clusters", {**SLOW_DBSCAN, "eps": "3001"})
    assert wait_for(lambda: health(patient)["running"] == 1)
    sock.close()
    assert wait_for(lambda: gone(pid))
    assert wait_for(lambda: health(patient)["running"] == 0)
    after = health(patient)
    assert after.get("cancelled", 0) == before.get("cancelled", 0) + 1 and pid not in after["workers"]


# --- a full queue ----------------------------------------------------------------------------------

def test_full_queue_is_503_with_retry_after_at_once(duckdb_db, apps):
    client = apps(duckdb_db, analysis_slots=1, analysis_queue=0, analysis_max_bytes=NO_MEMORY_BOUND).test_client()
    [pid] = analyses(client)["workers"]
    slow = client.get("/api/analyses/clusters", query_string=SLOW_DBSCAN, buffered=False,
                      headers={"Accept": "text/event-stream"})
    chunks = iter(slow.response)
    while b"clustering" not in next(chunks):
        pass  # the one slot is taken
    for headers in ({}, {"Accept": "text/event-stream"}):
        r = client.get("/api/analyses/heatmap", query_string={"layer": "listings", "cells": "10"}, headers=headers)
        assert r.status_code == 503 and r.get_json()["error"] == "busy"
        assert int(r.headers["Retry-After"]) > 0
    r = client.get("/getData/", query_string={"lat1": 22.52, "lat2": 22.57, "lng1": 114.03, "lng2": 114.09,
                                              "w": 100, "h": 100, "cell_size": 10, "analysis": "true"})
    assert r.status_code == 503 and "Retry-After" in r.headers
    assert analyses(client)["busy"] == 3
    slow.close()  # the stream's generator closes, as when a server finds the client gone
    assert wait_for(lambda: gone(pid))
    assert wait_for(lambda: analyses(client)["running"] == 0)  # the slot is free again
    assert analyses(client)["cancelled"] == 1
    r = client.get("/api/analyses/heatmap", query_string={"layer": "listings", "cells": "10"})
    assert r.status_code == 200


# --- the cache -------------------------------------------------------------------------------------

def test_cache_is_bounded_in_bytes(duckdb_db, apps):
    a = {"layer": "listings", "cells": "30", "bandwidth": "400"}
    b = {**a, "bandwidth": "410"}
    probe = apps(duckdb_db, analysis_processes=0).test_client()
    size_a, size_b = (len(probe.get("/api/analyses/heatmap", query_string=q).data) for q in (a, b))

    def cached_flags(cache_bytes, sequence):
        client = apps(duckdb_db, analysis_processes=0, cache_bytes=cache_bytes).test_client()
        return [client.get("/api/analyses/heatmap", query_string=q).get_json()["cached"] for q in sequence]

    slack = 40  # bytes: "seconds" has a different number of digits from run to run
    # Room for both: every repeat is a hit.
    assert cached_flags(size_a + size_b + slack, [a, a, b, a, b]) == [False, True, False, True, True]
    # Less than both: B pushes A out (least recently used), A then pushes B out.
    assert cached_flags(size_a + size_b - slack, [a, a, b, a, b]) == [False, True, False, False, False]
    # Smaller than one result: nothing is kept.
    assert cached_flags(min(size_a, size_b) - slack, [a, a]) == [False, False]


def test_get_data_analysis_is_cached(duckdb_db, apps):
    client = apps(duckdb_db).test_client()
    query = {"lat1": 22.52, "lat2": 22.57, "lng1": 114.03, "lng2": 114.09, "w": 300, "h": 200,
             "cell_size": 10, "analysis": "true"}
    first = client.get("/getData/", query_string=query).get_json()
    counts = analyses(client)
    second = client.get("/getData/", query_string=query).get_json()
    after = analyses(client)
    assert second == first and len(first["analysis"]) == 30 * 20
    assert after["cached"] == counts.get("cached", 0) + 1 and after["completed"] == counts["completed"]


# --- memory bounds ---------------------------------------------------------------------------------

def metres(lon, lat, bbox):
    """The equirectangular projection around the bbox centre, written out here as the reference."""
    lon0, lat0 = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    k = 6371008.8 * math.pi / 180
    return np.column_stack([(np.asarray(lon) - lon0) * k * math.cos(math.radians(lat0)),
                            (np.asarray(lat) - lat0) * k])


def test_dbscan_over_the_memory_bound_is_sampled_and_says_so(duckdb_db, apps, store):
    from scipy.spatial import cKDTree
    from sklearn.cluster import DBSCAN

    from citystack.stores import View

    eps = 500.0
    cols = store.columns("listings", View(), ["lon", "lat"])
    bbox = store.layer("listings").extent
    xy = metres(cols["lon"], cols["lat"], bbox)
    tree = cKDTree(xy)
    true_pairs = int(tree.count_neighbors(tree, eps))  # ordered pairs, each point its own neighbour too
    bound = int(true_pairs * 16 / 10)  # about a tenth of what DBSCAN over all of them would hold
    client = apps(duckdb_db, analysis_max_bytes=bound).test_client()
    body = client.get("/api/analyses/clusters", query_string={"layer": "listings", "eps": eps}).get_json()
    plan = body["dbscan"]
    assert body["sampled"] is True and plan["max_bytes"] == bound
    assert 0.5 < plan["estimated_bytes"] / (true_pairs * 16) < 2  # the estimate is near the truth
    assert any("CITYSTACK_ANALYSIS_MAX_BYTES" in note for note in body["notes"])
    lon, lat, label = (np.asarray(body["points"][k]) for k in ("lon", "lat", "label"))
    assert plan["points"] == lon.size < body["input"]["used"] == len(xy)
    sample = metres(lon, lat, bbox)
    sample_tree = cKDTree(sample)
    sample_pairs = int(sample_tree.count_neighbors(sample_tree, eps))
    assert sample_pairs * 16 <= bound  # what it did hold fits
    assert plan["min_points"] == max(1, round(10 * lon.size / len(xy)))
    expected = DBSCAN(eps=eps, min_samples=plan["min_points"]).fit_predict(sample)
    assert np.array_equal(label, expected)


def test_dbscan_refuses_when_no_useful_sample_fits(duckdb_db, apps):
    client = apps(duckdb_db, analysis_max_bytes=10_000).test_client()
    r = client.get("/api/analyses/clusters", query_string={"layer": "listings", "eps": "2000"})
    assert r.status_code == 400 and r.get_json()["parameter"] == "eps"
    assert "CITYSTACK_ANALYSIS_MAX_BYTES" in r.get_json()["detail"]


def test_network_over_the_memory_bound_is_refused(duckdb_db, apps, store):
    from citystack.stores import View

    links = len(store.covisits("checkins", View(), 1)["a"])
    client = apps(duckdb_db, analysis_max_bytes=links * 100).test_client()  # far below ~700 bytes a link
    r = client.get("/api/analyses/network", query_string={"layer": "checkins", "min_shared": "1"})
    assert r.status_code == 400 and r.get_json()["parameter"] == "min_shared"
    assert f"{links} links" in r.get_json()["detail"]
    fewer = len(store.covisits("checkins", View(), 5)["a"])
    assert fewer * 700 < links * 100  # with fewer links the same bound is enough
    ok = client.get("/api/analyses/network", query_string={"layer": "checkins", "min_shared": "5"})
    assert ok.status_code == 200 and len(ok.get_json()["edges"]) == fewer


# --- /getData/ cells -------------------------------------------------------------------------------

@pytest.mark.parametrize("w,h,cell,status", [
    (10_000, 10_000, 2, 400),   # 25,000,000 cells
    (4010, 4000, 10, 400),      # 160,400 cells: one column over
    (4000, 4000, 10, 200),      # 160,000 cells: the cap
])
def test_get_data_cells_are_capped(duckdb_db, apps, w, h, cell, status):
    client = apps(duckdb_db).test_client()
    r = client.get("/getData/", query_string={"lat1": 22.53, "lat2": 22.55, "lng1": 114.04, "lng2": 114.07,
                                              "w": w, "h": h, "cell_size": cell, "analysis": "true"})
    assert r.status_code == status, r.data[:300]
    if status == 400:
        assert r.get_json()["parameter"] == "cell_size" and "160,000" in r.get_json()["detail"]
    else:
        assert len(r.get_json()["analysis"]) == (w // cell) * (h // cell)


# --- a worker computes what the server's thread computes -------------------------------------------

CASES = [
    ("heatmap", {"layer": "listings", "cells": "40", "bandwidth": "250"}),
    ("heatmap", {"layer": "checkins", "cells": "20", "days": "Fri,Sat", "hours": "20-23"}),
    ("interpolate", {"layer": "listings", "model": "knn", "cells": "20", "bbox": "114.03,22.52,114.09,22.57"}),
    ("clusters", {"layer": "listings", "method": "kmeans", "k": "5", "bbox": "114.04,22.53,114.07,22.55"}),
    ("clusters", {"layer": "listings", "method": "dbscan", "eps": "150", "min_points": "8"}),
    ("network", {"layer": "checkins", "min_shared": "3"}),
]


def test_worker_results_equal_in_thread_results(sample_db, apps):
    in_worker = apps(sample_db, cache_bytes=0).test_client()
    in_thread = apps(sample_db, cache_bytes=0, analysis_processes=0).test_client()
    assert analyses(in_worker)["workers"] and "workers" not in analyses(in_thread)
    for name, query in CASES:
        a, b = (c.get(f"/api/analyses/{name}", query_string=query) for c in (in_worker, in_thread))
        assert a.status_code == b.status_code == 200, (name, a.data[:300], b.data[:300])
        assert body_without_timing(a.data) == body_without_timing(b.data), (name, query)
    view = {"lat1": 22.53, "lat2": 22.55, "lng1": 114.04, "lng2": 114.07, "w": 300, "h": 200, "cell_size": 20,
            "analysis": "true"}
    for kind in ("heatmap", "interp"):
        a, b = (c.get("/getData/", query_string={**view, "analysisType": kind}).data for c in (in_worker, in_thread))
        assert json.loads(a) == json.loads(b)
    assert analyses(in_worker)["completed"] == len(CASES) + 2


def test_stream_from_a_worker_relays_its_progress(duckdb_db, apps):
    client = apps(duckdb_db).test_client()
    r = client.get("/api/analyses/interpolate", headers={"Accept": "text/event-stream"},
                   query_string={"layer": "listings", "model": "svr", "max_train": "500", "cells": "10"})
    events = parse_sse(r.get_data(as_text=True).splitlines())
    messages = [json.loads(d)["message"] for e, d in events if e == "progress"]
    assert messages[0] == "starting interpolate" and any(m.startswith("training model 6/6") for m in messages)
    assert events[-1][0] == "result" and json.loads(events[-1][1])["model"]["name"] == "svr"
