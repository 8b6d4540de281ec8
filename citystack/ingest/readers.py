"""Read a CSV, GeoJSON or Parquet file into a DuckDB temp table ``raw``.

DuckDB parses all three formats natively and fast. A column keeps the name
it has in the file as its public name; inside, each gets a store identifier
(:func:`identifiers`): lower case, ``_`` for any run of other characters,
``c_`` before a leading digit, ``_`` after ``id``/``lon``/``lat``, and
``_2``, ``_3``, ... after one already taken (DuckDB matches names without
regard to case, so ``Trunk_Diameter`` and ``trunk_diameter`` are told apart
there as ``trunk_diameter`` and ``trunk_diameter_2``). A header repeated in
a CSV file keeps its name the first time and is ``NAME (2)``, ``NAME (3)``,
... after. CSV columns are read as text: their types are found afterwards
(ingest/types.py). A GeoJSON feature's position comes from its geometry
(``_lon``, ``_lat``, ``_geometry_type``); its properties, ``Longitude`` or
``lat`` included, are ordinary columns.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass, field

FORMATS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".geojson": "geojson", ".json": "geojson",
           ".parquet": "parquet", ".pq": "parquet"}
DELIMITERS = (",", ";", "\t", "|")
RESERVED = ("id", "lon", "lat")
GEOMETRY_COLUMNS = ("_geometry_type", "_lon", "_lat")


@dataclass
class Staged:
    """What :func:`stage` made of a file: the columns of ``raw`` (store identifier ->
    DuckDB type, in file order), each one's public name (the file's), and notes on
    names told apart."""

    columns: dict[str, str]
    public: dict[str, str]
    notes: list[str] = field(default_factory=list)


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


def stage(con, path: str, fmt: str) -> Staged:
    """Create TEMP TABLE raw (``_row``, the file's columns under their identifiers, and for
    GeoJSON ``_geometry_type``, ``_lon``, ``_lat``)."""
    reader = {"csv": _csv_sql, "geojson": _geojson_sql, "parquet": _parquet_sql}[fmt]
    sql, params, header = reader(path)
    if header is not None:
        staged = _csv_direct(con, sql, params, header)
        if staged is not None:
            return staged
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE _read AS {sql}", params)
    except Exception as exc:  # duckdb raises several error classes for bad input
        raise ReadError(_explain(path, fmt, exc)) from None
    cols = [(row[0], row[1]) for row in con.execute("DESCRIBE _read").fetchall()]
    if header is not None and len(header) == len(cols):
        publics = _public_names(header)
    else:
        publics = [c for c, _ in cols if c not in GEOMETRY_COLUMNS]
    kept = [(c, t) for c, t in cols if c not in GEOMETRY_COLUMNS]
    geometry = [c for c, _ in cols if c in GEOMETRY_COLUMNS]
    idents = identifiers(publics)
    select = ", ".join([quote_ident(c) for c in geometry] +
                       [f"{quote_ident(orig)} AS {quote_ident(new)}" for (orig, _), new in zip(kept, idents)])
    # _row: the record's position in the file (0 = first data row), for error reports and ids.
    con.execute(f"CREATE OR REPLACE TEMP TABLE raw AS SELECT row_number() OVER () - 1 AS _row, {select} FROM _read")
    con.execute("DROP TABLE _read")
    staged = Staged(columns={new: dtype for new, (_, dtype) in zip(idents, kept)},
                    public=dict(zip(idents, publics)))
    staged.notes = _name_notes(header if header is not None else publics, publics, idents)
    return staged


def _csv_direct(con, sql: str, params: list, header: list[str]) -> Staged | None:
    """A CSV file read straight into raw under its identifiers (one pass, no copy); None
    when DuckDB's reading of the header differs from the file's (the general path then
    reads it, and explains a failure)."""
    publics = _public_names(header)
    idents = identifiers(publics)
    names = ", ".join(f"'{n}'" for n in idents)  # [a-z0-9_] only
    direct = sql.replace("all_varchar = true)", f"all_varchar = true, names = [{names}])")
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE raw AS SELECT row_number() OVER () - 1 AS _row, * "
                    f"FROM ({direct}) AS f", params)
    except Exception:  # noqa: BLE001 - any failure: the general path reads the file again and explains
        return None
    cols = [(row[0], row[1]) for row in con.execute("DESCRIBE raw").fetchall()][1:]
    if [c for c, _ in cols] != idents:
        con.execute("DROP TABLE raw")
        return None
    staged = Staged(columns=dict(cols), public=dict(zip(idents, publics)))
    staged.notes = _name_notes(header, publics, idents)
    return staged


def identifiers(names: list[str]) -> list[str]:
    """Store identifiers for public names: unique (also without regard to case), matching
    ``[a-z][a-z0-9_]*``, never id, lon or lat, never starting with ``_``."""
    out: list[str] = []
    taken: set[str] = set()
    for i, name in enumerate(names):
        ident = re.sub(r"[^a-z0-9]+", "_", str(name).strip().lower()).strip("_") or f"column_{i + 1}"
        if ident[0].isdigit():
            ident = "c_" + ident
        if ident in RESERVED:
            ident += "_"
        base, n = ident, 2
        while ident in taken:
            ident, n = f"{base}_{n}", n + 1
        taken.add(ident)
        out.append(ident)
    return out


def _public_names(header: list[str]) -> list[str]:
    """The header's names; an empty one is ``column N``, a repeated one ``NAME (2)``, ..."""
    out: list[str] = []
    for i, name in enumerate(header):
        name = name if name.strip() else f"column {i + 1}"
        public, n = name, 2
        while public in out:
            public, n = f"{name} ({n})", n + 1
        out.append(public)
    return out


