"""Load one file into the database as a layer (or, for check-ins, two).

The whole import runs in one write of the database (``stores.open_writer``):
a bad file raises before anything is moved into place, so the database is
left exactly as it was. A check-in layer X comes with its places layer
X_places; a load that would break such a pair (a file of its own loaded as
X_places, or a check-in layer X whose X_places is a layer of its own) is
refused unless asked for with ``replace``. The report says which layers a
load replaced.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Callable

from ..stores import open_writer
from ..stores.base import DAYS, LAYER_NAME, quote
from ..stores.staging import NUMERIC_TYPES, Prior
from .presets import LAT_NAMES, LON_NAMES, Mapping
from .readers import ReadError, detect_format, stage

SHOW_ROWS = 5


class IngestError(Exception):
    """The file cannot be imported; nothing was changed."""


@dataclass
class Report:
    file: str
    format: str = ""
    rows: int = 0
    invalid: int = 0
    invalid_lines: list[int] = field(default_factory=list)
    layers: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def load_file(db: str, path: str, layer: str, mapping: Mapping = Mapping(), skip_invalid: bool = False,
              progress: Callable[[str, float], None] = lambda m, f: None, replace: bool = False) -> Report:
    """Load `path` as `layer` (and `layer`_places, for check-ins). `replace`: go on
    even where that breaks another layer's pair (see the module)."""
    if not LAYER_NAME.match(layer):
        raise IngestError(f"invalid layer name {layer!r}: use lower-case letters, digits and _ "
                          "(starting with a letter, at most 48)")
    report = Report(file=path)
    if _areas(db, path, layer, skip_invalid, report, progress):  # a polygon file: ingest/areas.py
        return report
    try:
        report.format = detect_format(path)
        progress(f"reading {os.path.basename(path)}", 0.05)
        with open_writer(db) as staging:
            pair = _pair(layer, mapping)
            if not replace:
                _check_pair(staging.existing, pair)
            columns = dict(stage(staging.con, path, report.format))
            _import(staging, columns, path, layer, mapping, skip_invalid, report, progress)
            report.notes += _replaced(staging.existing, pair, [item["name"] for item in report.layers])
            progress("writing the database", 0.9)
    except ReadError as exc:
        raise IngestError(str(exc)) from None
    progress("done", 1.0)
    return report


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


def _import(staging, columns, path, layer, mapping, skip_invalid, report, progress):
    con = staging.con
    if report.format == "geojson":
        bad = con.execute("SELECT count(*) FROM raw WHERE geometry_type IS DISTINCT FROM 'Point'").fetchone()[0]
        if bad:
            raise IngestError(f"{path}: {bad} features are not Points; citystack layers hold points")
        con.execute("ALTER TABLE raw DROP COLUMN geometry_type")
        del columns["geometry_type"]
    report.rows = con.execute("SELECT count(*) FROM raw").fetchone()[0]
    if report.rows == 0:
        raise IngestError(f"{path}: no data rows (only a header?)")
    lat = _column(columns, mapping.lat, LAT_NAMES, "latitude", "--lat")
    lon = _column(columns, mapping.lon, LON_NAMES, "longitude", "--lon")
    for flag, col in (("--user", mapping.user), ("--place", mapping.place), ("--name", mapping.name),
                      ("--time", mapping.time), ("--day", mapping.day), ("--hour", mapping.hour)):
        if col:
            _column(columns, col, (), col, flag)

    progress("checking coordinates", 0.3)
    # Positions: numbers within range; anything else is an invalid row, reported by line.
    con.execute(f"CREATE OR REPLACE TEMP TABLE coords AS SELECT _row, "
                f"TRY_CAST({quote(lon)} AS DOUBLE) AS lon, TRY_CAST({quote(lat)} AS DOUBLE) AS lat FROM raw")
    bad = ("coords.lon IS NULL OR coords.lat IS NULL OR NOT isfinite(coords.lon) OR NOT isfinite(coords.lat) "
           "OR coords.lon < -180 OR coords.lon > 180 OR coords.lat < -90 OR coords.lat > 90")
    report.invalid = con.execute(f"SELECT count(*) FROM coords WHERE {bad}").fetchone()[0]
    report.invalid_lines = [r + 2 for (r,) in con.execute(
        f"SELECT _row FROM coords WHERE {bad} ORDER BY _row LIMIT {SHOW_ROWS}").fetchall()]
    if report.invalid:
        where = (f"line{'s' if report.invalid > 1 else ''} {', '.join(map(str, report.invalid_lines))}"
                 + (" ..." if report.invalid > SHOW_ROWS else ""))
        message = (f"{report.invalid} of {report.rows} rows have a missing, non-numeric or out-of-range "
                   f"latitude ({lat}) or longitude ({lon}): {where}")
        if not skip_invalid:
            raise IngestError(message + "; fix them, or load the rest with --skip-invalid")
        report.notes.append(message + "; skipped (--skip-invalid)")
        if report.invalid == report.rows:
            raise IngestError(f"{path}: no row has valid coordinates")

    if not mapping.price and "price" in columns:  # prices written like "$1,234.00" are parsed
        mapping = replace(mapping, price="price")
    props = _properties(con, columns, mapping, exclude={lat, lon})
    progress("sorting points", 0.5)
    if mapping.checkins:
        _publish_checkins(staging, columns, layer, mapping, props, bad, path, report)
    else:
        _publish_points(staging, columns, layer, mapping, props, bad, path, report)


