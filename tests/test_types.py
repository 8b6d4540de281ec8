"""Names and types at load: a field keeps the file's name, its type is found (or
given with --type), values that do not parse are reported by line, and a
time field gives a points layer day/hour columns and a time summary. Files
are made here (or read from ../shared/data); every expected value is worked
out independently, with Python's csv and datetime."""

from __future__ import annotations

import csv
import datetime
import json
from collections import Counter

import numpy as np
import psycopg

from conftest import AIRBNB, SHARED, citystack, needs_shared
from citystack.stores import View, open_store
from citystack.stores.base import Filter

DIVVY = SHARED / "divvy_chicago_2021-01.csv"
UTC = datetime.timezone.utc


def write_csv(path, header, rows):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def load(tmp_path, path, *args, layer="t", check=True):
    db = tmp_path / "t.duckdb"
    proc = citystack("load", path, "--layer", layer, "--db", db, *args, check=check)
    return db, proc


def py(values) -> list:
    """A store column as Python values (datetimes, dates, bools, numbers, text, None)."""
    arr = np.asarray(values)
    if arr.dtype.kind == "M":
        return [None if np.isnat(v) else v.astype("datetime64[us]").astype(object) for v in arr]
    return [v.item() if isinstance(v, np.generic) else v for v in arr.tolist()]


def as_date(v):
    return v.date() if isinstance(v, datetime.datetime) else v


def by_id(store, layer, names=None) -> dict:
    """id -> {public name: value}, through Store.features."""
    out = store.features(layer, View(), names, 100_000)
    ids = py(out["id"])
    cols = {k: py(v) for k, v in out["properties"].items()}
    return {i: {k: cols[k][n] for k in cols} for n, i in enumerate(ids)}


# -- timestamps and dates -------------------------------------------------------

STAMPS = {  # column -> (values as written, how Python reads them)
    "iso_t_ms": (["2026-06-09T16:45:38.000", "2026-06-10T00:00:01.500"],
                 lambda v: datetime.datetime.fromisoformat(v)),
    "iso_space": (["2021-01-08 17:58:48", "2021-01-09 08:00:00"], datetime.datetime.fromisoformat),
    "iso_frac": (["2018-01-31 22:52:35.2390", "2018-02-01 01:02:03.5"],
                 lambda v: datetime.datetime.strptime(v, "%Y-%m-%d %H:%M:%S.%f")),
    "iso_offset": (["2021-01-08T17:58:48+02:00", "2021-01-08T23:30:00-05:00"],
                   lambda v: datetime.datetime.fromisoformat(v).astimezone(UTC).replace(tzinfo=None)),
    "iso_minutes": (["2021-01-08T17:58", "2021-01-08 06:05"],
                    lambda v: datetime.datetime.fromisoformat(v.replace(" ", "T"))),
    "us_seconds": (["4/1/2014 0:11:00", "12/31/2014 23:59:59"],
                   lambda v: datetime.datetime.strptime(v, "%m/%d/%Y %H:%M:%S")),
    "us_minutes": (["4/1/2014 0:11", "10/15/2014 13:05"], lambda v: datetime.datetime.strptime(v, "%m/%d/%Y %H:%M")),
    "unix_seconds": (["1609459200", "1612137599.5"],
                     lambda v: datetime.datetime.fromtimestamp(float(v), UTC).replace(tzinfo=None)),
    "unix_millis": (["1609459200000", "1612137599250"],
                    lambda v: datetime.datetime.fromtimestamp(int(v) / 1000, UTC).replace(tzinfo=None)),
}
DATES = {
    "date_iso": (["2019-05-21", "2020-02-29"], datetime.date.fromisoformat),
    "date_us": (["5/21/2019", "12/1/2020"], lambda v: datetime.datetime.strptime(v, "%m/%d/%Y").date()),
}


