"""Building layers for a load, in DuckDB, whichever store they land in.

A write of the database (``stores.open_writer``) hands out a :class:`Staging`:
a DuckDB connection to read files and build tables in, the layers the
database held when the write began, and :meth:`Staging.publish`, which turns
a query into a layer. For a DuckDB file the connection works on a private
copy of the file (stores/duckdb_writer.py); for PostGIS it is an in-memory
database whose layers are copied over at the end (stores/postgis_writer.py).

Each layer table is sorted along a Morton (Z-order) curve of its points, and
numbered in that order (``_ord``): a small bbox then touches few row groups,
and every store pages through a layer in the same order. Field statistics
are computed once here and kept in ``_layers``.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Sequence

import orjson

from .base import (BOOL, DATE, NUMERIC, TEXT, TIME, FieldInfo, LayerInfo, StoreError, TimeSummary, layer_meta, quote,
                   table_name)

NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                 "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "REAL", "DECIMAL")
META_DDL = """
CREATE TABLE IF NOT EXISTS _layers (
    name VARCHAR PRIMARY KEY, kind VARCHAR, count BIGINT,
    minlon DOUBLE, minlat DOUBLE, maxlon DOUBLE, maxlat DOUBLE,
    fields VARCHAR, version BIGINT, source VARCHAR, places VARCHAR,
    loaded_at TIMESTAMP DEFAULT current_timestamp)
"""
INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                 "UBIGINT")
MORTON_BITS = 16  # per axis: a 65,536 x 65,536 grid over the layer's extent


@dataclass(frozen=True)
class Prior:
    """A layer the database held when a write began."""

    name: str
    kind: str
    count: int
    places: str | None = None  # a check-in layer's places layer
    loaded_at: datetime.datetime | None = None  # UTC


class Staging:
    """One write's workspace: ``con`` (DuckDB), ``existing`` (name -> :class:`Prior`)
    and :meth:`publish`. Nothing reaches the database before the write ends well."""

    def __init__(self, con, existing: dict[str, Prior]):
        self.con = con
        self.existing = existing

    def publish(self, name: str, kind: str, select_sql: str, params: Sequence = (), source: str = "",
                places: str | None = None, names: dict[str, str] | None = None,
                time: str | None = None) -> LayerInfo:
        return publish_layer(self.con, name, kind, select_sql, params, source, places, names, time)


def publish_layer(con, name: str, kind: str, select_sql: str, params: Sequence = (),
                  source: str = "", places: str | None = None, names: dict[str, str] | None = None,
                  time: str | None = None) -> LayerInfo:
    """Create (or replace) a layer from a query with columns id, lon, lat, props.
    `names`: a column's public name (the file's), where it differs from the column's.
    `time`: the column of the layer's time field (a TIMESTAMP)."""
    table = table_name(name)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _stage AS {select_sql}", list(params))
    x0, y0, x1, y1, n = con.execute(
        "SELECT min(lon), min(lat), max(lon), max(lat), count(*) FROM _stage").fetchone()
    if not n:
        raise StoreError(f"layer {name!r} would be empty: no rows with valid coordinates")
    con.execute(f"DROP TABLE IF EXISTS {quote(table)}")
    con.execute(f"CREATE TABLE {quote(table)} AS SELECT row_number() OVER "
                f"(ORDER BY {morton_key(x0, y0, x1, y1)}, id) AS _ord, * FROM _stage ORDER BY _ord")
    con.execute("DROP TABLE _stage")
    summary = _add_clock(con, table, time, (names or {}).get(time, time)) if time else None
    big_ids = bool(con.execute(f"SELECT max(abs(CAST(id AS HUGEINT))) > {2 ** 53} FROM {quote(table)}").fetchone()[0]) \
        if con.execute(f"SELECT typeof(id) FROM {quote(table)} LIMIT 1").fetchone()[0] in INTEGER_TYPES else False
    fields = describe_fields(con, table, names or {})
    version = con.execute("SELECT coalesce(max(version), 0) + 1 FROM _layers").fetchone()[0]
    con.execute("DELETE FROM _layers WHERE name = ?", [name])
    con.execute("INSERT INTO _layers (name, kind, count, minlon, minlat, maxlon, maxlat, fields, version, "
                "source, places, loaded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [name, kind, n, x0, y0, x1, y1, orjson.dumps(layer_meta(fields, summary, big_ids=big_ids)).decode(), version,
                 source, places, datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)])
    return LayerInfo(name=name, kind=kind, count=n, extent=[x0, y0, x1, y1], fields=fields,
                     version=version, source=source, places=places, time=summary, big_ids=big_ids)


