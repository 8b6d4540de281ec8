"""Numpy columns from a store into GeoJSON (RFC 7946) and CSV."""

from __future__ import annotations

import csv
import io
import math

import numpy as np


def _values(array: np.ndarray) -> list:
    values = array.tolist()
    if array.dtype.kind == "f" and np.isnan(array).any():
        values = [None if (v is None or (isinstance(v, float) and math.isnan(v))) else v for v in values]
    return values


def feature_collection(cols: dict[str, np.ndarray], limit: int | None = None) -> dict:
    """Features in [lon, lat] order; at most `limit` of the rows."""
    n = len(cols["id"]) if limit is None else min(limit, len(cols["id"]))
    ids = _values(cols["id"][:n])
    lon, lat = cols["lon"][:n].tolist(), cols["lat"][:n].tolist()
    names = [k for k in cols if k not in ("id", "lon", "lat")]
    columns = [_values(cols[k][:n]) for k in names]
    props = [dict(zip(names, row)) for row in zip(*columns)] if names else [{} for _ in range(n)]
    features = [
        {"type": "Feature", "id": i, "geometry": {"type": "Point", "coordinates": [x, y]}, "properties": p}
        for i, x, y, p in zip(ids, lon, lat, props)
    ]
    return {"type": "FeatureCollection", "features": features, "numberReturned": n}


def to_csv(cols: dict[str, np.ndarray], limit: int | None = None) -> str:
    n = len(cols["id"]) if limit is None else min(limit, len(cols["id"]))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(list(cols))
    writer.writerows(zip(*(_values(v[:n]) for v in cols.values())))
    return out.getvalue()


def bins_collection(bins) -> dict:
    """One Polygon feature per non-empty cell, with count and field statistics."""
    minx, miny, maxx, maxy = bins.bbox
    dx, dy = (maxx - minx) / bins.nx, (maxy - miny) / bins.ny
    i, j, count = bins.i.tolist(), bins.j.tolist(), bins.count.tolist()
    stats = {k: _values(np.asarray(v, dtype=float)) for k, v in bins.stats.items()}
    features = []
    for n in range(len(i)):
        x0, y0 = minx + i[n] * dx, miny + j[n] * dy
        ring = [[x0, y0], [x0 + dx, y0], [x0 + dx, y0 + dy], [x0, y0 + dy], [x0, y0]]
        props = {"i": i[n], "j": j[n], "count": count[n], **{k: v[n] for k, v in stats.items()}}
        features.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
                         "properties": props})
    return {"type": "FeatureCollection", "features": features, "numberReturned": len(features),
            "grid": {"bbox": list(bins.bbox), "nx": bins.nx, "ny": bins.ny, "dx": dx, "dy": dy},
            "total": int(sum(count))}