def test_every_timestamp_and_date_form(tmp_path):
    cols = {**STAMPS, **DATES}
    header = ["id", "lat", "lon"] + list(cols)
    rows = [[i + 1, 40 + i / 10, -73 - i / 10] + [cols[c][0][i] for c in cols] for i in range(2)]
    db, proc = load(tmp_path, write_csv(tmp_path / "t.csv", header, rows),
                    "--type", "unix_seconds=unix_s", "--type", "unix_millis=unix_ms")
    store = open_store(str(db))
    info = store.layer("t")
    for name in STAMPS:
        assert info.field(name).type == "time", name
    for name in DATES:
        assert info.field(name).type == "date", name
    got = by_id(store, "t")
    for name, (written, read) in cols.items():
        expect = [read(v) for v in written]
        values = [got[i + 1][name] for i in range(2)]
        if name in DATES:
            values = [as_date(v) for v in values]
        assert values == expect, (name, values, expect)
    # Several timestamp columns, none named as a start: no time field, and the report says how to pick.
    assert info.time is None
    assert "no time field: several timestamp columns" in proc.stdout and "--time COL" in proc.stdout


def test_booleans_are_found_and_1_0_only_alone(tmp_path):
    cols = {
        "tf": ["t", "f", "T", "F"],
        "words": ["true", "FALSE", "True", "false"],
        "yn": ["yes", "No", "YES", "no"],
        "ones": ["1", "0", "0", "1"],
        "counts": ["1", "0", "2", "1"],  # holds something besides 1 and 0: an integer
    }
    rows = [[i, 40, -73] + [cols[c][i] for c in cols] for i in range(4)]
    db, _ = load(tmp_path, write_csv(tmp_path / "b.csv", ["id", "lat", "lon"] + list(cols), rows))
    store = open_store(str(db))
    info = store.layer("t")
    got = by_id(store, "t")
    for name in ("tf", "words", "yn", "ones"):
        f = info.field(name)
        assert f.type == "bool" and f.category, name
        expect = [cols[name][i].lower() in ("t", "true", "yes", "1") for i in range(4)]
        assert [got[i][name] for i in range(4)] == expect
        assert sorted(map(tuple, f.top)) == sorted(Counter(expect).items())
    assert info.field("counts").type == "number" and info.field("counts").integer


def test_money_and_percent(tmp_path):
    cols = {
        "usd": ["$1,234.00", "-$5.50", "$12", "$1,000,000.25"],
        "eur": ["1.234,00 €", "5,50 €", "€ 12", "1.000.000,25 €"],
        "mixed_marks": ["$1,234.50", "1.234,50 €", "$3", "$4"],  # both decimal marks: ambiguous, text
        "pct": ["97%", "3.5 %", "100%", "0%"],
    }
    rows = [[i, 40, -73] + [cols[c][i] for c in cols] for i in range(4)]
    db, proc = load(tmp_path, write_csv(tmp_path / "m.csv", ["id", "lat", "lon"] + list(cols), rows))
    store = open_store(str(db))
    info = store.layer("t")
    got = by_id(store, "t")
    expect = {"usd": [1234.0, -5.5, 12.0, 1000000.25], "eur": [1234.0, 5.5, 12.0, 1000000.25],
              "pct": [97.0, 3.5, 100.0, 0.0]}
    for name, values in expect.items():
        assert [got[i][name] for i in range(4)] == values, name
    assert info.field("usd").unit == info.field("eur").unit == "money"
    assert info.field("pct").unit == "percent" and info.field("pct").type == "number"
    assert info.field("mixed_marks").type == "text"
    assert [got[i]["mixed_marks"] for i in range(4)] == cols["mixed_marks"]
    assert "pct" in proc.stdout and "percent" in proc.stdout


def test_bad_dates_are_counted_and_shown_by_line_and_mostly_text_stays_text(tmp_path):
    start = datetime.date(2020, 1, 1)
    rows, bad = [], {}
    for i in range(60):
        when = (start + datetime.timedelta(days=i)).isoformat()
        if i in (5, 18):
            when = {5: "n/a", 18: "2020-13-45"}[i]
            bad[i + 2] = when  # line: the header is line 1
        note = (start + datetime.timedelta(days=i)).isoformat() if i % 3 == 0 else f"word {i}"
        rows.append([i, 40, -73, when, note])
    db, proc = load(tmp_path, write_csv(tmp_path / "d.csv", ["id", "lat", "lon", "when", "note"], rows))
    store = open_store(str(db))
    info = store.layer("t")
    assert info.field("when").type == "date"
    assert info.field("note").type == "text"
    got = by_id(store, "t")
    for i, row in enumerate(rows):
        value = as_date(got[i]["when"])
        assert value == (None if i + 2 in bad else datetime.date.fromisoformat(row[3]))
        assert got[i]["note"] == row[4]  # kept as written
    line = [x for x in proc.stdout.splitlines() if "unparsed" in x]
    assert len(line) == 1 and "2 values of when" in line[0]
    for number, value in bad.items():
        assert f"line {number}: {value!r}" in line[0]


