"""Load one file into the database as a layer (or, for check-ins, two).

The whole import runs in one write of the database (``stores.open_writer``):
a bad file raises before anything is moved into place, so the database is
left exactly as it was. A check-in layer X comes with its places layer
X_places; a load that would break such a pair (a file of its own loaded as
X_places, or a check-in layer X whose X_places is a layer of its own) is
refused unless asked for with ``replace``. The report says which layers a
load replaced.

Columns are named by the file (ingest/readers.py) and typed at load
(ingest/types.py); the report lists each field's type, the values that did
not parse and the time field. A points layer's time field is ``--time``, or
the one timestamp column found; of several, the one whose name says it
starts something (``start``, ``begin``, ``pickup``, ``depart``) when exactly one
does, else none (the report names them: choose with ``--time``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from typing import Callable

from ..stores import open_writer
from ..stores.base import DAYS, LAYER_NAME, quote
from ..stores.staging import NUMERIC_TYPES, Prior
from . import append as appending
from .lines import describe
from .presets import LAT_NAMES, LON_NAMES, Mapping, trip_columns
from .readers import GEOMETRY_COLUMNS, ReadError, Staged, detect_format, stage
from .types import TIME, Typed, detect

MAPPED = ("lat", "lon", "id", "name", "price", "user", "place", "time", "day", "hour", "category")
STARTS = re.compile(r"start|begin|pick_?up|depart", re.IGNORECASE)

SHOW_ROWS = 5


class IngestError(Exception):
    """The file cannot be imported; nothing was changed."""


@dataclass
class Report:
    file: str
    format: str = ""
    rows: int = 0
    invalid: int = 0
    invalid_lines: list[str] = field(default_factory=list)  # where the first invalid rows are ("line 5")
    not_points: int = 0  # GeoJSON features that are not Points (skipped with skip_invalid)
    duplicates: int = 0  # rows that repeat an earlier row exactly (kept)
    layers: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fields: list[dict] = field(default_factory=list)  # {"name", "type", "unit", "unparsed"}, in file order
    time_field: str | None = None
    names: list[str] = field(default_factory=list)  # how colliding column names were told apart
    unparsed: list[dict] = field(default_factory=list)  # {"field", "type", "count", "lines": [(line, value)]}


def load_file(db: str, path: str, layer: str, mapping: Mapping = Mapping(), skip_invalid: bool = False,
              progress: Callable[[str, float], None] = lambda m, f: None, replace: bool = False,
              append: bool = False, types: dict[str, str] | None = None) -> Report:
    """Load `path` as `layer` (and `layer`_places, for check-ins). `replace`: go on
    even where that breaks another layer's pair (see the module); `append`: add the
    rows to the layer (ingest/append.py); `types`: a column's type by its name in the
    file (ingest/types.py KINDS), overruling detection."""
    return load_files(db, [path], layer, mapping, skip_invalid, progress, replace, append, types)[0]


def load_files(db: str, paths: list[str], layer: str, mapping: Mapping = Mapping(), skip_invalid: bool = False,
               progress: Callable[[str, float], None] = lambda m, f: None, replace: bool = False,
               append: bool = False, types: dict[str, str] | None = None) -> list[Report]:
    """Load several files, in one write: with `append`, each adds its rows to the layer
    (made by the first if it does not exist); all land or none does. A report per file."""
    if not LAYER_NAME.match(layer):
        raise IngestError(f"invalid layer name {layer!r}: use lower-case letters, digits and _ "
                          "(starting with a letter, at most 48)")
    if len(paths) > 1 and not append:
        raise IngestError(f"{len(paths)} files for one layer: give --append to add them all to layer {layer}")
    if append and mapping.checkins:
        raise IngestError("--append adds rows to a points layer; check-in files make a pair of layers: "
                          "load them as one file")
    reports: list[Report] = []
    if len(paths) == 1 and not append:
        report = Report(file=paths[0])
        if _areas(db, paths[0], layer, skip_invalid, report, progress):  # a polygon file: ingest/areas.py
            return [report]
    try:
        with open_writer(db) as staging:
            pair = _pair(layer, mapping)
            if not replace:
                _check_pair(staging.existing, pair)
            if append:
                appending.check_target(staging.existing, layer)
            for i, path in enumerate(paths):
                report = Report(file=path)
                reports.append(report)
                step = _step(progress, i, len(paths))
                report.format = detect_format(path)
                step(f"reading {os.path.basename(path)}", 0.05)
                staged = stage(staging.con, path, report.format)
                resolved, typed = _typed(staging.con, staged, mapping, types or {}, report)
                columns = dict(staged.columns)
                _import(staging, columns, path, layer, resolved, skip_invalid, report, step, staged.public, typed,
                        append)
            if not append:
                reports[-1].notes += _replaced(staging.existing, pair, [item["name"] for item in reports[-1].layers])
            progress("writing the database", 0.9)
    except (ReadError, appending.AppendError) as exc:
        raise IngestError(str(exc)) from None
    progress("done", 1.0)
    return reports


def _step(progress, i: int, n: int):
    """Progress of the i-th of n files, as a share of the whole load (up to 0.9)."""
    return lambda message, fraction: progress(message, (i + fraction) * 0.9 / n)


def _typed(con, staged: Staged, mapping: Mapping, types: dict[str, str], report: Report):
    """The mapping in store identifiers, and the columns typed (raw rewritten)."""
    ident = {p: c for c, p in staged.public.items()}
    public = staged.public
    report.names = list(staged.notes)

    def find(given: str, flag: str) -> str:
        if given in ident:
            return ident[given]
        folded = [c for p, c in ident.items() if p.lower() == given.lower()]
        if len(folded) == 1:
            return folded[0]
        raise IngestError(f"no column {given!r} ({flag}); columns: {', '.join(public.values())}")

    resolved = {key: find(getattr(mapping, key), f"--{key}") for key in MAPPED if getattr(mapping, key)}
    if "id" not in resolved and not mapping.checkins and "id" in ident:
        resolved["id"] = ident["id"]
    keep = None if mapping.keep is None else tuple(ident[k] for k in mapping.keep if k in ident)
    rename = {ident[k]: v for k, v in mapping.rename.items() if k in ident and v not in ident}
    missing = {ident[k]: v for k, v in mapping.missing.items() if k in ident}
    mapping = replace(mapping, keep=keep, rename=rename, missing=missing, **resolved)
    given = {find(col, "--type"): kind for col, kind in types.items()}
    if mapping.time and mapping.time not in given:
        given[mapping.time] = "time"  # --time COL: read COL as a timestamp
    columns = {c: t for c, t in staged.columns.items()}
    typed = detect(con, "raw", columns, public, given,
                   keep=["_row"] + [c for c in GEOMETRY_COLUMNS if c in _raw_columns(con)])
    staged.columns = dict(_raw_columns(con))
    for c in list(staged.columns):
        if c == "_row" or c in GEOMETRY_COLUMNS:
            del staged.columns[c]
    for t in typed.values():
        report.fields.append({"name": t.public, "type": t.describe(), "unit": t.unit, "unparsed": t.bad})
        if t.bad:
            report.unparsed.append({"field": t.public, "type": t.describe(), "count": t.bad,
                                    "lines": [(row + 2, value) for row, value in t.examples]})
    return mapping, typed


def _raw_columns(con) -> dict[str, str]:
    return {r[0]: r[1] for r in con.execute("DESCRIBE raw").fetchall()}


def _time_column(mapping: Mapping, typed: dict[str, Typed], report: Report) -> str | None:
    """The time field of a points layer (see the module); the report says which, or why none."""
    if mapping.time:
        return mapping.time
    stamps = [t for t in typed.values() if t.type == TIME]
    if len(stamps) > 1:
        starts = [t for t in stamps if STARTS.search(t.public)]
        if len(starts) == 1:
            report.notes.append(f"time field: {starts[0].public} (of the timestamp columns "
                                f"{', '.join(t.public for t in stamps)}: the one named as a start; "
                                "choose another with --time COL)")
            return starts[0].column
        report.notes.append(f"no time field: several timestamp columns ({', '.join(t.public for t in stamps)}); "
                            "choose one with --time COL")
        return None
    return stamps[0].column if stamps else None


def _areas(db, path, layer, skip_invalid, report, progress) -> bool:
    from .areas import AreasError, areas_format, load_areas

    fmt = areas_format(path)
    if fmt is None:
        return False
    try:
        load_areas(db, path, layer, fmt, skip_invalid, report, progress)
    except AreasError as exc:
        raise IngestError(str(exc)) from None
    progress("done", 1.0)
    return True


def _pair(layer: str, mapping: Mapping) -> dict[str, str]:
    """The layers a load writes, each with the layer whose pair it belongs to."""
    if not mapping.checkins:
        return {layer: layer}
    places = f"{layer}_places"
    if not LAYER_NAME.match(places):
        raise IngestError(f"layer name {layer!r} is too long for its places layer")
    return {layer: layer, places: layer}


def _owners(existing: dict[str, Prior]) -> dict[str, str]:
    """Each existing layer's pair: the check-in layer for a places layer, else itself."""
    owners = {name: name for name in existing}
    owners.update({p.places: p.name for p in existing.values() if p.places in existing})
    return owners


