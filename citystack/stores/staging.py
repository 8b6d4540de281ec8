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

from .base import NUMERIC, TEXT, FieldInfo, LayerInfo, StoreError, layer_meta, quote, table_name
from .defaults import choose_colour, choose_name

NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                 "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "REAL", "DECIMAL")
META_DDL = """
CREATE TABLE IF NOT EXISTS _layers (
    name VARCHAR PRIMARY KEY, kind VARCHAR, count BIGINT,
    minlon DOUBLE, minlat DOUBLE, maxlon DOUBLE, maxlat DOUBLE,
    fields VARCHAR, version BIGINT, source VARCHAR, places VARCHAR,
    loaded_at TIMESTAMP DEFAULT current_timestamp)
"""
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

    # fetch(layer, table): copy an existing layer's rows (id, lon, lat, fields) into `table`
    # of ``con`` and return its metadata (read_layer_meta); set by a writer whose layers
    # live elsewhere (PostGIS). None: they are in ``con`` already (DuckDB).
    fetch = None

    def __init__(self, con, existing: dict[str, Prior]):
        self.con = con
        self.existing = existing

    def publish(self, name: str, kind: str, select_sql: str, params: Sequence = (), source: str = "",
                places: str | None = None, names: dict[str, str] | None = None, **meta) -> LayerInfo:
        return publish_layer(self.con, name, kind, select_sql, params, source, places, names, **meta)


def publish_layer(con, name: str, kind: str, select_sql: str, params: Sequence = (),
                  source: str = "", places: str | None = None, names: dict[str, str] | None = None,
                  name_field: str | None = None, ends: list[str] | None = None) -> LayerInfo:
    """Create (or replace) a layer from a query with columns id, lon, lat, props.
    `names`: a column's public name (the file's), where it differs from the column's;
    `name_field`: the field naming a feature (found by name if not given, stores/defaults.py);
    `ends`: a trips layer's end position fields [lon, lat]."""
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
    fields = describe_fields(con, table, names or {})
    name_field = choose_name(fields, name_field)
    colour_field = choose_colour(fields, name_field)
    ends = [(names or {}).get(c, c) for c in ends] if ends else None
    meta = layer_meta(fields, name_field=name_field, colour_field=colour_field, ends=ends)
    version = con.execute("SELECT coalesce(max(version), 0) + 1 FROM _layers").fetchone()[0]
    con.execute("DELETE FROM _layers WHERE name = ?", [name])
    con.execute("INSERT INTO _layers (name, kind, count, minlon, minlat, maxlon, maxlat, fields, version, "
                "source, places, loaded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [name, kind, n, x0, y0, x1, y1, orjson.dumps(meta).decode(), version,
                 source, places, datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)])
    return LayerInfo(name=name, kind=kind, count=n, extent=[x0, y0, x1, y1], fields=fields,
                     version=version, source=source, places=places, name_field=name_field,
                     colour_field=colour_field, ends=ends)


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
        if dtype.split("(")[0] in NUMERIC_TYPES:
            lo, hi = con.execute(f"SELECT min({col}), max({col}) FROM {quote(table)}").fetchone()
            fields.append(FieldInfo(public, NUMERIC, _num(lo), _num(hi), column=name))
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
