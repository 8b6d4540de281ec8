"""The PostGIS store answers exactly as the DuckDB store does, loads land whole
or not at all, and status lines and errors behave across server processes.

Everything runs against a throwaway PostgreSQL cluster (tests/pgcluster.py);
the module skips when PostgreSQL 15 or PostGIS is not installed.
"""

from __future__ import annotations

import csv
import os
import random
import threading
import time
from pathlib import Path

import numpy as np
import psycopg
import pytest
import requests

import pgcluster
from citystack.stores.base import Filter, StoreError, View
from conftest import AIRBNB, FOURSQUARE, Server, citystack, make_app, open_stream, read_until_idle, flat

SMALL_ROWS = 4000


@pytest.fixture(scope="module")
def cluster():
    """A cluster of this module's own: its tests restart it."""
    with pgcluster.running() as pg:
        yield pg


def write_small(path: Path, rows: int, seed: int) -> Path:
    """Points with every kind of column the loaders produce: text with quotes, commas,
    newlines and unicode, empty text and missing values, dates, timestamps, booleans."""
    rng = random.Random(seed)
    words = ["plain", 'say "hi"', "a, b", "two\nlines", "Zürich ✓", "back\\slash", None]
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["id", "name", "latitude", "longitude", "price", "rank", "score", "opened", "seen_at",
                      "open_now", "kind"])
        for i in range(rows):
            name = rng.choice(words)
            out.writerow([
                1000 + i, "" if name is None else f"#{i} {name}",
                round(40.70 + rng.random() * 0.1, 6), round(-74.02 + rng.random() * 0.1, 6),
                rng.choice(["", f"${rng.randint(10, 2000):,}.00"]), rng.choice(["", rng.randint(-5, 5)]),
                rng.choice(["", rng.random() * 10, 1 / 3]), f"2019-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                f"2019-05-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00",
                rng.choice(["true", "false", ""]), rng.choice(["a", "b", "c", "B", "_"])])
    return path


@pytest.fixture(scope="module")
def dbs(cluster, tmp_path_factory):
    """The same loads into a DuckDB file and into PostGIS, through the CLI."""
    folder = tmp_path_factory.mktemp("pg")
    small = write_small(folder / "small.csv", SMALL_ROWS, 1)
    duck = folder / "ref.duckdb"
    for db in (duck, cluster.url):
        citystack("init", "--sample", "--db", db)
        citystack("load", small, "--layer", "small", "--price", "price", "--db", db)
        if AIRBNB.exists():
            citystack("load", AIRBNB, "--layer", "nyc", "--preset", "airbnb", "--db", db)
        if FOURSQUARE.exists():
            citystack("load", FOURSQUARE, "--layer", "fsq", "--preset", "foursquare", "--db", db)
    return folder, duck, cluster.url


@pytest.fixture(scope="module")
def stores(dbs):
    from citystack.stores import open_store

    _, duck, url = dbs
    pg, dk = open_store(url), open_store(str(duck))
    yield pg, dk
    pg.close()


def layer_names(dk):
    return [info.name for info in dk.layers()]


def assert_same(got: dict, want: dict):
    """Same columns, dtypes and values, floats bit for bit."""
    assert list(got) == list(want)
    for k in want:
        g, w = got[k], want[k]
        assert g.dtype == w.dtype, (k, g.dtype, w.dtype)
        if w.dtype.kind == "f":
            assert np.array_equal(g, w, equal_nan=True), k
        else:
            # DuckDBStore fills NULL text with "?" (np.ma filled(None)); PostGIS gives None.
            w = [None if (a is None and b == "?") else b for a, b in zip(g.tolist(), w.tolist())]
            assert g.tolist() == w, k


def views(info) -> list[View]:
    x0, y0, x1, y1 = info.extent
    w, h = x1 - x0, y1 - y0
    out = [View(), View(bbox=(x0 + 0.3 * w, y0 + 0.3 * h, x0 + 0.6 * w, y0 + 0.55 * h)),
           View(bbox=(x0 + 0.45 * w, y0 + 0.45 * h, x0 + 0.5 * w, y0 + 0.5 * h))]
    numeric = [f for f in info.fields if f.type == "number" and f.min is not None]
    text = [f for f in info.fields if f.type == "text" and f.top]
    if numeric:
        f = numeric[0]
        out.append(View(bbox=out[1].bbox, filters=[Filter(f.name, "min", (f.min + f.max) / 3)]))
    if text:
        out.append(View(filters=[Filter(text[0].name, "in", (text[0].top[0][0],))]))
    if info.kind == "checkins":
        out += [View(days=[0, 6], hours=(20, 4)), View(bbox=out[1].bbox, days=[2], hours=(8, 12))]
    return out


