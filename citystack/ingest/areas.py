"""Loading polygon files as ``areas`` layers.

GeoJSON (a FeatureCollection of Polygon / MultiPolygon features), GeoParquet
(a WKB geometry column named by the file's ``geo`` metadata) and, through
pyogrio, Shapefile, GeoPackage and FlatGeobuf. Each geometry is checked with
shapely 2:

- an empty or missing geometry, or one that is not a polygon, is an error
  naming the feature (its index, 0 = first), or with ``--skip-invalid`` it
  is skipped and reported;
- an invalid polygon (a self-intersecting ring, a bow tie, a ring that is
  not closed in the plane) is repaired with ``make_valid`` (its polygonal
  parts kept) and the report counts the repairs;
- coordinates must be longitude/latitude: a file that declares another CRS
  (a GeoJSON ``crs`` member, GeoParquet's or the dataset's CRS) is
  reprojected with pyproj, one that names a CRS pyproj does not know is
  refused naming it, and coordinates outside longitude/latitude ranges are
  refused.

Properties become fields with the file's names as their public names. The
whole load is one write (stores.open_writer): nothing changes on failure.
"""

from __future__ import annotations

import os
import re

import numpy as np
import orjson

from ..stores import open_writer
from ..stores.areas import RESERVED, publish_areas

SHOW = 5
OGR_SUFFIXES = (".shp", ".gpkg", ".fgb", ".zip")
WGS84_NAMES = ("urn:ogc:def:crs:ogc:1.3:crs84", "epsg:4326", "urn:ogc:def:crs:epsg::4326", "ogc:crs84",
               "crs84", "wgs84", "wgs 84")
POINT = re.compile(rb'"type"\s*:\s*"(?:Multi)?Point"')
POLYGON = re.compile(rb'"type"\s*:\s*"(Multi)?Polygon"')


class AreasError(Exception):
    """The polygon file cannot be loaded; nothing was changed."""


def areas_format(path: str) -> str | None:
    """'geojson', 'geoparquet' or 'ogr' when `path` is a polygon file, else None (a points file, or
    not a file: the points loader's checks answer)."""
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return None
    suffix = os.path.splitext(path)[1].lower()
    if suffix in OGR_SUFFIXES:
        return "ogr"
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    if head.startswith(b"PAR1"):
        try:
            import pyarrow.parquet as pq

            meta = pq.read_schema(path).metadata or {}
        except Exception:  # noqa: BLE001 - the points reader explains a bad file
            return None
        return "geoparquet" if b"geo" in meta else None
    if suffix in (".geojson", ".json") or head.lstrip().startswith(b"{"):
        # Polygon files are areas; a points file with a stray polygon is a points file (whose
        # loader names the feature that is not a point): the geometry types of the head decide.
        polygons, points = len(POLYGON.findall(head)), len(POINT.findall(head))
        return "geojson" if polygons and polygons >= points else None
    return None


def load_areas(db: str, path: str, layer: str, fmt: str, skip_invalid: bool, report, progress) -> None:
    """Read, check and publish `path` as areas layer `layer`; fills `report` (load.Report)."""
    import shapely

    progress(f"reading {os.path.basename(path)}", 0.05)
    geoms, props, crs = _read(path, fmt)
    report.format = fmt
    report.rows = len(geoms)
    if not geoms:
        raise AreasError(f"{path}: no features")
    progress("checking geometries", 0.3)
    geoms, keep, repaired = _check(path, geoms, skip_invalid, report)
    geoms = _to_lonlat(path, geoms, crs, report)
    props = [props[k] for k in keep]
    bounds = shapely.bounds(geoms)
    if not (np.all(bounds[:, [0, 2]] >= -180) and np.all(bounds[:, [0, 2]] <= 180)
            and np.all(bounds[:, [1, 3]] >= -90) and np.all(bounds[:, [1, 3]] <= 90)):
        bad = int(np.flatnonzero(~((bounds[:, [0, 2]] >= -180).all(1) & (bounds[:, [0, 2]] <= 180).all(1)
                                   & (bounds[:, [1, 3]] >= -90).all(1) & (bounds[:, [1, 3]] <= 90).all(1)))[0])
        raise AreasError(f"{path}: feature {keep[bad]} has coordinates outside longitude/latitude ranges "
                         f"({', '.join(f'{v:.6g}' for v in bounds[bad])}): the file seems to be in a projected "
                         "CRS; declare it (a GeoJSON crs member) or reproject it to EPSG:4326")
    if repaired:
        report.notes.append(f"{len(repaired)} invalid geometr{'y' if len(repaired) == 1 else 'ies'} repaired "
                            f"(make_valid): {_listed(repaired)}")
    table, names = _table(geoms, props, keep)
    progress("writing the database", 0.8)
    with open_writer(db) as staging:
        staging.con.register("_areas_in", table)
        try:
            info = publish_areas(staging.con, layer, os.path.basename(path), names)
        finally:
            staging.con.unregister("_areas_in")
        if layer in staging.existing:
            prior = staging.existing[layer]
            report.notes.append(f"replaced layer {layer} ({prior.count:,} {prior.kind})")
    report.layers.append({"name": info.name, "kind": info.kind, "count": info.count})
    report.areas_repaired = len(repaired)


