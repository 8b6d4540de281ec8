"""`format=arrow`: the same rows, values and order as the GeoJSON answer to the same request,
typed (categories dictionary-encoded, times, dates, bools, NULLs, ids above 2^53), with the
same paging (a `Link: <...>; rel="next"` header), on both stores."""

from __future__ import annotations

import datetime
import re

import pyarrow as pa
import pytest

import pointlayers
from pointlayers import BIG, TYPED_SQL

ARROW = "application/vnd.apache.arrow.stream"
ROWS = 1200


@pytest.fixture(scope="module", params=["duckdb", "postgis"])
def client(request, tmp_path_factory):
    from citystack.app import create_app
    from citystack.settings import Settings
    from citystack.stores import open_store

    db = pointlayers.database(request, tmp_path_factory, "arrow", {"typed": (TYPED_SQL, [])})
    store = open_store(db)
    yield create_app(Settings(db=db, analysis_processes=0), store).test_client()
    store.close()


def arrow_table(response) -> pa.Table:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == ARROW
    table = pa.ipc.open_stream(response.get_data()).read_all()
    assert int(response.headers["X-Number-Returned"]) == table.num_rows
    return table


def plain(value, geo):
    """The Arrow value as the GeoJSON text would write it, to compare with `geo`."""
    if isinstance(value, datetime.datetime):
        return value == datetime.datetime.fromisoformat(geo)
    if isinstance(value, datetime.date):
        got = datetime.datetime.fromisoformat(geo)
        return got.time() == datetime.time(0) and got.date() == value
    if isinstance(value, bool) or value is None:
        return value is geo
    return value == geo and type(geo) is not bool


def same_rows(table: pa.Table, features: list, names: list[str]):
    assert table.num_rows == len(features)
    assert table.column_names[:3] == ["lon", "lat", "id"] and table.column_names[3:] == names
    lon, lat, ids = (table.column(k).to_pylist() for k in ("lon", "lat", "id"))
    assert [str(i) for i in ids] == [str(f["id"]) for f in features]  # exact, beyond 2^53
    assert lon == [f["geometry"]["coordinates"][0] for f in features]
    assert lat == [f["geometry"]["coordinates"][1] for f in features]
    for k, name in enumerate(names):
        values = table.column(3 + k).to_pylist()
        bad = [(f["id"], v, f["properties"][name]) for v, f in zip(values, features)
               if not plain(v, f["properties"][name])]
        assert not bad, (name, bad[:5])


REQUESTS = [
    {},
    {"limit": "300", "offset": "450"},
    {"bbox": "-73.99,40.71,-73.97,40.73"},
    {"kind": "Zürich"},
    {"price_min": "100", "price_max": "200.5"},
    {"properties": "open_now,kind,name"},
]


@pytest.mark.parametrize("query", REQUESTS, ids=lambda q: "&".join(f"{k}={v}" for k, v in q.items()) or "all")
def test_arrow_answers_the_geojson_rows(client, query):
    geo = client.get("/api/layers/typed/features", query_string={**query}).get_json()
    table = arrow_table(client.get("/api/layers/typed/features", query_string={**query, "format": "arrow"}))
    names = query["properties"].split(",") if "properties" in query else list(geo["features"][0]["properties"])
    assert len(geo["features"]) > 10
    same_rows(table, geo["features"], names)


def test_arrow_types(client):
    info = client.get("/api/layers/typed").get_json()
    kinds = {f["name"]: f for f in info["fields"]}
    table = arrow_table(client.get("/api/layers/typed/features", query_string={"format": "arrow"}))
    schema = table.schema
    assert schema.field("lon").type == pa.float64() and schema.field("lat").type == pa.float64()
    assert schema.field("id").type == pa.int64()
    # The ids are exactly those loaded, though none fits a float64.
    assert sorted(table.column("id").to_pylist()) == [BIG + 2 * i for i in range(ROWS)]
    kind = schema.field("kind").type
    assert pa.types.is_dictionary(kind) and kind.value_type == pa.string()
    assert sorted(table.column("kind").combine_chunks().dictionary.to_pylist()) == sorted(["a", "b", "d, e", "Zürich"])
    assert schema.field("name").type == pa.string()  # 1,200 distinct values: no dictionary
    assert schema.field("price").type == pa.float64()
    assert schema.field("rank").type == (pa.int64() if kinds["rank"].get("integer") else pa.float64())
    assert schema.field("seen_at").type == pa.timestamp("us")
    assert schema.field("opened").type == (pa.date32() if kinds["opened"]["type"] == "date" else pa.timestamp("us"))
    assert schema.field("open_now").type == pa.bool_()
    # NULLs are nulls, as many as the layer's query made.
    assert table.column("name").null_count == len([i for i in range(ROWS) if i % 7 == 0])
    assert table.column("kind").null_count == len([i for i in range(ROWS) if i % 11 == 0])
    assert table.column("price").null_count == len([i for i in range(ROWS) if i % 5 == 0])
    assert table.column("seen_at").null_count == len([i for i in range(ROWS) if i % 9 == 0])
    assert table.column("open_now").null_count == len([i for i in range(ROWS) if i % 3 == 0])
    # Microseconds survive.
    by_id = dict(zip(table.column("id").to_pylist(), table.column("seen_at").to_pylist()))
    assert by_id[BIG + 2 * 5] == datetime.datetime(2019, 5, 1) + datetime.timedelta(microseconds=5 * 3600000123)


def test_arrow_pages_with_a_link_header(client):
    whole = client.get("/api/layers/typed/features", query_string={"limit": "5000"}).get_json()["features"]
    url, pages, ids = "/api/layers/typed/features?format=arrow&limit=500", 0, []
    while url:
        response = client.get(url)
        table = arrow_table(response)
        ids += [str(i) for i in table.column("id").to_pylist()]
        pages += 1
        link = response.headers.get("Link")
        if link is None:
            url = None
        else:
            match = re.fullmatch(r'<([^>]+)>; rel="next"', link)
            assert match, link
            url = match.group(1)
            assert "format=arrow" in url and "limit=500" in url
        assert pages <= 3
    assert pages == 3  # 500 + 500 + 200
    assert ids == [str(f["id"]) for f in whole]


def test_arrow_exact_page_has_no_next(client):
    response = client.get("/api/layers/typed/features", query_string={"format": "arrow", "limit": str(ROWS)})
    assert arrow_table(response).num_rows == ROWS and "Link" not in response.headers


@pytest.mark.parametrize("query, parameter", [
    ({"limit": "0"}, "limit"),
    ({"limit": "1000001"}, "limit"),
    ({"properties": "nope"}, "properties"),
    ({"format": "feather"}, "format"),
])
def test_arrow_mistakes_are_400(client, query, parameter):
    response = client.get("/api/layers/typed/features", query_string={"format": "arrow", **query})
    assert response.status_code == 400 and response.mimetype == "application/json"
    assert response.get_json()["parameter"] == parameter
