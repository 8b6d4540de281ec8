"""Read a CSV, GeoJSON or Parquet file into a DuckDB temp table ``raw``.

DuckDB parses all three formats natively and fast. Column names are made
into plain identifiers (lower case, ``_`` for anything else), so that every
name a layer ends up with can be checked against its schema.
"""

from __future__ import annotations

import os
import re

FORMATS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".geojson": "geojson", ".json": "geojson",
           ".parquet": "parquet", ".pq": "parquet"}
DELIMITERS = (",", ";", "\t", "|")


class ReadError(Exception):
    """The file cannot be read as the format it claims; the message says why."""


def detect_format(path: str) -> str:
    """The file's format, after checks that catch the common wrong inputs."""
    if not os.path.exists(path):
        raise ReadError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ReadError(f"{path}: is a folder, not a file")
    if os.path.getsize(path) == 0:
        raise ReadError(f"{path}: the file is empty")
    with open(path, "rb") as fh:
        head = fh.read(65536)
    if head.startswith(b"PAR1"):
        return "parquet"
    fmt = FORMATS.get(os.path.splitext(path)[1].lower())
    if b"\x00" in head or _mostly_binary(head):
        raise ReadError(f"{path}: looks like a binary file, not UTF-8 CSV or GeoJSON text")
    if fmt is None:
        fmt = "geojson" if head.lstrip().startswith(b"{") else "csv"
    if fmt == "parquet":
        raise ReadError(f"{path}: not a Parquet file (no PAR1 header)")
    if not head.strip():
        raise ReadError(f"{path}: the file holds only white space")
    return fmt


def stage(con, path: str, fmt: str) -> list[tuple[str, str]]:
    """Create TEMP TABLE raw (``_row`` and the file's columns); return the (column, type) pairs."""
    reader = {"csv": _csv_sql, "geojson": _geojson_sql, "parquet": _parquet_sql}[fmt]
    sql, params = reader(path)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE _read AS {sql}", params)
    except Exception as exc:  # duckdb raises several error classes for bad input
        raise ReadError(_explain(path, fmt, exc)) from None
    cols = [(row[0], row[1]) for row in con.execute("DESCRIBE _read").fetchall()]
    names = _identifiers([c for c, _ in cols])
    select = ", ".join(f'"{orig.replace(chr(34), chr(34) * 2)}" AS "{new}"' for (orig, _), new in zip(cols, names))
    # _row: the record's position in the file (0 = first data row), for error reports and ids.
    con.execute(f"CREATE OR REPLACE TEMP TABLE raw AS SELECT row_number() OVER () - 1 AS _row, {select} FROM _read")
    con.execute("DROP TABLE _read")
    return [(new, dtype) for new, (_, dtype) in zip(names, cols)]


def _csv_sql(path: str):
    with open(path, "rb") as fh:
        first = fh.readline().decode("utf-8", "replace")
    delim = max(DELIMITERS, key=first.count)
    if first.count(delim) == 0:
        raise ReadError(f"{path}: the first line has no delimiter ({', '.join(map(repr, DELIMITERS))}); "
                        "is it a CSV file with a header row?")
    return ("SELECT * FROM read_csv(?, header = true, delim = ?, quote = '\"', escape = '\"', "
            "strict_mode = true, sample_size = -1)", [path, delim])


def _geojson_sql(path: str):
    # DuckDB reads a FeatureCollection as one row per feature, with a GEOMETRY column.
    geo = "st_asgeojson(geometry)"
    return (f"SELECT json_extract_string({geo}, '$.type') AS geometry_type, "
            f"json_extract_string({geo}, '$.coordinates[0]') AS longitude, "
            f"json_extract_string({geo}, '$.coordinates[1]') AS latitude, * EXCLUDE (geometry) "
            "FROM read_json(?, format = 'auto', maximum_object_size = 1073741824)", [path])


def _parquet_sql(path: str):
    return "SELECT * FROM read_parquet(?)", [path]


def _explain(path: str, fmt: str, exc: Exception) -> str:
    text = str(exc)
    first = text.split("\n", 1)[0]
    if fmt == "csv":
        hint = ("rows must have as many fields as the header and quotes must be closed; "
                "a file cut short (truncated) fails here")
        line = re.search(r"[Ll]ine:? ?(\d+)", text)
        where = f" near line {line.group(1)}" if line else ""
        return f"{path}: not a readable CSV file{where}: {hint} ({first})"
    if fmt == "geojson":
        return (f"{path}: not a GeoJSON FeatureCollection of points "
                f"(expected {{\"type\": \"FeatureCollection\", \"features\": [...]}}): {first}")
    return f"{path}: could not read as Parquet: {first}"


def _identifiers(names: list[str]) -> list[str]:
    out: list[str] = []
    for i, name in enumerate(names):
        ident = re.sub(r"[^a-z0-9]+", "_", str(name).strip().lower()).strip("_") or f"column_{i + 1}"
        if ident[0].isdigit():
            ident = "c_" + ident
        base, n = ident, 2
        while ident in out:
            ident, n = f"{base}_{n}", n + 1
        out.append(ident)
    return out


def _mostly_binary(head: bytes) -> bool:
    """Not UTF-8 text (binary data, or text in another encoding)."""
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start < len(head) - 4  # a character cut by the sample's end is fine
    return False