def _check_pair(existing: dict[str, Prior], pair: dict[str, str]) -> None:
    """Refuse to write a layer that belongs to another layer's pair, or to take a layer
    of its own as this load's places layer."""
    owners = _owners(existing)
    for name, owner in pair.items():
        was = owners.get(name, owner)
        if was == owner:
            continue
        if was != name:
            why = (f"layer {name!r} is the places layer of check-in layer {was!r}; "
                   "loading this file there would break that pair")
        else:
            why = (f"check-in layer {owner!r} keeps its places in layer {name!r}, but {name!r} is a layer "
                   f"of its own ({_described(existing[name])})")
        raise IngestError(f"{why}: choose another --layer, or give --replace to replace it anyway")


def _replaced(existing: dict[str, Prior], pair: dict[str, str], written: list[str]) -> list[str]:
    owners = _owners(existing)
    notes = []
    for name in written:
        if name in existing:
            broken = owners[name] != pair.get(name, name)
            was = f"; it was the places layer of check-in layer {owners[name]}" if broken and owners[name] != name \
                else ""
            notes.append(f"replaced layer {name} ({_described(existing[name])}{was})")
    return notes


def _described(prior: Prior) -> str:
    what = "check-ins" if prior.kind == "checkins" else "points"
    when = f" loaded {prior.loaded_at:%Y-%m-%d %H:%M} UTC" if prior.loaded_at else ""
    return f"{prior.count:,} {what}{when}"


