"""``citystack load FILE... --layer L --append``: add a file's rows to a layer.

Monthly files of one source go into one layer. The new rows must have the
layer's fields (the same names, no more, no fewer) and fit their types: a
column read as another type is cast to the layer's, and the first value that
does not fit stops the load with the column and the line it is on. The whole
layer is then published again from the old rows and the new ones together,
in the same write (stores/staging.publish_layer: sorted along its Morton
curve, statistics and defaults computed over all of it); a failure in any
file leaves the database as it was.

Ids stay unique. A layer whose features are numbered by row (the file had
no unique id column) is renumbered: the appended rows continue after the
highest id. Ids from the file's own id column are kept as they are, and one
the layer holds already is refused (with its line), never renumbered.

The old rows are in the write's DuckDB connection already for a DuckDB file
(or when an earlier file of the same load made the layer); for PostGIS the
writer copies them in (``Staging.fetch``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

from ..stores.base import quote, read_layer_meta, table_name
from ..stores.staging import NUMERIC_TYPES, Prior
from .lines import describe

NEW, PRIOR = "_append_new", "_append_prior"
SQL_TYPE = re.compile(r"^[A-Z][A-Z0-9 ,()]*$")  # a type name as DESCRIBE gives it
SOURCES = 200  # characters of the layer's source list kept


class AppendError(Exception):
    """The file does not fit the layer (raised as the load's IngestError)."""


@dataclass
class Added:
    sql: str  # the whole layer: old rows and new, for publish_layer
    count: int  # rows added
    name_field: str | None  # the layer's, kept
    source: str
    columns: dict  # the new file's column -> the layer's column (the same public name)
    fields: list  # the layer's FieldInfos
    time_name: str | None = None  # the layer's time field (public name), kept

    def renamed(self, hints=None, time=None, ends=None):
        """The layer's public names by column, and what the load would publish for the new
        file alone (field hints, time column, end columns) in the layer's columns (the sql's)."""
        names = {f.column: f.name for f in self.fields}
        hints = {self.columns[c]: h for c, h in (hints or {}).items() if c in self.columns}
        by_name = {f.name: f.column for f in self.fields}
        time = by_name.get(self.time_name) if self.time_name else self.columns.get(time) if time else None
        ends = [self.columns.get(c, c) for c in ends] if ends else None
        return names, hints, time, ends

    def done(self, con) -> None:
        for table in (NEW, PRIOR):
            con.execute(f"DROP TABLE IF EXISTS {table}")


def check_target(existing: dict[str, Prior], layer: str) -> None:
    prior = existing.get(layer)
    if prior is not None and prior.kind != "points":
        raise AppendError(f"layer {layer!r} holds {prior.kind}: --append adds rows to a points layer")


def rows(staging, layer: str, body: str, numbered: bool, path: str, fmt: str,
         names: dict[str, str] | None = None) -> Added | None:
    """The layer with the rows of ``SELECT {body}`` added (`body`: id, lon, lat and field
    columns, FROM raw ...), or None when there is no such layer yet (this file makes it).
    `numbered`: the new ids are row numbers (renumbered); `names`: public names of the
    new columns, where they differ from the columns."""
    con = staging.con
    found = _existing(staging, layer)
    if found is None:
        return None
    table, meta, source = found
    names = names or {}
    con.execute(f"CREATE OR REPLACE TEMP TABLE {NEW} AS SELECT coords._row AS _row, {body}")
    count = con.execute(f"SELECT count(*) FROM {NEW}").fetchone()[0]
    old_types, new_types = _types(con, table), _types(con, NEW)
    fields = meta["fields"]
    new_by_name = {names.get(c, c): c for c in new_types if c not in ("_row", "id", "lon", "lat")}
    missing = [f.name for f in fields if f.name not in new_by_name]
    extra = [n for n in new_by_name if n not in {f.name for f in fields}]
    if missing or extra:
        what = ([f"no column {', '.join(missing)}"] if missing else []) + \
               ([f"column{'s' if len(extra) > 1 else ''} {', '.join(extra)} that the layer does not have"]
                if extra else [])
        raise AppendError(f"{path} does not fit layer {layer}: it has {' and '.join(what)} "
                          f"(the layer's fields: {', '.join(f.name for f in fields)})")
    where = lambda row: describe(fmt, path, [row])[0]  # noqa: E731
    selects = []
    for f in fields:
        new = new_by_name[f.name]
        selects.append(_fit(con, quote(new), old_types[f.column], new_types[new], f.column, f.name, layer,
                            where))
    ident = _ids(con, table, old_types["id"], new_types["id"], numbered, layer, where)
    old_cols = ", ".join(["id", "lon", "lat"] + [quote(f.column) for f in fields])
    new_cols = ", ".join([ident, "lon", "lat"] + selects)
    sql = f"SELECT {old_cols} FROM {quote(table)} UNION ALL SELECT {new_cols} FROM {NEW}"
    sources = ", ".join(s for s in (source, path.rsplit("/", 1)[-1]) if s)
    time = meta.get("time")
    return Added(sql, count, meta.get("name_field"), sources[-SOURCES:],
                 {new_by_name[f.name]: f.column for f in fields}, fields, time.field if time else None)


def _existing(staging, layer: str):
    """(table in con, metadata, source) of the layer as this write has it, or None."""
    con = staging.con
    row = con.execute("SELECT fields, source FROM _layers WHERE name = ?", [layer]).fetchone()
    if row is not None:  # in the DuckDB file, or made by an earlier file of this load
        return table_name(layer), read_layer_meta(orjson.loads(row[0])), row[1] or ""
    if layer in staging.existing and staging.fetch is not None:
        meta, source = staging.fetch(layer, PRIOR)
        return PRIOR, meta, source or ""
    return None


def _types(con, table: str) -> dict[str, str]:
    out = {}
    for name, dtype, *_ in con.execute(f"DESCRIBE {quote(table)}").fetchall():
        if not SQL_TYPE.match(dtype):
            raise AppendError(f"column {name!r} has a type citystack cannot append to ({dtype})")
        out[name] = dtype
    return out


def _numeric(dtype: str) -> bool:
    return dtype.split("(")[0] in NUMERIC_TYPES


def _fit(con, col: str, old: str, new: str, column: str, name: str, layer: str, where) -> str:
    """SQL for new column `col` as the layer's type `old`, after checking every value fits."""
    if old == new:
        return f"{col} AS {quote(column)}"
    cast = f"TRY_CAST({col} AS {old})"
    lost = f"{cast} IS NULL"
    if _numeric(old) and _numeric(new):  # 1.5 into an integer field is not 2
        lost += f" OR CAST({cast} AS {new}) <> {col}"
    bad = con.execute(f"SELECT _row, CAST({col} AS VARCHAR) FROM {NEW} WHERE {col} IS NOT NULL AND ({lost}) "
                      "ORDER BY _row LIMIT 1").fetchone()
    if bad:
        raise AppendError(f"column {name} of layer {layer} holds {_kind(old)}, but {where(bad[0])} of the new "
                          f"file has {bad[1]!r} there ({_kind(new)} in this file)")
    return f"CAST({col} AS {old}) AS {quote(column)}"


def _ids(con, table: str, old: str, new: str, numbered: bool, layer: str, where) -> str:
    """SQL for the new rows' ids: row numbers continue after the layer's highest id; ids
    from the file are kept, cast to the layer's id type, and must be new to the layer."""
    ident = "id"
    if numbered and _numeric(old):
        top = con.execute(f"SELECT coalesce(max(id), 0) FROM {quote(table)}").fetchone()[0]
        ident = f"(id + {int(top)})"
    if old != new or ident != "id":
        bad = con.execute(f"SELECT _row, CAST(id AS VARCHAR) FROM {NEW} WHERE TRY_CAST({ident} AS {old}) IS NULL "
                          "ORDER BY _row LIMIT 1").fetchone()
        if bad:
            raise AppendError(f"the ids of layer {layer} are {_kind(old)}, but {where(bad[0])} of the new file "
                              f"has id {bad[1]!r}")
        ident = f"CAST({ident} AS {old})"
    clash = con.execute(f"SELECT n._row, CAST(n.id AS VARCHAR) FROM (SELECT _row, {ident} AS id FROM {NEW}) AS n "
                        f"JOIN {quote(table)} AS o ON o.id = n.id ORDER BY n._row LIMIT 1").fetchone()
    if clash:
        raise AppendError(f"id {clash[1]} ({where(clash[0])} of the new file) is in layer {layer} already: "
                          "appended rows keep the ids of their file, and ids must stay unique")
    return f"{ident} AS id"


def _kind(dtype: str) -> str:
    base = dtype.split("(")[0]
    if base in NUMERIC_TYPES:
        return "integers" if base in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                                      "USMALLINT", "UINTEGER", "UBIGINT") else "numbers"
    return {"VARCHAR": "text", "BOOLEAN": "true/false values", "DATE": "dates",
            "TIMESTAMP": "times", "TIMESTAMP WITH TIME ZONE": "times"}.get(dtype, dtype.lower())
