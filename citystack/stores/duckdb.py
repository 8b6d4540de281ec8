"""The embedded store: one DuckDB file.

Readers attach the file read-only. A writer never touches the file readers
have open: it copies it, writes the copy in one transaction and moves it
into place with an atomic rename. Readers notice the new file (its inode
changes) at their next query and reopen, so a load lands while the server
runs, whole or not at all.

Each layer table is sorted along a Morton (Z-order) curve at load, so a
small bbox touches few row groups: DuckDB's min/max zone maps skip the rest.
Layers up to `memory_rows` points are also indexed in memory (pointindex.py),
and the features of a plain bbox view are read from there, skipping SQL's
fixed cost per query.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sys
import tempfile
import threading
from typing import Iterator, Sequence

import duckdb
import numpy as np
import orjson

from .base import (BadParam, NUMERIC, TEXT, Bins, FieldInfo, LayerInfo, Store, StoreError, UnknownLayer,
                   View, grid_shape, quote, table_name, where_clause)
from .pointindex import PointIndex

NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                 "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "REAL", "DECIMAL")
# Layer tables are written in _ord (Morton) order. With insertion order kept
# (DuckDB's default, stated here so it cannot change under us), a query without
# ORDER BY returns rows in that order: stable pages without a sort (a third of
# a small window's query time).
INSERTION_ORDER = {"threads": 1, "preserve_insertion_order": True}
ROW_GROUP_SIZE = 16384  # DuckDB's default is 122,880 (measured: a 1,000-point window reads 2x faster)
META_DDL = """
CREATE TABLE IF NOT EXISTS _layers (
    name VARCHAR PRIMARY KEY, kind VARCHAR, count BIGINT,
    minlon DOUBLE, minlat DOUBLE, maxlon DOUBLE, maxlat DOUBLE,
    fields VARCHAR, version BIGINT, source VARCHAR, places VARCHAR,
    loaded_at TIMESTAMP DEFAULT current_timestamp)