def _import(staging, columns, path, layer, mapping, skip_invalid, report, progress, public, typed, append=False):
    con = staging.con
    report.rows = con.execute("SELECT count(*) FROM raw").fetchone()[0]
    if report.format == "geojson":
        _points_only(con, columns, path, skip_invalid, report, public)
    if report.rows == 0:
        raise IngestError(f"{path}: no data rows (only a header?)")
    report.duplicates = _duplicates(con, columns, report)
    trip = None
    if report.format == "geojson":  # the position is the geometry's; properties are fields, whatever their names
        lat, lon = "_lat", "_lon"
        public = {**public, "_lat": "latitude", "_lon": "longitude"}
    else:
        if not (mapping.lat or mapping.lon or _found(columns, public, LAT_NAMES)):
            trip = trip_columns({c: public.get(c, c) for c in columns})
        if trip:
            mapping = replace(mapping, lat=trip[0], lon=trip[1])
        lat = _column(columns, public, mapping.lat, LAT_NAMES, "latitude", "--lat")
        lon = _column(columns, public, mapping.lon, LON_NAMES, "longitude", "--lon")

    progress("checking coordinates", 0.3)
    # Positions: numbers within range; anything else is an invalid row, reported by line.
    con.execute(f"CREATE OR REPLACE TEMP TABLE coords AS SELECT _row, "
                f"TRY_CAST({quote(lon)} AS DOUBLE) AS lon, TRY_CAST({quote(lat)} AS DOUBLE) AS lat FROM raw")
    bad = ("coords.lon IS NULL OR coords.lat IS NULL OR NOT isfinite(coords.lon) OR NOT isfinite(coords.lat) "
           "OR coords.lon < -180 OR coords.lon > 180 OR coords.lat < -90 OR coords.lat > 90")
    report.invalid = con.execute(f"SELECT count(*) FROM coords WHERE {bad}").fetchone()[0]
    report.invalid_lines = describe(report.format, path, [r for (r,) in con.execute(
        f"SELECT _row FROM coords WHERE {bad} ORDER BY _row LIMIT {SHOW_ROWS}").fetchall()])
    if report.invalid:
        where = _listed(report.invalid_lines) + (" ..." if report.invalid > SHOW_ROWS else "")
        message = (f"{report.invalid} of {report.rows} rows have a missing, non-numeric or out-of-range "
                   f"latitude ({public[lat]}) or longitude ({public[lon]}): {where}")
        if not skip_invalid:
            raise IngestError(message + "; fix them, or load the rest with --skip-invalid")
        report.notes.append(message + "; skipped (--skip-invalid)")
        if report.invalid == report.rows:
            raise IngestError(f"{path}: no row has valid coordinates")

    if not mapping.price and "price" in columns:  # prices written like "$1,234.00" are parsed
        mapping = replace(mapping, price="price")
    props, names, hints = _properties(con, columns, mapping, {lat, lon}, public, typed)
    kept = {public.get(c, c): names[c] for c in props}  # the fields the layer gets, by their file names
    report.fields = [{**f, "name": kept[f["name"]]} for f in report.fields if f["name"] in kept]
    time = None if mapping.checkins else _time_column(mapping, typed, report)
    if mapping.checkins and not mapping.time and not (mapping.day and mapping.hour):
        mapping = replace(mapping, time=_time_column(mapping, typed, report))
    report.time_field = public.get(mapping.time if mapping.checkins else time) if (mapping.time or time) else None
    if mapping.checkins and mapping.time:
        report.time_field = "time"
    progress("sorting points", 0.5)
    if mapping.checkins:
        _publish_checkins(staging, columns, layer, mapping, props, bad, path, report, names, hints)
    else:
        ends = _trip_note(con, trip, props, report, public) if trip else None
        _publish_points(staging, columns, layer, mapping, props, bad, path, report, names, hints, time, append, ends)


