"""The embedded store: one DuckDB file.

Readers attach the file read-only. A load never touches the file readers
have open: it builds a copy and moves it into place with an atomic rename
(stores/duckdb_writer.py). Readers notice the new file (its inode changes)
at their next query and open it: a load lands while the server runs, whole
or not at all. Each opened file is a :class:`_Generation`; the one a new
file replaces is closed (its connection, its memory index, its hold on the
deleted file) as soon as no query is using it any more.

Layer tables are sorted along a Morton curve at load (stores/staging.py), so
a small bbox touches few row groups: DuckDB's min/max zone maps skip the
rest. Layers up to `memory_rows` points are also indexed in memory
(pointindex.py), and the features of a plain bbox view are read from there,
skipping SQL's fixed cost per query. The SQL itself is in stores/sql.py.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import Iterator, Sequence

import duckdb
import numpy as np
import orjson

from .base import LayerInfo, StoreError, UnknownLayer, View, quote, read_layer_meta, table_name
from .chartindex import ChartIndex
from .pointindex import PointIndex
from .sql import SQLStore, feature_columns, selected_fields

# Layer tables are written in _ord (Morton) order. With insertion order kept
# (DuckDB's default, stated here so it cannot change under us), a query without
# ORDER BY returns rows in that order: stable pages without a sort (a third of
# a small window's query time).
INSERTION_ORDER = {"threads": 1, "preserve_insertion_order": True}


class DuckDBStore(SQLStore):
    kind = "duckdb"
    MARK = "?"
    ORDER = ""  # see INSERTION_ORDER
    SAMPLE_KEY = "hash(_ord + ?)"

    def __init__(self, path: str, memory_rows: int = 0):
        self.path = os.path.abspath(path)
        self.memory_rows = memory_rows
        if not os.path.exists(self.path):
            raise StoreError(f"no database at {path}: create one with `citystack init --sample --db {path}` "
                             "or load data with `citystack load FILE --layer NAME`")
        self._lock = threading.Lock()
        self._gen: _Generation | None = None

    # -- generations ---------------------------------------------------------

    @contextlib.contextmanager
    def _use(self) -> Iterator["_Generation"]:
        """The generation of the file now in place, held for the block: it is not
        closed under the block, even if a load replaces the file meanwhile."""
        key = _file_key(self.path)
        retired = None
        with self._lock:
            gen = self._gen
            if gen is None or gen.key != key:
                key = _file_key(self.path)  # again: another thread may have opened a newer file meanwhile
                if gen is None or gen.key != key:
                    retired, gen = gen, _Generation(self.path, key)
                    self._gen = gen
            gen.users += 1
        if retired is not None:
            self._retire(retired)
        try:
            yield gen
        finally:
            with self._lock:
                gen.users -= 1
                done = gen.retired and gen.users == 0
            if done:
                gen.close()

    def _retire(self, gen: "_Generation") -> None:
        """No new query will use `gen`; close it now if none is using it, else when the last ends."""
        with self._lock:
            gen.retired = True
            done = gen.users == 0
        if done:
            gen.close()

    @contextlib.contextmanager
    def _snapshot(self, layer: str):
        with self._use() as gen:
            yield gen.layer(layer), gen.run

    # -- metadata ------------------------------------------------------------

    def layers(self) -> list[LayerInfo]:
        with self._use() as gen:
            return list(gen.layers().values())

    def layer(self, name: str) -> LayerInfo:
        with self._use() as gen:
            return gen.layer(name)

    def data_version(self) -> str:
        with self._use() as gen:
            ino, mtime = gen.key
        return f"{ino:x}.{mtime:x}"

    # -- queries (the rest are SQLStore's) -----------------------------------

    def features(self, layer, view, properties, limit, offset=0):
        with self._use() as gen:
            info = gen.layer(layer)
            if info.count <= self.memory_rows and _bbox_only(view):
                fields = selected_fields(info, properties)
                index = gen.index(info)
                rows = index.rows(view.bbox)
                if rows is not None:  # else a large window: SQL's streaming LIMIT is quicker
                    taken = index.take(rows[int(offset):int(offset) + int(limit)],
                                       ["id", "lon", "lat"] + [f.column for f in fields])
                    return feature_columns(_plain(taken), fields)
            return self._features(info, gen.run, view, properties, limit, offset)

    def histograms(self, layer, view, specs):
        """Layers held in memory (up to memory_rows points) count their charts from
        columns kept in memory (stores/chartindex.py); others in SQL."""
        from .histograms import Chart, charts_for

        with self._use() as gen:
            info = gen.layer(layer)
            if info.count <= self.memory_rows:
                self._where(info, view)  # the same checks of the view as the SQL path
                charts: list = []
                for spec in specs:
                    charts += [spec] if isinstance(spec, Chart) else charts_for(info, spec)
                return gen.charts(info).histograms(view, charts)
        return super().histograms(layer, view, specs)

    def features_arrow(self, layer, view, properties, limit, offset=0):
        """The features answer as DuckDB's own Arrow table (columns id, lon, lat, then the
        fields by their columns; (table, fields)), for the Arrow transport: no Python object
        per value. None where the memory index answers (small windows), or before a load."""
        with self._use() as gen:
            info = gen.layer(layer)
            if info.count <= self.memory_rows and _bbox_only(view) and gen.index(info).rows(view.bbox) is not None:
                return None
            sql, values, fields = self._features_sql(info, view, properties, limit, offset)
            return gen.cursor().sql(sql, params=values).to_arrow_table(), fields

    def sql(self, sql: str, params: Sequence = ()) -> dict[str, np.ndarray]:
        """A read-only query for store-specific code (analyses with their own SQL)."""
        with self._use() as gen:
            return gen.run(sql, params)

    def close(self):
        """Let go of the file: the connection, and every thread's cursor on it (once the
        queries running now have ended). A later query opens the file again."""
        with self._lock:
            gen, self._gen = self._gen, None
        if gen is not None:
            self._retire(gen)


class _Generation:
    """One opened version of the database file: a connection (and a cursor per thread),
    its layer metadata and memory indexes. `users` and `retired` belong to the store's lock."""

    def __init__(self, path: str, key: tuple[int, int]):
        self.key = key
        self.users = 0
        self.retired = False
        # One thread per query: a server runs many small queries at once, and
        # fanning each out over every core costs more than it gains.
        self.con = duckdb.connect(":memory:", config=INSERTION_ORDER)
        self.con.execute(f"ATTACH {_literal(path)} AS db (READ_ONLY)")
        self.con.execute("USE db")
        self._local = _thread_local()
        self._layers: dict[str, LayerInfo] | None = None
        self._indexes: dict[str, PointIndex] = {}
        self._charts: dict[str, ChartIndex] = {}
        self._lock = threading.Lock()
        self._closed = False

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor on the file."""
        cur = getattr(self._local, "cur", None)
        if cur is None:
            cur = self._local.cur = self.con.cursor()
            cur.execute("USE db")
        return cur

    def run(self, sql: str, params: Sequence = ()) -> dict[str, np.ndarray]:
        return _plain(self.cursor().execute(sql, list(params)).fetchnumpy())

    def layers(self) -> dict[str, LayerInfo]:
        if self._layers is None:
            with self._lock:
                if self._layers is None:
                    self._layers = read_layers(self.cursor())
        return self._layers

    def layer(self, name: str) -> LayerInfo:
        layers = self.layers()
        if name not in layers:
            raise UnknownLayer(name, list(layers))
        return layers[name]

    def index(self, info: LayerInfo) -> PointIndex:
        """The layer's points in memory, read on first use."""
        index = self._indexes.get(info.name)
        if index is None:
            with self._lock:
                index = self._indexes.get(info.name)
                if index is None:
                    index = self._indexes[info.name] = self._build_index(info)
        return index

    def charts(self, info: LayerInfo) -> ChartIndex:
        """The layer's chart columns in memory (each read on first use)."""
        with self._lock:
            index = self._charts.get(info.name)
            if index is None:
                index = self._charts[info.name] = ChartIndex(info, self.run)
        return index

    def _build_index(self, info: LayerInfo) -> PointIndex:
        table = quote(table_name(info.name))

        def read_column(name: str) -> np.ndarray:
            # Checked names only: id, lon, lat or a column of one of the layer's fields.
            if name not in ("id", "lon", "lat") and name not in {f.column for f in info.fields}:
                raise StoreError(f"no column {name!r} in layer {info.name!r}")
            column = name
            return self.cursor().execute(f"SELECT {quote(column)} AS v FROM {table} ORDER BY _ord").fetchnumpy()["v"]

        return PointIndex(read_column("lon"), read_column("lat"), read_column)

    def close(self) -> None:
        """Close the connection (DuckDB closes every cursor made from it, and lets go of
        the file) and drop the indexes. Only when no query uses this generation."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self.con.close()
            self._indexes, self._layers, self._charts = {}, None, {}


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
        out[name] = LayerInfo(name=name, kind=kind, count=count, extent=extent, version=version,
                              source=source or "", places=places, **read_layer_meta(orjson.loads(fields)))
    return out


def _thread_local():
    """A cursor holder per operating-system thread, also under gevent, whose patched
    ``threading.local`` is per greenlet, that is per request: each would open a
    cursor (measured: 1.5 to 3 ms more a query). The greenlets of one thread can
    share its cursor because a cursor is only used to execute and fetch in one
    go, with no switch to another greenlet between."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        return monkey.get_original("_thread", "_local")()
    return threading.local()