def _name_notes(header: list[str], publics: list[str], idents: list[str]) -> list[str]:
    notes = []
    for given, public in zip(header, publics):
        if given != public and given.strip():
            notes.append(f"column {given!r} is repeated in the header: its later copy is kept as {public!r}")
    by_folded: dict[str, list[str]] = {}
    for public in publics:
        by_folded.setdefault(public.lower(), []).append(public)
    for group in by_folded.values():
        if len(group) > 1:
            notes.append(f"columns {', '.join(map(repr, group))} differ only in case: "
                         "all kept, each under its own name")
    return notes


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _csv_sql(path: str):
    with open(path, "rb") as fh:
        first = fh.readline().decode("utf-8", "replace")
    delim = max(DELIMITERS, key=first.count)
    if first.count(delim) == 0:
        raise ReadError(f"{path}: the first line has no delimiter ({', '.join(map(repr, DELIMITERS))}); "
                        "is it a CSV file with a header row?")
    header = _header(path, delim)
    # Every column as text: the types are found afterwards, where they can be reported and overruled.
    return ("SELECT * FROM read_csv(?, header = true, delim = ?, quote = '\"', escape = '\"', "
            "strict_mode = true, all_varchar = true)", [path, delim], header)


def _header(path: str, delim: str) -> list[str] | None:
    """The header record as the file writes it (DuckDB renames repeated names)."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        head = fh.read(1 << 20)
    try:
        return next(csv.reader(io.StringIO(head), delimiter=delim, quotechar='"'))
    except (StopIteration, csv.Error):
        return None


def _geojson_sql(path: str):
    # DuckDB reads a FeatureCollection as one row per feature, with a GEOMETRY column.
    geo = "st_asgeojson(geometry)"
    return (f"SELECT json_extract_string({geo}, '$.type') AS _geometry_type, "
            f"TRY_CAST(json_extract_string({geo}, '$.coordinates[0]') AS DOUBLE) AS _lon, "
            f"TRY_CAST(json_extract_string({geo}, '$.coordinates[1]') AS DOUBLE) AS _lat, * EXCLUDE (geometry) "
            "FROM read_json(?, format = 'auto', maximum_object_size = 1073741824)", [path], None)


def _parquet_sql(path: str):
    return "SELECT * FROM read_parquet(?)", [path], None


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


def _mostly_binary(head: bytes) -> bool:
    """Not UTF-8 text (binary data, or text in another encoding)."""
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start < len(head) - 4  # a character cut by the sample's end is fine
    return False
