"""`citystack load FILE... --layer L --append`, on both stores: the rows of several
files in one layer, as one load of their concatenation would give; a file that
does not fit is refused with its column and line, and the database is unchanged."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import psycopg
import pytest

from conftest import SHARED, citystack
from citystack.stores import View, open_store

DIVVY = SHARED / "divvy_chicago_2021-01.csv"
HEAD = "id,name,latitude,longitude,beds\n"


def state(db):
    """Everything a failed load must leave as it was."""
    if isinstance(db, Path):
        return hashlib.sha256(db.read_bytes()).hexdigest()
    with psycopg.connect(db) as con:
        return (con.execute("SELECT relname FROM pg_class WHERE relname LIKE 'layer%%' ORDER BY 1").fetchall(),
                con.execute("SELECT name, count, version, fields, loaded_at FROM citystack_layers "
                            "ORDER BY name").fetchall(),
                con.execute("SELECT version FROM citystack_meta").fetchall())


def split(rows: list[str], head: str, folder: Path, parts: int) -> list[Path]:
    paths, size = [], -(-len(rows) // parts)
    for k in range(parts):
        path = folder / f"part{k}.csv"
        path.write_text(head + "".join(rows[k * size:(k + 1) * size]))
        paths.append(path)
    return paths


@pytest.mark.skipif(not DIVVY.exists(), reason=f"{DIVVY} is absent")
def test_append_equals_one_load_of_the_concatenation(any_db, tmp_path):
    with open(DIVVY) as fh:
        head, *rows = fh.readlines()  # the Divvy file has no line breaks inside values
    first, second, third = split(rows, head, tmp_path, 3)
    citystack("load", first, "--layer", "trips", "--db", any_db)
    proc = citystack("load", second, third, "--layer", "trips", "--append", "--db", any_db)
    assert "added" in proc.stdout
    whole = tmp_path / "whole.duckdb"
    citystack("load", DIVVY, "--layer", "trips", "--db", whole)
    box = (-87.66, 41.86, -87.62, 41.90)
    with open(DIVVY, newline="") as fh:
        in_box = sum(1 for r in csv.DictReader(fh) if box[0] <= float(r["start_lng"]) <= box[2]
                     and box[1] <= float(r["start_lat"]) <= box[3])
    appended, once = open_store(str(any_db)), open_store(str(whole))
    try:
        a, b = appended.layer("trips"), once.layer("trips")
        assert a.count == b.count == len(rows)
        assert a.extent == b.extent and a.field_names == b.field_names
        assert appended.count("trips", View(bbox=box)) == once.count("trips", View(bbox=box)) == in_box
        got = appended.features("trips", View(bbox=box), ["ride_id"], in_box + 1)
        want = once.features("trips", View(bbox=box), ["ride_id"], in_box + 1)
        assert sorted(got["properties"]["ride_id"].tolist()) == sorted(want["properties"]["ride_id"].tolist())
        # Row numbers were renumbered: every id once, 1 .. n.
        ids = appended.features("trips", View(), [], len(rows) + 1)["id"].tolist()
        assert sorted(int(i) for i in ids) == list(range(1, len(rows) + 1))
        # The whole layer is in Morton order again, with stats over all of it.
        assert [f.as_json() for f in a.fields] == [f.as_json() for f in b.fields]
    finally:
        appended.close()
        once.close()


def test_a_new_layer_from_several_files(any_db, tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("name,lat,lon\nx,1,2\ny,1,3\n")
    b.write_text("name,lat,lon\nz,1,4\n")
    citystack("load", a, b, "--layer", "abc", "--append", "--db", any_db)
    store = open_store(str(any_db))
    try:
        assert store.layer("abc").count == 3
        assert sorted(store.features("abc", View(), ["name"], 10)["properties"]["name"].tolist()) == ["x", "y", "z"]
    finally:
        store.close()
    proc = citystack("load", a, b, "--layer", "abc", "--db", any_db, check=False)
    assert proc.returncode == 2 and "--append" in proc.stderr


def test_a_type_mismatch_is_refused_with_column_and_line(any_db, tmp_path):
    base = tmp_path / "base.csv"
    base.write_text(HEAD + "1,a,40.1,-73.9,2\n2,b,40.2,-73.8,3\n")
    citystack("load", base, "--layer", "homes", "--db", any_db)
    good = tmp_path / "good.csv"
    good.write_text(HEAD + "3,c,40.3,-73.7,1\n")
    bad = tmp_path / "bad.csv"
    bad.write_text(HEAD + '4,"two\nlines",40.3,-73.7,1\n5,e,40.4,-73.6,two\n6,f,40.4,-73.6,3\n')
    before = state(any_db)
    proc = citystack("load", good, bad, "--layer", "homes", "--append", "--db", any_db, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "column beds" in proc.stderr and "line 4" in proc.stderr and "'two'" in proc.stderr
    assert "nothing was changed" in proc.stderr
    assert state(any_db) == before  # not even good.csv's row landed
    # A fraction in an integer field does not fit either.
    bad.write_text(HEAD + "7,g,40.3,-73.7,1.5\n")
    proc = citystack("load", bad, "--layer", "homes", "--append", "--db", any_db, check=False)
    assert proc.returncode == 2 and "column beds" in proc.stderr and "line 2" in proc.stderr
    assert state(any_db) == before
    # Another set of columns does not fit.
    bad.write_text("id,name,latitude,longitude,baths\n8,h,40.3,-73.7,1\n")
    proc = citystack("load", bad, "--layer", "homes", "--append", "--db", any_db, check=False)
    assert proc.returncode == 2 and "no column beds" in proc.stderr and "baths" in proc.stderr
    assert state(any_db) == before
    # The file's own ids are kept: one the layer has is refused, with its line.
    bad.write_text(HEAD + "9,i,40.3,-73.7,1\n2,j,40.3,-73.7,1\n")
    proc = citystack("load", bad, "--layer", "homes", "--append", "--db", any_db, check=False)
    assert proc.returncode == 2 and "id 2 (line 3" in proc.stderr
    assert state(any_db) == before
    citystack("load", good, "--layer", "homes", "--append", "--db", any_db)
    store = open_store(str(any_db))
    try:
        assert store.layer("homes").count == 3
        cols = store.features("homes", View(), ["beds"], 10)
        assert sorted(zip(cols["id"].tolist(), cols["properties"]["beds"].tolist())) == [(1, 2), (2, 3), (3, 1)]
    finally:
        store.close()


def test_check_in_layers_are_not_appended_to(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("user,place,lat,lon,day,hour\nu1,p1,1,2,Monday,3\n")
    db = tmp_path / "c.duckdb"
    proc = citystack("load", path, "--layer", "c", "--user", "user", "--place", "place", "--append", "--db", db,
                     check=False)
    assert proc.returncode == 2 and "points layer" in proc.stderr


def test_postgis_gives_a_layer_back_as_it_was_staged(fresh_pg):
    """What --append reads back from PostGIS: every type a layer holds, NULLs and empty
    text apart, quotes and line breaks in text."""
    from citystack.stores import open_writer

    select = ("SELECT * FROM (VALUES "
              "(1, 114.0, 22.5, TIMESTAMP '2021-01-08 17:58:48.239', true, DATE '2020-02-29', '', 'a\"b\nc,d', "
              "CAST(2 AS BIGINT), 1.25),"
              "(2, 114.1, 22.6, NULL, NULL, NULL, NULL, NULL, NULL, NULL)) "
              "AS v(id, lon, lat, t, b, d, e, s, n, x)")
    select = f"SELECT id, CAST(lon AS DOUBLE) AS lon, CAST(lat AS DOUBLE) AS lat, t, b, d, e, s, n, " \
             f"CAST(x AS DOUBLE) AS x FROM ({select})"
    with open_writer(fresh_pg) as staging:
        staging.publish("typed", "points", select)
        staged = staging.con.execute("SELECT id, lon, lat, t, b, d, e, s, n, x FROM layer_typed ORDER BY id").fetchall()
    with open_writer(fresh_pg) as staging:
        meta, _ = staging.fetch("typed", "back")
        back = staging.con.execute("SELECT id, lon, lat, t, b, d, e, s, n, x FROM back ORDER BY id").fetchall()
        types = dict(staging.con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                         "WHERE table_name = 'back'").fetchall())
    assert back == staged
    assert [f.column for f in meta["fields"]] == ["t", "b", "d", "e", "s", "n", "x"]
    assert (types["t"], types["b"], types["d"], types["n"], types["x"]) == \
        ("TIMESTAMP", "BOOLEAN", "DATE", "BIGINT", "DOUBLE")
