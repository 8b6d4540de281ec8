"""Layers of known points for the Arrow and density tests, in either store.

``database(request, tmp_path_factory, name, layers)`` gives a DuckDB file or a
database of its own in the session's PostgreSQL cluster (so the layers built
here never show in the sample database other tests list), with each layer
built through ``stores.open_writer`` and ``Staging.publish`` from a DuckDB
query: ``layers`` maps a layer name to (select SQL, parameters).
"""

from __future__ import annotations

import uuid

BIG = 2 ** 53 + 1  # the first integer a float64 cannot hold

# Every column type a layer holds (contract9): NULLs in each, a few-valued category, text with
# quotes and unicode, integers and floats, times with microseconds, dates, booleans, and ids
# above 2^53 (odd: a float64 would round them).
TYPED_SQL = f"""
SELECT CAST({BIG} + 2 * i AS BIGINT) AS id,
       CAST(-74.0 + (i % 37) * 0.0013 AS DOUBLE) AS lon, CAST(40.7 + (i // 37) * 0.0011 AS DOUBLE) AS lat,
       CASE WHEN i % 7 = 0 THEN NULL ELSE 'name "' || i || '" ✓' END AS name,
       CASE WHEN i % 11 = 0 THEN NULL ELSE ['a', 'b', 'Zürich', 'd, e'][1 + i % 4] END AS kind,
       CASE WHEN i % 5 = 0 THEN NULL ELSE CAST(i AS DOUBLE) * 0.25 + 1.0 / 3 END AS price,
       CASE WHEN i % 6 = 0 THEN NULL ELSE CAST(i % 13 - 6 AS BIGINT) END AS rank,
       CASE WHEN i % 9 = 0 THEN NULL
            ELSE TIMESTAMP '2019-05-01 00:00:00' + to_microseconds(CAST(i AS BIGINT) * 3600000123) END AS seen_at,
       CASE WHEN i % 8 = 0 THEN NULL ELSE DATE '2019-01-01' + CAST(i % 365 AS INTEGER) END AS opened,
       CASE WHEN i % 3 = 0 THEN NULL ELSE i % 2 = 0 END AS open_now
FROM range(1200) AS t(i)
"""


def build(db: str, layers: dict[str, tuple[str, list]]) -> None:
    from citystack.stores import open_writer

    with open_writer(db) as staging:
        for name, (sql, values) in layers.items():
            staging.publish(name, "points", sql, values, source="tests")


def database(request, tmp_path_factory, name: str, layers: dict[str, tuple[str, list]]) -> str:
    """A database (DuckDB for request.param "duckdb", else PostGIS) holding `layers`."""
    if request.param == "duckdb":
        db = str(tmp_path_factory.mktemp(name) / f"{name}.duckdb")
    else:
        import psycopg

        cluster = request.getfixturevalue("pg_cluster")
        dbname = f"{name}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(cluster.url, autocommit=True) as con:
            con.execute(f"CREATE DATABASE {dbname}")
        db = cluster.url.rsplit("/", 1)[0] + "/" + dbname
    build(db, layers)
    return db


def parquet_layer(folder, name: str, columns: dict) -> tuple[str, list]:
    """A layer query reading `columns` (numpy arrays or lists, by column name) from a Parquet
    file written here: the values land in the store exactly as given, floats bit for bit."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = str(folder / f"{name}.parquet")
    pq.write_table(pa.table(columns), path)
    return "SELECT * FROM read_parquet(?)", [path]