# -- names ------------------------------------------------------------------------

def test_colliding_names_are_all_kept(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("Trunk_Diameter,trunk_diameter,a,a,Latitude,Longitude\n"
                    "10,1,x,y,40.5,-73.5\n20,2,x,z,40.6,-73.6\n30,3,w,z,40.7,-73.7\n")
    db, proc = load(tmp_path, path)
    store = open_store(str(db))
    info = store.layer("t")
    assert info.field_names == ["Trunk_Diameter", "trunk_diameter", "a", "a (2)"]
    got = by_id(store, "t")
    assert [got[i]["Trunk_Diameter"] for i in (1, 2, 3)] == [10, 20, 30]
    assert [got[i]["trunk_diameter"] for i in (1, 2, 3)] == [1, 2, 3]
    assert [got[i]["a (2)"] for i in (1, 2, 3)] == ["y", "z", "z"]
    # The file's names work in filters and analyses' columns; the report says how they were told apart.
    assert store.count("t", View(filters=[Filter("Trunk_Diameter", "min", 15.0)])) == 2
    assert store.count("t", View(filters=[Filter("trunk_diameter", "min", 15.0)])) == 0
    assert sorted(py(store.columns("t", View(), ["trunk_diameter"])["trunk_diameter"])) == [1, 2, 3]
    assert "'a (2)'" in proc.stdout and "differ only in case" in proc.stdout
    assert len({f.column for f in info.fields}) == 4


def test_geojson_properties_named_like_the_position_are_fields(tmp_path):
    features = [{"type": "Feature", "id": i + 1,
                 "geometry": {"type": "Point", "coordinates": [-73.9 + i / 100, 40.7 + i / 100]},
                 "properties": {"Longitude": f"{-70 - i}", "Latitude": 50 + i, "lat": "north", "Name": f"t{i}"}}
                for i in range(3)]
    path = tmp_path / "trees.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    db, _ = load(tmp_path, path)
    store = open_store(str(db))
    info = store.layer("t")
    assert set(info.field_names) == {"Longitude", "Latitude", "lat", "Name"}
    out = store.features("t", View(), None, 10)
    order = np.argsort(out["id"])
    assert py(np.asarray(out["lon"])[order]) == [f["geometry"]["coordinates"][0] for f in features]
    assert py(np.asarray(out["lat"])[order]) == [f["geometry"]["coordinates"][1] for f in features]
    props = {k: [py(v)[j] for j in order] for k, v in out["properties"].items()}
    assert props["Longitude"] == [-70, -71, -72] and props["Latitude"] == [50, 51, 52]
    assert props["lat"] == ["north"] * 3 and props["Name"] == ["t0", "t1", "t2"]


# -- the time field ---------------------------------------------------------------

def test_time_option_takes_the_files_name(tmp_path):
    rows, stamps = [], []
    t0 = datetime.datetime(2014, 4, 1, 0, 11)
    for i in range(200):
        t = t0 + datetime.timedelta(minutes=97 * i)
        stamps.append(t)
        rows.append([f"{t.month}/{t.day}/{t.year} {t.hour}:{t.minute:02d}:00", 40.7 + i / 1e4, -74 + i / 1e4,
                     "B02512" if i % 3 else "B02598"])
    db, proc = load(tmp_path, write_csv(tmp_path / "uber.csv", ["Date/Time", "Lat", "Lon", "Base"], rows),
                    "--time", "Date/Time")
    store = open_store(str(db))
    info = store.layer("t")
    assert info.time_field.name == "Date/Time" and info.time_field.type == "time"
    assert "time field: Date/Time" in proc.stdout
    assert info.time.hours == [sum(1 for t in stamps if t.hour == h) for h in range(24)]
    assert info.time.days == [sum(1 for t in stamps if t.weekday() == d) for d in range(7)]
    assert info.time.bucket == "day"
    assert info.time.dates == [[d.isoformat(), n] for d, n in sorted(Counter(t.date() for t in stamps).items())]
    assert info.time.min == min(stamps).isoformat() and info.time.max == max(stamps).isoformat()
    assert store.count("t", View(hours=(8, 8))) == sum(1 for t in stamps if t.hour == 8)
    assert store.count("t", View(days=[5, 6])) == sum(1 for t in stamps if t.weekday() >= 5)
    base = info.field("Base")
    assert base.category and sorted(map(tuple, base.top)) == sorted(Counter(r[3] for r in rows).items())


def test_type_overrides_and_their_errors(tmp_path):
    rows = [[i, 40 + i / 100, -73, f"{i:05d}", str(1_600_000_000 + 3600 * i), "1.0" if i % 2 else "2"]
            for i in range(1, 6)]
    path = write_csv(tmp_path / "o.csv", ["id", "lat", "lon", "code", "seen", "n"], rows)
    db, proc = load(tmp_path, path, "--type", "code=text", "--type", "seen=unix_s", "--type", "n=integer",
                    "--time", "seen")
    store = open_store(str(db))
    info = store.layer("t")
    assert info.field("code").type == "text" and info.field("n").integer
    got = by_id(store, "t")
    assert [got[i]["code"] for i in range(1, 6)] == [r[3] for r in rows]  # leading zeros kept
    assert [got[i]["seen"] for i in range(1, 6)] == [
        datetime.datetime.fromtimestamp(int(r[4]), UTC).replace(tzinfo=None) for r in rows]
    assert [got[i]["n"] for i in range(1, 6)] == [1, 2, 1, 2, 1]
    assert info.time.field == "seen"
    for flag, named in (("nope=text", "'nope'"), ("code=colour", "'colour'"), ("code", "COLUMN=TYPE")):
        proc = citystack("load", path, "--layer", "u", "--db", db, "--type", flag, check=False)
        assert proc.returncode == 2 and named in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_ids_above_2_53_are_exact(tmp_path):
    ids = sorted([2 ** 53 + 1, 2 ** 60 + 7, 9_007_199_254_740_993 + 2, 2 ** 63 - 1])
    rows = [[i, 40 + n / 100, -73, i - 5, n] for n, i in enumerate(ids)]
    db, _ = load(tmp_path, write_csv(tmp_path / "big.csv", ["id", "lat", "lon", "owner_id", "rank"], rows))
    store = open_store(str(db))
    info = store.layer("t")
    assert info.big_ids
    assert info.field("owner_id").id and not info.field("rank").id
    out = store.features("t", View(), None, 10)
    assert sorted(int(v) for v in out["id"]) == ids
    assert sorted(int(v) for v in out["properties"]["owner_id"]) == [i - 5 for i in ids]
    assert sorted(int(v) for v in store.columns("t", View(), ["id"])["id"]) == ids


def test_a_small_id_layer_has_no_big_ids(tmp_path):
    db, _ = load(tmp_path, write_csv(tmp_path / "s.csv", ["id", "lat", "lon", "kind"],
                                     [[i, 40, -73, "ab"[i % 2]] for i in range(10)]))
    info = open_store(str(db)).layer("t")
    assert not info.big_ids and info.field("kind").category and info.field("kind").distinct == 2


# -- real files -------------------------------------------------------------------

@needs_shared(DIVVY)
def test_divvy_started_at_is_the_time_field(tmp_path):
    db, proc = load(tmp_path, DIVVY)  # no options: a trips file, at its starts
    store = open_store(str(db))
    info = store.layer("t")
    assert info.field("started_at").type == "time" and info.field("ended_at").type == "time"
    assert info.time.field == "started_at" and "time field: started_at" in proc.stdout
    with open(DIVVY, newline="") as fh:
        rows = list(csv.DictReader(fh))
    starts = [datetime.datetime.strptime(r["started_at"], "%Y-%m-%d %H:%M:%S") for r in rows]
    assert info.count == len(rows)
    assert info.time.hours == [sum(1 for t in starts if t.hour == h) for h in range(24)]
    assert info.time.days == [sum(1 for t in starts if t.weekday() == d) for d in range(7)]
    kinds = info.field("rideable_type")
    assert kinds.category and dict(map(tuple, kinds.top)) == Counter(r["rideable_type"] for r in rows)
    assert not info.field("start_station_id").category


@needs_shared(AIRBNB)
def test_airbnb_last_review_is_a_date_and_room_type_a_category(sample_db):
    info = open_store(str(sample_db)).layer("nyc")
    with open(AIRBNB, newline="") as fh:
        rows = list(csv.DictReader(fh))
    review = info.field("last_review")
    assert review.type == "date"
    dates = [r["last_review"] for r in rows if r["last_review"]]
    assert (review.min, review.max) == (min(dates), max(dates))
    room = info.field("room_type")
    assert room.category and room.distinct == 3 and room.others == 0
    assert dict(map(tuple, room.top)) == Counter(r["room_type"] for r in rows)
    assert info.field("host_id").id and not info.field("price").id


# -- PostGIS keeps the types -------------------------------------------------------

def test_postgis_keeps_types_and_description(tmp_path, pg_cluster):
    header = ["id", "lat", "lon", "when", "day", "ok", "pct", "price", "kind", "Date/Time"]
    rows = [[i, 40 + i / 1000, -73 - i / 1000, f"2021-01-{1 + i % 28:02d} {i % 24:02d}:15:00",
             f"2020-02-{1 + i % 28:02d}", "tf"[i % 2], f"{i % 100}%", f"${i},000.50", "abc"[i % 3],
             f"3/{1 + i % 28}/2021 {i % 24}:05"] for i in range(120)]
    path = write_csv(tmp_path / "p.csv", header, rows)
    duck, _ = load(tmp_path, path, "--time", "when")
    citystack("load", path, "--layer", "t", "--db", pg_cluster.url, "--time", "when")
    a, b = open_store(str(duck)), open_store(pg_cluster.url)
    try:
        ja, jb = a.layer("t").as_json(), b.layer("t").as_json()
        ja.pop("version"), jb.pop("version")
        assert ja == jb
        view = View(hours=(8, 17), days=[0, 1, 2], filters=[Filter("kind", "in", ("a", "b"))])
        assert a.count("t", view) == b.count("t", view) > 0
        fa, fb = by_id(a, "t"), by_id(b, "t")
        assert fa == fb
        assert {type(v).__name__ for v in fa[3].values()} >= {"bool", "float", "str", "datetime"}
        with psycopg.connect(pg_cluster.url) as pg:
            types = dict(pg.execute("SELECT column_name, data_type FROM information_schema.columns "
                                    "WHERE table_name = 'layer_t'").fetchall())
        assert types["_dow"] == types["_hour"] == "smallint"
        assert types["ok"] == "boolean" and types["day"] == "date" and types["id"] == "bigint"
        assert types["when"] == types["date_time"] == "timestamp without time zone"
    finally:
        a.close()
        b.close()


def test_checkin_layer_time_summary_from_its_day_hour_and_time(tmp_path):
    stamps = [datetime.datetime(2012, 4, 1) + datetime.timedelta(hours=7 * k, minutes=k) for k in range(150)]
    rows = [[f"u{k % 9}", f"p{k % 13}", t.strftime("%Y-%m-%dT%H:%M:%S"), 40.7 + k % 13 / 1000, -74 + k % 13 / 1000]
            for k, t in enumerate(stamps)]
    path = write_csv(tmp_path / "c.csv", ["User", "Place", "When", "latitude", "longitude"], rows)
    db, proc = load(tmp_path, path, "--user", "User", "--place", "Place", "--time", "When")
    info = open_store(str(db)).layer("t")
    assert info.kind == "checkins" and info.time.field == "time" and info.time_field.type == "time"
    assert info.time.hours == [sum(1 for t in stamps if t.hour == h) for h in range(24)]
    assert info.time.days == [sum(1 for t in stamps if t.weekday() == d) for d in range(7)]
    assert info.time.dates == [[d.isoformat(), n] for d, n in sorted(Counter(t.date() for t in stamps).items())]
