"""Linked-chart histograms and export, against brute-force counts over the rows.

Each chart must count the points that pass every filter but its own, in the
view; export must give exactly the points that pass every filter. The
reference is computed here, in Python and numpy, over the CSV the layer was
loaded from (parsed with csv and datetime), on both stores.
"""

from __future__ import annotations

import csv
import datetime
import io
import random
from collections import Counter
from pathlib import Path

import numpy as np
import orjson
import psycopg
import pytest

import timelayer
from citystack.stores.base import Filter, View
from conftest import AIRBNB, SHARED, citystack, make_app, needs_shared

DIVVY = SHARED / "divvy_chicago_2021-01.csv"
ROWS = 3000
KINDS = ["alpha", "beta", "gamma", 'say "hi"', "a, b", ""]
T0 = datetime.datetime(2021, 3, 1)


def write_generated(path: Path) -> list[dict]:
    """Rows with a float, an integer, a category, a bool and a timestamp (some missing),
    and values on bin edges; the rows as Python values, for the reference."""
    rng = random.Random(12)
    rows = []
    for i in range(ROWS):
        price = rng.choice([None, round(rng.uniform(3.7, 987.3), 2), 3.7, 987.3, 3.7 + (987.3 - 3.7) / 40 * 7])
        t = T0 + datetime.timedelta(seconds=rng.randint(0, 86400 * 45))
        rows.append({"id": i + 1, "x": -74 + rng.random() * 0.2, "y": 40.6 + rng.random() * 0.2,
                     "price": price, "rooms": rng.choice([None, rng.randint(0, 12)]),
                     "kind": rng.choice(KINDS) or None, "ok": rng.choice([True, False, None]),
                     "seen": rng.choice([t, t, t, None])})
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["id", "x", "y", "price", "rooms", "kind", "ok", "seen"])
        for r in rows:
            out.writerow([r["id"], repr(r["x"]), repr(r["y"]), "" if r["price"] is None else repr(r["price"]),
                          "" if r["rooms"] is None else r["rooms"], r["kind"] or "",
                          {True: "true", False: "false", None: ""}[r["ok"]],
                          "" if r["seen"] is None else r["seen"].isoformat(sep=" ")])
    return rows


def create_pg_database(cluster, name: str) -> str:
    admin = cluster.url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute(f"DROP DATABASE IF EXISTS {name}")
        con.execute(f"CREATE DATABASE {name}")
    url = cluster.url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("CREATE EXTENSION postgis")
    return url


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hist")
    path = folder / "generated.csv"
    return path, write_generated(path)


@pytest.fixture(scope="module")
def duck_file(generated, tmp_path_factory):
    return build(tmp_path_factory.mktemp("histdb") / "hist.duckdb", generated)


# DuckDB twice: charts counted in SQL, and from the columns held in memory (stores/chartindex.py).
@pytest.fixture(scope="module", params=["duckdb", "duckdb-memory", "postgis"])
def hist_db(request, generated):
    """The generated layer (and, when ../shared/data is there, nyc and divvy) in each store."""
    if request.param.startswith("duckdb"):
        return Database(request.getfixturevalue("duck_file"), request.param == "duckdb-memory")
    return Database(build(create_pg_database(request.getfixturevalue("pg_cluster"), "f12hist"), generated))


class Database(str):
    """A database (path or URL), and whether its store keeps layers in memory."""

    def __new__(cls, db, memory: bool = False):
        out = super().__new__(cls, str(db))
        out.memory = memory
        return out


def build(db, generated):
    timelayer.publish(db, "gen", generated[0], "x", "y",
                      {"price": "number", "rooms": "integer", "kind": "category", "ok": "bool", "seen": "time"},
                      time="seen", id_column="id")
    if AIRBNB.exists():
        citystack("load", AIRBNB, "--layer", "nyc", "--preset", "airbnb", "--db", db)
    if DIVVY.exists():
        timelayer.load_divvy(db, DIVVY, citystack)
    return db


@pytest.fixture(scope="module")
def hist_store(hist_db):
    from citystack.settings import Settings
    from citystack.stores import open_store

    store = open_store(str(hist_db), Settings(memory_index_rows=10_000_000 if hist_db.memory else 0))
    yield store
    store.close()


@pytest.fixture(scope="module")
def hist_client(hist_db, hist_store):
    return make_app(hist_db, hist_store).test_client()


def get_json(client, url, status=200):
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


# ---- the reference ----------------------------------------------------------------------------

GEN_VIEW = dict(kinds=("alpha", "a, b", 'say "hi"'), price_min=100.0, rooms_max=9.0, hours=(20, 4), days=(0, 1, 2, 5),
                start=T0 + datetime.timedelta(days=3), end=T0 + datetime.timedelta(days=30))
BBOX = (-73.95, 40.62, -73.85, 40.75)


