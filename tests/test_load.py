"""Loading files through the CLI: what lands, what is reported, and that a
bad file leaves the database exactly as it was."""

from __future__ import annotations

import csv
import hashlib
import json

import pytest

from conftest import AIRBNB, FOURSQUARE, citystack, needs_shared, flat
from citystack.stores import View, open_store

GOOD = "id,name,latitude,longitude,price\n1,a,40.1,-73.9,100\n2,b,40.2,-73.8,\"$1,200.50\"\n3,c,40.3,-73.7,0\n"


@pytest.fixture()
def db(tmp_path):
    path = tmp_path / "t.duckdb"
    (tmp_path / "good.csv").write_text(GOOD)
    citystack("load", tmp_path / "good.csv", "--layer", "base", "--db", path)
    return path


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_csv_lands_with_prices_parsed(db):
    store = open_store(str(db))
    info = store.layer("base")
    assert info.count == 3 and info.kind == "points"
    cols = flat(store.features("base", View(), None, 10))
    assert sorted(cols["price"].tolist()) == [0.0, 100.0, 1200.5]
    assert sorted(cols["id"].tolist()) == [1, 2, 3]
    assert info.extent == [-73.9, 40.1, -73.7, 40.3]


BAD_FILES = {
    "truncated.csv": GOOD + "4,d,40.4,-7",
    "text_latitude.csv": GOOD + "4,d,north,-73.6,5\n",
    "empty.csv": "",
    "binary.csv": bytes(range(256)) * 8,
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_is_refused_and_database_unchanged(db, tmp_path, name):
    path = tmp_path / name
    content = BAD_FILES[name]
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    before = digest(db)
    proc = citystack("load", path, "--layer", "base", "--db", db, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "nothing was changed" in proc.stderr
    assert digest(db) == before
    assert open_store(str(db)).layer("base").count == 3
    expected = {"truncated.csv": "truncated", "text_latitude.csv": "line 5",
                "empty.csv": "empty", "binary.csv": "binary"}[name]
    assert expected in proc.stderr


def test_invalid_rows_reported_and_skippable(tmp_path):
    path = tmp_path / "mixed.csv"
    rows = [GOOD.strip()] + ["9,x,,-73.5,1", "10,y,95,-73.5,1", "11,z,40.5,-73.5,1"]
    path.write_text("\n".join(rows) + "\n")
    db = tmp_path / "m.duckdb"
    proc = citystack("load", path, "--layer", "m", "--db", db, check=False)
    assert proc.returncode == 2
    assert "2 of 6 rows" in proc.stderr and "lines 5, 6" in proc.stderr
    proc = citystack("load", path, "--layer", "m", "--db", db, "--skip-invalid")
    assert "2 of 6 rows" in proc.stdout
    assert open_store(str(db)).layer("m").count == 4


def test_geojson_points(tmp_path):
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": i, "geometry": {"type": "Point", "coordinates": [114.0 + i / 100, 22.5]},
         "properties": {"name": f"p{i}", "price": 10 * i}} for i in range(5)]}
    path = tmp_path / "p.geojson"
    path.write_text(json.dumps(fc))
    db = tmp_path / "g.duckdb"
    citystack("load", path, "--layer", "g", "--db", db)
    cols = flat(open_store(str(db)).features("g", View(bbox=(114.015, 22, 114.035, 23)), ["name", "price"], 10))
    assert cols["name"].tolist() == ["p2", "p3"] and cols["price"].tolist() == [20, 30]


def test_second_load_replaces_layer(db, tmp_path):
    path = tmp_path / "two.csv"
    path.write_text("lat,lng,name\n1,2,a\n3,4,b\n")
    citystack("load", path, "--layer", "base", "--db", db)
    info = open_store(str(db)).layer("base")
    assert info.count == 2 and info.field_names == ["name"]


def test_missing_coordinates_columns_named(tmp_path):
    path = tmp_path / "nocoords.csv"
    path.write_text("a,b\n1,2\n")
    proc = citystack("load", path, "--layer", "x", "--db", tmp_path / "x.duckdb", check=False)
    assert proc.returncode == 2 and "--lat" in proc.stderr and "columns: a, b" in proc.stderr


@needs_shared(AIRBNB)
def test_airbnb_all_listings(sample_db):
    store = open_store(str(sample_db))
    info = store.layer("nyc")
    assert info.count == 48_895
    from citystack.stores.base import Filter
    assert store.count("nyc", View(filters=[Filter("price", "in", (0,))])) == 11


