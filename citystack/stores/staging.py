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

Fields (:func:`describe_fields`): a column's type follows its SQL type
(BIGINT/DOUBLE number, VARCHAR text, BOOLEAN bool, TIMESTAMP time, DATE date).
A number is ``id`` (identifier-like, sent as text in JSON) when its public
name is ``id`` or ends in ``_id``, ``Id``, ``ID`` or `` id``, or when a value
lies beyond 2^53. A field is a ``category`` when it is a bool, or text with
few values that repeat: at most 500 distinct values each seen 20 times on
average, or (small files) at most 10 each seen twice on average; ``top``
then lists up to CATEGORY_LIMIT values, most common first, and ``others``
the number left out (other text fields: the 10 most common).

A points layer with a time field (``time=``) gets ``_dow`` (0 = Monday) and
``_hour`` SMALLINT columns and a :class:`TimeSummary`; a check-in layer's
summary comes from its ``day`` and ``hour`` columns (and its time field's
dates, when it has one). Date buckets are days when the extent spans at most
:data:`MAX_DAY_BUCKETS` days, else months.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Sequence

import orjson

from .base import (BOOL, CATEGORY_LIMIT, DATE, NUMERIC, TEXT, TIME, FieldInfo, LayerInfo, StoreError,
                   TimeSummary, layer_meta, quote, table_name)
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
SQL_TYPES = {"BOOLEAN": BOOL, "DATE": DATE, "TIMESTAMP": TIME, "VARCHAR": TEXT}
INTEGER_SQL = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
               "UBIGINT")
EXACT = 2 ** 53  # integers beyond this lose digits as JSON numbers (doubles)
ID_NAME = re.compile(r"^(id|.*[_ ]id)$", re.IGNORECASE)
ID_CAMEL = re.compile(r"[a-z0-9](Id|ID)$")  # stationId, userID
CATEGORY_MAX, CATEGORY_REPEAT = 500, 20  # distinct values at most, each seen this often on average
SMALL_CATEGORY_MAX, SMALL_CATEGORY_REPEAT = 10, 2
TOP_TEXT = 10  # values listed for a text field that is not a category
MAX_DAY_BUCKETS = 400


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
                places: str | None = None, names: dict[str, str] | None = None, **extra) -> LayerInfo:
        return publish_layer(self.con, name, kind, select_sql, params, source, places, names, **extra)


def publish_layer(con, name: str, kind: str, select_sql: str, params: Sequence = (),
                  source: str = "", places: str | None = None, names: dict[str, str] | None = None,
                  hints: dict[str, dict] | None = None, time: str | None = None, big_ids: bool | None = None,
                  name_field: str | None = None, ends: list[str] | None = None) -> LayerInfo:
    """Create (or replace) a layer from a query with columns id, lon, lat, props.
    `names`: a column's public name (the file's), where it differs from the column's;
    `hints`: column -> FieldInfo attributes known from the file (``unit``, ``id``);
    `time`: the column of the time field (a points layer gets ``_dow`` and ``_hour``);
    `big_ids`: ids to be sent as text (None: when they are not integers within 2^53);
    `name_field`: the field naming a feature (found by name if not given, stores/defaults.py);
    `ends`: a trips layer's end position fields [lon, lat] (columns)."""
    names = names or {}
    table = table_name(name)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _stage AS {select_sql}", list(params))
    x0, y0, x1, y1, n = con.execute(
        "SELECT min(lon), min(lat), max(lon), max(lat), count(*) FROM _stage").fetchone()
    if not n:
        raise StoreError(f"layer {name!r} would be empty: no rows with valid coordinates")
    clock = ""
    if time and kind != "checkins":
        t = quote(time)
        clock = f", CAST(isodow({t}) - 1 AS SMALLINT) AS _dow, CAST(hour({t}) AS SMALLINT) AS _hour"
    con.execute(f"DROP TABLE IF EXISTS {quote(table)}")
    con.execute(f"CREATE TABLE {quote(table)} AS SELECT row_number() OVER "
                f"(ORDER BY {morton_key(x0, y0, x1, y1)}, id) AS _ord, *{clock} FROM _stage ORDER BY _ord")
    con.execute("DROP TABLE _stage")
    fields = describe_fields(con, table, names, hints)
    if big_ids is None:
        big_ids = _big_ids(con, table)
    summary = time_summary(con, table, kind, time, names)
    name_field = choose_name(fields, name_field)
    colour_field = choose_colour(fields, name_field)
    ends = [names.get(c, c) for c in ends] if ends else None
    version = con.execute("SELECT coalesce(max(version), 0) + 1 FROM _layers").fetchone()[0]
    meta = layer_meta(fields, summary, name_field, colour_field, big_ids, ends)
    con.execute("DELETE FROM _layers WHERE name = ?", [name])
    con.execute("INSERT INTO _layers (name, kind, count, minlon, minlat, maxlon, maxlat, fields, version, "
                "source, places, loaded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [name, kind, n, x0, y0, x1, y1, orjson.dumps(meta).decode(), version,
                 source, places, datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)])
    return LayerInfo(name=name, kind=kind, count=n, extent=[x0, y0, x1, y1], fields=fields,
                     version=version, source=source, places=places, time=summary, name_field=name_field,
                     colour_field=colour_field, big_ids=big_ids, ends=ends)


