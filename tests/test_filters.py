"""Filters (issue 9): several values, exclusion, ranges on numbers, dates and times, from/to,
days and hours on any layer with a time field; typed JSON out. Every count is checked
against a brute-force count in Python over the rows the layer was built from, on both
stores (DuckDB and PostGIS), through HTTP (the app's test client)."""

from __future__ import annotations

import csv
import datetime as dt
import os
import random
from pathlib import Path

import orjson
import pytest

from conftest import SHARED, citystack, make_app, needs_shared

N = 2000
BIG = 2 ** 53  # the first integer a float64 cannot tell from its neighbour
KINDS = ["oak", "elm", "ash", "Plane tree", None]
BOUNDARY = dt.datetime(2021, 1, 15)  # rows at this exact instant test half-open from/to
DIVVY = SHARED / "divvy_chicago_2021-01.csv"


def make_rows(seed: int = 9) -> list[dict]:
    rng = random.Random(seed)
    start = dt.datetime(2021, 1, 1)
    rows = []
    for i in range(N):
        t = start + dt.timedelta(seconds=rng.randrange(31 * 86400))
        if i % 97 == 0:
            t = BOUNDARY
        rows.append({
            "id": BIG + 1 + 2 * i,  # odd: float64 would round every one of them to an even neighbour
            "lon": round(-87.7 + rng.random() * 0.2, 6), "lat": round(41.8 + rng.random() * 0.2, 6),
            "t": None if i % 41 == 0 else t,
            "kind": rng.choice(KINDS),
            "open": rng.choice([True, False, None]),
            "planted": None if i % 13 == 0 else dt.date(2018, 1, 1) + dt.timedelta(days=rng.randrange(1000)),
            "price": None if i % 17 == 0 else round(rng.random() * 10, 3),
            "code": BIG + i % 5,  # an id-like field: exact digits matter
        })
    return rows


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(list(rows[0]))
        for r in rows:
            out.writerow(["" if v is None else ("true" if v is True else "false" if v is False else v)
                          for v in r.values()])


COLUMNS = ("{'id': 'BIGINT', 'lon': 'DOUBLE', 'lat': 'DOUBLE', 't': 'TIMESTAMP', 'kind': 'VARCHAR', "
           "'open': 'BOOLEAN', 'planted': 'DATE', 'price': 'DOUBLE', 'code': 'BIGINT'}")


def build(db: str, path: Path) -> None:
    from citystack.stores import open_writer

    source = f"read_csv(?, header = true, columns = {COLUMNS})"
    with open_writer(db) as staging:
        staging.publish("trees", "points", f"SELECT * FROM {source}", [str(path)], time="t")
        staging.publish("plain", "points", f"SELECT id, lon, lat, kind, price FROM {source}", [str(path)])


@pytest.fixture(scope="module")
def rows():
    return make_rows()


@pytest.fixture(scope="module", params=["duckdb", "postgis"])
def api(request, rows, tmp_path_factory):
    """A test client over a store holding `trees` (time field t) and `plain` (no time)."""
    from citystack.stores import open_store

    folder = tmp_path_factory.mktemp("filters")
    write_csv(folder / "trees.csv", rows)
    if request.param == "duckdb":
        db = str(folder / "filters.duckdb")
    else:
        db = own_database(request.getfixturevalue("pg_cluster"), "citystack_filters")
    build(db, folder / "trees.csv")
    store = open_store(db)
    yield make_app(db, store).test_client()
    store.close()


def own_database(cluster, name: str) -> str:
    """A database of this module's own in the session's cluster (the sample's stays as it is)."""
    import psycopg

    admin = f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres"
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute(f"DROP DATABASE IF EXISTS {name}")
        con.execute(f"CREATE DATABASE {name}")
    url = f"postgresql://postgres@127.0.0.1:{cluster.port}/{name}"
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    return url


# ---- the reference: filters in plain Python ----

def in_hours(h, lo, hi):
    return lo <= h <= hi if lo <= hi else (h >= lo or h <= hi)


