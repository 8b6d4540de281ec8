"""Areas layers: polygons in the stores, and points counted by area.

An ``areas`` layer is a table ``_ord, id, lon, lat, minlon, minlat, maxlon,
maxlat, _km2, wkb, <fields>``: ``lon``/``lat`` a point inside the area (for
labels and the spatial order), the bounding box, the geodesic area in km²
and the geometry as WKB (always a MultiPolygon, longitude/latitude). Rows
are numbered (``_ord``) along the Morton curve of the representative
points, as points are. PostGIS keeps the same columns (``wkb`` as bytea)
plus ``geom geometry(MultiPolygon, 4326)`` generated from the WKB, with a
GiST index (stores/postgis_writer.py).

Counting points by area (:func:`assign`): a point belongs to the area with
the lowest ``_ord`` whose closed polygon (boundary included) covers it, so
a point on a boundary shared by two areas is counted once. DuckDB layers
are assigned here with shapely 2 (a bounding-box pre-filter on points
sorted by longitude, then ``intersects_xy`` on the prepared polygon: no
Python loop over points); PostGIS answers the same rule in one query
(``ST_Covers`` on the GiST index, the lowest ``_ord``).
"""

from __future__ import annotations

import datetime
from typing import Sequence

import numpy as np
import orjson

from .base import BadParam, LayerInfo, StoreError, View, layer_meta, quote, table_name
from .staging import describe_fields, morton_key

AREA_COLUMNS = ("minlon", "minlat", "maxlon", "maxlat", "wkb")  # besides _ord, id, lon, lat and _km2
RESERVED = {"id", "lon", "lat", *AREA_COLUMNS}


def publish_areas(con, name: str, source: str = "", names: dict[str, str] | None = None) -> LayerInfo:
    """Create (or replace) areas layer `name` from the registered relation ``_areas_in``
    (id, lon, lat, minlon, minlat, maxlon, maxlat, _km2, wkb, fields); `names`: column ->
    public name."""
    table = table_name(name)
    x0, y0, x1, y1, n = con.execute(
        "SELECT min(minlon), min(minlat), max(maxlon), max(maxlat), count(*) FROM _areas_in").fetchone()
    if not n:
        raise StoreError(f"layer {name!r} would be empty: no areas")
    con.execute(f"DROP TABLE IF EXISTS {quote(table)}")
    con.execute(f"CREATE TABLE {quote(table)} AS SELECT row_number() OVER "
                f"(ORDER BY {morton_key(x0, y0, x1, y1)}, id) AS _ord, * FROM _areas_in ORDER BY _ord")
    fields = [f for f in describe_fields(con, table, names or {}) if f.column not in AREA_COLUMNS]
    version = con.execute("SELECT coalesce(max(version), 0) + 1 FROM _layers").fetchone()[0]
    con.execute("DELETE FROM _layers WHERE name = ?", [name])
    con.execute("INSERT INTO _layers (name, kind, count, minlon, minlat, maxlon, maxlat, fields, version, "
                "source, places, loaded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [name, "areas", n, x0, y0, x1, y1, orjson.dumps(layer_meta(fields)).decode(), version,
                 source, None, datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)])
    return LayerInfo(name=name, kind="areas", count=n, extent=[x0, y0, x1, y1], fields=fields,
                     version=version, source=source)


def require_areas(info: LayerInfo, param: str = "areas") -> None:
    if info.kind != "areas":
        raise BadParam(param, f"layer {info.name!r} is a {info.kind} layer, not an areas (polygon) layer")


def overlap_clause(bbox, mark: str) -> tuple[str, list]:
    """Areas whose bounding box meets `bbox` (all when None)."""
    if bbox is None:
        return "TRUE", []
    minx, miny, maxx, maxy = (float(v) for v in bbox)
    return (f"maxlon >= {mark} AND minlon <= {mark} AND maxlat >= {mark} AND minlat <= {mark}",
            [minx, maxx, miny, maxy])


def area_rows(info: LayerInfo, run, view: View, mark: str, extra: Sequence[str] = (),
              limit: int | None = None, offset: int = 0, where_clause=None) -> dict[str, np.ndarray]:
    """Areas in view (bounding box overlap, and the view's field filters: `where_clause`,
    stores/sql.py's, required with filters), in _ord order: _ord, id, lon, lat, the
    bounding box, _km2, wkb and the `extra` columns (checked)."""
    require_areas(info, "layer")
    where, values = "TRUE", []
    if view.filters:
        where, values = where_clause(info, View(filters=view.filters), mark)
    box, box_values = overlap_clause(view.bbox, mark)
    cols = ["_ord", "id", "lon", "lat", *AREA_COLUMNS[:4], "_km2", "wkb", *extra]
    sql = (f"SELECT {', '.join(quote(c) for c in cols)} FROM {quote(table_name(info.name))} "
           f"WHERE {box} AND {where} ORDER BY _ord")
    values = box_values + values
    if limit is not None:
        sql += f" LIMIT {mark} OFFSET {mark}"
        values += [int(limit), int(offset)]
    return run(sql, values)