def _properties(con, columns, mapping, exclude) -> dict[str, str]:
    """field name -> SQL expression over raw, for the properties to keep."""
    out = {}
    for col, dtype in columns.items():
        if col in exclude or col in (mapping.id, mapping.user, mapping.place, mapping.day, mapping.hour):
            continue
        name = mapping.rename.get(col, col)
        if name in ("id", "lon", "lat", "_ord", "_row") or (mapping.keep is not None and name not in mapping.keep):
            continue
        expr = quote(col)
        if col == mapping.price and dtype not in NUMERIC_TYPES:
            expr = f"TRY_CAST(regexp_replace(CAST({expr} AS VARCHAR), '[$€£¥,\\s]', '', 'g') AS DOUBLE)"
        elif dtype.split("(")[0] not in NUMERIC_TYPES and dtype != "VARCHAR":
            expr = f"CAST({expr} AS VARCHAR)"
        if col in mapping.missing:
            expr = f"nullif({expr}, {float(mapping.missing[col])!r})"
        out[name] = expr
    return out


def _publish_points(staging, columns, layer, mapping, props, bad, path, report):
    con = staging.con
    id_col = mapping.id or ("id" if "id" in columns else None)
    if id_col and not _unique(con, id_col, bad):
        report.notes.append(f"column {id_col!r} is not a unique id; features are numbered by row instead")
        id_col = None
    ident = quote(id_col) if id_col else "coords._row + 1"
    select = ", ".join(f"{expr} AS {quote(name)}" for name, expr in props.items())
    sql = (f"SELECT {ident} AS id, coords.lon, coords.lat{', ' + select if select else ''} "
           f"FROM raw JOIN coords ON raw._row = coords._row WHERE NOT ({bad})")
    info = staging.publish(layer, "points", sql, source=os.path.basename(path))
    report.layers.append({"name": info.name, "kind": info.kind, "count": info.count})
    price = mapping.price if mapping.price in props else None
    if price:
        zero = con.execute(f"SELECT count(*) FROM {quote('layer_' + layer)} WHERE {quote(price)} = 0").fetchone()[0]
        missing = con.execute(f"SELECT count(*) FROM {quote('layer_' + layer)} WHERE {quote(price)} IS NULL").fetchone()[0]
        if zero:
            report.notes.append(f"{zero} rows have {price} 0 (kept; 0 is usually not a real price)")
        if missing:
            report.notes.append(f"{missing} rows have no readable {price}")


def _publish_checkins(staging, columns, layer, mapping, props, bad, path, report):
    con = staging.con
    user, place = quote(mapping.user), quote(mapping.place)
    day, hour, extra = _times(con, columns, mapping)
    for name in ("user", "place", "day", "hour", "time", "name", mapping.name, mapping.category):
        props.pop(name, None)
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
        "FROM visits GROUP BY place", source=os.path.basename(path))
    report.layers.append({"name": info.name, "kind": info.kind, "count": info.count})
    info = staging.publish(layer, "checkins", "SELECT * FROM visits", source=os.path.basename(path),
                           places=places)
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


def _column(columns, given, candidates, what, flag) -> str:
    if given:
        if given not in columns:
            raise IngestError(f"no column {given!r} ({flag}); columns: {', '.join(columns)}")
        return given
    for name in candidates:
        if name in columns:
            return name
    raise IngestError(f"no {what} column found (looked for {', '.join(candidates)}); "
                      f"name it with {flag} COL; columns: {', '.join(columns)}")
