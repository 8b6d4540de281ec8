"""H3 hexagon bins: points counted by H3 cell (the ``h3`` package, 4.x).

:func:`cells` gives each point's cell at a resolution; :func:`aggregate`
groups points by cell with numpy (counts, distinct users, the mean, minimum
and maximum of a field); :func:`polygons` gives the cells' outlines as GeoJSON.
The resolution of a view, when not asked for, is the finest at which the
view's bbox holds at most :data:`TARGET_CELLS` average cells.
"""

from __future__ import annotations

import math
from itertools import repeat

import numpy as np

from ..stores.areas import distinct_per_group  # noqa: F401  (re-exported)

TARGET_CELLS = 4000
MAX_RESOLUTION = 15


def bbox_km2(bbox) -> float:
    """The area of a lon/lat bbox on a sphere of the Earth's mean radius."""
    minx, miny, maxx, maxy = (float(v) for v in bbox)
    r = 6371.0088
    return abs(math.radians(maxx - minx) * (math.sin(math.radians(maxy)) - math.sin(math.radians(miny)))) * r * r


def resolution_for(bbox, target: int = TARGET_CELLS) -> int:
    """The finest resolution whose average cells, `target` of them at most, cover the bbox."""
    import h3

    km2 = bbox_km2(bbox)
    for res in range(MAX_RESOLUTION, -1, -1):
        if km2 / h3.average_hexagon_area(res, "km^2") <= target:
            return res
    return 0


def cells(lon: np.ndarray, lat: np.ndarray, res: int) -> np.ndarray:
    """Each point's H3 cell (uint64) at resolution `res`: h3's own latlng_to_cell."""
    import h3.api.numpy_int as h3n

    n = len(lon)
    if n == 0:
        return np.empty(0, dtype=np.uint64)
    return np.fromiter(map(h3n.latlng_to_cell, np.asarray(lat, float).tolist(), np.asarray(lon, float).tolist(),
                           repeat(int(res))), dtype=np.uint64, count=n)


def aggregate(cell: np.ndarray, values: np.ndarray | None = None, users: np.ndarray | None = None) -> dict:
    """Per distinct cell (ascending): ``cell``, ``count``, with `values` ``mean``, ``min``,
    ``max`` (NaN ignored; NaN when none), with `users` ``users`` (distinct values)."""
    uniq, inv, count = np.unique(cell, return_inverse=True, return_counts=True)
    out = {"cell": uniq, "count": count}
    if values is not None:
        out.update(group_values(inv, len(uniq), np.asarray(values, dtype=np.float64)))
    if users is not None:
        out["users"] = distinct_per_group(inv, len(uniq), users)
    return out


def group_values(group: np.ndarray, n: int, v: np.ndarray) -> dict:
    keep = ~np.isnan(v)
    g, v = group[keep], v[keep]
    nvals = np.bincount(g, minlength=n)
    total = np.bincount(g, weights=v, minlength=n) if len(v) else np.zeros(n)
    mins, maxs = np.full(n, np.inf), np.full(n, -np.inf)
    np.minimum.at(mins, g, v)
    np.maximum.at(maxs, g, v)
    has = nvals > 0
    mean = np.full(n, np.nan)
    mean[has] = total[has] / nvals[has]
    mins[~has] = np.nan
    maxs[~has] = np.nan
    return {"mean": mean, "min": mins, "max": maxs}


def polygons(cells_: np.ndarray) -> list[dict]:
    """GeoJSON Polygons of H3 cells ([lng, lat], closed rings)."""
    import h3.api.numpy_int as h3n

    out = []
    for c in cells_.tolist():
        ring = [[lng, lat] for lat, lng in h3n.cell_to_boundary(c)]
        ring.append(ring[0])
        out.append({"type": "Polygon", "coordinates": [ring]})
    return out