def envelope(view_bbox, rows: dict[str, np.ndarray]):
    """The bbox holding the view and every area in view (None: everything)."""
    if view_bbox is None:
        return None
    if not len(rows["_ord"]):
        return tuple(float(v) for v in view_bbox)
    return (min(float(view_bbox[0]), float(rows["minlon"].min())), min(float(view_bbox[1]), float(rows["minlat"].min())),
            max(float(view_bbox[2]), float(rows["maxlon"].max())), max(float(view_bbox[3]), float(rows["maxlat"].max())))


def assign(lon: np.ndarray, lat: np.ndarray, rows: dict[str, np.ndarray]) -> np.ndarray:
    """For each point, the index (into `rows`, which are in _ord order) of the first area
    whose closed polygon covers it, or -1. Vectorized: points sorted by longitude once;
    each area tests only the unassigned points in its bounding box, with shapely's
    ``intersects_xy`` on the prepared polygon (a point intersects a polygon when it is
    inside or on its boundary)."""
    import shapely

    n = len(lon)
    out = np.full(n, -1, dtype=np.int64)
    if n == 0 or not len(rows["_ord"]):
        return out
    order = np.argsort(lon, kind="stable")
    xs, ys = lon[order], lat[order]
    free = np.ones(n, dtype=bool)  # by sorted position
    geoms = shapely.from_wkb([bytes(w) for w in rows["wkb"]])
    for k in range(len(geoms)):
        lo = np.searchsorted(xs, rows["minlon"][k], side="left")
        hi = np.searchsorted(xs, rows["maxlon"][k], side="right")
        if lo >= hi:
            continue
        cand = np.flatnonzero(free[lo:hi] & (ys[lo:hi] >= rows["minlat"][k]) & (ys[lo:hi] <= rows["maxlat"][k]))
        if not len(cand):
            continue
        cand += lo
        shapely.prepare(geoms[k])
        inside = cand[shapely.intersects_xy(geoms[k], xs[cand], ys[cand])]
        free[inside] = False
        out[order[inside]] = k
    return out


def group_stats(area: np.ndarray, count_areas: int, values: np.ndarray | None,
                category: np.ndarray | None) -> dict:
    """Per area index (0 .. count_areas - 1): count, and of `values` (NaN ignored) n, sum,
    min, max, median; of `category` the count of each value (None ignored)."""
    inside = area >= 0
    out: dict = {"count": np.bincount(area[inside], minlength=count_areas)}
    if values is not None:
        v = np.asarray(values, dtype=np.float64)
        keep = inside & ~np.isnan(v)
        a, v = area[keep], v[keep]
        order = np.lexsort((v, a))
        a, v = a[order], v[order]
        nvals = np.bincount(a, minlength=count_areas)
        starts = np.concatenate([[0], np.cumsum(nvals)[:-1]])
        out["n"] = nvals
        out["sum"] = np.bincount(a, weights=v, minlength=count_areas) if len(v) else np.zeros(count_areas)
        has = nvals > 0
        mins = np.full(count_areas, np.nan)
        maxs = np.full(count_areas, np.nan)
        med = np.full(count_areas, np.nan)
        s, c = starts[has], nvals[has]
        mins[has] = v[s]
        maxs[has] = v[s + c - 1]
        lo, hi = v[s + (c - 1) // 2], v[s + c // 2]
        med[has] = lo + (hi - lo) * 0.5  # as PostgreSQL's percentile_cont(0.5)
        out["min"], out["max"], out["median"] = mins, maxs, med
    if category is not None:
        cat = np.asarray(category, dtype=object)
        keep = inside & np.not_equal(cat, None)
        shares: list[dict] = [dict() for _ in range(count_areas)]
        if keep.any():
            labels = np.array([_label(x) for x in cat[keep]], dtype=object)
            uniq, inv = np.unique(labels.astype(str), return_inverse=True)
            pair = area[keep] * len(uniq) + inv
            codes, counts = np.unique(pair, return_counts=True)
            for code, cnt in zip(codes.tolist(), counts.tolist()):
                shares[code // len(uniq)][str(uniq[code % len(uniq)])] = cnt
        out["share"] = shares
    return out


def distinct_per_group(group: np.ndarray, n: int, users: np.ndarray) -> np.ndarray:
    """Distinct non-null `users` per group 0 .. n - 1."""
    users = np.asarray(users, dtype=object)
    keep = np.not_equal(users, None)
    if not keep.any():
        return np.zeros(n, dtype=np.int64)
    _, code = np.unique(users[keep].astype(str), return_inverse=True)
    pairs = np.unique(group[keep].astype(np.int64) * (int(code.max()) + 1) + code)
    return np.bincount(pairs // (int(code.max()) + 1), minlength=n)


def _label(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
