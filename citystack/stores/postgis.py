"""The shared store: PostgreSQL with PostGIS, for several processes or machines.

Layer tables look like DuckDB's (``_ord``, ``id``, ``lon``, ``lat``, the
properties) plus a ``geom`` point with a GiST index, so that a bbox is an
index search. The bbox test stays exact, though: ``&&`` compares float4
boxes, so it can let in points a hair outside the bbox; the plain lon/lat
comparisons after it make the answer the same as DuckDB's, row for row.
Rows are ordered by the same ``_ord`` (Morton order, computed at load), so
paging gives the same pages; text columns use the "C" collation, so text
compares bytewise like DuckDB whatever the database's locale.

The queries are stores/sql.py's; this module gives the connections, the
bbox pre-filter and the packed path for numeric columns. A load builds its
layers in an in-memory DuckDB (stores/staging.py, the same for both stores)
and stores/postgis_writer.py copies them over in one transaction. The data version is a counter that every load bumps:
cheap for any process to read, cached here for a second at most and dropped
at once when the load's NOTIFY arrives.
"""

from __future__ import annotations

import contextlib
import datetime
import threading
import time
from typing import Sequence

import numpy as np
import orjson
import psycopg
from psycopg import errors as pgerrors
from psycopg_pool import ConnectionPool, PoolTimeout

from ..events.pgnotify import PGBroadcaster, _first_line
from .base import LayerInfo, StoreError, StoreUnavailable, UnknownLayer, View, quote, read_layer_meta, table_name
from .sql import SQLStore

VERSION_TTL = 1.0  # seconds a process trusts its cached data version
CONNECT = {"connect_timeout": 5, "application_name": "citystack", "keepalives": 1, "keepalives_idle": 30,
           "keepalives_interval": 10, "keepalives_count": 3}
LAYER_COLUMNS = "name, kind, count, minlon, minlat, maxlon, maxlat, fields, version, source, places"


class PostGISStore(SQLStore):
    kind = "postgis"
    MARK = "%s"
    ORDER = " ORDER BY _ord"
    SAMPLE_KEY = "hashint8(_ord + %s), _ord"  # PostgreSQL's own hash; _ord breaks ties
    COLUMNS_READ_ORD = True  # columns come back in _ord order: see _fetch_columns

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
        """The view's condition led by an index-searchable envelope test (left out
        when the bbox holds the whole layer: it would only cost time)."""
        where, values = super()._where(info, view)
        if view.bbox is None:
            return where, values
        minx, miny, maxx, maxy = (float(v) for v in view.bbox)
        if info.extent and minx <= info.extent[0] and miny <= info.extent[1] and \
                maxx >= info.extent[2] and maxy >= info.extent[3]:
            return where, values
        return (f"geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326) AND {where}",
                [minx, miny, maxx, maxy] + values)

    @contextlib.contextmanager
    def _snapshot(self, layer: str):
        # A load swaps a layer's table and its metadata in one transaction, and each query
        # is a statement of its own: there is nothing to hold.
        yield self.layer(layer), self._run

    def _mean(self, col: str) -> str:
        # The mean as DuckDB computes it: exact sum, then one division.
        return f"CAST(sum({col}) AS double precision) / nullif(count({col}), 0)"

    def _fetch_columns(self, info, run, sql, values, names):
        """Rows in _ord order: all-numeric columns packed (see _packed), others row by row."""
        types = self._metadata()[2].get(table_name(info.name), {})
        if names and all(types.get(n) in FIXED for n in names):
            return self._packed(sql, values, names, types)
        out = run(f"SELECT * FROM ({sql}) AS s ORDER BY _ord", values)
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

    def area_stats(self, layer, view, areas, field=None, category=None, users=None):
        return _area_stats(self, layer, view, areas, field, category, users)


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
        if nulls.any() and any(abs(v) > 2 ** 53 for v in values[~nulls]):
            return values.copy()  # floats would lose digits: Python ints and None, as DuckDB's store gives
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
                                   version=int(r["version"]), source=r["source"] or "", places=r["places"],
                                   **read_layer_meta(orjson.loads(r["fields"])))
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


