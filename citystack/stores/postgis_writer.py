"""Writing to PostGIS: layers built in DuckDB, copied over in one transaction.

A write holds a session advisory lock for its whole length (writes take
turns: a second waits for the first to end; the layers it finds in the
database then stay as they are until it has landed), builds its
layers in an in-memory DuckDB (stores/staging.py, the same code as for a
DuckDB file) and, when the block succeeds, lands them all in one PostgreSQL
transaction. Each layer goes into a new table: DuckDB writes it as CSV into
a pipe and PostgreSQL's COPY reads the other end, so nothing is written to
disk on the way (a killed load leaves no file anywhere, and PostgreSQL rolls
back its half-filled tables when the connection drops). The new table gets
``geom`` (generated from lon/lat), its indexes and statistics while readers
go on using the old one; then the old table is dropped, the new one renamed,
``citystack_layers`` updated and the version bumped, still in the same
transaction. Readers see the old layer or the new one, never a mix, and a
failure anywhere leaves the database exactly as it was.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Callable, Iterator

import duckdb
import orjson
import psycopg

from ..events.pgnotify import VERSION_CHANNEL, _first_line
from .base import StoreError, StoreUnavailable, quote, read_layer_meta, table_name
from .postgis import CONNECT, LAYER_COLUMNS
from .staging import META_DDL, Staging, prior_layers, staged_layers

TEXT_C = 'text COLLATE "C"'  # bytewise, as DuckDB compares text, whatever the database's locale
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
WRITE_LOCK = 0x63697479  # session advisory lock key: one write at a time
CHUNK = 1 << 20
# PostgreSQL's types back to DuckDB's, for a layer read back (appends). numeric held
# unsigned and huge integers and decimals; they come back as doubles.
DUCKDB_TYPES = {"boolean": "BOOLEAN", "smallint": "SMALLINT", "integer": "INTEGER", "bigint": "BIGINT",
                "numeric": "DOUBLE", "real": "FLOAT", "double precision": "DOUBLE", "date": "DATE",
                "time without time zone": "TIME", "timestamp without time zone": "TIMESTAMP",
                "timestamp with time zone": "TIMESTAMPTZ", "text": "VARCHAR"}


@contextlib.contextmanager
def write_database(url: str) -> Iterator[Staging]:
    """A Staging on an in-memory DuckDB; when the block succeeds, every layer it built
    lands in PostGIS in one transaction, and when anything fails (the file, the copy,
    the connection) the database is left exactly as it was."""
    with _pg_errors():
        pg = psycopg.connect(url, autocommit=True, **CONNECT)
    try:
        with _pg_errors():
            pg.execute("SELECT pg_advisory_lock(%s)", [WRITE_LOCK])
            listed = pg.execute("SELECT to_regclass('citystack_layers') IS NOT NULL").fetchone()[0]
            existing = prior_layers(pg.execute("SELECT name, kind, count, places, loaded_at FROM citystack_layers")
                                    .fetchall() if listed else [])
        con = duckdb.connect(":memory:")
        try:
            con.execute(META_DDL)
            staging = Staging(con, existing)
            staging.fetch = lambda layer, into: fetch_layer(pg, con, layer, into)
            yield staging
            with _pg_errors():
                _publish(pg, con, staged_layers(con))
        finally:
            con.close()
    finally:
        pg.close()  # and with it the advisory lock


@contextlib.contextmanager
def _pg_errors():
    try:
        yield
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(f"database unavailable: {_first_line(exc)}") from None
    except psycopg.Error as exc:
        raise StoreError(f"could not write to PostgreSQL: {_first_line(exc)}") from None


def _publish(pg: psycopg.Connection, con, layers: list[tuple]) -> None:
    with pg.transaction():
        pg.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        pg.execute(META_TABLES)
        if not layers:
            return
        base = pg.execute("SELECT coalesce(max(version), 0) FROM citystack_layers").fetchone()[0]
        for row in layers:
            _fill(pg, con, row[0], row[1])
        for row in layers:
            _swap(pg, row, base)
        version = pg.execute("UPDATE citystack_meta SET version = version + 1 RETURNING version").fetchone()[0]
        pg.execute("SELECT pg_notify(%s, %s)", [VERSION_CHANNEL, str(version)])


def _fill(pg: psycopg.Connection, con, layer: str, kind: str = "points") -> None:
    """Copy a staged layer table into a new table ``layer_NAME#new``, in _ord order, and index it."""
    table = table_name(layer)
    cols = con.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
                       "AND table_catalog = current_database() ORDER BY ordinal_position", [table]).fetchall()
    if not cols:
        raise StoreError(f"layer {layer!r} is listed but its table is missing")
    typed, select = [], []
    for name, dtype in cols:
        pg_type = PG_TYPES.get(dtype, PG_TYPES.get(dtype.split("(")[0]))
        if dtype == "BLOB":  # an areas layer's wkb: bytea's hex input form
            pg_type, select_expr = "bytea", f"'\\x' || hex({quote(name)})"
        else:
            select_expr = quote(name) if pg_type else f"CAST({quote(name)} AS VARCHAR)"
        select.append(select_expr)
        typed.append((name, pg_type or TEXT_C))
    new = quote(f"{table}#new")
    pg.execute(f"DROP TABLE IF EXISTS {new}")
    geom = ("geom geometry(MultiPolygon, 4326) GENERATED ALWAYS AS (ST_Multi(ST_GeomFromWKB(wkb, 4326))) STORED"
            if kind == "areas" else
            "geom geometry(Point, 4326) GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED")
    pg.execute(f"CREATE TABLE {new} ({', '.join(f'{quote(n)} {t}' for n, t in typed)}, {geom})")
    names = ", ".join(quote(n) for n, _ in typed)
    with pg.cursor().copy(f"COPY {new} ({names}) FROM STDIN (FORMAT csv)") as copy:
        stream_csv(con, f"SELECT {', '.join(select)} FROM {quote(table)} ORDER BY _ord", copy.write)
    pg.execute(f"CREATE UNIQUE INDEX {quote(table + '#new#ord')} ON {new} (_ord)")
    pg.execute(f"CREATE INDEX {quote(table + '#new#geom')} ON {new} USING gist (geom)")
    pg.execute(f"ANALYZE {new}")