@needs_shared(AIRBNB)
def test_airbnb_report_marks_zero_prices(tmp_path):
    proc = citystack("load", AIRBNB, "--layer", "nyc", "--preset", "airbnb", "--db", tmp_path / "a.duckdb")
    assert "48895 points" in proc.stdout
    assert "11 rows have price 0" in proc.stdout


@needs_shared(FOURSQUARE)
def test_foursquare_places_and_checkins(sample_db):
    store = open_store(str(sample_db))
    assert store.layer("fsq").count == 44_809
    assert store.layer("fsq").kind == "checkins"
    assert store.layer("fsq_places").count == 11_081
    users = store.sql('SELECT count(DISTINCT "user") AS n FROM layer_fsq')["n"][0]
    assert users == 193
    # Days came from names: the brute-force count of Mondays in the file matches.
    with open(FOURSQUARE, newline="") as fh:
        mondays = sum(1 for row in csv.DictReader(fh) if row["day"] == "Monday")
    assert store.count("fsq", View(days=[0])) == mondays


def test_sample_city_shape(store):
    assert store.layer("listings").count >= 20_000
    assert store.layer("checkins_places").count >= 2_000
    assert store.layer("checkins").count >= 50_000
    assert store.sql('SELECT count(DISTINCT "user") AS n FROM layer_checkins')["n"][0] == 1_000
    # Users revisit places: many (user, place) pairs have more than one check-in.
    repeats = store.sql('SELECT count(*) AS n FROM (SELECT "user", place FROM layer_checkins '
                        'GROUP BY 1, 2 HAVING count(*) > 1) AS pairs')["n"][0]
    assert repeats > 5_000
    lon0, lat0, lon1, lat1 = store.layer("listings").extent
    assert lon0 < 114.062 < lon1 and lat0 < 22.539 < lat1


def test_sample_is_deterministic(tmp_path):
    from citystack.ingest.sample import generate

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    pa, pb = generate(str(a), seed=7, listings=500, places=50, users=20, checkins=400), \
        generate(str(b), seed=7, listings=500, places=50, users=20, checkins=400)
    assert open(pa["listings"]).read() == open(pb["listings"]).read()
    assert open(pa["checkins"]).read() == open(pb["checkins"]).read()


@needs_shared(FOURSQUARE)
def test_foursquare_places_sit_at_the_mean_of_their_checkins_on_every_load(tmp_path):
    import math
    from collections import defaultdict
    from fractions import Fraction

    rows = defaultdict(list)
    with open(FOURSQUARE, newline="") as fh:
        for row in csv.DictReader(fh):
            rows[row["poi"]].append((float(row["lon"]), float(row["lat"])))
    loads = []
    for name in ("a", "b", "c"):
        citystack("load", FOURSQUARE, "--layer", "fsq", "--preset", "foursquare", "--db", tmp_path / f"{name}.duckdb")
        store = open_store(str(tmp_path / f"{name}.duckdb"))
        loads.append(store.columns("fsq_places", View(), ["id", "lon", "lat"]))
        store.close()
    for other in loads[1:]:  # bit for bit: the mean does not depend on how threads met the rows
        assert list(other["id"]) == list(loads[0]["id"])
        assert other["lon"].tobytes() == loads[0]["lon"].tobytes()
        assert other["lat"].tobytes() == loads[0]["lat"].tobytes()
    spread = 0
    for pid, lon, lat in zip(loads[0]["id"].tolist(), loads[0]["lon"].tolist(), loads[0]["lat"].tolist()):
        points = rows[str(pid)]
        for got, axis in ((lon, 0), (lat, 1)):
            # Within one unit in the last place of the exact mean (a fraction, rounded once):
            # the load rounds each coordinate to 28 decimals, and its decimal mean is rounded
            # again on the way to a double (measured: 286 of 22,162 values one ulp off).
            exact = float(sum(Fraction(p[axis]) for p in points) / len(points))
            assert abs(got - exact) <= math.ulp(exact), (pid, axis, got, exact)
        if len(points) == 1:
            assert (lon, lat) == points[0]  # a place seen once keeps its coordinates exactly
        spread += len({p for p in points}) > 1
    assert spread > 100  # places whose check-ins disagree on where they are: the mean matters