def _area_stats(store: PostGISStore, layer, view, areas, field=None, category=None, users=None):
    """PostGISStore.area_stats: one query. Each point's area is the lowest _ord among the
    areas whose polygon covers it (ST_Covers on the GiST index), then a GROUP BY area
    (and, for shares, GROUPING SETS by area and category)."""
    from .areas import area_rows, envelope, require_areas

    ainfo = store.layer(areas)
    require_areas(ainfo)
    pinfo = store.layer(layer)
    inview = area_rows(ainfo, store._run, View(bbox=view.bbox), "%s")
    env = envelope(view.bbox, inview)
    pview = View(bbox=env, filters=view.filters, days=view.days, hours=view.hours, start=view.start, end=view.end)
    where, values = store._where(pinfo, pview)
    value = f"CAST({quote(pinfo.field(field).column)} AS double precision)" if field else "NULL::double precision"
    cat = f"CAST({quote(pinfo.field(category).column)} AS text)" if category else "NULL::text"
    who = f"CAST({quote(pinfo.field(users).column)} AS text)" if users else "NULL::text"
    seen, seen_values = "TRUE", []
    if view.bbox is not None:
        minx, miny, maxx, maxy = (float(v) for v in view.bbox)
        seen, seen_values = "(p.lon >= %s AND p.lon <= %s AND p.lat >= %s AND p.lat <= %s)", [minx, maxx, miny, maxy]
    groups = "GROUPING SETS ((area), (area, c))" if category else "area, c"
    # The points in view (p), each covered point's lowest-_ord area (hit: a join on ST_Covers,
    # which PostgreSQL runs area by area over the points' GiST index, each polygon prepared
    # once), then one GROUP BY over p LEFT JOIN hit.
    sql = (f"WITH p AS NOT MATERIALIZED (SELECT _ord, geom, {value} AS v, {cat} AS c, {who} AS u, "
           f"{seen} AS seen FROM {quote(table_name(pinfo.name))} AS p WHERE {where}), "
           f"hit AS (SELECT p._ord AS pid, min(a._ord) AS area FROM p JOIN {quote(table_name(ainfo.name))} AS a "
           "ON ST_Covers(a.geom, p.geom) GROUP BY p._ord) "
           "SELECT hit.area AS area, GROUPING(c) AS g, c, count(*) AS count, count(*) FILTER (WHERE seen) AS seen, "
           "count(v) AS n, sum(v) AS sum, min(v) AS min, max(v) AS max, "
           "percentile_cont(0.5) WITHIN GROUP (ORDER BY v) AS median, count(DISTINCT u) AS users "
           f"FROM p LEFT JOIN hit ON hit.pid = p._ord GROUP BY {groups.replace('area', 'hit.area')}")
    got = store._run(sql, seen_values + values)
    position = {int(o): k for k, o in enumerate(inview["_ord"].tolist())}
    n = len(position)
    out: dict = {"id": inview["id"], "count": np.zeros(n, dtype=np.int64), "outside": 0}
    if field:
        out.update(n=np.zeros(n, dtype=np.int64), sum=np.zeros(n), min=np.full(n, np.nan),
                   max=np.full(n, np.nan), median=np.full(n, np.nan))
    if category:
        out["share"] = [dict() for _ in range(n)]
    if users:
        out["users"] = np.zeros(n, dtype=np.int64)
    for r in range(len(got["count"])):
        a, whole = got["area"][r], (not category) or int(got["g"][r]) == 1
        if a is None or (isinstance(a, float) and np.isnan(a)):
            if whole:
                out["outside"] = int(got["seen"][r])
            continue
        k = position.get(int(a))
        if k is None:
            continue
        if not whole:
            if got["c"][r] is not None:
                out["share"][k][got["c"][r]] = int(got["count"][r])
            continue
        out["count"][k] = int(got["count"][r])
        if users:
            out["users"][k] = int(got["users"][r])
        if field:
            out["n"][k] = int(got["n"][r])
            for key in ("sum", "min", "max", "median"):
                v = got[key][r]
                out[key][k] = np.nan if v is None else float(v)
            if out["n"][k] == 0:
                out["sum"][k] = 0.0
    return out