def stream_csv(con, select_sql: str, write: Callable[[bytes], object]) -> None:
    """DuckDB's CSV of a query (no header), handed to `write` in chunks through a pipe:
    DuckDB's COPY writes one end in a thread, this thread reads the other. If `write`
    fails, closing the read end stops the COPY (a broken pipe) before the error goes on."""
    read_fd, write_fd = os.pipe()
    failed: list[BaseException] = []

    def produce():
        try:
            con.execute(f"COPY ({select_sql}) TO '/dev/fd/{write_fd}' (FORMAT csv, HEADER false)")
        except BaseException as exc:  # noqa: BLE001 - handed to the reading thread
            failed.append(exc)
        finally:
            os.close(write_fd)  # the reader's end of file

    producer = threading.Thread(target=produce, name="citystack-copy", daemon=True)
    producer.start()
    try:
        with open(read_fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(CHUNK):
                write(chunk)
    finally:
        producer.join()
    if failed:
        raise StoreError(f"could not export a layer to PostgreSQL: {_first_line(failed[0])}")


def fetch_layer(pg: psycopg.Connection, con, layer: str, into: str) -> tuple[dict, str]:
    """Copy a PostGIS layer's rows (id, lon, lat and its fields) into DuckDB table `into`,
    as CSV through a pipe (PostgreSQL's COPY writes, DuckDB reads the other end in a
    thread); return the layer's metadata (read_layer_meta) and source."""
    table = table_name(layer)
    with _pg_errors():
        found = pg.execute("SELECT fields, source FROM citystack_layers WHERE name = %s", [layer]).fetchone()
        if found is None:
            raise StoreError(f"layer {layer!r} is not in the database")
        meta = read_layer_meta(orjson.loads(found[0]))
        pg_types = dict(pg.execute("SELECT column_name, data_type FROM information_schema.columns "
                                   "WHERE table_schema = current_schema() AND table_name = %s", [table]).fetchall())
    wanted = ["id", "lon", "lat"] + [f.column for f in meta["fields"]]
    missing = [c for c in wanted if c not in pg_types]
    if missing:
        raise StoreError(f"layer {layer!r}: its table has no column {', '.join(missing)}")
    spec = "{" + ", ".join(f"{_sql_text(c)}: {_sql_text(DUCKDB_TYPES.get(pg_types[c], 'VARCHAR'))}"
                           for c in wanted) + "}"
    read_fd, write_fd = os.pipe()
    failed: list[BaseException] = []

    def consume():
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {quote(into)} AS SELECT * FROM read_csv("
                        f"'/dev/fd/{read_fd}', columns = {spec}, header = false, auto_detect = false, "
                        "quote = '\"', escape = '\"', allow_quoted_nulls = false)")
        except BaseException as exc:  # noqa: BLE001 - handed to the writing thread
            failed.append(exc)
        finally:
            os.close(read_fd)

    consumer = threading.Thread(target=consume, name="citystack-fetch", daemon=True)
    consumer.start()
    try:
        with open(write_fd, "wb", buffering=0) as pipe, _pg_errors():
            cols = ", ".join(quote(c) for c in wanted)
            with pg.cursor().copy(f"COPY (SELECT {cols} FROM {quote(table)} ORDER BY _ord) TO STDOUT "
                                  "(FORMAT csv)") as copy:
                for chunk in copy:
                    pipe.write(chunk)
    except BrokenPipeError:
        pass  # the reader stopped: its error says why
    finally:
        consumer.join()
    if failed:
        raise StoreError(f"could not read layer {layer!r} back from PostgreSQL: {_first_line(failed[0])}")
    return meta, found[1]


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


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