"""


class DuckDBStore(Store):
    kind = "duckdb"

    def __init__(self, path: str, memory_rows: int = 0):
        self.path = os.path.abspath(path)
        self.memory_rows = memory_rows
        if not os.path.exists(self.path):
            raise StoreError(f"no database at {path}: create one with `citystack init --sample --db {path}` "
                             "or load data with `citystack load FILE --layer NAME`")
        self._lock = threading.Lock()
        self._gen: _Generation | None = None
        self._local = _thread_local()

    # -- connections ---------------------------------------------------------

    def _generation(self) -> "_Generation":
        key = _file_key(self.path)
        gen = self._gen
        if gen is None or gen.key != key:
            with self._lock:
                gen = self._gen
                if gen is None or gen.key != key:
                    gen = self._gen = _Generation(self.path, key)
        return gen

    def _cursor(self) -> tuple["_Generation", duckdb.DuckDBPyConnection]:
        gen = self._generation()
        local = self._local
        if getattr(local, "gen", None) is not gen:
            local.cur = gen.con.cursor()
            local.cur.execute("USE db")
            local.gen = gen
        return gen, local.cur

    def _open(self, layer: str) -> tuple[LayerInfo, duckdb.DuckDBPyConnection]:
        """The layer's description and a cursor, from one look at the file: the
        schema checked is the schema queried, even while a load swaps the file."""
        info, cur, _ = self._open_generation(layer)
        return info, cur

    def _open_generation(self, layer: str) -> tuple[LayerInfo, duckdb.DuckDBPyConnection, "_Generation"]:
        gen, cur = self._cursor()
        layers = gen.layers()
        if layer not in layers:
            raise UnknownLayer(layer, list(layers))
        return layers[layer], cur, gen

    def _query(self, sql: str, params: Sequence = ()) -> dict[str, np.ndarray]:
        _, cur = self._cursor()
        return _run(cur, sql, params)

    # -- metadata ------------------------------------------------------------

    def layers(self) -> list[LayerInfo]:
        return list(self._generation().layers().values())

    def layer(self, name: str) -> LayerInfo:
        return self._open(name)[0]

    def data_version(self) -> str:
        ino, mtime = self._generation().key
        return f"{ino:x}.{mtime:x}"

    # -- queries -------------------------------------------------------------

    def features(self, layer, view, properties, limit, offset=0):
        info, cur, gen = self._open_generation(layer)
        names = info.field_names if properties is None else [info.field(p).name for p in properties]
        if info.count <= self.memory_rows and _bbox_only(view):
            index = gen.index(info)
            rows = index.rows(view.bbox)
            if rows is not None:  # else a large window: SQL's streaming LIMIT is quicker
                return _plain(index.take(rows[int(offset):int(offset) + int(limit)], ["id", "lon", "lat"] + names))
        where, values = where_clause(info, view)
        cols = ", ".join(["id", "lon", "lat"] + [quote(n) for n in names])
        sql = (f"SELECT {cols} FROM {quote(table_name(layer))} WHERE {where} "
               f"LIMIT ? OFFSET ?")  # rows come in _ord order: see INSERTION_ORDER
        return _run(cur, sql, values + [int(limit), int(offset)])

    def count(self, layer, view):
        info, cur = self._open(layer)
        where, values = where_clause(info, view)
        out = _run(cur, f"SELECT count(*) AS n FROM {quote(table_name(layer))} WHERE {where}", values)
        return int(out["n"][0])

    def bins(self, layer, view, cells, field=None):
        info, cur = self._open(layer)
        bbox = view.bbox or tuple(info.extent or (0, 0, 1, 1))
        view = View(bbox=bbox, filters=view.filters, days=view.days, hours=view.hours)
        nx, ny = grid_shape(bbox, cells)
        minx, miny, maxx, maxy = bbox
        dx = (maxx - minx) / nx or 1e-12
        dy = (maxy - miny) / ny or 1e-12
        where, values = where_clause(info, view)
        stats = ""
        if field:
            f = info.field(field)
            if f.type != NUMERIC:
                raise BadParam("field", f"field {field!r} is not numeric")
            col = quote(f.name)
            stats = f", avg({col}) AS mean, min({col}) AS min, max({col}) AS max"
        sql = (f"SELECT i, j, count(*) AS count{stats} FROM ("
               f" SELECT least(CAST(floor((lon - ?) / ?) AS INTEGER), ?) AS i,"
               f" least(CAST(floor((lat - ?) / ?) AS INTEGER), ?) AS j, *"
               f" FROM {quote(table_name(layer))} WHERE {where}) GROUP BY i, j ORDER BY j, i")
        out = _run(cur, sql, [minx, dx, nx - 1, miny, dy, ny - 1] + values)
        return Bins(bbox=bbox, nx=nx, ny=ny, i=out["i"], j=out["j"], count=out["count"],
                    stats={k: out[k] for k in ("mean", "min", "max") if k in out})

    def columns(self, layer, view, names, sample=None, seed=0):
        info, cur = self._open(layer)
        checked = [n if n in ("id", "lon", "lat") else info.field(n).name for n in names]
        where, values = where_clause(info, view)
        sql = f"SELECT {', '.join(quote(n) for n in checked)} FROM {quote(table_name(layer))} WHERE {where}"
        if sample:
            # A reproducible sample: order by a hash of the row position and the seed.
            sql += " ORDER BY hash(_ord + ?) LIMIT ?"
            values = values + [int(seed), int(sample)]
        return _run(cur, sql, values)

    def covisits(self, layer, view, min_shared=2):
        """Pairs of places (a < b) visited by at least `min_shared` of the same users:
        one self-join of the distinct (user, place) pairs in view."""
        info, cur = self._open(layer)
        if info.kind != "checkins":
            raise BadParam("layer", f"layer {layer!r} is not a check-in layer")
        where, values = where_clause(info, view)
        sql = (f"WITH visits AS (SELECT DISTINCT \"user\", place FROM {quote(table_name(layer))} WHERE {where}) "
               "SELECT a.place AS a, b.place AS b, count(*) AS weight FROM visits a "
               "JOIN visits b ON a.\"user\" = b.\"user\" AND a.place < b.place "
               "GROUP BY a.place, b.place HAVING count(*) >= ? ORDER BY a, b")
        return _run(cur, sql, values + [int(min_shared)])

    def sql(self, sql: str, params: Sequence = ()) -> dict[str, np.ndarray]:
        """A read-only query for store-specific code (analyses with their own SQL)."""
        return self._query(sql, params)

    def close(self):
        """Let go of the file: the connection, and every thread's cursor on it."""
        gen, self._gen, self._local = self._gen, None, _thread_local()
        if gen is not None:
            gen.con.close()

    # -- writing -------------------------------------------------------------

    @contextlib.contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with write_database(self.path) as con:
            yield con