# -- reading ------------------------------------------------------------------

def _read(path: str, fmt: str):
    """(shapely geometries or None, property dicts, declared CRS or None)."""
    if fmt == "geojson":
        return _read_geojson(path)
    if fmt == "geoparquet":
        return _read_geoparquet(path)
    return _read_ogr(path)


def _read_geojson(path: str):
    import shapely

    try:
        with open(path, "rb") as fh:
            doc = orjson.loads(fh.read())
    except (orjson.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AreasError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"), list):
        raise AreasError(f"{path}: not a GeoJSON FeatureCollection")
    crs = None
    member = doc.get("crs")
    if isinstance(member, dict):
        crs = (member.get("properties") or {}).get("name") or None
    geoms, props = [], []
    for k, feat in enumerate(doc["features"]):
        if not isinstance(feat, dict):
            raise AreasError(f"{path}: feature {k} is not a GeoJSON Feature")
        geom = feat.get("geometry")
        try:
            geoms.append(None if geom is None else shapely.from_geojson(orjson.dumps(geom)))
        except Exception as exc:  # noqa: BLE001 - shapely's GEOSException and ValueError
            geoms.append(_Broken(str(exc).split("\n")[0]))
        p = feat.get("properties")
        props.append(p if isinstance(p, dict) else {})
    return geoms, props, crs


def _read_geoparquet(path: str):
    import pyarrow.parquet as pq
    import shapely

    table = pq.read_table(path)
    geo = orjson.loads(table.schema.metadata[b"geo"])
    column = geo.get("primary_column", "geometry")
    spec = geo.get("columns", {}).get(column, {})
    if spec.get("encoding", "WKB").upper() != "WKB":
        raise AreasError(f"{path}: GeoParquet geometry encoding {spec.get('encoding')!r} is not supported (WKB is)")
    crs = spec.get("crs")
    if isinstance(crs, dict):
        ident = crs.get("id") or {}
        crs = f"{ident.get('authority')}:{ident.get('code')}" if ident else orjson.dumps(crs).decode()
    geoms = [None if w is None else shapely.from_wkb(w) for w in table.column(column).to_pylist()]
    rest = table.drop_columns([column]).to_pylist()
    return geoms, rest, crs


def _read_ogr(path: str):
    try:
        import pyogrio.raw
    except ImportError:  # pragma: no cover - a dependency
        raise AreasError(f"{path}: reading Shapefile/GeoPackage needs pyogrio") from None
    import shapely

    try:
        meta, _, wkb, values = pyogrio.raw.read(path)
    except Exception as exc:  # noqa: BLE001 - GDAL's errors
        raise AreasError(f"{path}: could not read: {str(exc).splitlines()[0]}") from None
    names = list(meta["fields"])
    geoms = [None if w is None else shapely.from_wkb(w) for w in wkb]
    props = [{n: _plain(values[i][k]) for i, n in enumerate(names)} for k in range(len(geoms))]
    return geoms, props, meta.get("crs")


def _plain(v):
    if isinstance(v, np.generic):
        return v.item()
    return v


class _Broken:
    """A geometry that could not be parsed; `why` says why."""

    def __init__(self, why: str):
        self.why = why


# -- checking -----------------------------------------------------------------

def _check(path, geoms, skip_invalid, report):
    """(MultiPolygons, the kept feature indexes, the repaired indexes)."""
    import shapely

    out, keep, repaired, problems = [], [], [], []
    for k, g in enumerate(geoms):
        why = None
        if g is None:
            why = "no geometry"
        elif isinstance(g, _Broken):
            why = f"unreadable geometry ({g.why})"
        elif g.is_empty:
            why = "empty geometry"
        elif g.geom_type not in ("Polygon", "MultiPolygon"):
            why = f"a {g.geom_type}, not a Polygon or MultiPolygon"
        else:
            if not g.is_valid:
                fixed = _polygonal(shapely.make_valid(g))
                if fixed is None:
                    why = f"invalid geometry that cannot be repaired ({shapely.is_valid_reason(g)})"
                else:
                    repaired.append(k)
                    g = fixed
            elif g.geom_type == "Polygon":
                g = shapely.MultiPolygon([g])
        if why:
            problems.append((k, why))
            continue
        out.append(g)
        keep.append(k)
    if problems:
        listed = "; ".join(f"feature {k}: {why}" for k, why in problems[:SHOW]) + (" ..." if len(problems) > SHOW else "")
        message = f"{len(problems)} of {len(geoms)} features cannot be areas: {listed}"
        if not skip_invalid:
            raise AreasError(f"{path}: {message}; fix them, or load the rest with --skip-invalid")
        if not out:
            raise AreasError(f"{path}: {message}; no feature is left")
        report.invalid = len(problems)
        report.notes.append(message + "; skipped (--skip-invalid)")
    return np.array(out, dtype=object), keep, repaired


def _polygonal(g):
    """The polygonal parts of a repaired geometry as one MultiPolygon (None if none)."""
    import shapely

    parts = [p for p in shapely.get_parts(g) if p.geom_type in ("Polygon", "MultiPolygon") and not p.is_empty]
    polys = []
    for p in parts:
        polys += list(shapely.get_parts(p)) if p.geom_type == "MultiPolygon" else [p]
    return shapely.MultiPolygon(polys) if polys else None


def _to_lonlat(path, geoms, crs, report):
    if crs is None or str(crs).strip().lower() in WGS84_NAMES:
        return geoms
    try:
        import pyproj
        import shapely

        source = pyproj.CRS.from_user_input(crs)
        if source.equals(pyproj.CRS.from_epsg(4326), ignore_axis_order=True):
            return geoms
        move = pyproj.Transformer.from_crs(source, "EPSG:4326", always_xy=True)
    except Exception as exc:  # noqa: BLE001 - pyproj's CRSError and others
        raise AreasError(f"{path}: the file's CRS {crs!r} is not one citystack can reproject "
                         f"({str(exc).splitlines()[0]}); reproject it to longitude/latitude (EPSG:4326)") from None
    report.notes.append(f"reprojected from {source.to_string()} ({source.name}) to longitude/latitude (EPSG:4326)")
    return shapely.transform(geoms, lambda xy: np.column_stack(move.transform(xy[:, 0], xy[:, 1])))


# -- the table ----------------------------------------------------------------

def _table(geoms, props, keep):
    """A pyarrow table: id, lon, lat, bbox, _km2, wkb and the properties; and column -> public name."""
    import pyarrow as pa
    import pyproj
    import shapely

    inner = shapely.point_on_surface(geoms)
    bounds = shapely.bounds(geoms)
    geod = pyproj.Geod(ellps="WGS84")
    km2 = [abs(geod.geometry_area_perimeter(g)[0]) / 1e6 for g in geoms]
    cols = {"id": pa.array([k + 1 for k in keep], pa.int64()),
            "lon": pa.array(shapely.get_x(inner)), "lat": pa.array(shapely.get_y(inner)),
            "minlon": pa.array(bounds[:, 0]), "minlat": pa.array(bounds[:, 1]),
            "maxlon": pa.array(bounds[:, 2]), "maxlat": pa.array(bounds[:, 3]),
            "_km2": pa.array(km2, pa.float64()), "wkb": pa.array(list(shapely.to_wkb(geoms)), pa.binary())}
    keys: list[str] = []
    for p in props:
        for key in p:
            if key not in keys:
                keys.append(key)
    names: dict[str, str] = {}
    taken = set(cols)
    for key in keys:
        column = _identifier(key, taken)
        taken.add(column)
        names[column] = key
        cols[column] = _typed([p.get(key) for p in props])
    return pa.table(cols), names


def _identifier(name: str, taken: set[str]) -> str:
    ident = re.sub(r"[^a-z0-9]+", "_", str(name).strip().lower()).strip("_") or "field"
    if not ident[0].isalpha():
        ident = "f_" + ident
    base, n = ident, 2
    while ident in taken or ident in RESERVED:
        ident, n = f"{base}_{n}", n + 1
    return ident


def _typed(values: list):
    """A pyarrow column: booleans, integers, numbers, else text (objects as JSON)."""
    import pyarrow as pa

    given = [v for v in values if v is not None]
    if given and all(isinstance(v, bool) for v in given):
        return pa.array(values, pa.bool_())
    if given and all(isinstance(v, int) and not isinstance(v, bool) and abs(v) < 2 ** 63 for v in given):
        return pa.array(values, pa.int64())
    if given and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in given):
        return pa.array([None if v is None else float(v) for v in values], pa.float64())
    return pa.array([None if v is None else v if isinstance(v, str) else orjson.dumps(v).decode()
                     for v in values], pa.string())


def _listed(indexes: list[int]) -> str:
    return "feature" + ("s " if len(indexes) > 1 else " ") + ", ".join(map(str, indexes[:SHOW])) + \
        (" ..." if len(indexes) > SHOW else "")
