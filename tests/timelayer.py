"""Layers of the shape the stores contract describes (typed fields, categories, a time
field with ``_dow``/``_hour``), published through the store's own writer, for the
tests (and bench) of what reads them: linked-chart histograms, export.

The loaders give such layers once the issue-9 ingest lands; until then (and so that
these tests do not depend on type detection) this builds them from a CSV with the
types stated: ``types`` maps a column to ``number``, ``integer``, ``text``,
``category``, ``bool``, ``time`` or ``date``.
"""

from __future__ import annotations

import orjson

from citystack.stores import open_writer
from citystack.stores.base import (BOOL, DATE, NUMERIC, TEXT, TIME, FieldInfo, TimeSummary, layer_meta, quote,
                                   table_name)

SQL_TYPES = {"number": "DOUBLE", "integer": "BIGINT", "text": "VARCHAR", "category": "VARCHAR",
             "bool": "BOOLEAN", "time": "TIMESTAMP", "date": "DATE"}
FIELD_TYPES = {"number": NUMERIC, "integer": NUMERIC, "text": TEXT, "category": TEXT, "bool": BOOL,
               "time": TIME, "date": DATE}


def publish(db, name: str, csv_path, lon: str, lat: str, types: dict[str, str], time: str | None = None,
            id_column: str | None = None) -> None:
    """Publish the layer `name` from a CSV: points at (`lon`, `lat`), the typed columns of
    `types` (their names used as they are: lower-case identifiers), `time` as the time field."""
    with open_writer(str(db)) as staging:
        con = staging.con
        con.execute("CREATE OR REPLACE TEMP TABLE _raw AS SELECT * FROM read_csv(?, header = true, "
                    "all_varchar = true, quote = '\"', escape = '\"')", [str(csv_path)])
        select = [f"CAST({quote(id_column)} AS BIGINT) AS id" if id_column else "row_number() OVER () AS id",
                  f"CAST({quote(lon)} AS DOUBLE) AS lon", f"CAST({quote(lat)} AS DOUBLE) AS lat"]
        for col, kind in types.items():
            select.append(f"TRY_CAST(nullif({quote(col)}, '') AS {SQL_TYPES[kind]}) AS {quote(col)}")
        clock = ""
        if time:
            clock = (f", CAST(isodow({quote(time)}) - 1 AS SMALLINT) AS _dow, "
                     f"CAST(hour({quote(time)}) AS SMALLINT) AS _hour")
        sql = (f"SELECT *{clock} FROM (SELECT {', '.join(select)} FROM _raw) AS s "
               "WHERE lon IS NOT NULL AND lat IS NOT NULL")
        staging.publish(name, "points", sql)
        con.execute("DROP TABLE _raw")
        table = quote(table_name(name))
        fields = [_describe(con, table, col, kind) for col, kind in types.items()]
        summary = _time_summary(con, table, time) if time else None
        colour = next((c for c, k in types.items() if k in ("number", "integer")), None)
        meta = layer_meta(fields, summary, None, colour)
        con.execute("UPDATE _layers SET fields = ? WHERE name = ?", [orjson.dumps(meta).decode(), name])


def _describe(con, table: str, col: str, kind: str) -> FieldInfo:
    q = quote(col)
    f = FieldInfo(col, FIELD_TYPES[kind], column=col, integer=kind == "integer")
    if kind in ("number", "integer", "time", "date"):
        lo, hi = con.execute(f"SELECT min({q}), max({q}) FROM {table}").fetchone()
        if kind in ("time", "date"):
            lo, hi = (None if v is None else v.isoformat() for v in (lo, hi))
        else:
            lo, hi = (None if v is None else float(v) for v in (lo, hi))
        f.min, f.max = lo, hi
    else:
        rows = con.execute(f"SELECT {q} AS v, count(*) AS n FROM {table} WHERE {q} IS NOT NULL "
                           "GROUP BY v ORDER BY n DESC, v").fetchall()
        f.top = [[v, n] for v, n in rows[:100]]
        f.distinct = len(rows)
        f.others = max(0, len(rows) - 100)
        f.category = kind in ("category", "bool")
    return f


def _time_summary(con, table: str, col: str) -> TimeSummary:
    q = quote(col)
    lo, hi = con.execute(f"SELECT min({q}), max({q}) FROM {table}").fetchone()
    hours = dict(con.execute(f"SELECT _hour, count(*) FROM {table} WHERE _hour IS NOT NULL GROUP BY 1").fetchall())
    days = dict(con.execute(f"SELECT _dow, count(*) FROM {table} WHERE _dow IS NOT NULL GROUP BY 1").fetchall())
    span = (hi - lo).days if lo is not None else 0
    bucket = "day" if span < 400 else "month"
    dates = con.execute(f"SELECT CAST(date_trunc('{bucket}', {q}) AS DATE) AS d, count(*) FROM {table} "
                        f"WHERE {q} IS NOT NULL GROUP BY 1 ORDER BY 1").fetchall()
    return TimeSummary(col, lo.isoformat() if lo else None, hi.isoformat() if hi else None,
                       [hours.get(h, 0) for h in range(24)], [days.get(d, 0) for d in range(7)], bucket,
                       [[d.isoformat(), n] for d, n in dates])


def load_divvy(db, path, cli) -> None:
    """The Divvy trips with started_at as the time field: through the CLI (`cli`, conftest's
    citystack) when it loads time fields (issue 9), else built to the same shape here."""
    from citystack.stores import open_store

    proc = cli("load", path, "--layer", "divvy", "--time", "started_at", "--db", db, check=False)
    if proc.returncode == 0:
        store = open_store(str(db))
        try:
            if store.layer("divvy").time_field is not None:
                return
        finally:
            store.close()
    publish(db, "divvy", path, "start_lng", "start_lat",
            {"rideable_type": "category", "started_at": "time", "member_casual": "category"}, time="started_at")