T = dt.datetime
CASES = [  # (query, predicate over a row)
    ("kind=oak&kind=elm", lambda r: r["kind"] in ("oak", "elm")),
    ("kind=Plane+tree", lambda r: r["kind"] == "Plane tree"),
    ("kind_not=oak", lambda r: r["kind"] != "oak"),  # NULLs kept
    ("kind_not=oak&kind_not=elm", lambda r: r["kind"] not in ("oak", "elm")),
    ("price_min=2.5&price_max=7", lambda r: r["price"] is not None and 2.5 <= r["price"] <= 7),
    ("price=1.5&price_not=1.5", lambda r: False),
    ("planted_min=2019-03-01&planted_max=2019-06-30",
     lambda r: r["planted"] is not None and dt.date(2019, 3, 1) <= r["planted"] <= dt.date(2019, 6, 30)),
    ("planted=2019-03-01", lambda r: r["planted"] == dt.date(2019, 3, 1)),
    ("t_min=2021-01-10T00:00:00&t_max=2021-01-15T00:00:00",
     lambda r: r["t"] is not None and T(2021, 1, 10) <= r["t"] <= BOUNDARY),
    ("from=2021-01-15T00:00:00&to=2021-01-20", lambda r: r["t"] is not None and BOUNDARY <= r["t"] < T(2021, 1, 20)),
    ("from=2021-01-10&to=2021-01-15", lambda r: r["t"] is not None and T(2021, 1, 10) <= r["t"] < BOUNDARY),
    ("from=2021-01-15T02:00:00%2B02:00", lambda r: r["t"] is not None and r["t"] >= BOUNDARY),
    ("from=2021-01-15T02:00:00+02:00", lambda r: r["t"] is not None and r["t"] >= BOUNDARY),  # "+" as a space
    ("to=2021-01-14T19:00:00.000-05:00", lambda r: r["t"] is not None and r["t"] < BOUNDARY),
    ("days=Sat,Sun", lambda r: r["t"] is not None and r["t"].weekday() in (5, 6)),
    ("days=0,4", lambda r: r["t"] is not None and r["t"].weekday() in (0, 4)),
    ("hours=8", lambda r: r["t"] is not None and r["t"].hour == 8),
    ("hours=22-4", lambda r: r["t"] is not None and in_hours(r["t"].hour, 22, 4)),
    ("open=true", lambda r: r["open"] is True),
    ("open=F", lambda r: r["open"] is False),
    ("open=yes&open=0", lambda r: r["open"] is not None),
    ("open_not=t", lambda r: r["open"] is not True),
    (f"code={BIG + 1}", lambda r: r["code"] == BIG + 1),  # exact: 2^53 + 1 is no float
    (f"code_min={BIG + 3}", lambda r: r["code"] >= BIG + 3),
    ("kind=oak&hours=8-17&price_min=1&days=Mon,Tue,Wed",
     lambda r: r["kind"] == "oak" and r["t"] is not None and 8 <= r["t"].hour <= 17
     and r["price"] is not None and r["price"] >= 1 and r["t"].weekday() <= 2),
]


def expected(rows, predicate) -> list[dict]:
    return [r for r in rows if predicate(r)]


def get(api, path, query=""):
    response = api.get(f"{path}?{query}")
    assert response.status_code == 200, (query, response.status_code, response.get_data(as_text=True)[:300])
    return orjson.loads(response.get_data())


@pytest.mark.parametrize("query,predicate", CASES, ids=[c[0] for c in CASES])
def test_counts_equal_brute_force(api, rows, query, predicate):
    want = expected(rows, predicate)
    got = get(api, "/api/layers/trees/features", f"limit={N + 10}&properties=kind&{query}")
    assert got["numberReturned"] == len(want)
    assert sorted(f["id"] for f in got["features"]) == sorted(str(r["id"]) for r in want)
    assert get(api, "/api/layers/trees/bins", f"cells=8&{query}")["total"] == len(want)


@pytest.mark.parametrize("query,predicate", [CASES[0], CASES[16], CASES[9]], ids=["in", "hours", "from-to"])
def test_analysis_counts_equal_brute_force(api, rows, query, predicate):
    got = get(api, "/api/analyses/heatmap", f"layer=trees&cells=8&{query}")
    assert got["input"]["count"] == len(expected(rows, predicate))


def test_every_analysis_takes_a_category_filter(api, rows):
    """The points an analysis counts are the filtered ones, and its answer changes with them."""
    from citystack.analyses.registry import load

    extra = {"interpolate": "field=price&model=knn&folds=2", "clusters": "min_points=3"}
    want = len([r for r in rows if r["kind"] == "elm"])
    tried = 0
    for name, analysis in load().items():
        if "points" not in analysis.kinds or name in ("areas", "flows"):
            continue  # areas and flows aggregate into an areas layer: tests/test_areas.py filters them
        base = f"layer=trees&{extra.get(name, '')}"
        everything = get(api, f"/api/analyses/{name}", base)
        some = get(api, f"/api/analyses/{name}", base + "&kind=elm")
        assert everything["input"]["count"] == N
        assert some["input"]["count"] == want, name
        strip = ("seconds", "cached", "input")
        assert {k: v for k, v in some.items() if k not in strip} != \
            {k: v for k, v in everything.items() if k not in strip}, name
        tried += 1
    assert tried >= 3