def test_layers_match(stores):
    pg, dk = stores
    assert layer_names(dk) == [i.name for i in pg.layers()]
    for info in dk.layers():
        assert pg.layer(info.name).as_json() | {"version": 0} == info.as_json() | {"version": 0}
    assert pg.kind == "postgis" and pg.data_version().startswith("pg.")


def test_features_same_rows_same_order(stores):
    pg, dk = stores
    for info in dk.layers():
        for view in views(info):
            for props, limit, offset in ((None, 500, 0), (None, 500, 500), (info.field_names[:2], 5000, 37)):
                assert_same(flat(pg.features(info.name, view, props, limit, offset)),
                            flat(dk.features(info.name, view, props, limit, offset)))


def test_small_layer_round_trips_every_type(stores):
    pg, dk = stores
    got = flat(pg.features("small", View(), None, SMALL_ROWS))
    assert_same(got, flat(dk.features("small", View(), None, SMALL_ROWS)))
    kinds = {f.name: f.type for f in pg.layer("small").fields}
    assert kinds["price"] == kinds["rank"] == kinds["score"] == "number"
    assert flat(pg.features("checkins", View(), ["time", "day"], 10))["time"].dtype == np.dtype("datetime64[us]")
    names = set(got["name"].tolist())
    assert None in names and any(n and "\n" in n for n in names)
    assert np.isnan(got["score"]).any() and got["rank"].dtype == np.float64  # ints with NULLs: NaN


def test_counts_and_bins_match(stores):
    pg, dk = stores
    for info in dk.layers():
        numeric = [f.name for f in info.fields if f.type == "number"]
        for view in views(info):
            assert pg.count(info.name, view) == dk.count(info.name, view)
            for cells, field in ((64, None), (17, numeric[0] if numeric else None)):
                a, b = pg.bins(info.name, view, cells, field), dk.bins(info.name, view, cells, field)
                assert (a.bbox, a.nx, a.ny) == (b.bbox, b.nx, b.ny)
                assert_same({"i": a.i, "j": a.j, "count": a.count}, {"i": b.i, "j": b.j, "count": b.count})
                assert_same({k: a.stats[k] for k in ("min", "max") if k in a.stats},
                            {k: b.stats[k] for k in ("min", "max") if k in b.stats})
                if field:
                    # Bit for bit: each store sums the field and divides once (DuckDB's avg,
                    # PostGIS's sum / count), and the fields here hold whole numbers, whose
                    # float sums are exact in any order. Fractions would differ in the last
                    # bits with the order of the rows summed (DuckDB's threads keep none).
                    values = dk.columns(info.name, view, [field])[field]
                    values = values[np.isfinite(values)]
                    assert np.all(values % 1 == 0) and np.abs(values).sum() < 2 ** 53, (info.name, field)
                    assert_same({"mean": a.stats["mean"]}, {"mean": b.stats["mean"]})


def test_covisits_match(stores):
    pg, dk = stores
    checkins = [i for i in dk.layers() if i.kind == "checkins"]
    assert {"checkins"} <= {i.name for i in checkins}
    for info in checkins:
        for view in views(info):
            got, want = pg.covisits(info.name, view), dk.covisits(info.name, view)
            assert_same(got, want)
        assert len(pg.covisits(info.name, View())["a"]) > 10


@pytest.mark.skipif(not FOURSQUARE.exists(), reason=f"{FOURSQUARE} is absent")
def test_foursquare_covisits_match(stores):
    pg, dk = stores
    assert_same(pg.covisits("fsq", View(), 3), dk.covisits("fsq", View(), 3))