def _found(columns, public, candidates) -> bool:
    """Whether a column's name in the file (`public`: column -> name) is one of `candidates`, in any case."""
    return any(public.get(c, c).lower() in candidates for c in columns)


def _listed(places: list[str]) -> str:
    """"line 5", "lines 5, 6" (places as lines.describe gives them)."""
    if len(places) > 1 and len({p.split(" ")[0] for p in places}) == 1:
        word = places[0].split(" ")[0]
        return f"{word}s " + ", ".join(p.split(" ", 1)[1] for p in places)
    return ", ".join(places)


def _points_only(con, columns, path, skip_invalid, report, public=None) -> None:
    """A GeoJSON feature that is not a Point is named by its index in ``features`` (and
    its id); the load stops, or skips them with --skip-invalid."""
    bad = "_geometry_type IS DISTINCT FROM 'Point'"
    report.not_points = con.execute(f"SELECT count(*) FROM raw WHERE {bad}").fetchone()[0]
    if report.not_points:
        ident = [c for c in columns if (public or {}).get(c, c) == "id"]  # the feature's id
        ids = f"CAST({quote(ident[0])} AS VARCHAR)" if ident else "NULL"
        first = con.execute(f"SELECT _row, {ids}, _geometry_type FROM raw WHERE {bad} "
                            f"ORDER BY _row LIMIT {SHOW_ROWS}").fetchall()
        named = "; ".join(f"feature {row}" + (f" (id {fid!r})" if fid is not None else "")
                          + (f" is a {kind}" if kind else " has no geometry") for row, fid, kind in first)
        message = (f"{report.not_points} of {report.rows} features are not Points: {named}"
                   + (" ..." if report.not_points > SHOW_ROWS else ""))
        if not skip_invalid:
            raise IngestError(f"{path}: {message}; citystack layers hold points: load the points "
                              "with --skip-invalid")
        if report.not_points == report.rows:
            raise IngestError(f"{path}: no feature is a Point ({message})")
        con.execute(f"DELETE FROM raw WHERE {bad}")
        report.notes.append(f"{message}; skipped (--skip-invalid)")


def _duplicates(con, columns, report) -> int:
    """Rows that repeat an earlier row in every column (kept; the report counts them).
    Distinct row hashes first (measured on 1,000,000 rows: 40% faster than DISTINCT over the
    columns): as many as rows means no row repeats; otherwise the exact count."""
    cols = ", ".join(quote(c) for c in columns)
    n, distinct = con.execute(f"SELECT count(*), count(DISTINCT hash({cols})) FROM raw").fetchone()
    if distinct < n:
        distinct = con.execute(f"SELECT count(*) FROM (SELECT DISTINCT {cols} FROM raw)").fetchone()[0]
    if n > distinct:
        report.notes.append(f"{n - distinct} rows repeat an earlier row exactly (kept)")
    return n - distinct