class _Generation:
    """One opened version of the database file, with its layer metadata."""

    def __init__(self, path: str, key: tuple[int, int]):
        self.key = key
        # One thread per query: a server runs many small queries at once, and
        # fanning each out over every core costs more than it gains.
        self.con = duckdb.connect(":memory:", config=INSERTION_ORDER)
        self.con.execute(f"ATTACH {_literal(path)} AS db (READ_ONLY)")
        self.con.execute("USE db")
        self._layers: dict[str, LayerInfo] | None = None
        self._indexes: dict[str, PointIndex] = {}
        self._lock = threading.Lock()

    def layers(self) -> dict[str, LayerInfo]:
        if self._layers is None:
            with self._lock:
                if self._layers is None:
                    cur = self.con.cursor()
                    cur.execute("USE db")
                    self._layers = read_layers(cur)
        return self._layers

    def index(self, info: LayerInfo) -> PointIndex:
        """The layer's points in memory, read on first use."""
        index = self._indexes.get(info.name)
        if index is None:
            with self._lock:
                index = self._indexes.get(info.name)
                if index is None:
                    index = self._indexes[info.name] = self._build_index(info)
        return index

    def _build_index(self, info: LayerInfo) -> PointIndex:
        table = quote(table_name(info.name))

        def read_column(name: str) -> np.ndarray:
            cur = self.con.cursor()
            cur.execute("USE db")
            # Checked names only: id, lon, lat or a field of the layer.
            column = name if name in ("id", "lon", "lat") else info.field(name).name
            return cur.execute(f"SELECT {quote(column)} AS v FROM {table} ORDER BY _ord").fetchnumpy()["v"]

        return PointIndex(read_column("lon"), read_column("lat"), read_column)


def read_layers(con) -> dict[str, LayerInfo]:
    exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = '_layers' "
                         "AND database_name = current_database()").fetchone()[0]
    if not exists:
        return {}
    rows = con.execute("SELECT name, kind, count, minlon, minlat, maxlon, maxlat, fields, version, "
                       "source, places FROM _layers ORDER BY name").fetchall()
    out = {}
    for name, kind, count, x0, y0, x1, y1, fields, version, source, places in rows:
        extent = None if x0 is None else [x0, y0, x1, y1]
        out[name] = LayerInfo(name=name, kind=kind, count=count, extent=extent,
                              fields=[FieldInfo(**f) for f in orjson.loads(fields)],
                              version=version, source=source or "", places=places)
    return out


