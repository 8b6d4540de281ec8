"""The shared store: PostgreSQL with PostGIS, for several processes or machines.

Layer tables look like DuckDB's (``_ord``, ``id``, ``lon``, ``lat``, the
properties) plus a ``geom`` point with a GiST index, so that a bbox is an
index search. The bbox test stays exact, though: ``&&`` compares float4
boxes, so it can let in points a hair outside the bbox; the plain lon/lat
comparisons after it make the answer the same as DuckDB's, row for row.
Rows are ordered by the same ``_ord`` (Morton order, computed at load), so
paging gives the same pages; text columns use the "C" collation, so text
compares bytewise like DuckDB whatever the database's locale.

A load builds its layers in an in-memory DuckDB (the ingest code is the same
for both stores) and :func:`write_database` copies them over in one
transaction; see there. The data version is a counter that every load bumps:
cheap for any process to read, cached here for a second at most and dropped
at once when the load's NOTIFY arrives.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import tempfile
import threading
import time
from typing import Iterator, Sequence

import duckdb
import numpy as np
import orjson
import psycopg
from psycopg import errors as pgerrors
from psycopg_pool import ConnectionPool, PoolTimeout

from .base import (BadParam, NUMERIC, Bins, FieldInfo, LayerInfo, Store, StoreError, UnknownLayer, View, grid_shape,
                   quote, table_name, where_clause)
from .duckdb import META_DDL
from ..events.pgnotify import VERSION_CHANNEL, PGBroadcaster, _first_line

from .base import StoreUnavailable

VERSION_TTL = 1.0  # seconds a process trusts its cached data version
CONNECT = {"connect_timeout": 5, "application_name": "citystack", "keepalives": 1, "keepalives_idle": 30,
           "keepalives_interval": 10, "keepalives_count": 3}
TEXT_C = 'text COLLATE "C"'
PG_TYPES = {"BOOLEAN": "boolean", "TINYINT": "smallint", "UTINYINT": "smallint", "SMALLINT": "smallint",
            "USMALLINT": "integer", "INTEGER": "integer", "UINTEGER": "bigint", "BIGINT": "bigint",
            "UBIGINT": "numeric", "HUGEINT": "numeric", "DECIMAL": "numeric", "FLOAT": "real", "REAL": "real",
            "DOUBLE": "double precision", "DATE": "date", "TIME": "time", "TIMESTAMP": "timestamp",
            "TIMESTAMP WITH TIME ZONE": "timestamptz", "VARCHAR": TEXT_C}
META_TABLES = """
CREATE TABLE IF NOT EXISTS citystack_layers (
    name text PRIMARY KEY, kind text NOT NULL, count bigint NOT NULL,
    minlon double precision, minlat double precision, maxlon double precision, maxlat double precision,
    fields text NOT NULL, version bigint NOT NULL, source text, places text,
    loaded_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS citystack_meta (
    id boolean PRIMARY KEY DEFAULT true CHECK (id), version bigint NOT NULL);
INSERT INTO citystack_meta (id, version) VALUES (true, 0) ON CONFLICT DO NOTHING;
"""
LAYER_COLUMNS = "name, kind, count, minlon, minlat, maxlon, maxlat, fields, version, source, places"
WRITE_LOCK = 0x63697479  # pg_advisory_xact_lock key: one load at a time


class PostGISStore(Store):
    kind = "postgis"

    def __init__(self, url: str, pool_size: int = 10, timeout: float = 10.0, notify_url: str | None = None):
        """`pool_size`: connections per process at most; `timeout`: seconds a query
        waits for one; `notify_url`: the primary, when `url` is a read replica."""
        self.url = url
        self.timeout = timeout
        # LISTEN/NOTIFY need the primary: a read replica can do neither.
        self.notify_url = notify_url or url
        self.where = _describe(url)
        try:  # fail now, with the reason, rather than at the first request
            psycopg.connect(url, **CONNECT).close()
        except psycopg.Error as exc:
            raise StoreUnavailable(f"database unavailable: cannot connect to {self.where}: "
                                   f"{_first_line(exc)}") from None
        self._pool = ConnectionPool(url, min_size=1, max_size=max(1, pool_size), open=False, timeout=timeout,
                                    kwargs={"autocommit": True, "prepare_threshold": None, **CONNECT},
                                    name="citystack")
        self._pool.open(wait=False)
        self._notify_pool: ConnectionPool | None = None
        self._lock = threading.Lock()
        self._version: tuple[float, str] | None = None
        self._meta: tuple[str, dict[str, LayerInfo], dict[str, dict[str, int]]] | None = None
        self._hub: PGBroadcaster | None = None

    # -- connections ---------------------------------------------------------

    def _run(self, sql: str, params: Sequence = ()) -> dict[str, np.ndarray]:
        """Run a read query; numpy columns out. A connection found dead (the
        server restarted) is replaced and the query tried once more."""
        for attempt in (1, 2):
            conn = None
            try:
                with self._pool.connection() as conn:
                    cur = conn.execute(sql, list(params), binary=True)
                    return _numpy(cur)
            except PoolTimeout:
                raise StoreUnavailable(f"database unavailable: no connection to {self.where} "
                                       f"within {self.timeout:g} s") from None
            except psycopg.OperationalError as exc:
                if conn is not None and conn.broken and attempt == 1:
                    self._pool.check()  # drop the other dead connections too
                    continue
                if conn is None or conn.broken:
                    raise StoreUnavailable(f"database unavailable: {_first_line(exc)}") from None
                raise StoreError(f"database error: {_first_line(exc)}") from None
            except pgerrors.UndefinedTable as exc:
                raise _NoTable(f"database error: {_first_line(exc)}") from None
            except psycopg.Error as exc:
                raise StoreError(f"database error: {_first_line(exc)}") from None
        raise AssertionError("unreachable")

    # -- metadata ------------------------------------------------------------

    def data_version(self) -> str:
        cached = self._version
        if cached is None or time.monotonic() - cached[0] > VERSION_TTL:
            try:
                found = self._run("SELECT version FROM citystack_meta")["version"]
            except _NoTable:  # nothing loaded yet
                found = []
            value = int(found[0]) if len(found) else 0
            cached = self._version = (time.monotonic(), f"pg.{value}")
        return cached[1]

    def _layers(self) -> dict[str, LayerInfo]:
        return self._metadata()[1]

    def _metadata(self) -> tuple[str, dict[str, LayerInfo], dict[str, dict[str, int]]]:
        """(version, layers, {table: {column: type oid}}), read again when the version moves."""
        version = self.data_version()
        meta = self._meta
        if meta is None or meta[0] != version:
            try:
                rows = self._run(f"SELECT {LAYER_COLUMNS} FROM citystack_layers ORDER BY name")
            except _NoTable:
                rows = {"name": []}
            types = self._run("SELECT c.relname AS t, a.attname AS c, CAST(a.atttypid AS bigint) AS oid "
                              "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                              "WHERE c.relkind = 'r' AND c.relname LIKE 'layer%%' AND pg_table_is_visible(c.oid) "
                              "AND a.attnum > 0 AND NOT a.attisdropped")
            tables: dict[str, dict[str, int]] = {}
            for t, c, oid in zip(types["t"], types["c"], types["oid"].tolist()):
                tables.setdefault(t, {})[c] = oid
            meta = self._meta = (version, _layer_infos(rows), tables)
        return meta

    def layers(self) -> list[LayerInfo]:
        return list(self._layers().values())

    def layer(self, name: str) -> LayerInfo:
        layers = self._layers()
        if name not in layers:
            raise UnknownLayer(name, list(layers))
        return layers[name]

    def _forget_version(self) -> None:
        self._version = None

    # -- queries -------------------------------------------------------------

    def _where(self, info: LayerInfo, view: View) -> tuple[str, list]:
        """where_clause with "%s" marks, led by an index-searchable envelope test
        (left out when the bbox holds the whole layer: it would only cost time)."""
        where, values = where_clause(info, view, mark="%s")
        if view.bbox is None:
            return where, values
        minx, miny, maxx, maxy = (float(v) for v in view.bbox)
        if info.extent and minx <= info.extent[0] and miny <= info.extent[1] and \
                maxx >= info.extent[2] and maxy >= info.extent[3]:
            return where, values
        return (f"geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326) AND {where}",
                [minx, miny, maxx, maxy] + values)

    def features(self, layer, view, properties, limit, offset=0):
        info = self.layer(layer)
        names = info.field_names if properties is None else [info.field(p).name for p in properties]
        where, values = self._where(info, view)
        cols = ", ".join(["id", "lon", "lat"] + [quote(n) for n in names])
        sql = (f"SELECT {cols} FROM {quote(table_name(layer))} WHERE {where} "
               f"ORDER BY _ord LIMIT %s OFFSET %s")
        return self._run(sql, values + [int(limit), int(offset)])

    def count(self, layer, view):
        info = self.layer(layer)
        where, values = self._where(info, view)
        return int(self._run(f"SELECT count(*) AS n FROM {quote(table_name(layer))} WHERE {where}", values)["n"][0])

    def bins(self, layer, view, cells, field=None):
        info = self.layer(layer)
        bbox = view.bbox or tuple(info.extent or (0, 0, 1, 1))
        view = View(bbox=bbox, filters=view.filters, days=view.days, hours=view.hours)
        nx, ny = grid_shape(bbox, cells)
        minx, miny, maxx, maxy = (float(v) for v in bbox)
        dx = (maxx - minx) / nx or 1e-12
        dy = (maxy - miny) / ny or 1e-12
        where, values = self._where(info, view)
        stats = ""
        if field:
            f = info.field(field)
            if f.type != NUMERIC:
                raise BadParam("field", f"field {field!r} is not numeric")
            col = quote(f.name)  # the mean as DuckDB computes it: exact sum, then one division
            stats = (f", CAST(sum({col}) AS double precision) / nullif(count({col}), 0) AS mean, "
                     f"min({col}) AS min, max({col}) AS max")
        sql = (f"SELECT i, j, count(*) AS count{stats} FROM ("
               f" SELECT least(CAST(floor((lon - %s) / %s) AS integer), %s) AS i,"
               f" least(CAST(floor((lat - %s) / %s) AS integer), %s) AS j, *"
               f" FROM {quote(table_name(layer))} WHERE {where}) AS cells GROUP BY i, j ORDER BY j, i")
        out = self._run(sql, [minx, dx, nx - 1, miny, dy, ny - 1] + values)
        return Bins(bbox=bbox, nx=nx, ny=ny, i=out["i"], j=out["j"], count=out["count"],
                    stats={k: out[k] for k in ("mean", "min", "max") if k in out})

    def columns(self, layer, view, names, sample=None, seed=0):
        info = self.layer(layer)
        checked = [n if n in ("id", "lon", "lat") else info.field(n).name for n in names]
        where, values = self._where(info, view)
        rows = f"SELECT _ord, {', '.join(quote(n) for n in checked)} FROM {quote(table_name(layer))} WHERE {where}"
        if sample:  # reproducible: the rows with the smallest hash of position and seed, in _ord order
            rows += " ORDER BY hashint8(_ord + %s), _ord LIMIT %s"
            values = values + [int(seed), int(sample)]
        types = self._metadata()[2].get(table_name(layer), {})
        if checked and all(types.get(n) in FIXED for n in checked):
            return self._packed(rows, values, checked, types)
        out = self._run(f"SELECT * FROM ({rows}) AS s ORDER BY _ord", values)
        del out["_ord"]
        return out

    def _packed(self, rows: str, values: list, names: list[str], types: dict[str, int]) -> dict[str, np.ndarray]:
        """Numeric columns as one packed array each (array_send): no per-row work on either side.
        Floats come with NULL as NaN; integers with a NULL mask, and as floats with NaN if they have one."""
        parts = ["array_send(array_agg(_ord)) AS _ord"]
        for k, n in enumerate(names):
            col = quote(n)
            if FIXED[types[n]][1] == "f":
                parts.append(f"array_send(array_agg(coalesce({col}, 'NaN'))) AS v{k}")
            else:
                parts += [f"array_send(array_agg(coalesce({col}, 0))) AS v{k}",
                          f"array_send(array_agg({col} IS NULL)) AS m{k}"]
        got = self._run(f"SELECT {', '.join(parts)} FROM ({rows}) AS s", values)
        first = {k: v[0] for k, v in got.items()}
        order = np.argsort(_unsend(first["_ord"], ">i8"), kind="stable")
        out = {}
        for k, n in enumerate(names):
            arr = _unsend(first[f"v{k}"], FIXED[types[n]])[order]
            if f"m{k}" in first:
                mask = _unsend(first[f"m{k}"], "u1")[order].astype(bool)
                if mask.any():
                    arr = arr.astype(np.float64)
                    arr[mask] = np.nan
            out[n] = arr
        return out

    def covisits(self, layer, view, min_shared=2):
        """Pairs of places (a < b) visited by at least `min_shared` of the same users."""
        info = self.layer(layer)
        if info.kind != "checkins":
            raise BadParam("layer", f"layer {layer!r} is not a check-in layer")
        where, values = self._where(info, view)
        sql = (f"WITH visits AS (SELECT DISTINCT \"user\", place FROM {quote(table_name(layer))} WHERE {where}) "
               "SELECT a.place AS a, b.place AS b, count(*) AS weight FROM visits a "
               "JOIN visits b ON a.\"user\" = b.\"user\" AND a.place < b.place "
               "GROUP BY a.place, b.place HAVING count(*) >= %s ORDER BY a, b")
        return self._run(sql, values + [int(min_shared)])

    def sql(self, sql: str, params: Sequence = ()) -> dict[str, np.ndarray]:
        """A read query for store-specific code; PostgreSQL SQL with %s marks."""
        return self._run(sql, params)

    def broadcaster(self) -> PGBroadcaster:
        with self._lock:
            if self._hub is None:
                pool = self._pool
                if self.notify_url != self.url:
                    pool = self._notify_pool = ConnectionPool(
                        self.notify_url, min_size=1, max_size=2, open=False, timeout=self.timeout,
                        kwargs={"autocommit": True, **CONNECT}, name="citystack-notify")
                    pool.open(wait=False)
                self._hub = PGBroadcaster(self.notify_url, pool, self._forget_version, CONNECT)
                self._hub.wait_listening(2.0)  # so that the first lines posted already go everywhere
            return self._hub

    def close(self) -> None:
        with self._lock:
            if self._hub is not None:
                self._hub.close()
                self._hub = None
            if self._notify_pool is not None:
                self._notify_pool.close()
                self._notify_pool = None
        self._pool.close()

    @contextlib.contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with write_database(self.url) as con:
            yield con


# -- reading ----------------------------------------------------------------

# PostgreSQL type oids -> numpy.
INTS = {20: np.int64, 23: np.int32, 21: np.int16}
FLOATS = {701: np.float64, 700: np.float32, 1700: np.float64}
TIMES = {1114, 1184, 1082}  # timestamp, timestamptz, date: datetime64[us], as DuckDB gives
FIXED = {701: ">f8", 700: ">f4", 20: ">i8", 23: ">i4", 21: ">i2"}  # array_send element formats


def _numpy(cur) -> dict[str, np.ndarray]:
    """Result columns as numpy arrays with DuckDB's dtypes (and its NULLs: NaN or None).
    The rows become one 2-D object array first: a transpose in C, and one object for the
    garbage collector to track instead of an iterator per row."""
    rows = cur.fetchall()
    desc = cur.description
    table = np.empty((len(rows), len(desc)), dtype=object)
    try:
        table[:] = rows
    except ValueError:  # some values are sequences themselves (arrays): one by one, then
        for i, row in enumerate(rows):
            for k, value in enumerate(row):
                table[i, k] = value
    return {d.name: _array(table[:, k], d.type_code) for k, d in enumerate(desc)}


def _array(values: np.ndarray, oid: int) -> np.ndarray:
    """One object column as DuckDB would give it."""
    if oid in FLOATS:
        return values.astype(FLOATS[oid])  # None becomes NaN
    nulls = np.equal(values, None)
    if oid in INTS:
        return values.astype(np.float64 if nulls.any() else INTS[oid])
    if oid == 16 or oid in TIMES:
        if oid == 1184:
            values = np.array([v if v is None else v.astimezone(datetime.timezone.utc).replace(tzinfo=None)
                               for v in values], dtype=object)
        arr = values.astype(bool if oid == 16 else "datetime64[us]")
        if nulls.any():
            arr = arr.astype(object)
            arr[nulls] = None
        return arr
    return values.copy()


def _unsend(buf, code: str) -> np.ndarray:
    """Parse array_send output of a one-dimensional array without NULLs (header, then (length, value)s)."""
    native = np.dtype(code).newbyteorder("=")
    if buf is None:  # array_agg of no rows
        return np.empty(0, native)
    buf = bytes(buf)
    ndim, has_null = int.from_bytes(buf[0:4], "big"), int.from_bytes(buf[4:8], "big")
    if ndim == 0:
        return np.empty(0, native)
    if ndim != 1 or has_null:
        raise StoreError("database error: unexpected packed array")
    n = int.from_bytes(buf[12:16], "big")
    return np.frombuffer(buf, dtype=[("len", ">i4"), ("v", code)], offset=20, count=n)["v"].astype(native)


def _layer_infos(rows: dict[str, np.ndarray]) -> dict[str, LayerInfo]:
    out = {}
    for k in range(len(rows["name"])):
        r = {key: col[k] for key, col in rows.items()}
        extent = None if r["minlon"] is None or np.isnan(r["minlon"]) else \
            [float(r[c]) for c in ("minlon", "minlat", "maxlon", "maxlat")]
        out[r["name"]] = LayerInfo(name=r["name"], kind=r["kind"], count=int(r["count"]), extent=extent,
                                   fields=[FieldInfo(**f) for f in orjson.loads(r["fields"])],
                                   version=int(r["version"]), source=r["source"] or "", places=r["places"])
    return out


class _NoTable(StoreError):
    """A table is missing: for the metadata tables, nothing has been loaded yet."""


def _describe(url: str) -> str:
    """host:port/dbname of a URL, without the password, for messages."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        return "the database"
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


# -- writing ----------------------------------------------------------------

@contextlib.contextmanager
def write_database(url: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB connection to build layers in (with
    ``duckdb.publish_layer``); when the block succeeds, every layer it built
    lands in PostGIS in one transaction, and when anything fails (the file,
    the copy, the connection) the database is left exactly as it was.

    Each layer is copied into a new table (COPY from a CSV that DuckDB writes,
    ``geom`` generated from lon/lat), indexed and analysed while readers go on
    using the old one; then, still in the same transaction, the old table is
    dropped, the new one renamed, ``citystack_layers`` updated and the version
    bumped. Readers see the old layer or the new one, never a mix.
    """
    con = duckdb.connect(":memory:")
    try:
        con.execute(META_DDL)
        yield con
        layers = con.execute(f"SELECT {LAYER_COLUMNS} FROM _layers ORDER BY version").fetchall()
        with tempfile.TemporaryDirectory(prefix="citystack-copy-") as folder:
            exports = [_export(con, row, folder) for row in layers]
            _publish(url, exports)
    finally:
        con.close()


def _export(con, row: tuple, folder: str) -> tuple[tuple, list[tuple[str, str]], str]:
    """Write a layer table to CSV in _ord order; return the row, (column, PostgreSQL type)s and the file."""
    table = table_name(row[0])
    cols = con.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
                       "AND table_catalog = current_database() ORDER BY ordinal_position", [table]).fetchall()
    if not cols:
        raise StoreError(f"layer {row[0]!r} is listed but its table is missing")
    typed, select = [], []
    for name, dtype in cols:
        pg = PG_TYPES.get(dtype, PG_TYPES.get(dtype.split("(")[0]))
        select.append(quote(name) if pg else f"CAST({quote(name)} AS VARCHAR)")
        typed.append((name, pg or TEXT_C))
    path = os.path.join(folder, f"{table}.csv")
    con.execute(f"COPY (SELECT {', '.join(select)} FROM {quote(table)} ORDER BY _ord) "
                f"TO '{path.replace(chr(39), chr(39) * 2)}' (FORMAT csv, HEADER false)")
    return row, typed, path


def _publish(url: str, exports: list) -> None:
    try:
        with psycopg.connect(url, **CONNECT) as pg:
            with pg.transaction():
                pg.execute("SELECT pg_advisory_xact_lock(%s)", [WRITE_LOCK])
                pg.execute("CREATE EXTENSION IF NOT EXISTS postgis")
                pg.execute(META_TABLES)
                if not exports:
                    return
                base = pg.execute("SELECT coalesce(max(version), 0) FROM citystack_layers").fetchone()[0]
                for row, typed, path in exports:
                    _fill(pg, row[0], typed, path)
                for row, _, _ in exports:
                    _swap(pg, row, base)
                version = pg.execute("UPDATE citystack_meta SET version = version + 1 RETURNING version").fetchone()[0]
                pg.execute("SELECT pg_notify(%s, %s)", [VERSION_CHANNEL, str(version)])
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(f"database unavailable: {_first_line(exc)}") from None
    except psycopg.Error as exc:
        raise StoreError(f"could not write to PostgreSQL: {_first_line(exc)}") from None


def _fill(pg: psycopg.Connection, layer: str, typed: list[tuple[str, str]], path: str) -> None:
    table = table_name(layer)
    new = quote(f"{table}#new")
    columns = ", ".join(f"{quote(n)} {t}" for n, t in typed)
    pg.execute(f"DROP TABLE IF EXISTS {new}")
    pg.execute(f"CREATE TABLE {new} ({columns}, geom geometry(Point, 4326) GENERATED ALWAYS AS "
               f"(ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED)")
    names = ", ".join(quote(n) for n, _ in typed)
    with pg.cursor().copy(f"COPY {new} ({names}) FROM STDIN (FORMAT csv)") as copy, open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            copy.write(chunk)
    pg.execute(f"CREATE UNIQUE INDEX {quote(table + '#new#ord')} ON {new} (_ord)")
    pg.execute(f"CREATE INDEX {quote(table + '#new#geom')} ON {new} USING gist (geom)")
    pg.execute(f"ANALYZE {new}")


def _swap(pg: psycopg.Connection, row: tuple, base: int) -> None:
    name, kind, count, x0, y0, x1, y1, fields, version, source, places = row
    table = table_name(name)
    pg.execute(f"DROP TABLE IF EXISTS {quote(table)}")
    pg.execute(f"ALTER TABLE {quote(table + '#new')} RENAME TO {quote(table)}")
    for suffix in ("ord", "geom"):
        pg.execute(f"ALTER INDEX {quote(f'{table}#new#{suffix}')} RENAME TO {quote(f'{table}#{suffix}')}")
    pg.execute(f"INSERT INTO citystack_layers ({LAYER_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
               "ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, count = EXCLUDED.count, "
               "minlon = EXCLUDED.minlon, minlat = EXCLUDED.minlat, maxlon = EXCLUDED.maxlon, "
               "maxlat = EXCLUDED.maxlat, fields = EXCLUDED.fields, version = EXCLUDED.version, "
               "source = EXCLUDED.source, places = EXCLUDED.places, loaded_at = now()",
               [name, kind, count, x0, y0, x1, y1, fields, base + version, source, places])