def _trip_note(con, trip, props, report, public) -> list[str] | None:
    """A trips file: the points are the starts, the end position stays as two fields."""
    lat, lon, end_lat, end_lon = trip
    name = lambda c: public.get(c, c)  # noqa: E731
    if end_lat in props and end_lon in props:
        no_end = con.execute(f"SELECT count(*) FROM raw WHERE {props[end_lat]} IS NULL "
                             f"OR {props[end_lon]} IS NULL").fetchone()[0]
        report.notes.append(f"trips: points at the start ({name(lat)}, {name(lon)}); the end position kept as "
                            f"fields {name(end_lat)}, {name(end_lon)}"
                            + (f" ({no_end} trips have no end; kept)" if no_end else ""))
        return [end_lon, end_lat]
    report.notes.append(f"trips: points at the start ({name(lat)}, {name(lon)})")
    return None


def _properties(con, columns, mapping, exclude, public, typed) -> tuple[dict, dict, dict]:
    """The properties to keep: (column -> SQL expression over raw, column -> public name,
    column -> field hints)."""
    out, names, hints = {}, {}, {}
    for col, dtype in columns.items():
        if col in exclude or col in (mapping.id, mapping.user, mapping.place, mapping.day, mapping.hour):
            continue
        if mapping.keep is not None and col not in mapping.keep:
            continue
        expr = quote(col)
        if col == mapping.price and dtype.split("(")[0] not in NUMERIC_TYPES:
            expr = f"TRY_CAST(regexp_replace(CAST({expr} AS VARCHAR), '[$€£¥,\\s]', '', 'g') AS DOUBLE)"
        if col in mapping.missing:
            expr = f"nullif({expr}, {float(mapping.missing[col])!r})"
        out[col] = expr
        names[col] = mapping.rename.get(col, public.get(col, col))
        if col in typed and typed[col].unit:
            hints[col] = {"unit": typed[col].unit}
    return out, names, hints


def _publish_points(staging, columns, layer, mapping, props, bad, path, report, names, hints, time=None,
                    append=False, ends=None):
    con = staging.con
    id_col = mapping.id
    if id_col and not _unique(con, id_col, bad):
        report.notes.append(f"column {names.get(id_col, id_col)!r} is not a unique id; "
                            "features are numbered by row instead")
        id_col = None
    ident = quote(id_col) if id_col else "coords._row + 1"
    select = ", ".join(f"{expr} AS {quote(name)}" for name, expr in props.items())
    body = (f"{ident} AS id, coords.lon, coords.lat{', ' + select if select else ''} "
            f"FROM raw JOIN coords ON raw._row = coords._row WHERE NOT ({bad})")
    added = appending.rows(staging, layer, body, numbered=not id_col, path=path, fmt=report.format,
                           names=names) if append else None
    layer_names, layer_hints, layer_time, layer_ends = names, hints, time, ends
    if added:  # the layer's columns (a file's own names may have other identifiers in another file)
        layer_names, layer_hints, layer_time, layer_ends = added.renamed(hints, time, ends)
    info = staging.publish(layer, "points", added.sql if added else f"SELECT {body}",
                           source=added.source if added else os.path.basename(path), names=layer_names,
                           hints=layer_hints, time=layer_time,
                           name_field=mapping.name or (added.name_field if added else None), ends=layer_ends)
    if added:
        added.done(con)
        report.layers.append({"name": info.name, "kind": info.kind, "count": info.count, "added": added.count})
    else:
        report.layers.append({"name": info.name, "kind": info.kind, "count": info.count})
    price = mapping.price if mapping.price in props else None
    if price:
        zero = con.execute(f"SELECT count(*) FROM {quote('layer_' + layer)} WHERE {quote(price)} = 0").fetchone()[0]
        missing = con.execute(f"SELECT count(*) FROM {quote('layer_' + layer)} WHERE {quote(price)} IS NULL").fetchone()[0]
        if zero:
            report.notes.append(f"{zero} rows have {names.get(price, price)} 0 (kept; 0 is usually not a real price)")
        if missing:
            report.notes.append(f"{missing} rows have no readable {names.get(price, price)}")