def _bbox_only(view: View) -> bool:
    return (view.bbox is not None and not view.filters and view.days is None and view.hours is None
            and view.start is None and view.end is None)


def _plain(cols: dict) -> dict[str, np.ndarray]:
    """Masked arrays (columns with NULLs) become NaN floats or object arrays with None."""
    out = {}
    for k, v in cols.items():
        if isinstance(v, np.ma.MaskedArray):
            if v.dtype.kind in "iu" and _beyond_float(v):  # floats would lose digits: objects, None
                mask = np.ma.getmaskarray(v)
                v = v.data.astype(object)
                v[mask] = None
            elif v.dtype.kind in "iuf":
                v = v.astype(float).filled(np.nan)
            else:
                mask = np.ma.getmaskarray(v)
                v = v.data.astype(object)  # filled(None) would fill with numpy's default "?"
                v[mask] = None
        out[k] = v
    return out


def _beyond_float(v: np.ma.MaskedArray) -> bool:
    """Integers a float64 cannot hold exactly (beyond 2^53)."""
    data = v.compressed()
    return bool(len(data)) and bool((np.abs(data.astype(np.float64)) > 2.0 ** 53).any())


def _file_key(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise StoreError(f"the database {path} has gone away") from None
    return st.st_ino, st.st_mtime_ns


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