@pytest.mark.skipif(not AIRBNB.exists(), reason=f"{AIRBNB} is absent")
def test_nyc_window_matches(stores):
    pg, dk = stores
    view = View(bbox=(-73.994, 40.748, -73.976, 40.762))
    want = flat(dk.features("nyc", view, None, 10_000))
    assert 500 < len(want["id"]) < 10_000
    assert_same(flat(pg.features("nyc", view, None, 10_000)), want)


def test_columns_match_and_samples_are_reproducible(stores):
    pg, dk = stores
    for info in dk.layers():
        numeric = [f.name for f in info.fields if f.type == "number"]
        text = [f.name for f in info.fields if f.type == "text"][:1]
        for names in (["lon", "lat"] + numeric, ["id"] + text + numeric[:1]):
            for view in views(info)[:2]:
                assert_same(pg.columns(info.name, view, names), dk.columns(info.name, view, names))
                a, b = (pg.columns(info.name, view, names, sample=300, seed=7) for _ in range(2))
                assert_same(a, b)
                assert len(a["lon" if "lon" in a else "id"]) == min(300, dk.count(info.name, view))
        whole = pg.columns(info.name, View(), ["id"], sample=200, seed=1)["id"].tolist()
        other = pg.columns(info.name, View(), ["id"], sample=200, seed=2)["id"].tolist()
        assert whole != other and set(whole) <= set(dk.columns(info.name, View(), ["id"])["id"].tolist())


def test_text_values_survive_the_copy(dbs):
    """What CSV could get wrong: empty text against NULL, quotes, separators, backslashes."""
    from citystack.stores import open_store, open_writer

    _, _, url = dbs
    texts = ["", None, 'a "b"', "x\ny", "\\N", "\\", ",", "Zürich ✓", " padded ", "NULL", "\\.", "x\n\\.\ny"]
    values = ", ".join(f"({i}, ?)" for i in range(len(texts)))
    with open_writer(url) as staging:
        staging.publish("texts", "points", f"SELECT i AS id, -74.0 + i / 100 AS lon, 40.7 AS lat, t AS name, "
                                           f"CAST(i AS DOUBLE) / 3 AS third FROM (VALUES {values}) v(i, t)", texts)
    store = open_store(url)
    try:
        got = store.columns("texts", View(), ["id", "name", "third"])
        assert got["id"].tolist() == list(range(len(texts))) and got["name"].tolist() == texts
        assert got["third"].tolist() == [i / 3 for i in range(len(texts))]
    finally:
        store.close()
        with psycopg.connect(url) as con:  # leave the layers as the other tests expect them
            con.execute("DROP TABLE layer_texts")
            con.execute("DELETE FROM citystack_layers WHERE name = 'texts'")
            con.execute("UPDATE citystack_meta SET version = version + 1")


def test_first_write_creates_postgis_and_tables(cluster, tmp_path):
    fresh = cluster.url.rsplit("/", 1)[0] + "/fresh"
    with psycopg.connect(cluster.url, autocommit=True) as con:
        con.execute("CREATE DATABASE fresh")
    proc = citystack("layers", "--db", fresh)
    assert "no layers" in proc.stdout
    citystack("init", "--db", fresh)
    with psycopg.connect(fresh) as con:
        assert con.execute("SELECT count(*) FROM pg_extension WHERE extname = 'postgis'").fetchone()[0] == 1
        assert con.execute("SELECT version FROM citystack_meta").fetchone()[0] == 0
    assert "no layers" in citystack("layers", "--db", fresh).stdout

    # Once there are layers, init is refused and changes nothing; --force goes on.
    citystack("load", write_small(tmp_path / "s.csv", 50, 3), "--layer", "small", "--db", fresh)
    before = snapshot_layers(fresh)
    proc = citystack("init", "--sample", "--db", fresh, check=False)
    assert proc.returncode == 2 and "has layers already (small)" in proc.stderr and "--force" in proc.stderr
    assert "Traceback" not in proc.stderr and snapshot_layers(fresh) == before
    citystack("init", "--sample", "--db", fresh, "--force")
    assert {"small", "listings", "checkins", "checkins_places"} <= {r[0] for r in snapshot_layers(fresh)}


def snapshot_layers(url: str):
    with psycopg.connect(url) as con:
        return con.execute("SELECT name, count, version FROM citystack_layers ORDER BY name").fetchall()