def _publish_checkins(staging, columns, layer, mapping, props, bad, path, report, names, hints):
    con = staging.con
    user, place = quote(mapping.user), quote(mapping.place)
    day, hour, extra = _times(con, columns, mapping)
    for name in ("user", "place", "day", "hour", "time", "name", mapping.name, mapping.category):
        props.pop(name, None)
        names.pop(name, None)
    category = quote(mapping.category) if mapping.category else "NULL"
    name = (f"CAST({quote(mapping.name)} AS VARCHAR)" if mapping.name else
            f"coalesce(CAST({category} AS VARCHAR), 'place') || ' ' || CAST({place} AS VARCHAR)")
    select = "".join(f", {expr} AS {quote(name)}" for name, expr in props.items())
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE visits AS SELECT coords._row + 1 AS id, "
        f"{_place_mean('coords.lon', place)} AS lon, {_place_mean('coords.lat', place)} AS lat, "
        f"CAST({user} AS VARCHAR) AS \"user\", CAST({place} AS VARCHAR) AS place, "
        f"CAST({day} AS INTEGER) AS day, CAST({hour} AS INTEGER) AS hour{extra}, "
        f"CAST({category} AS VARCHAR) AS category, {name} AS name{select} "
        f"FROM raw JOIN coords ON raw._row = coords._row WHERE NOT ({bad}) "
        f"AND {user} IS NOT NULL AND {place} IS NOT NULL")
    untimed = con.execute("SELECT count(*) FROM visits WHERE day IS NULL OR hour IS NULL").fetchone()[0]
    if untimed:
        report.notes.append(f"{untimed} check-ins have no readable day or hour")
    places = f"{layer}_places"  # checked by _pair
    info = staging.publish(
        places, "points",
        "SELECT place AS id, any_value(lon) AS lon, any_value(lat) AS lat, any_value(name) AS name, "
        "any_value(category) AS category, count(*) AS checkins, count(DISTINCT \"user\") AS visitors "
        "FROM visits GROUP BY place", source=os.path.basename(path), name_field="name")
    report.layers.append({"name": info.name, "kind": info.kind, "count": info.count})
    info = staging.publish(layer, "checkins", "SELECT * FROM visits", source=os.path.basename(path),
                           places=places, names=names, hints=hints, time="time" if mapping.time else None,
                           name_field="name")
    users = con.execute("SELECT count(DISTINCT \"user\") FROM visits").fetchone()[0]
    report.layers.append({"name": info.name, "kind": info.kind, "count": info.count, "users": users})


def _place_mean(col: str, place: str) -> str:
    """The mean of a coordinate over a place's check-ins, the same on every load: summed
    as decimals (exact integer sums, in any order) rather than as floats, whose sum
    depends on the order DuckDB's threads meet the rows in. A place seen once keeps
    its coordinate exactly (1e-28 is far below a double's spacing near 180)."""
    return f"CAST(avg(CAST({col} AS DECIMAL(38, 28))) OVER (PARTITION BY CAST({place} AS VARCHAR)) AS DOUBLE)"


def _times(con, columns, mapping) -> tuple[str, str, str]:
    """SQL for day of week (0 = Monday) and hour, and any extra time column."""
    if mapping.time:
        ts = f"TRY_CAST({quote(mapping.time)} AS TIMESTAMP)"
        return f"(isodow({ts}) - 1)", f"hour({ts})", f", {ts} AS time"
    if not (mapping.day and mapping.hour):
        raise IngestError("check-ins need a time: give --time COL (a timestamp), or columns day and hour")
    day = quote(mapping.day)
    if columns[mapping.day] in NUMERIC_TYPES:
        day_sql = f"TRY_CAST({day} AS INTEGER)"
    else:
        cases = " ".join(f"WHEN '{d[:3].lower()}' THEN {i}" for i, d in enumerate(DAYS))
        day_sql = f"(CASE lower(substr(trim(CAST({day} AS VARCHAR)), 1, 3)) {cases} END)"
    return day_sql, f"TRY_CAST({quote(mapping.hour)} AS INTEGER)", ""


def _unique(con, col, bad) -> bool:
    n, distinct, nonnull = con.execute(
        f"SELECT count(*), count(DISTINCT {quote(col)}), count({quote(col)}) "
        f"FROM raw JOIN coords ON raw._row = coords._row WHERE NOT ({bad})").fetchone()
    return n == distinct == nonnull


def _column(columns, public, given, candidates, what, flag) -> str:
    """The column of a position: the one given (already a store identifier), or the first
    whose name in the file is one of `candidates` (in any case)."""
    if given:
        return given
    by_name = {p.lower(): c for c, p in reversed(list(public.items())) if c in columns}
    for name in candidates:
        if name in by_name:
            return by_name[name]
    raise IngestError(f"no {what} column found (looked for {', '.join(candidates)}); "
                      f"name it with {flag} COL; columns: {', '.join(public[c] for c in columns)}")
