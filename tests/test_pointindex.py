"""The in-memory index of a DuckDB layer answers exactly what SQL answers.

One database, two stores over it: one with the index turned off (every view
goes through SQL), one with it on. Windows are chosen to be awkward: edges on
points' exact coordinates, points stacked on one spot, NULLs, pages, empty
and outside views, and views too large for the index.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import flat

from citystack.stores import View, open_writer
from citystack.stores.duckdb import DuckDBStore
from citystack.stores.pointindex import MAX_CANDIDATES, PointIndex

N = 3000


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("pointindex") / "db.duckdb")
    with open_writer(path) as staging:
        # A lattice (many points share a longitude or latitude, so windows can
        # have edges exactly on points), a stack of 50 points on one spot, and
        # NULLs in every property column.
        staging.publish("pts", "points", f"""
            SELECT range AS id,
                   (CASE WHEN range < 50 THEN -73.95 ELSE -74.0 + (range % 60) * 0.001 END)::DOUBLE AS lon,
                   (CASE WHEN range < 50 THEN 40.72 ELSE 40.7 + (range // 60) * 0.0007 END)::DOUBLE AS lat,
                   CASE WHEN range % 7 = 0 THEN NULL ELSE 'place ' || range END AS name,
                   CASE WHEN range % 11 = 0 THEN NULL ELSE (range * 37) % 500 END AS price,
                   CASE WHEN range % 13 = 0 THEN NULL ELSE range % 5 END AS rooms
            FROM range({N})""")
        staging.publish("one", "points", "SELECT 1 AS id, 114.06::DOUBLE AS lon, 22.54::DOUBLE AS lat, 'x' AS name")
    plain, indexed = DuckDBStore(path), DuckDBStore(path, memory_rows=10 * N)
    yield plain, indexed
    plain.close()
    indexed.close()


def windows():
    rng = np.random.default_rng(7)
    lon = -74.0 + np.arange(60) * 0.001
    lat = 40.7 + np.arange(N // 60) * 0.0007
    out = []
    for _ in range(60):  # edges exactly on lattice coordinates
        x0, x1 = np.sort(rng.choice(lon, 2))
        y0, y1 = np.sort(rng.choice(lat, 2))
        out.append((float(x0), float(y0), float(x1), float(y1)))
    for _ in range(60):  # anywhere, partly outside the extent too
        x0, y0 = rng.uniform(-74.01, -73.95), rng.uniform(40.69, 40.74)
        out.append((x0, y0, x0 + rng.uniform(0, 0.02), y0 + rng.uniform(0, 0.01)))
    out += [(-73.95, 40.72, -73.95, 40.72),  # the stack, as a zero-size window
            (-80.0, 10.0, -79.0, 11.0),  # nowhere near
            (-180.0, -90.0, 180.0, 90.0)]  # everything
    return out


def assert_same(a: dict, b: dict):
    assert list(a) == list(b)
    for key in a:
        assert type(a[key]) is type(b[key]) and a[key].dtype == b[key].dtype, key
        nan_is_nan = a[key].dtype.kind == "f"
        assert np.array_equal(np.ma.getdata(a[key]), np.ma.getdata(b[key]), equal_nan=nan_is_nan), key
        assert np.array_equal(np.ma.getmaskarray(a[key]), np.ma.getmaskarray(b[key])), key


@pytest.mark.parametrize("properties", [None, ["price"], ["rooms", "name"]])
def test_same_rows_in_the_same_order_as_sql(stores, properties):
    plain, indexed = stores
    found = 0
    for bbox in windows():
        for limit, offset in ((10_000, 0), (7, 0), (5, 3), (10, 10_000)):
            a = flat(plain.features("pts", View(bbox=bbox), properties, limit, offset))
            b = flat(indexed.features("pts", View(bbox=bbox), properties, limit, offset))
            assert_same(a, b)
            found += len(a["id"])
    assert found > N  # the windows were not all empty


def test_views_with_filters_go_through_sql_and_agree(stores):
    plain, indexed = stores
    from citystack.stores.base import Filter

    view = View(bbox=(-74.0, 40.7, -73.97, 40.72), filters=[Filter("price", "min", 100.0)])
    a, b = flat(plain.features("pts", view, ["price"], 10_000)), flat(indexed.features("pts", view, ["price"], 10_000))
    assert_same(a, b)
    assert len(a["id"]) and np.all(a["price"] >= 100)


def test_a_layer_of_one_point(stores):
    plain, indexed = stores
    for bbox in [(114.0, 22.0, 115.0, 23.0), (114.06, 22.54, 114.06, 22.54), (0.0, 0.0, 1.0, 1.0)]:
        assert_same(flat(plain.features("one", View(bbox=bbox), None, 10)), flat(indexed.features("one", View(bbox=bbox), None, 10)))


def test_index_against_brute_force():
    rng = np.random.default_rng(3)
    lon, lat = rng.normal(0, 1, 100_000), rng.normal(0, 1, 100_000)
    lon[:100] = 0.5  # a column of points on one meridian
    index = PointIndex(lon, lat, read_column=lambda name: pytest.fail(f"read {name}"))
    for _ in range(300):
        x0, y0 = rng.normal(0, 1.2, 2)
        w, h = rng.exponential(0.2, 2)
        if rng.random() < 0.2:
            x0 = 0.5  # the window's edge on that meridian
        rows = index.rows((x0, y0, x0 + w, y0 + h))
        expected = np.flatnonzero((lon >= x0) & (lon <= x0 + w) & (lat >= y0) & (lat <= y0 + h))
        if rows is None:
            assert expected.size > 0.1 * MAX_CANDIDATES  # only large windows are refused
        else:
            assert np.array_equal(rows, expected)
    assert index.rows((-10, -10, 10, 10)) is None  # the whole layer: left to SQL