@contextlib.contextmanager
def write_database(path: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection to a private copy of the database, moved into
    place when the block succeeds and thrown away when it fails."""
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    with open(path + ".lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(f"another citystack command is writing {path}; try again when it has finished")
        fd, tmp = tempfile.mkstemp(prefix=".citystack-", suffix=".duckdb", dir=folder)
        os.close(fd)
        os.unlink(tmp)
        try:
            if os.path.exists(path):
                shutil.copyfile(path, tmp)
            # Small row groups: a bbox's zone-map pruning then skips all but a few thousand rows.
            con = duckdb.connect(":memory:")
            con.execute(f"ATTACH {_literal(tmp)} AS db (ROW_GROUP_SIZE {ROW_GROUP_SIZE})")
            con.execute("USE db")
            try:
                con.execute(META_DDL)
                con.execute("BEGIN")
                yield con
                con.execute("COMMIT")
                con.execute("CHECKPOINT db")
            except BaseException:
                with contextlib.suppress(Exception):
                    con.execute("ROLLBACK")
                raise
            finally:
                con.close()
            os.replace(tmp, path)
        finally:
            for leftover in (tmp, tmp + ".wal"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(leftover)


def publish_layer(con, name: str, kind: str, select_sql: str, params: Sequence = (),
                  source: str = "", places: str | None = None) -> LayerInfo:
    """Create (or replace) a layer from a query with columns id, lon, lat, props.

    Rows are stored in Morton order of their position; field statistics are
    computed once here and kept in ``_layers``.
    """
    table = table_name(name)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _stage AS {select_sql}", list(params))
    x0, y0, x1, y1, n = con.execute(
        "SELECT min(lon), min(lat), max(lon), max(lat), count(*) FROM _stage").fetchone()
    if not n:
        raise StoreError(f"layer {name!r} would be empty: no rows with valid coordinates")
    sx = 65535.0 / ((x1 - x0) or 1.0)
    sy = 65535.0 / ((y1 - y0) or 1.0)
    qx = f"CAST(floor((lon - {float(x0)!r}) * {sx!r}) AS UBIGINT)"
    qy = f"CAST(floor((lat - {float(y0)!r}) * {sy!r}) AS UBIGINT)"
    key = f"({_spread(qx)}) | (({_spread(qy)}) << 1)"
    con.execute(f"DROP TABLE IF EXISTS {quote(table)}")
    con.execute(f"CREATE TABLE {quote(table)} AS SELECT row_number() OVER (ORDER BY {key}, id) AS _ord, "
                f"* FROM _stage ORDER BY _ord")
    con.execute("DROP TABLE _stage")
    fields = describe_fields(con, table)
    version = (con.execute("SELECT coalesce(max(version), 0) + 1 FROM _layers").fetchone()[0])
    con.execute("DELETE FROM _layers WHERE name = ?", [name])
    con.execute("INSERT INTO _layers (name, kind, count, minlon, minlat, maxlon, maxlat, fields, version, "
                "source, places) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [name, kind, n, x0, y0, x1, y1,
                 orjson.dumps([f.__dict__ for f in fields]).decode(), version, source, places])
    return LayerInfo(name=name, kind=kind, count=n, extent=[x0, y0, x1, y1], fields=fields,
                     version=version, source=source, places=places)


def describe_fields(con, table: str) -> list[FieldInfo]:
    cols = con.execute("SELECT column_name, data_type FROM information_schema.columns "
                       "WHERE table_name = ? AND table_catalog = current_database() "
                       "ORDER BY ordinal_position", [table]).fetchall()
    fields = []
    for name, dtype in cols:
        if name in ("_ord", "id", "lon", "lat"):
            continue
        col = quote(name)
        if dtype.split("(")[0] in NUMERIC_TYPES:
            lo, hi = con.execute(f"SELECT min({col}), max({col}) FROM {quote(table)}").fetchone()
            fields.append(FieldInfo(name, NUMERIC, _num(lo), _num(hi)))
        else:
            top = con.execute(f"SELECT CAST({col} AS VARCHAR) AS v, count(*) AS n FROM {quote(table)} "
                              f"WHERE {col} IS NOT NULL GROUP BY v ORDER BY n DESC, v LIMIT 10").fetchall()
            fields.append(FieldInfo(name, TEXT, top=[[v, n] for v, n in top]))
    return fields


def _spread(expr: str) -> str:
    """Interleave the 16 low bits of an integer expression with zeros."""
    for shift, mask in ((8, 0x00FF00FF), (4, 0x0F0F0F0F), (2, 0x33333333), (1, 0x55555555)):
        expr = f"((({expr}) | (({expr}) << {shift})) & {mask})"
    return expr


def _bbox_only(view: View) -> bool:
    return view.bbox is not None and not view.filters and view.days is None and view.hours is None


def _num(v):
    return None if v is None else float(v)


def _thread_local():
    """A cursor holder per operating-system thread, also under gevent, whose patched
    ``threading.local`` is per greenlet, that is per request: each would open a
    cursor (measured: 1.5 to 3 ms more a query). The greenlets of one thread can
    share its cursor because a cursor is only ever used by :func:`_run`, which
    executes and fetches in one go, with no switch to another greenlet between."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        return monkey.get_original("_thread", "_local")()
    return threading.local()


def _run(cur, sql: str, params: Sequence) -> dict[str, np.ndarray]:
    return _plain(cur.execute(sql, list(params)).fetchnumpy())


def _plain(cols: dict) -> dict[str, np.ndarray]:
    """Masked arrays (columns with NULLs) become NaN floats or object arrays with None."""
    out = {}
    for k, v in cols.items():
        if isinstance(v, np.ma.MaskedArray):
            if v.dtype.kind in "iuf":
                v = v.astype(float).filled(np.nan)
            else:
                mask = np.ma.getmaskarray(v)
                v = v.data.astype(object)  # filled(None) would fill with numpy's default "?"
                v[mask] = None
        out[k] = v
    return out


def _file_key(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise StoreError(f"the database {path} has gone away") from None
    return st.st_ino, st.st_mtime_ns


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
