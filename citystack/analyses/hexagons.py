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
    """Each point's H3 cell (uint64) at resolution `res`, as ``h3.latlng_to_cell`` gives it."""
    uniq, inv = cell_groups(lon, lat, res)
    return uniq[inv]


def cell_groups(lon: np.ndarray, lat: np.ndarray, res: int) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct cells, ascending; each point's index into them).

    h3 has no vectorized latlng_to_cell (a Python call per point: 1.3 s a million).
    H3 puts a point on the icosahedron face whose centre is nearest, projects it
    gnomonically onto that face and takes the hexagon of a regular lattice there
    that holds it, the nearest lattice point. That is done here with numpy, on a
    lattice fitted to h3's own cell centres (:func:`_lattice`), and h3 is then
    asked once per lattice point met (any of its points stands for all). A point
    within 1e-6 cell spacings of a hexagon's edge, or nearly as close to a second
    face centre as to its own, is given to h3 itself: no point depends on this
    module's rounding agreeing with h3's to the last bit."""
    import h3.api.numpy_int as h3n

    lon = np.ascontiguousarray(lon, dtype=np.float64)
    lat = np.ascontiguousarray(lat, dtype=np.float64)
    n = len(lon)
    if n == 0:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    try:
        key, unsure = _lattice_keys(lon, lat, int(res))
    except _NoLattice:
        key, unsure = np.zeros(n, np.int64), np.ones(n, dtype=bool)
    sure = np.flatnonzero(~unsure)
    ks = key[sure] if len(sure) < n else key
    if len(ks) and int(ks.max()) - int(ks.min()) < DENSE_KEYS:
        # Keys in a small range (a city at res 9: tens of thousands of lattice points):
        # counted in place, no sort. Any point of a lattice point stands for it.
        dense = ks - ks.min()
        seen = np.bincount(dense)
        occupied = np.flatnonzero(seen)
        rep_of = np.empty(len(seen), np.int64)
        rep_of[dense] = sure
        rep = rep_of[occupied]
        group = np.empty(len(seen), np.int64)
        group[occupied] = np.arange(len(occupied))
        inv = group[dense]
    else:
        _, first, inv = np.unique(ks, return_index=True, return_inverse=True)
        rep = sure[first]
    odd = np.flatnonzero(unsure)
    asked = np.concatenate([rep, odd])
    found = np.fromiter(map(h3n.latlng_to_cell, lat[asked].tolist(), lon[asked].tolist(), repeat(int(res))),
                        dtype=np.uint64, count=len(asked))
    # A cell astride two faces is two lattice points (one on each face): merged here.
    uniq, where = np.unique(found, return_inverse=True)
    out = np.empty(n, np.int64)
    out[sure] = where[:len(rep)][inv]
    out[odd] = where[len(rep):]
    return uniq, out


class _NoLattice(Exception):
    pass


_FACES: np.ndarray | None = None
_LATTICES: dict = {}
EDGE_MARGIN = 1e-6  # cell spacings
FACE_MARGIN = 1e-12  # in cosines of the angle to the face centres
DENSE_KEYS = 1 << 25  # key ranges up to this are counted in place rather than sorted


def _unit(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    la, lo = np.radians(lat), np.radians(lon)
    cl = np.cos(la)
    return np.stack([cl * np.cos(lo), cl * np.sin(lo), np.sin(la)], axis=-1)


def _faces() -> np.ndarray:
    """The 20 icosahedron face centres (unit vectors): the normalized sums of the three
    corners of each face, the corners being h3's 12 resolution-0 pentagons."""
    global _FACES
    if _FACES is None:
        import h3.api.numpy_int as h3n

        corners = _unit(*np.array([h3n.cell_to_latlng(p) for p in h3n.get_pentagons(0)]).T)
        near = corners @ corners.T > 0.3  # neighbouring corners are 63.4 degrees apart, cos 0.447
        found = []
        for a in range(12):
            for b in range(a + 1, 12):
                for c in range(b + 1, 12):
                    if near[a, b] and near[a, c] and near[b, c]:
                        s = corners[a] + corners[b] + corners[c]
                        found.append(s / np.linalg.norm(s))
        if len(found) != 20:
            raise _NoLattice("icosahedron faces not found")
        _FACES = np.array(found)
    return _FACES