def passes(r: dict, skip: str = "", bbox=None) -> bool:
    v = GEN_VIEW
    if bbox and not (bbox[0] <= r["x"] <= bbox[2] and bbox[1] <= r["y"] <= bbox[3]):
        return False
    t = r["seen"]
    checks = {
        "kind": r["kind"] in v["kinds"],
        "price": r["price"] is not None and r["price"] >= v["price_min"],
        "rooms": r["rooms"] is not None and r["rooms"] <= v["rooms_max"],
        "hours": t is not None and (t.hour >= v["hours"][0] or t.hour <= v["hours"][1]),
        "days": t is not None and t.weekday() in v["days"],
        "dates": t is not None and v["start"] <= t < v["end"],
    }
    return all(ok for name, ok in checks.items() if name != skip)


def gen_view(bbox=None) -> View:
    v = GEN_VIEW
    return View(bbox=bbox, filters=[Filter("kind", "in", v["kinds"]), Filter("price", "min", v["price_min"]),
                                    Filter("rooms", "max", v["rooms_max"])],
                days=list(v["days"]), hours=v["hours"], start=v["start"], end=v["end"])


def by_part(answer: dict) -> dict:
    return {(c["name"], c.get("part")): c for c in answer["fields"]}


@pytest.mark.parametrize("bbox", [None, BBOX], ids=["layer", "bbox"])
def test_each_chart_counts_the_points_passing_every_other_filter(hist_store, generated, bbox):
    _, rows = generated
    got = by_part(hist_store.histograms("gen", gen_view(bbox), ["price", "rooms", "kind", "ok", "seen"]))
    assert hist_store.count("gen", gen_view(bbox)) == sum(passes(r, bbox=bbox) for r in rows)

    price = got[("price", None)]
    lo, hi = min(r["price"] for r in rows if r["price"] is not None), max(r["price"] for r in rows
                                                                          if r["price"] is not None)
    edges = np.array(price["bins"])
    assert len(edges) == 41 and edges[0] == lo and edges[-1] == hi
    assert np.allclose(edges, np.linspace(lo, hi, 41), rtol=0, atol=1e-9)
    values = np.array([r["price"] for r in rows if passes(r, "price", bbox) and r["price"] is not None])
    assert price["counts"] == np.histogram(values, bins=edges)[0].tolist()
    assert price["total"] == sum(passes(r, "price", bbox) for r in rows)
    assert price["missing"] == sum(passes(r, "price", bbox) and r["price"] is None for r in rows)
    assert sum(price["counts"]) + price["missing"] == price["total"]

    rooms = got[("rooms", None)]
    ints = np.array([r["rooms"] for r in rows if passes(r, "rooms", bbox) and r["rooms"] is not None])
    assert rooms["counts"] == np.histogram(ints, bins=np.array(rooms["bins"]))[0].tolist()

    kind = got[("kind", None)]
    ref = Counter(r["kind"] for r in rows if passes(r, "kind", bbox))
    missing = ref.pop(None, 0)
    assert dict(zip(kind["values"], kind["counts"])) == dict(ref)
    assert kind["counts"] == sorted(kind["counts"], reverse=True)
    assert (kind["missing"], kind["other"], kind["total"]) == (missing, 0, sum(ref.values()) + missing)

    ok = got[("ok", None)]
    ref = Counter(r["ok"] for r in rows if passes(r, "", bbox))  # no filter of its own: the view's points
    ref.pop(None, None)
    assert dict(zip(ok["values"], ok["counts"])) == dict(ref)

    hours = got[("seen", "hours")]
    ref = Counter(r["seen"].hour for r in rows if passes(r, "hours", bbox) and r["seen"])
    assert hours["hours"] == list(range(24)) and hours["counts"] == [ref.get(h, 0) for h in range(24)]
    days = got[("seen", "days")]
    ref = Counter(r["seen"].weekday() for r in rows if passes(r, "days", bbox) and r["seen"])
    assert days["counts"] == [ref.get(d, 0) for d in range(7)]
    dates = got[("seen", "dates")]
    ref = Counter(r["seen"].date().isoformat() for r in rows if passes(r, "dates", bbox) and r["seen"])
    first = min(r["seen"] for r in rows if r["seen"]).date()
    last = max(r["seen"] for r in rows if r["seen"]).date()
    assert dates["bucket"] == "day"
    assert dates["dates"] == [(first + datetime.timedelta(days=k)).isoformat() for k in range((last - first).days + 1)]
    assert dates["counts"] == [ref.get(d, 0) for d in dates["dates"]]