def snapshot(url: str):
    with psycopg.connect(url) as con:
        tables = con.execute("SELECT relname FROM pg_class WHERE relname LIKE 'layer%%' ORDER BY 1").fetchall()
        meta = con.execute("SELECT name, count, version, loaded_at FROM citystack_layers ORDER BY name").fetchall()
        version = con.execute("SELECT version FROM citystack_meta").fetchone()
        ids = con.execute("SELECT md5(string_agg(CAST(id AS text), ',' ORDER BY _ord)) FROM layer_small").fetchone()
    return tables, meta, version, ids


def test_bad_file_leaves_database_unchanged(dbs):
    folder, _, url = dbs
    before = snapshot(url)
    truncated = folder / "truncated.csv"
    truncated.write_text("id,name,latitude,longitude\n1,a,40.7,-74.0\n2,\"b,40.8\n")
    bad_coords = folder / "badcoords.csv"
    bad_coords.write_text("id,name,latitude,longitude\n1,a,40.7,-74.0\n2,b,north,-74.1\n")
    for path in (truncated, bad_coords):
        proc = citystack("load", path, "--layer", "small", "--db", url, check=False)
        assert proc.returncode == 2, proc.stderr
        assert "nothing was changed" in proc.stderr and "Traceback" not in proc.stderr
    assert snapshot(url) == before


def test_failure_during_copy_rolls_everything_back(dbs):
    """The second layer of a load fails inside PostgreSQL's COPY (text with a NUL
    byte): the first, already copied, is rolled back with it."""
    from citystack.stores import open_writer

    _, _, url = dbs
    before = snapshot(url)
    with pytest.raises(StoreError, match="could not write to PostgreSQL"):
        with open_writer(url) as staging:
            staging.publish("small", "points", "SELECT range AS id, -74.0 AS lon, 40.7 AS lat FROM range(10)")
            staging.publish("zz_bad", "points", "SELECT 1 AS id, -74.0 AS lon, 40.7 AS lat, "
                                                "'a' || chr(0) || 'b' AS name")
    assert snapshot(url) == before


def test_reload_is_atomic_for_readers(dbs):
    """A reader counting a layer while it is loaded again sees the old count or the new one, never another."""
    from citystack.stores import open_store

    folder, _, url = dbs
    reader = open_store(url)
    old = reader.count("small", View())
    bigger = write_small(folder / "bigger.csv", SMALL_ROWS + 2500, 2)
    seen, stop, errors = [], threading.Event(), []

    def read():
        while not stop.is_set():
            try:
                seen.append(reader.count("small", View(bbox=(-75, 40, -73, 41))))
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

    thread = threading.Thread(target=read)
    thread.start()
    try:
        citystack("load", bigger, "--layer", "small", "--price", "price", "--db", url)
        deadline = time.monotonic() + 30
        while seen.count(SMALL_ROWS + 2500) < 20 and not errors and time.monotonic() < deadline:
            time.sleep(0.05)  # until the reader has counted the new rows a few times
    finally:
        stop.set()
        thread.join(10)
        citystack("load", folder / "small.csv", "--layer", "small", "--price", "price", "--db", url)
        reader.close()
    assert not thread.is_alive() and not errors
    assert set(seen) == {old, SMALL_ROWS + 2500}
    assert seen.index(SMALL_ROWS + 2500) > 0 and old not in seen[seen.index(SMALL_ROWS + 2500):]


def listeners() -> int:
    return sum(t.name == "citystack-listen" for t in threading.enumerate())