def _lattice(face: int, res: int):
    """The gnomonic frame of a face (centre c, tangent axes e1, e2) and h3's lattice of
    cell centres in it at `res`: origin o and basis u, v (60 degrees apart), fitted on
    cells far along two axes of h3's local IJ coordinates from the face centre's cell."""
    key = (face, res)
    if key not in _LATTICES:
        import h3.api.numpy_int as h3n

        c = _faces()[face]
        a = np.array([0.0, 0.0, 1.0]) if abs(c[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
        e1 = np.cross(a, c)
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(c, e1)
        frame = np.column_stack([c, e1, e2])
        lat0, lon0 = math.degrees(math.asin(c[2])), math.degrees(math.atan2(c[1], c[0]))
        try:
            c0 = h3n.latlng_to_cell(lat0, lon0, res)
            i0, j0 = h3n.cell_to_local_ij(c0, c0)
            step = max(1, int(math.sqrt(120 * 7 ** res / 20) / 10))  # a tenth of the face's width in cells
            far = [c0, h3n.local_ij_to_cell(c0, i0 + step, j0), h3n.local_ij_to_cell(c0, i0, j0 + step)]
        except Exception as exc:  # noqa: BLE001 - h3's errors near pentagons
            raise _NoLattice(str(exc)) from None
        pts = _unit(*np.array([h3n.cell_to_latlng(x) for x in far]).T) @ frame
        xy = pts[:, 1:] / pts[:, :1]
        o, u, v = xy[0], (xy[1] - xy[0]) / step, (xy[2] - xy[0]) / step
        if u @ v < 0:
            v = u + v  # 120 degrees apart: u + v is the axis 60 degrees from u
        if abs(np.hypot(*u) - np.hypot(*v)) > 1e-9 * np.hypot(*u):
            raise _NoLattice("not a regular lattice")
        _LATTICES[key] = (frame, o, np.linalg.inv(np.column_stack([u, v])))
    return _LATTICES[key]


def _lattice_keys(lon, lat, res) -> tuple[np.ndarray, np.ndarray]:
    """Each point's (face, lattice point) as one int64, and whether it is too close to call."""
    faces = _faces()
    la, lo = np.radians(lat), np.radians(lon)
    cl = np.cos(la)
    px, py, pz = cl * np.cos(lo), cl * np.sin(lo), np.sin(la)
    # Only faces that can be nearest to a point of these: a face's points are within
    # 37.4 degrees of its centre, so farther faces from the points' mean cannot be.
    centre = np.array([px.mean(), py.mean(), pz.mean()])
    centre /= np.linalg.norm(centre) or 1.0
    spread = np.arccos(np.clip(px * centre[0] + py * centre[1] + pz * centre[2], -1, 1)).max()
    # A face can be nearest to a point of the cap (centre, spread) only if its least angle
    # to the cap is within the largest angle of the nearest face's: a city has one.
    angle = np.arccos(np.clip(faces @ centre, -1, 1))
    near = np.flatnonzero(angle - spread <= angle.min() + spread + 1e-9)
    if len(near) == 1:
        best = np.full(len(px), int(near[0]), np.int64)
        unsure = np.zeros(len(px), dtype=bool)
    else:
        best = np.zeros(len(px), np.int64)
        top = np.full(len(px), -2.0)
        second = np.full(len(px), -2.0)
        for k in near.tolist():
            d = px * faces[k, 0] + py * faces[k, 1] + pz * faces[k, 2]
            better = d > top
            second = np.where(better, top, np.maximum(second, d))
            best = np.where(better, k, best)
            top = np.where(better, d, top)
        unsure = top - second < FACE_MARGIN
    ka = np.zeros(len(px), np.int64)
    kb = np.zeros(len(px), np.int64)
    used = np.unique(best).tolist() if len(near) > 1 else near.tolist()
    for face in used:
        sel = slice(None) if len(used) == 1 else np.flatnonzero(best == face)
        frame, o, inv = _lattice(face, res)
        qx, qy, qz = px[sel], py[sel], pz[sel]
        d = qx * frame[0, 0] + qy * frame[1, 0] + qz * frame[2, 0]
        x = (qx * frame[0, 1] + qy * frame[1, 1] + qz * frame[2, 1]) / d - o[0]
        y = (qx * frame[0, 2] + qy * frame[1, 2] + qz * frame[2, 2]) / d - o[1]
        a = inv[0, 0] * x + inv[0, 1] * y
        b = inv[1, 0] * x + inv[1, 1] * y
        fa, fb = np.floor(a), np.floor(b)
        ra, rb = a - fa, b - fb
        # The rhombus (fa, fb) + [0, 1)^2 is two equilateral triangles; the nearest lattice
        # point is the corner of the point's triangle with the largest barycentric weight
        # (w0: (0, 0) below the diagonal, (1, 1) above it; w1: (1, 0); w2: (0, 1)).
        upper = ra + rb >= 1.0
        w0 = np.abs(1.0 - ra - rb)
        w1 = np.where(upper, 1.0 - rb, ra)
        w2 = np.where(upper, 1.0 - ra, rb)
        hi = np.maximum(np.maximum(w0, w1), w2)
        lo_ = np.minimum(np.minimum(w0, w1), w2)
        unsure[sel] |= hi - (1.0 - hi - lo_) < EDGE_MARGIN  # the weights sum to 1
        one = (w1 >= w0) & (w1 >= w2)
        two = ~one & (w2 >= w0)
        ka[sel] = fa.astype(np.int64) + np.where(one, 1, np.where(two, 0, upper))
        kb[sel] = fb.astype(np.int64) + np.where(two, 1, np.where(one, 0, upper))
    bound = 1 << 24
    if len(px) and (np.abs(ka).max() >= bound or np.abs(kb).max() >= bound):
        raise _NoLattice("lattice coordinates out of range")
    return (best << 50) | ((ka + bound) << 25) | (kb + bound), unsure


def aggregate(uniq: np.ndarray, inv: np.ndarray, values: np.ndarray | None = None,
              users: np.ndarray | None = None) -> dict:
    """Per distinct cell (`uniq`, `inv` from :func:`cell_groups`): ``cell``, ``count``, with
    `values` ``mean``, ``min``, ``max`` (NaN ignored; NaN when none), with `users` ``users``
    (distinct values)."""
    count = np.bincount(inv, minlength=len(uniq))
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