def _add_clock(con, table: str, column: str, public: str) -> TimeSummary:
    """MINIMAL STAND-IN (H2, for the query side's tests; H1a's fuller version replaces it):
    the day of week (0 = Monday) and hour columns ``_dow``, ``_hour`` of the time field, and
    a TimeSummary with its extent and counts by hour and day (no date buckets)."""
    t, col = quote(table), quote(column)
    con.execute(f"ALTER TABLE {t} ADD COLUMN _dow SMALLINT")
    con.execute(f"ALTER TABLE {t} ADD COLUMN _hour SMALLINT")
    con.execute(f"UPDATE {t} SET _dow = CAST(isodow({col}) - 1 AS SMALLINT), _hour = CAST(hour({col}) AS SMALLINT)")
    lo, hi = con.execute(f"SELECT min({col}), max({col}) FROM {t}").fetchone()
    hours, days = [0] * 24, [0] * 7
    for h, k in con.execute(f"SELECT _hour, count(*) FROM {t} WHERE _hour IS NOT NULL GROUP BY 1").fetchall():
        hours[h] = k
    for d, k in con.execute(f"SELECT _dow, count(*) FROM {t} WHERE _dow IS NOT NULL GROUP BY 1").fetchall():
        days[d] = k
    return TimeSummary(public, _iso(lo), _iso(hi), hours, days)


def _iso(v):
    return None if v is None else v.isoformat()


def morton_key(x0: float, y0: float, x1: float, y1: float) -> str:
    """SQL for the Morton code of (lon, lat) on a grid over the extent (x0, y0) .. (x1, y1)."""
    cells = float((1 << MORTON_BITS) - 1)
    sx = cells / ((x1 - x0) or 1.0)
    sy = cells / ((y1 - y0) or 1.0)
    qx = f"CAST(floor((lon - {float(x0)!r}) * {sx!r}) AS UBIGINT)"
    qy = f"CAST(floor((lat - {float(y0)!r}) * {sy!r}) AS UBIGINT)"
    return f"({_spread(qx)}) | (({_spread(qy)}) << 1)"


def _spread(expr: str) -> str:
    """Interleave the 16 low bits of an integer expression with zeros."""
    for shift, mask in ((8, 0x00FF00FF), (4, 0x0F0F0F0F), (2, 0x33333333), (1, 0x55555555)):
        expr = f"((({expr}) | (({expr}) << {shift})) & {mask})"
    return expr


def describe_fields(con, table: str, names: dict[str, str]) -> list[FieldInfo]:
    cols = con.execute("SELECT column_name, data_type FROM information_schema.columns "
                       "WHERE table_name = ? AND table_catalog = current_database() "
                       "ORDER BY ordinal_position", [table]).fetchall()
    fields = []
    for name, dtype in cols:
        if name in ("id", "lon", "lat") or name.startswith("_"):  # position, order and derived columns
            continue
        col = quote(name)
        public = names.get(name, name)
        # MINIMAL STAND-IN (H2) for H1a's types: booleans, dates and timestamps keep their type.
        if dtype in ("BOOLEAN", "DATE", "TIMESTAMP"):
            kind = {"BOOLEAN": BOOL, "DATE": DATE, "TIMESTAMP": TIME}[dtype]
            lo, hi, distinct = con.execute(f"SELECT min({col}), max({col}), count(DISTINCT {col}) "
                                           f"FROM {quote(table)}").fetchone()
            top = con.execute(f"SELECT CAST({col} AS VARCHAR) AS v, count(*) AS n FROM {quote(table)} "
                              f"WHERE {col} IS NOT NULL GROUP BY v ORDER BY n DESC, v LIMIT 10").fetchall()
            if kind == BOOL:
                fields.append(FieldInfo(public, BOOL, top=[[v == "true", n] for v, n in top], column=name,
                                        category=True, distinct=distinct))
            else:
                fields.append(FieldInfo(public, kind, _iso(lo), _iso(hi), column=name, distinct=distinct))
            continue
        if dtype.split("(")[0] in NUMERIC_TYPES:
            lo, hi = con.execute(f"SELECT min({col}), max({col}) FROM {quote(table)}").fetchone()
            whole = dtype in INTEGER_TYPES  # MINIMAL STAND-IN (H2): integers, and ids beyond 2^53
            big = whole and lo is not None and max(abs(lo), abs(hi)) > 2 ** 53
            fields.append(FieldInfo(public, NUMERIC, _num(lo), _num(hi), column=name, integer=whole, id=big))
        else:
            top = con.execute(f"SELECT CAST({col} AS VARCHAR) AS v, count(*) AS n FROM {quote(table)} "
                              f"WHERE {col} IS NOT NULL GROUP BY v ORDER BY n DESC, v LIMIT 10").fetchall()
            fields.append(FieldInfo(public, TEXT, top=[[v, n] for v, n in top], column=name))
    return fields


def staged_layers(con) -> list[tuple]:
    """The rows of ``_layers`` built so far, in the order they were published."""
    return con.execute("SELECT name, kind, count, minlon, minlat, maxlon, maxlat, fields, version, source, "
                       "places FROM _layers ORDER BY version").fetchall()


def prior_layers(rows) -> dict[str, Prior]:
    """(name, kind, count, places, loaded_at) rows as Priors; times made naive UTC."""
    out = {}
    for name, kind, count, places, loaded_at in rows:
        if isinstance(loaded_at, datetime.datetime) and loaded_at.tzinfo is not None:
            loaded_at = loaded_at.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        out[name] = Prior(name, kind, int(count), places, loaded_at)
    return out


def _num(v):
    return None if v is None else float(v)