def test_status_lines_cross_stores(dbs, monkeypatch):
    """Two stores stand for two processes: a line published on one reaches the other's
    subscribers (and its own), and a load's NOTIFY resets a cached data version."""
    from citystack.stores import postgis

    _, _, url = dbs
    base = listeners()
    primary = "host=127.0.0.1 port={} dbname=citystack user=postgres".format(url.split(":")[-1].split("/")[0])
    one, two = postgis.PostGISStore(url), postgis.PostGISStore(url, notify_url=primary)  # as if on a replica
    try:
        hub1, hub2 = one.broadcaster(), two.broadcaster()
        assert hub1.wait_listening(10) and hub2.wait_listening(10)
        assert one.broadcaster() is hub1 and listeners() == base + 2
        here, there = hub1.subscribe(), hub2.subscribe()
        hub1.publish("starting data query...")
        hub1.publish("idle")
        assert [there.get(5).text, there.get(5).text] == ["starting data query...", "idle"]
        assert [here.get(5).text, here.get(5).text] == ["starting data query...", "idle"]
        there.close()
        assert hub2.subscribers == 0

        monkeypatch.setattr(postgis, "VERSION_TTL", 3600.0)
        version = two.data_version()
        citystack("load", dbs[0] / "small.csv", "--layer", "small", "--price", "price", "--db", url)
        deadline = time.monotonic() + 5
        while two.data_version() == version and time.monotonic() < deadline:
            time.sleep(0.05)
        assert two.data_version() != version
    finally:
        one.close()
        two.close()
    assert listeners() == base  # close() joins its listener


def test_unreachable_database_is_a_clear_error(cluster):
    from citystack.stores import open_store
    from citystack.stores.postgis import StoreUnavailable

    url = cluster.url.replace(str(cluster.port), str(pgcluster._free_port()))
    with pytest.raises(StoreUnavailable, match="database unavailable"):
        open_store(url)
    proc = citystack("layers", "--db", url, check=False)
    assert proc.returncode == 2 and "database unavailable" in proc.stderr and "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def server(dbs):
    _, _, url = dbs
    srv = Server(url, "--workers", "2", "--threads", "32", env={"CITYSTACK_PG_TIMEOUT": "2"})
    try:
        # Server returns once one worker answers; wait for the other too (each has its listener up
        # once its app is built), or every stream opened meanwhile goes to the first.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with psycopg.connect(url) as con:
                if con.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'citystack' "
                               "AND query LIKE 'LISTEN%%'").fetchone()[0] >= 2:
                    break
            time.sleep(0.2)
        else:
            raise AssertionError(f"the second worker did not listen within 60 s: {srv.output()}")
        yield srv
    finally:
        srv.stop()


def streams_per_worker(server) -> list[int]:
    """Open connections to the server's port held by each worker process (from /proc)."""
    port = f"{server.port:04X}"
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            for row in fh.readlines()[1:]:
                cols = row.split()
                if cols[1].endswith(":" + port) and cols[3] == "01":  # local port, ESTABLISHED
                    inodes.add(cols[9])
    pid = server.proc.pid
    with open(f"/proc/{pid}/task/{pid}/children") as fh:
        workers = fh.read().split()
    counts = []
    for worker in workers:
        held = 0
        for fd in Path(f"/proc/{worker}/fd").iterdir():
            try:
                link = os.readlink(fd)
            except OSError:
                continue
            held += link.startswith("socket:[") and link[8:-1] in inodes
        counts.append(held)
    return counts


def get_data(url: str) -> requests.Response:
    return requests.get(url + "/getData/", params={"lat1": 22.53, "lat2": 22.55, "lng1": 114.04, "lng2": 114.07},
                        timeout=60)


VIEW = "114.03,22.52,114.09,22.57"
SAME_REQUESTS = [
    ("/api/layers/listings/features", {"bbox": VIEW, "limit": 700, "offset": 100}),
    ("/api/layers/listings/bins", {"bbox": VIEW, "cells": 20, "field": "price"}),
    ("/api/layers/checkins/features", {"days": "Sat", "hours": "20-23", "properties": "day,hour,place"}),
    ("/api/analyses/heatmap", {"layer": "listings", "bbox": VIEW, "cells": 30, "bandwidth": 200}),
    ("/api/analyses/clusters", {"layer": "listings", "bbox": VIEW, "eps": 120, "min_points": 15}),
    ("/api/analyses/interpolate", {"layer": "listings", "bbox": VIEW, "model": "knn", "cells": 12}),
    ("/api/analyses/network", {"layer": "checkins", "min_shared": 3, "days": "Mon,Tue"}),
    ("/getData/", {"lat1": 22.53, "lat2": 22.55, "lng1": 114.04, "lng2": 114.07, "w": 300, "h": 200,
                   "cell_size": 25, "analysis": "true", "analysisType": "heatmap"}),
]