def test_a_fresh_store_answers_every_chart_kind_first(hist_db, generated):
    """Each chart kind as the first request of a store (columns made of other columns)."""
    from citystack.settings import Settings
    from citystack.stores import open_store

    _, rows = generated
    for spec in (["price"], ["rooms"], ["seen:dates"], ["kind"], ["ok"]):
        store = open_store(str(hist_db), Settings(memory_index_rows=10_000_000 if hist_db.memory else 0))
        try:
            chart = store.histograms("gen", View(), spec)["fields"][0]
        finally:
            store.close()
        assert chart["total"] == len(rows)


def test_top_values_and_other(hist_store, generated):
    _, rows = generated
    from citystack.stores.histograms import Chart

    got = hist_store.histograms("gen", View(), [Chart("kind", "values", top=2)])["fields"][0]
    ref = Counter(r["kind"] for r in rows)
    missing = ref.pop(None)
    top = sorted(ref.items(), key=lambda kv: (-kv[1], kv[0]))[:2]
    assert list(zip(got["values"], got["counts"])) == top
    assert got["other"] == sum(ref.values()) - sum(n for _, n in top) and got["missing"] == missing


def test_histograms_api(hist_client, generated):
    _, rows = generated
    q = ("fields=price,kind,seen:hours&bins=10&kind=alpha&kind=beta&price_min=500")
    got = get_json(hist_client, f"/api/layers/gen/histograms?{q}")
    assert got["layer"] == "gen" and [(c["name"], c.get("part")) for c in got["fields"]] == \
        [("price", None), ("kind", None), ("seen", "hours")]
    keep = [r for r in rows if r["kind"] in ("alpha", "beta") and r["price"] is not None and r["price"] >= 500]
    assert got["total"] == len(keep)
    kind = got["fields"][1]
    ref = Counter(r["kind"] for r in rows if r["price"] is not None and r["price"] >= 500)
    ref.pop(None)
    assert dict(zip(kind["values"], kind["counts"])) == dict(ref)  # its own filter left out
    price = got["fields"][0]
    assert len(price["counts"]) == 10 and sum(price["counts"]) == sum(r["kind"] in ("alpha", "beta") and
                                                                      r["price"] is not None for r in rows)
    hours = got["fields"][2]
    assert hours["counts"] == [sum(1 for r in keep if r["seen"] and r["seen"].hour == h) for h in range(24)]


@pytest.mark.parametrize("query,parameter", [
    ("", "fields"), ("fields=nope", "fields"), ("fields=price:hours", "fields"), ("fields=price&bins=0", "bins"),
    ("fields=price&bins=201", "bins"), ("fields=kind&top=0", "top"), ("fields=price&nope=1", "nope"),
])
def test_histograms_api_refuses(hist_client, query, parameter):
    assert get_json(hist_client, f"/api/layers/gen/histograms?{query}", 400)["parameter"] == parameter


# ---- real files --------------------------------------------------------------------------------

def airbnb_rows() -> list[dict]:
    with open(AIRBNB, newline="", encoding="utf-8") as fh:
        return [r for r in csv.DictReader(fh) if r["latitude"] and r["longitude"]]


@needs_shared()
def test_airbnb_price_chart_and_room_type_chart(hist_store):
    rows = airbnb_rows()
    rooms, groups = ("Private room", "Entire home/apt"), ("Manhattan", "Brooklyn")
    view = View(filters=[Filter("room_type", "in", rooms), Filter("neighbourhood_group", "in", groups),
                         Filter("price", "max", 400.0)])
    got = by_part(hist_store.histograms("nyc", view, ["price", "room_type", "neighbourhood_group"]))
    prices = np.array([float(r["price"]) for r in rows])
    lo, hi = prices.min(), prices.max()
    others = np.array([r["room_type"] in rooms and r["neighbourhood_group"] in groups for r in rows])
    assert got[("price", None)]["counts"] == np.histogram(prices[others], bins=40, range=(lo, hi))[0].tolist()
    room = got[("room_type", None)]
    ref = Counter(r["room_type"] for r in rows if r["neighbourhood_group"] in groups and float(r["price"]) <= 400)
    assert dict(zip(room["values"], room["counts"])) == dict(ref) and len(ref) == 3  # its own filter left out
    group = got[("neighbourhood_group", None)]
    ref = Counter(r["neighbourhood_group"] for r in rows if r["room_type"] in rooms and float(r["price"]) <= 400)
    assert dict(zip(group["values"], group["counts"])) == dict(ref)


def divvy_rows() -> list[dict]:
    with open(DIVVY, newline="") as fh:
        out = []
        for r in csv.DictReader(fh):
            if r["start_lat"] and r["start_lng"]:
                r["t"] = datetime.datetime.strptime(r["started_at"], "%Y-%m-%d %H:%M:%S")
                out.append(r)
        return out


