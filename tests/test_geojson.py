"""The GeoJSON writer against the obvious one (a dict per feature, dumped by orjson)."""

import datetime as dt
import math

import numpy as np
import orjson
import pytest

from citystack.api.geojson import feature_collection


def nest(cols):
    """Flat test columns as a store answers features: properties apart from the position."""
    return {"id": cols["id"], "lon": cols["lon"], "lat": cols["lat"],
            "properties": {k: v for k, v in cols.items() if k not in ("id", "lon", "lat")}}


def reference(cols, limit):
    n = min(limit, len(cols["id"]))
    names = [k for k in cols if k not in ("id", "lon", "lat")]

    def plain(v):
        return None if isinstance(v, float) and math.isnan(v) else v

    features = [{"type": "Feature", "id": cols["id"][i].item(),
                 "geometry": {"type": "Point", "coordinates": [float(cols["lon"][i]), float(cols["lat"][i])]},
                 "properties": {k: plain(cols[k][i].item() if isinstance(cols[k][i], np.generic) else cols[k][i])
                                for k in names}}
                for i in range(n)]
    return orjson.loads(orjson.dumps({"type": "FeatureCollection", "features": features, "numberReturned": n}))


def awkward_columns(n=7):
    rng = np.random.default_rng(3)
    price = rng.normal(100, 30, n)
    price[2] = np.nan
    names = np.array(['say "hi"', "100% café, \\ 東京", None, "", "a,b", "\n\t", "%b %s"] * n, dtype=object)[:n]
    return {"id": np.arange(10, 10 + n, dtype=np.int64), "lon": rng.uniform(-180, 180, n),
            "lat": rng.uniform(-90, 90, n), "name": names, "price": price,
            "rooms": rng.integers(-3, 5, n).astype(np.int32), "superhost": rng.random(n) > 0.5,
            'odd "key" %b': rng.integers(0, 2**40, n, dtype=np.uint64),
            "time": np.array([dt.datetime(2012, 4, 3, 18, i) for i in range(n)], dtype=object)}


@pytest.mark.parametrize("limit", [100, 4, 1])
def test_same_json_as_a_dict_per_feature(limit):
    cols = awkward_columns()
    got = orjson.loads(orjson.dumps(feature_collection(nest(cols), limit)))
    assert got == reference(cols, limit)
    if limit > 2:
        assert got["features"][2]["properties"]["price"] is None
        assert got["features"][2]["properties"]["time"] == "2012-04-03T18:02:00"


def test_floats_keep_every_digit():
    cols = {"id": np.array([1, 2]), "lon": np.array([-73.98765432101234, 1e-7]),
            "lat": np.array([40.7, -0.1 + 0.2]), "price": np.array([0.1, 1e300])}
    got = orjson.loads(orjson.dumps(feature_collection(nest(cols))))
    assert [f["geometry"]["coordinates"] for f in got["features"]] == [[-73.98765432101234, 40.7],
                                                                       [1e-7, -0.1 + 0.2]]
    assert [f["properties"]["price"] for f in got["features"]] == [0.1, 1e300]


def test_empty_and_no_properties():
    empty = {"id": np.array([], dtype=np.int64), "lon": np.array([]), "lat": np.array([])}
    assert orjson.loads(orjson.dumps(feature_collection(nest(empty)))) == reference(empty, 10)
    bare = {"id": np.array([5]), "lon": np.array([1.5]), "lat": np.array([2.5])}
    assert orjson.loads(orjson.dumps(feature_collection(nest(bare))))["features"] == [
        {"type": "Feature", "id": 5, "geometry": {"type": "Point", "coordinates": [1.5, 2.5]}, "properties": {}}]


def test_typed_values_are_the_same_whatever_form_the_store_gave():
    """DuckDB gives datetime64 arrays (objects with None when there are NULLs); psycopg
    datetime, date and bool objects, or datetime64 for dates: the JSON is the same."""
    from citystack.stores.base import FieldInfo, LayerInfo

    layer = LayerInfo("l", "points", 2, None, [FieldInfo("t", "time"), FieldInfo("d", "date"),
                                                FieldInfo("b", "bool"), FieldInfo("code", "number", id=True),
                                                FieldInfo("ref", "text", id=True)], 1, big_ids=True)
    base = {"id": np.array([2**53 + 1, 2**62 + 3], dtype=np.int64), "lon": np.array([1.0, 2.0]),
            "lat": np.array([3.0, 4.0])}
    forms = [
        {"t": np.array(["2021-01-08T17:58:48", "NaT"], dtype="datetime64[us]"),
         "d": np.array(["2021-01-08", "NaT"], dtype="datetime64[D]"), "b": np.array([True, None], dtype=object),
         "code": np.array([2**53 + 1, 2**60 + 1], dtype=np.int64), "ref": np.array(["a,b", None], dtype=object)},
        {"t": np.array([dt.datetime(2021, 1, 8, 17, 58, 48), None], dtype=object),
         "d": np.array(["2021-01-08T00:00", "NaT"], dtype="datetime64[us]"), "b": np.array([True, None], dtype=object),
         "code": np.array([2**53 + 1, 2**60 + 1], dtype=object), "ref": np.array(["a,b", None], dtype=object)},
        {"t": np.array([dt.datetime(2021, 1, 8, 17, 58, 48), None], dtype=object),
         "d": np.array([dt.date(2021, 1, 8), None], dtype=object), "b": np.array([np.True_, None], dtype=object),
         "code": np.array([2**53 + 1, 2**60 + 1], dtype=object), "ref": np.array(["a,b", None], dtype=object)},
    ]
    want = [{"t": "2021-01-08T17:58:48", "d": "2021-01-08", "b": True, "code": str(2**53 + 1), "ref": "a,b"},
            {"t": None, "d": None, "b": None, "code": str(2**60 + 1), "ref": None}]
    for props in forms:
        got = orjson.loads(orjson.dumps(feature_collection({**base, "properties": props}, None, layer)))
        assert [f["properties"] for f in got["features"]] == want
        assert [f["id"] for f in got["features"]] == [str(2**53 + 1), str(2**62 + 3)]