@pytest.fixture(scope="module")
def clients(dbs, stores):
    """The app in this process over each store (DuckDB's first)."""
    (_, duck, url), (pg, dk) = dbs, stores
    return make_app(duck, dk).test_client(), make_app(url, pg).test_client()


@pytest.mark.parametrize("path,params", SAME_REQUESTS, ids=[p for p, _ in SAME_REQUESTS])
def test_same_requests_same_answers_as_duckdb(clients, path, params):
    """Through the API: features, bins and analysis results on PostGIS equal
    DuckDB's for the same requests, floats bit for bit."""
    answers = [client.get(path, query_string=params) for client in clients]
    assert [a.status_code for a in answers] == [200, 200], answers[1].text
    duck, pg = (_without_timing(a.get_json()) for a in answers)
    assert_same_json(duck, pg)


def _without_timing(body):
    if isinstance(body, dict):
        return {k: v for k, v in body.items() if k not in ("seconds", "cached", "links")}
    return body


def assert_same_json(a, b, where="$"):
    if isinstance(a, float) or isinstance(b, float):
        assert type(a) is type(b) and a == b, (where, a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same_json(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_json(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_status_lines_reach_streams_in_every_worker(server):
    streams = []
    while len(streams) < 4 or 0 in streams_per_worker(server):  # until both workers hold streams
        assert len(streams) < 24, (streams_per_worker(server), server.output())  # each holds a thread of 32
        streams.append(open_stream(server.url))
    assert len(streams_per_worker(server)) == 2
    r = get_data(server.url)
    assert r.status_code == 200 and len(r.json()["features"]) > 100
    try:
        for lines, _ in streams:
            seen = read_until_idle(lines)
            assert "starting data query..." in seen and seen[-1] == "idle", seen
            assert seen.index("starting data query...") < seen.index("idle")
    finally:
        for _, stop in streams:
            stop.set()


def test_server_survives_a_database_restart(server, cluster):
    """Requests in flight while PostgreSQL is down (4 s, longer than the server's 2 s wait
    for a connection) get a JSON error or wait and succeed; none hang or get a traceback,
    and the server answers again by itself."""
    results, stop = [], threading.Event()

    def hammer():
        while not stop.is_set():
            started = time.monotonic()
            try:
                r = requests.get(server.url + "/api/layers/listings/features",
                                 params={"bbox": "114.04,22.53,114.07,22.55", "limit": 200}, timeout=40)
                results.append((started, r.status_code, r.headers.get("Content-Type", ""), r.text))
            except requests.RequestException as exc:
                results.append((started, None, "", repr(exc)))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        cluster.restart(down=4.0)
        restarted = time.monotonic()
        deadline = restarted + 30
        while time.monotonic() < deadline:
            recent = [s for t0, s, _, _ in results if t0 > restarted]
            if len(recent) >= 10 and all(s == 200 for s in recent[-10:]):
                break
            time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not any(t.is_alive() for t in threads), "a request hung"
    assert not [r for r in results if r[1] is None], "requests failed without an answer"
    assert any(r[1] != 200 for r in results), "no request noticed the database was down"
    for _, status, ctype, text in results:
        if status != 200:
            assert ctype.startswith("application/json") and status in (400, 503), (status, text)
            assert "database unavailable" in text and "Traceback" not in text, text
    recent = [s for t0, s, _, _ in results if t0 > restarted]
    assert recent[-10:] == [200] * 10, recent
    print(f"\nduring the restart: {len(results)} requests, "
          f"{sum(r[1] != 200 for r in results)} errors {sorted({r[1] for r in results})}, "
          f"slowest answer {max(b[0] - a[0] for a, b in zip(results, results[1:])):.1f} s apart; "
          f"e.g. {next((r[3] for r in results if r[1] != 200), '')}")
    assert "Traceback" not in server.output()
    # The listeners reconnected too: status lines still reach every stream.
    lines, stop_stream = open_stream(server.url)
    deadline = time.monotonic() + 20
    try:
        while True:
            assert get_data(server.url).status_code == 200
            seen = read_until_idle(lines, 3)
            if "starting data query..." in seen or time.monotonic() > deadline:
                break
        assert "starting data query..." in seen and seen[-1] == "idle"
    finally:
        stop_stream.set()