@needs_shared(DIVVY)
def test_divvy_hour_and_day_charts_equal_the_file(hist_client):
    rows = divvy_rows()
    got = by_part(get_json(hist_client, "/api/layers/divvy/histograms?fields=started_at"))
    assert got[("started_at", "hours")]["counts"] == [sum(r["t"].hour == h for r in rows) for h in range(24)]
    assert got[("started_at", "days")]["counts"] == [sum(r["t"].weekday() == d for r in rows) for d in range(7)]
    assert sum(got[("started_at", "dates")]["counts"]) == len(rows)
    # with filters: the hour chart leaves out hours, keeps the rest
    got = by_part(get_json(hist_client, "/api/layers/divvy/histograms?fields=started_at,rideable_type"
                                        "&hours=7-9&rideable_type=classic_bike"))
    classic = [r for r in rows if r["rideable_type"] == "classic_bike"]
    assert got[("started_at", "hours")]["counts"] == [sum(r["t"].hour == h for r in classic) for h in range(24)]
    rush = [r for r in classic if 7 <= r["t"].hour <= 9]
    assert got[("started_at", "days")]["counts"] == [sum(r["t"].weekday() == d for r in rush) for d in range(7)]
    kinds = got[("rideable_type", None)]
    ref = Counter(r["rideable_type"] for r in rows if 7 <= r["t"].hour <= 9)
    assert dict(zip(kinds["values"], kinds["counts"])) == dict(ref)


# ---- export ------------------------------------------------------------------------------------

def export_query() -> str:
    return "kind=alpha&kind=a%2C%20b&price_min=100&hours=20-4&bbox=" + ",".join(map(str, BBOX))


def export_reference(rows) -> list[dict]:
    return [r for r in rows if r["kind"] in ("alpha", "a, b") and r["price"] is not None and r["price"] >= 100
            and r["seen"] is not None and (r["seen"].hour >= 20 or r["seen"].hour <= 4)
            and BBOX[0] <= r["x"] <= BBOX[2] and BBOX[1] <= r["y"] <= BBOX[3]]


def test_export_csv_equals_the_filtered_rows(hist_db, hist_store, generated):
    _, rows = generated
    client = make_app(hist_db, hist_store, export_page_rows=7).test_client()  # many pages
    response = client.get(f"/api/layers/gen/export?format=csv&{export_query()}")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == 'attachment; filename="gen.csv"'
    assert response.mimetype == "text/csv"
    got = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    want = export_reference(rows)
    assert len(want) > 20 and response.headers["X-Export-Rows"] == str(len(want))
    assert sorted(int(r["id"]) for r in got) == sorted(r["id"] for r in want)
    by_id = {r["id"]: r for r in want}
    for r in got:
        ref = by_id[int(r["id"])]
        assert float(r["price"]) == ref["price"] and r["kind"] == ref["kind"]
        assert float(r["lon"]) == ref["x"] and float(r["lat"]) == ref["y"]
    # the same rows in the same order as the features API pages through them
    features = get_json(client, f"/api/layers/gen/features?limit=10000&{export_query()}")
    assert [int(r["id"]) for r in got] == [int(f["id"]) for f in features["features"]]


def test_export_geojson(hist_db, hist_store, generated):
    _, rows = generated
    client = make_app(hist_db, hist_store, export_page_rows=5).test_client()
    response = client.get(f"/api/layers/gen/export?format=geojson&properties=price,kind&{export_query()}")
    assert response.status_code == 200 and response.mimetype == "application/geo+json"
    assert response.headers["Content-Disposition"] == 'attachment; filename="gen.geojson"'
    doc = orjson.loads(response.get_data())
    assert doc["type"] == "FeatureCollection"
    want = {r["id"]: r for r in export_reference(rows)}
    assert sorted(int(f["id"]) for f in doc["features"]) == sorted(want)
    f = doc["features"][0]
    assert set(f["properties"]) == {"price", "kind"}
    assert f["geometry"]["coordinates"] == [want[int(f["id"])]["x"], want[int(f["id"])]["y"]]
    empty = orjson.loads(client.get("/api/layers/gen/export?format=geojson&price_min=5000").get_data())
    assert empty["features"] == []


def test_export_limit(hist_db, hist_store, generated):
    _, rows = generated
    n = len(export_reference(rows))
    at = make_app(hist_db, hist_store, export_max_rows=n).test_client()
    assert at.get(f"/api/layers/gen/export?{export_query()}").status_code == 200
    below = make_app(hist_db, hist_store, export_max_rows=n - 1).test_client()
    body = get_json(below, f"/api/layers/gen/export?{export_query()}", 400)
    assert body["parameter"] == "export_max_rows" and f"{n - 1:,} rows" in body["detail"]


@pytest.mark.parametrize("query,parameter", [("format=xml", "format"), ("properties=nope", "properties"),
                                             ("nope=1", "nope")])
def test_export_refuses(hist_client, query, parameter):
    assert get_json(hist_client, f"/api/layers/gen/export?{query}", 400)["parameter"] == parameter