def _big_ids(con, table: str) -> bool:
    dtype = _column_types(con, table).get("id", "")
    if dtype.split("(")[0] not in INTEGER_SQL:
        return True
    lo, hi = con.execute(f"SELECT min(id), max(id) FROM {quote(table)}").fetchone()
    return max(abs(int(lo or 0)), abs(int(hi or 0))) > EXACT


def time_summary(con, table: str, kind: str, time: str | None, names: dict[str, str]) -> TimeSummary | None:
    """The layer's time at a glance: extent, counts by hour, day of week and date."""
    if kind == "checkins":
        day, hour = "day", "hour"
    elif time:
        day, hour = "_dow", "_hour"
    else:
        return None
    t = quote(table)
    hours = [0] * 24
    for h, c in con.execute(f"SELECT {hour}, count(*) FROM {t} WHERE {hour} BETWEEN 0 AND 23 GROUP BY 1").fetchall():
        hours[int(h)] = int(c)
    days = [0] * 7
    for d, c in con.execute(f"SELECT {day}, count(*) FROM {t} WHERE {day} BETWEEN 0 AND 6 GROUP BY 1").fetchall():
        days[int(d)] = int(c)
    summary = TimeSummary(field=names.get(time, time) if time else None, hours=hours, days=days)
    if time:
        col = quote(time)
        lo, hi = con.execute(f"SELECT min({col}), max({col}) FROM {t}").fetchone()
        summary.min, summary.max = _iso(lo), _iso(hi)
        if lo is not None:
            span = (hi.date() if isinstance(hi, datetime.datetime) else hi) - \
                (lo.date() if isinstance(lo, datetime.datetime) else lo)
            summary.bucket = "day" if span.days + 1 <= MAX_DAY_BUCKETS else "month"
            rows = con.execute(f"SELECT CAST(date_trunc('{summary.bucket}', {col}) AS DATE), count(*) "
                               f"FROM {t} WHERE {col} IS NOT NULL GROUP BY 1 ORDER BY 1").fetchall()
            summary.dates = [[d.isoformat(), int(c)] for d, c in rows]
    return summary


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


def _column_types(con, table: str) -> dict[str, str]:
    return dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                            "WHERE table_name = ? AND table_catalog = current_database() "
                            "ORDER BY ordinal_position", [table]).fetchall())


def field_type(dtype: str) -> tuple[str, bool]:
    """(FieldInfo type, integer) of a column's SQL type."""
    base = dtype.split("(")[0]
    if base in NUMERIC_TYPES:
        return NUMERIC, base in INTEGER_SQL
    return SQL_TYPES.get(base, TEXT), False


def describe_fields(con, table: str, names: dict[str, str], hints: dict[str, dict] | None = None) -> list[FieldInfo]:
    """The layer's fields, with their statistics (see the module): one scan for the
    ranges, one grouping per text or bool column."""
    hints = hints or {}
    t = quote(table)
    cols = [(c, d) for c, d in _column_types(con, table).items()
            if c not in ("id", "lon", "lat") and not c.startswith("_")]  # position, order and derived columns
    if not cols:
        return []
    parts = ["count(*)"]
    for c, _ in cols:
        parts += [f"min({quote(c)})", f"max({quote(c)})", f"count({quote(c)})"]
    row = con.execute(f"SELECT {', '.join(parts)} FROM {t}").fetchone()
    total = int(row[0])
    fields = []
    for i, (name, dtype) in enumerate(cols):
        lo, hi, filled = row[1 + 3 * i: 4 + 3 * i]
        kind, integer = field_type(dtype)
        public = names.get(name, name)
        info = FieldInfo(public, kind, column=name, integer=integer)
        hint = hints.get(name, {})
        info.unit = hint.get("unit")
        if kind == NUMERIC:
            info.min, info.max = _num(lo), _num(hi)
            big = integer and lo is not None and max(abs(int(lo)), abs(int(hi))) > EXACT
            info.id = bool(hint.get("id", integer and (id_like(public) or big)))
        elif kind in (TIME, DATE):
            info.min, info.max = _iso(lo), _iso(hi)
        else:
            _describe_values(con, t, name, kind, int(filled), info)
        fields.append(info)
    return fields


def id_like(name: str) -> bool:
    """A name that says its values are identifiers."""
    return bool(ID_NAME.match(name) or ID_CAMEL.search(name))


def _describe_values(con, t: str, name: str, kind: str, filled: int, info: FieldInfo) -> None:
    """top, distinct, category and others of a text or bool column."""
    col = quote(name)
    value = col if kind == BOOL else f"CAST({col} AS VARCHAR)"
    # Positions, not aliases: a field may be named like an alias.
    rows = con.execute(f"WITH g (v, n) AS (SELECT {value}, count(*) FROM {t} WHERE {col} IS NOT NULL "
                       f"GROUP BY 1) SELECT v, n, count(*) OVER () FROM g ORDER BY 2 DESC, 1 "
                       f"LIMIT {CATEGORY_LIMIT}").fetchall()
    distinct = int(rows[0][2]) if rows else 0
    info.distinct = distinct
    info.category = kind == BOOL or (0 < distinct <= CATEGORY_MAX and distinct * CATEGORY_REPEAT <= filled) or \
        (0 < distinct <= SMALL_CATEGORY_MAX and distinct * SMALL_CATEGORY_REPEAT <= filled)
    top = rows if info.category else rows[:TOP_TEXT]
    info.top = [[v, int(n)] for v, n, _ in top]
    info.others = distinct - len(info.top)


def _iso(v):
    return None if v is None else v.isoformat()


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