def test_network_takes_a_category_filter(client):
    """The check-in analysis too (the sample's check-ins, each store)."""
    layer = client.get("/api/layers/checkins").get_json()
    field = "category"
    value = next(f for f in layer["fields"] if f["name"] == field)["top"][0][0]
    want = 0
    for offset in range(0, layer["count"], 50_000):  # every check-in, counted here
        page = get(client, "/api/layers/checkins/features", f"limit=50000&offset={offset}&properties={field}")
        want += sum(1 for f in page["features"] if f["properties"][field] == value)
    assert 0 < want < layer["count"]
    got = get(client, "/api/analyses/network", f"layer=checkins&{field}={value}&min_shared=1")
    assert got["input"]["count"] == want


@pytest.mark.parametrize("query,parameter,words", [
    ("price_min=abc", "price_min", "number"),
    ("price=abc", "price", "number"),
    ("planted_min=2019-13-01", "planted_min", "date"),
    ("planted=2019-1-1", "planted", "date"),
    ("t_max=yesterday", "t_max", "time"),
    ("open=maybe", "open", "bool"),
    ("from=tomorrow", "from", "ISO"),
    ("to=2021-01-10T25:00", "to", "date-time"),
    ("from=2021-01-10&to=2021-01-10", "to", "after"),
    ("days=Funday", "days", "day"),
    ("hours=25", "hours", "0 to 23"),
    ("hours=8-", "hours", "hour"),
    ("kind_min=a", "kind_min", "text"),
    ("open_max=true", "open_max", "bool"),
    ("knd=oak", "knd", "kind"),
    ("from=2021-01-10&from=2021-01-11", "from", "once"),
])
def test_bad_values_are_400_naming_the_parameter(api, query, parameter, words):
    for path in ("/api/layers/trees/features", "/api/layers/trees/bins"):
        response = api.get(f"{path}?{query}")
        assert response.status_code == 400, (query, response.get_data(as_text=True)[:300])
        body = response.get_json()
        assert body["parameter"] == parameter
        assert words in body["detail"], body


@pytest.mark.parametrize("query,parameter", [("days=Mon", "days"), ("hours=8", "hours"),
                                              ("from=2021-01-10", "from"), ("to=2021-01-10", "to")])
def test_time_filters_need_a_time_field(api, query, parameter):
    for path in ("/api/layers/plain/features", "/api/analyses/heatmap"):
        response = api.get(f"{path}?layer=plain&{query}")
        assert response.status_code == 400
        assert response.get_json()["parameter"] == parameter
        assert "time field" in response.get_json()["detail"]


def test_analysis_parameters_win_over_filters(api):
    """heatmap's `cells` is its own; an unknown name is a 400 naming it."""
    got = get(api, "/api/analyses/heatmap", "layer=trees&cells=6&kind=oak")
    assert got["grid"]["nx"] == 6 or got["grid"]["ny"] == 6
    response = api.get("/api/analyses/heatmap?layer=trees&bandwidht=100")
    assert response.status_code == 400 and response.get_json()["parameter"] == "bandwidht"


def test_json_values_are_typed(api, rows):
    got = get(api, "/api/layers/trees/features", f"limit={N}")
    by_id = {r["id"]: r for r in rows}
    assert len(got["features"]) == N
    for f in got["features"]:
        assert isinstance(f["id"], str)
        r = by_id[int(f["id"])]
        p = f["properties"]
        assert p["t"] == (None if r["t"] is None else r["t"].strftime("%Y-%m-%dT%H:%M:%S"))
        assert p["planted"] == (None if r["planted"] is None else r["planted"].isoformat())
        assert p["open"] is r["open"]
        assert p["price"] == r["price"]
        assert p["kind"] == r["kind"]
        assert p["code"] == str(r["code"])  # exact digits, as text
        assert f["geometry"]["coordinates"] == [r["lon"], r["lat"]]


def test_csv_values_are_typed(api, rows):
    response = api.get(f"/api/layers/trees/features?format=csv&limit={N}")
    assert response.status_code == 200
    got = list(csv.DictReader(response.get_data(as_text=True).splitlines()))
    by_id = {str(r["id"]): r for r in rows}
    assert len(got) == N
    for line in got:
        r = by_id[line["id"]]
        assert line["t"] == ("" if r["t"] is None else r["t"].isoformat())
        assert line["planted"] == ("" if r["planted"] is None else r["planted"].isoformat())
        assert line["open"] == {True: "true", False: "false", None: ""}[r["open"]]
        assert line["code"] == str(r["code"])


def test_layer_describes_time_and_types(api, rows):
    info = get(api, "/api/layers/trees")
    fields = {f["name"]: f for f in info["fields"]}
    assert {k: fields[k]["type"] for k in ("t", "kind", "open", "planted", "price", "code")} == {
        "t": "time", "kind": "text", "open": "bool", "planted": "date", "price": "number", "code": "number"}
    assert fields["code"]["id"] is True and info["big_ids"] is True
    times = [r["t"] for r in rows if r["t"] is not None]
    assert info["time"]["field"] == "t"
    assert info["time"]["min"] == min(times).isoformat() and info["time"]["max"] == max(times).isoformat()
    assert info["time"]["hours"] == [sum(1 for t in times if t.hour == h) for h in range(24)]
    assert info["time"]["days"] == [sum(1 for t in times if t.weekday() == d) for d in range(7)]
    assert get(api, "/api/layers/plain")["time"] is None


def test_cli_analyze_takes_the_same_filters(rows, tmp_path):
    write_csv(tmp_path / "trees.csv", rows)
    db = str(tmp_path / "cli.duckdb")
    build(db, tmp_path / "trees.csv")
    out = tmp_path / "h.json"
    env = {**os.environ, "CITYSTACK_ANALYSIS_PROCESSES": "0"}  # in the command's own process: quicker
    citystack("analyze", "heatmap", "--layer", "trees", "--db", db, "--where", "kind=oak", "--where", "kind=elm",
              "--hours", "22-4", "--from", "2021-01-05", "--to", "2021-01-25T00:00:00Z", "--cells", "8", "--out", out, env=env)
    want = [r for r in rows if r["kind"] in ("oak", "elm") and r["t"] is not None and in_hours(r["t"].hour, 22, 4)
            and T(2021, 1, 5) <= r["t"] < T(2021, 1, 25)]
    assert orjson.loads(out.read_bytes())["input"]["count"] == len(want)
    for args, words in ((["--where", "price_min=x"], "--where price_min: field 'price' is number"),
                        (["--where", "nothing"], "--where takes FIELD=VALUE"),
                        (["--days", "Mon"], None), (["--from", "soon"], "--from:")):
        layer = "plain" if args[0] == "--days" else "trees"
        proc = citystack("analyze", "heatmap", "--layer", layer, "--db", db, *args, "--out", out, check=False, env=env)
        assert proc.returncode == 2, proc.stderr
        assert (words or "--days: layer 'plain' has no time field") in proc.stderr


# ---- a real file: Divvy trips of January 2021 ----

def divvy_rows() -> list[dict]:
    with open(DIVVY, newline="") as fh:
        return [r for r in csv.DictReader(fh) if r["start_lat"] and r["start_lng"]]


@pytest.fixture(scope="module", params=["duckdb", "postgis"])
def divvy(request, tmp_path_factory):
    from citystack.stores import open_store

    if not DIVVY.exists():
        pytest.skip(f"{DIVVY} is absent")
    if request.param == "duckdb":
        db = str(tmp_path_factory.mktemp("divvy") / "divvy.duckdb")
    else:
        db = own_database(request.getfixturevalue("pg_cluster"), "citystack_divvy")
    citystack("load", DIVVY, "--layer", "divvy", "--db", db)  # no options: trips at their starts, started_at the time
    store = open_store(db)
    yield make_app(db, store).test_client()
    store.close()


@needs_shared(DIVVY)
def test_divvy_counts_equal_brute_force(divvy):
    rows = divvy_rows()
    started = [dt.datetime.strptime(r["started_at"], "%Y-%m-%d %H:%M:%S") for r in rows]
    kinds = [r["rideable_type"] for r in rows]
    assert get(divvy, "/api/layers/divvy")["count"] == len(rows)

    def total(query):
        return get(divvy, "/api/layers/divvy/bins", f"cells=4&{query}")["total"]

    eight = sum(1 for t in started if t.hour == 8)
    assert total("hours=8") == eight
    assert get(divvy, "/api/layers/divvy/features", f"hours=8&limit={eight + 1}&properties=rideable_type"
               )["numberReturned"] == eight
    assert total("days=Sat,Sun") == sum(1 for t in started if t.weekday() >= 5)
    assert total("from=2021-01-10&to=2021-01-17T12:00:00") == sum(
        1 for t in started if dt.datetime(2021, 1, 10) <= t < dt.datetime(2021, 1, 17, 12))
    classic, docked = kinds.count("classic_bike"), kinds.count("docked_bike")
    assert total("rideable_type=classic_bike") == classic and total("rideable_type=docked_bike") == docked
    assert total("rideable_type=classic_bike&rideable_type=docked_bike") == classic + docked
    assert get(divvy, "/api/analyses/heatmap", "layer=divvy&cells=8&hours=8&rideable_type=docked_bike"
               )["input"]["count"] == sum(1 for t, k in zip(started, kinds) if t.hour == 8 and k == "docked_bike")
